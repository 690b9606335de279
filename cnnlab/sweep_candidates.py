"""What `python -m cnnlab sweep` compares: the candidate recipes, the reference they change, and the `train`
command line of each run (see `cnnlab.sweep`, which runs them and reports).
"""
from __future__ import annotations

__all__ = ["FLAGS", "REFERENCE", "CANDIDATES", "SweepError", "option_argv", "train_argv"]

# Options of train_recipe -> the train command's flags (True: a flag without a value).
FLAGS = {"epochs": "--epochs", "lr": "--lr", "batch_size": "--batch-size", "width": "--width", "augment": "--augment",
         "optimizer": "--optimizer", "schedule": "--schedule", "warmup_epochs": "--warmup",
         "label_smoothing": "--label-smoothing", "weight_decay": "--weight-decay", "patience": "--patience"}

# The recipe every candidate changes: `train`'s defaults before the sweep (still the subset's). It is passed in
# full with every candidate's own options, so a candidate's runs stay the same runs whatever `train --full`
# defaults to (its defaults are the winner's since the sweep).
REFERENCE = {"lr": 1e-3, "augment": "none", "schedule": "cosine", "label_smoothing": 0.0, "weight_decay": 0.0}

# The candidates, for a budget of 15 minutes of CPU time (one BLAS thread) on a 2-core laptop. Sized from
# measured runs on the development machine, its other core busy: 38-42 s of CPU an epoch of 55,000 images with
# its validation (18 epochs of the default recipe: 688 s; 21: 877 s); flips about x1.05, crops and flips about
# x1.1, width 48 about x2.1, batch 128 about x0.95. Each run is planned at ~13-14 minutes at 42 s an epoch; a run
# that still takes longer is marked over budget, not dropped. Every candidate but the first changes one thing
# of "cosine-20"; "combined" puts the changes together.
CANDIDATES = {
    "baseline": {"epochs": 10},                                  # `train --full` before the sweep: ~6.5 min
    "cosine-20": {"epochs": 20},                                 # the schedule's length matched to the budget
    "warmup-lr2e-3": {"epochs": 20, "lr": 2e-3, "warmup_epochs": 1},  # a warm-up allows a higher peak rate
    "onecycle-lr3e-3": {"epochs": 20, "lr": 3e-3, "schedule": "onecycle"},
    "label-smoothing-0.1": {"epochs": 20, "label_smoothing": 0.1},
    "adamw-wd0.05": {"epochs": 20, "weight_decay": 0.05},        # decoupled: x(1 - lr wd) a step
    "flip-19": {"epochs": 19, "augment": "flip"},                # the benchmark table's augmentation
    "crop-flip-18": {"epochs": 18, "augment": "crop-flip"},      # crops too, the epochs their cost leaves
    "width-48-9": {"epochs": 9, "width": 48},                    # twice the step time
    "batch-128": {"epochs": 21, "batch_size": 128, "lr": 2e-3},  # half the steps, twice the rate
    "combined": {"epochs": 19, "augment": "flip", "label_smoothing": 0.1, "weight_decay": 0.05,
                 "schedule": "onecycle", "lr": 3e-3},
}


class SweepError(ValueError):
    """A results file that cannot be used, or options that do not make a sweep."""


def option_argv(options: dict) -> list[str]:
    """The `train` command's arguments for a candidate's options (see FLAGS), e.g. ["--epochs", "15"]."""
    unknown = sorted(set(options) - set(FLAGS))
    if unknown:
        raise SweepError(f"unknown candidate option(s) {', '.join(unknown)}; known: {', '.join(FLAGS)}")
    argv = []
    for key, value in options.items():
        if value is True:
            argv.append(FLAGS[key])
        elif value is not False:
            argv += [FLAGS[key], f"{value:g}" if isinstance(value, float) else str(value)]
    return argv


def train_argv(options: dict, seed: int, source: str) -> list[str]:
    """The `train` command's arguments for a candidate's options (over REFERENCE's), a seed and a data source
    ("full", "subset")."""
    return (["--full"] if source == "full" else []) + option_argv({**options, **{k: v for k, v in REFERENCE.items() if k not in options}}) \
        + ["--seed", str(seed)]
