"""`History`: what happened during training, step by step and epoch by epoch."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["History", "STATUSES"]

STATUSES = ("running", "completed", "early_stopping", "terminated", "stopped", "diverged")
_STEP_KEYS = {"step", "epoch", "loss", "penalty", "accuracy", "lr"}
_EPOCH_KEYS = {"epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "lr", "seconds"}


@dataclass
class History:
    """Records of a training run.

    - steps: one dict per optimizer step: {"step", "epoch", "loss", "penalty", "accuracy", "lr"}: loss
      is the data term, penalty the regularizer's (0 without one); accuracy is None unless the task is
      classification with integer labels;
    - epochs: one dict per finished epoch: {"epoch", "train_loss", "train_accuracy", "val_loss",
      "val_accuracy", "lr", "seconds"} (train_* are averages over the epoch's mini-batches; val_* are
      None without validation data);
    - status: "running", "completed", "early_stopping", "terminated" (a termination test held),
      "stopped" (asked to stop) or "diverged"; `message` says why in words;
    - diverged_at: the global step at which the run was found diverged (its loss, or the validation
      outputs after it, not finite; or the Trainer's diverge_above rule, or a callback's), else None.
    """

    steps: list = field(default_factory=list)
    epochs: list = field(default_factory=list)
    status: str = "running"
    message: str = ""
    diverged_at: int | None = None

    # --- serialisation (JSON values only: checkpoints store it in their header) -----------------------
    def to_dict(self) -> dict:
        """{"steps", "epochs", "status", "message", "diverged_at"}: lists of dicts of numbers, strings."""
        return {"steps": [dict(s) for s in self.steps], "epochs": [dict(e) for e in self.epochs],
                "status": self.status, "message": self.message, "diverged_at": self.diverged_at}

    @classmethod
    def from_dict(cls, d) -> "History":
        """The History `to_dict` described; ValueError saying what is wrong for anything else."""
        if not isinstance(d, dict) or set(d) != {"steps", "epochs", "status", "message", "diverged_at"}:
            raise ValueError(f"a history must be an object with steps, epochs, status, message and "
                             f"diverged_at, got {str(d)[:80]}")
        if d["status"] not in STATUSES or not isinstance(d["message"], str):
            raise ValueError(f"history status {str(d['status'])[:40]!r} is not one of {', '.join(STATUSES)}, "
                             f"or its message is not text")
        if d["diverged_at"] is not None and not (_count(d["diverged_at"]) and isinstance(d["steps"], list)
                                                 and 1 <= d["diverged_at"] <= len(d["steps"])):
            raise ValueError(f"history diverged_at must be null or one of its steps, got "
                             f"{str(d['diverged_at'])[:40]}")
        for name, keys in (("steps", _STEP_KEYS), ("epochs", _EPOCH_KEYS)):
            records = d[name]
            if not isinstance(records, list) or not all(
                    isinstance(r, dict) and set(r) == keys and all(_number_or_none(v) for v in r.values())
                    for r in records):
                raise ValueError(f"history {name} must be a list of records with keys {sorted(keys)} "
                                 f"holding numbers or null")
            number = name[:-1]  # steps are numbered 1, 2, ... and so are epochs
            if any(r[number] != i for i, r in enumerate(records, 1)) \
                    or any(type(r[number]) is not int for r in records):
                raise ValueError(f"history {name} must be numbered 1, 2, ... in order")
        return cls([dict(s) for s in d["steps"]], [dict(e) for e in d["epochs"]], d["status"], d["message"],
                   d["diverged_at"])

    def step_values(self, key: str) -> np.ndarray:
        return np.array([s[key] if s[key] is not None else np.nan for s in self.steps], dtype=float)

    def epoch_values(self, key: str) -> np.ndarray:
        return np.array([e[key] if e[key] is not None else np.nan for e in self.epochs], dtype=float)

    # one value per epoch (NaN where there was none, e.g. no validation set)
    train_loss = property(lambda self: self.epoch_values("train_loss"))
    val_loss = property(lambda self: self.epoch_values("val_loss"))
    train_accuracy = property(lambda self: self.epoch_values("train_accuracy"))
    val_accuracy = property(lambda self: self.epoch_values("val_accuracy"))

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        parts = [f"{len(self.epochs)} epochs", f"{len(self.steps)} steps", self.status]
        if last.get("val_loss") is not None:
            parts.append(f"val_loss={last['val_loss']:.4f}")
        return f"History({', '.join(parts)})"


def _count(value) -> bool:
    return type(value) is int and value >= 0


def _number_or_none(value) -> bool:
    return value is None or type(value) in (int, float)
