"""`History`: what happened during training, step by step and epoch by epoch."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["History"]


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

    def step_values(self, key: str) -> np.ndarray:
        return np.array([s[key] if s[key] is not None else np.nan for s in self.steps], dtype=float)

    def epoch_values(self, key: str) -> np.ndarray:
        return np.array([e[key] if e[key] is not None else np.nan for e in self.epochs], dtype=float)

    @property
    def train_loss(self) -> np.ndarray:
        return self.epoch_values("train_loss")

    @property
    def val_loss(self) -> np.ndarray:
        return self.epoch_values("val_loss")

    @property
    def train_accuracy(self) -> np.ndarray:
        return self.epoch_values("train_accuracy")

    @property
    def val_accuracy(self) -> np.ndarray:
        return self.epoch_values("val_accuracy")

    @property
    def diverged(self) -> bool:
        return self.status == "diverged"

    def __repr__(self) -> str:
        last = self.epochs[-1] if self.epochs else {}
        parts = [f"{len(self.epochs)} epochs", f"{len(self.steps)} steps", self.status]
        if last.get("val_loss") is not None:
            parts.append(f"val_loss={last['val_loss']:.4f}")
        return f"History({', '.join(parts)})"
