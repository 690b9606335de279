"""The course's training recipe for Fashion-MNIST, as used by `python -m cnnlab train`.

Every choice is one the lessons teach and measure:
- architecture (`cnnlab.models.recipe_cnn`): two convolution blocks (Conv2d 3x3 -> BatchNorm2d -> ReLU ->
  MaxPool2d 2) and a classifier (Linear -> ReLU -> Dropout -> Linear): "2 Conv + pooling + BN" in the
  benchmark table shipped with Fashion-MNIST (lessons 04, 09, 10);
- initialisation: He (kaiming_normal) for the ReLU layers, zero biases (lesson 08);
- inputs standardised with the mean and std of the training images only (lesson 10);
- regularisation: batch norm and dropout (keep 0.7); on request, horizontal flips alone, or random crops
  with 2-pixel padding and flips (lesson 09); which of them pay within the 15-minute budget is measured by
  `python -m cnnlab sweep` (README: "Comparing recipes");
- optimizer: Adam, batch 64, a learning-rate schedule advanced after every optimizer step (lessons 06-07);
  the others of `cnnlab.optim.OPTIMIZERS` by name, with that table's hyper-parameters. Options: a cosine
  schedule over the run, with a linear warm-up before it (`warmup_epochs`), or a one-cycle schedule peaking
  at `lr`; label smoothing; decoupled weight decay (AdamW: with Adam or AdamW);
- defaults by data source (RECIPE_DEFAULTS): on the shipped subset, 12 epochs at lr 1e-3 with a cosine
  schedule and nothing else (quick, for the course); on the full set, the sweep's winner;
- model selection: 5,000 training images held out for validation; the test set is scored once.

A run with a checkpoint stores its settings in it (`meta`); resuming compares them with the new ones
and refuses any change but the number of epochs (the cosine schedule is then rebuilt for the new
length, and that is said; a one-cycle schedule cannot be stretched). A diverged run is reported and
never saved; Ctrl-C says what was saved.
"""
from __future__ import annotations

import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

__all__ = ["train_recipe", "RECIPE_DEFAULTS", "recipe_defaults", "AUGMENTS", "augment_kind", "decoupled_decay",
           "SettingsError", "DIVERGE_ABOVE", "SCHEDULES", "check_checkpoint_location"]

# The recipe's divergence rule (Trainer's diverge_above, over its default window of 8 steps). The
# cross-entropy of 10 classes starts near ln 10 = 2.3 and a learning net stays below ~10; a mean of
# 1000 means logits wrong by ~1000 on average, a net that has left any useful region (adaptive
# optimizers at huge rates sit there for ever without producing NaN). Far above any sane run.
DIVERGE_ABOVE = 1e3
SETTINGS = ("width", "optimizer", "lr", "seed", "source", "augment", "batch_size", "val_size", "patience",
            "label_smoothing", "weight_decay", "warmup_epochs", "schedule")
SCHEDULES = ("cosine", "onecycle")

# The options a run takes from its data source when they are not given (None). The subset's are fast, for the
# course. The full set's are the winner of `python -m cnnlab sweep` (README: "Comparing recipes"): the best mean
# validation accuracy over three seeds among the recipes trained within 15 minutes of CPU on a 2-core laptop.
RECIPE_DEFAULTS = {
    "subset": {"epochs": 12, "lr": 1e-3, "augment": "none", "schedule": "cosine", "label_smoothing": 0.0,
               "weight_decay": None},
    "full": {"epochs": 19, "lr": 3e-3, "augment": "flip", "schedule": "onecycle", "label_smoothing": 0.1,
             "weight_decay": 0.05},
}


class SettingsError(ValueError):
    """A request the recipe refuses before training: a checkpoint location, an overwrite, a changed resume."""


def check_checkpoint_location(path, resume: bool, overwrite: bool) -> Path:
    """Refuse (SettingsError) a checkpoint path that cannot be used, before any training.

    The path must not be a directory; its folder must exist or be creatable and be writable (a
    temporary file is created and removed there); a fresh run must not replace an existing file
    unless `overwrite`; `resume` needs the file.
    """
    path = Path(path)
    if resume and overwrite:
        raise SettingsError("--resume continues the checkpoint, --overwrite replaces it: give one of them")
    if path.is_dir():
        raise SettingsError(f"the checkpoint path {path} is a directory: give a file name, e.g. {path / 'run.ckpt'}")
    if resume and not path.is_file():
        raise SettingsError(f"nothing to resume: no checkpoint at {path} (run without --resume to start one)")
    if path.exists() and not resume and not overwrite:
        raise SettingsError(f"{path} already exists: pass --resume to continue that run or --overwrite to "
                            f"replace it")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".probe"):
            pass
    except OSError as error:
        raise SettingsError(f"cannot write the checkpoint {path}: {error.strerror or error}") from None
    return path


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}" if abs(value) < 1e6 else f"{value:.3g}"


class _ValidationDivergence:
    """The divergence rule at an epoch's end: a validation loss above DIVERGE_ABOVE ends the run as
    diverged; placed before ModelCheckpoint, so such an epoch is never saved."""

    def on_epoch_end(self, trainer, info) -> None:
        loss = info["val_loss"]
        if loss is not None and loss > DIVERGE_ABOVE and not trainer.history.diverged:
            trainer.history.diverged_at = trainer.global_step
            trainer.stop("diverged", f"diverged by step {trainer.global_step}: the validation loss is {loss:.3g}, "
                                     f"more than {DIVERGE_ABOVE:g}; try a smaller learning rate")


def _resume_settings(path, settings: dict) -> dict:
    """The checkpoint's contents after checking that its run is this run (SettingsError listing changes)."""
    from cnnlab.train import read_checkpoint

    contents = read_checkpoint(path, arrays=False)  # the arrays are read once the network exists
    saved = contents["meta"].get("recipe")
    if not isinstance(saved, dict):
        raise SettingsError(f"{path} was not written by the recipe (no settings in it): it cannot be resumed here")
    known = set(SETTINGS) | {"epochs"}
    if set(saved) != known:
        lacks, extra = sorted(known - set(saved)), sorted(set(saved) - known)
        said = [f"without {', '.join(lacks)}"] if lacks else []
        said += [f"with unknown {', '.join(extra)}"] if extra else []
        raise SettingsError(f"{path} was written by another version of the recipe (settings {'; '.join(said)}): it "
                            f"cannot be resumed here; start afresh with --overwrite")
    if type(saved["epochs"]) is not int or saved["epochs"] < 1:
        raise SettingsError(f"{path} records {str(saved['epochs'])[:20]} planned epochs: not a checkpoint of "
                            f"the recipe")
    if isinstance(saved["augment"], bool):  # written before flips alone were offered
        saved = {**saved, "augment": augment_kind(saved["augment"])}
    changed = [f"{k} {saved[k]!r} saved, {settings[k]!r} requested" for k in SETTINGS if saved[k] != settings[k]]
    if changed:
        raise SettingsError(f"{path} was trained with other settings; resume with the saved ones or start afresh "
                            f"with --overwrite: " + "; ".join(changed))
    if contents["history"].diverged:
        raise SettingsError(f"the run in {path} had diverged ({contents['history'].message}); start afresh with "
                            f"--overwrite and a smaller --lr")
    return saved


def _bar_fits() -> bool:
    """Whether a progress bar suits the output: a terminal, or a notebook's kernel (tqdm draws a widget
    there). Anything else (a log file, CI, a notebook's `!` command) gets one line per epoch instead."""
    try:
        if sys.stdout.isatty():
            return True
    except (AttributeError, ValueError):  # a replaced or closed stdout
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return type(shell).__name__ == "ZMQInteractiveShell"


AUGMENTS = ("none", "flip", "crop-flip")  # the recipe's augmentations; True means "crop-flip", False "none"


def augment_kind(augment) -> str:
    """The augmentation `augment` names: "none" (False), "flip" (horizontal flips) or "crop-flip" (True:
    random crops with 2-pixel padding, then flips). SettingsError for anything else."""
    kind = ("crop-flip" if augment else "none") if isinstance(augment, bool) else augment
    if kind not in AUGMENTS:
        raise SettingsError(f"augment must be True, False or one of {', '.join(AUGMENTS)}; got {augment!r}")
    return kind


def decoupled_decay(optimizer: str, weight_decay: float | None) -> float:
    """The decoupled weight decay a run of `optimizer` uses: `weight_decay` as given, or, for None, the
    optimizer's own (AdamW's 0.01 from `OPTIMIZERS`, PyTorch's default; 0 for every other optimizer)."""
    from cnnlab.optim import OPTIMIZERS

    if weight_decay is not None:
        return float(weight_decay)
    return float(OPTIMIZERS[optimizer].hyperparameters["weight_decay"]) if optimizer == "adamw" else 0.0


def recipe_defaults(source: str, optimizer: str = "adam", **given) -> dict:
    """The options of RECIPE_DEFAULTS[source] with those of `given` that are not None in their place. A default
    weight decay goes with "adam" and "adamw" only: for the other optimizers it stays None (their weight_decay
    would be an L2 penalty); `decoupled_decay` then gives the decay a run uses."""
    if source not in RECIPE_DEFAULTS:
        raise SettingsError(f"the data source must be one of {', '.join(RECIPE_DEFAULTS)}, got {source!r}")
    unknown = sorted(set(given) - set(RECIPE_DEFAULTS[source]))
    if unknown:
        raise SettingsError(f"recipe_defaults has no option {', '.join(unknown)}; it knows "
                            f"{', '.join(RECIPE_DEFAULTS[source])}")
    options = {**RECIPE_DEFAULTS[source], **{k: v for k, v in given.items() if v is not None}}
    if given.get("weight_decay") is None and optimizer not in ("adam", "adamw"):
        options["weight_decay"] = None
    return options


def _check_training_options(epochs, optimizer, label_smoothing, weight_decay, warmup_epochs, schedule) -> None:
    """SettingsError for a bad label smoothing, weight decay, warm-up or schedule (or a bad combination)."""
    def number(value):
        return not isinstance(value, bool) and isinstance(value, (int, float, np.integer, np.floating)) \
            and math.isfinite(value)

    if not (number(label_smoothing) and 0 <= label_smoothing < 1):
        raise SettingsError(f"label_smoothing must be a number in [0, 1), got {label_smoothing!r}")
    if not (weight_decay is None or (number(weight_decay) and weight_decay >= 0)):
        raise SettingsError(f"weight_decay must be a number >= 0 (or None), got {weight_decay!r}")
    if weight_decay and optimizer not in ("adam", "adamw"):
        raise SettingsError(f"weight_decay is decoupled weight decay (AdamW) and goes with optimizer 'adam' or "
                            f"'adamw' only; got optimizer {optimizer!r}")
    if schedule not in SCHEDULES:
        raise SettingsError(f"schedule must be one of {', '.join(SCHEDULES)}; got {schedule!r}")
    if not (number(warmup_epochs) and 0 <= warmup_epochs < epochs):
        raise SettingsError(f"warmup_epochs must be a number of epochs in [0, epochs) = [0, {epochs}), got "
                            f"{warmup_epochs!r}")
    if warmup_epochs and schedule == "onecycle":
        raise SettingsError("the one-cycle schedule has its own warm-up (30% of the steps): give warmup_epochs=0")


def _schedule(opt, kind: str, lr: float, total: int, warmup: int):
    """The recipe's schedule over `total` optimizer steps (see train_recipe); SettingsError if too short."""
    from cnnlab.optim import CosineAnnealingLR, OneCycleLR

    try:
        if kind == "onecycle":
            return OneCycleLR(opt, max_lr=lr, total_steps=total)
        return CosineAnnealingLR(opt, T_max=total, warmup_iters=warmup)
    except ValueError as error:  # a run of a handful of steps
        raise SettingsError(f"the {kind} schedule does not fit a run of {total} steps: {error}") from None


def _describe(settings: dict) -> str:
    """The optimizer, schedule and regularisation of a run in a few words, for the log."""
    wd, ls, warmup = settings["weight_decay"], settings["label_smoothing"], settings["warmup_epochs"]
    decoupled = wd or settings["optimizer"] == "adamw"
    words = [f"AdamW (weight decay {wd:g})" if decoupled else settings["optimizer"], f"lr={settings['lr']:g}",
             f"batch {settings['batch_size']}",
             "one-cycle schedule" if settings["schedule"] == "onecycle" else
             f"cosine schedule after {warmup:g} warm-up epochs" if warmup else "cosine schedule"]
    words += [f"label smoothing {ls:g}"] if ls else []
    augmented = {"none": [], "flip": ["flips"], "crop-flip": ["crops and flips"]}[augment_kind(settings["augment"])]
    return ", ".join(words + augmented)


def train_recipe(full: bool = False, epochs: int | None = None, lr: float | None = None, batch_size: int = 64,
                 optimizer: str = "adam", seed: int = 0, augment: bool | str | None = None, val_size: int = 5000,
                 checkpoint=None, resume: bool = False, progress: bool = True, width: int = 32,
                 log=print, overwrite: bool = False, patience: int | None = None,
                 label_smoothing: float | None = None, weight_decay: float | None = None, warmup_epochs: float = 0.0,
                 schedule: str | None = None) -> dict:
    """Train the recipe on the shipped subset (or the full set) and score the test set once.

    epochs, lr, augment, schedule, label_smoothing and weight_decay left at None take the data source's
    default (RECIPE_DEFAULTS): on the subset 12 epochs of Adam at 1e-3 with a cosine schedule and nothing else;
    on the full set the sweep's winner, 19 epochs with flips, a one-cycle schedule peaking at 3e-3, label
    smoothing 0.1 and decoupled weight decay 0.05.

    Returns {"status", "test_accuracy", "test_loss", "val_accuracy", "seconds", "cpu_seconds", "epochs", "history",
    "source", "net", "settings"}: settings are the run's (as a checkpoint records them, with "epochs");
    status is the History's ("completed", "diverged", ...); a diverged run scores nothing (test_* None).
    With `checkpoint`, the state and these settings are saved after every epoch (atomically; never a
    diverged state); a fresh run refuses to replace an existing file unless `overwrite`; with `resume`,
    training continues from it bit-exactly, with the same settings (SettingsError lists any change) and
    `epochs` as the new total. Ctrl-C raises KeyboardInterrupt whose message says what the checkpoint holds.
    `progress`: a progress bar on a terminal or in a notebook, else one line per epoch through `log` (loss,
    validation accuracy, time so far and left); False: only the summary lines. `patience`: stop when the
    validation loss has not improved for that many epochs; with it the test set is scored with the weights
    of the best epoch, whichever way the run ends, and the last line says which epoch that was.

    The schedule advances after every optimizer step. schedule "cosine": from lr down to 0 over the run,
    after a linear warm-up from lr / 10 over `warmup_epochs` (a number of epochs, fractions allowed; 0:
    none); "onecycle": `OneCycleLR` with max_lr = lr (from lr / 25 up to lr over the first 30% of the
    steps, then down to lr / 250,000; Adam's beta1 cycles 0.95 -> 0.85 -> 0.95). `label_smoothing`: eps
    of `CrossEntropyLoss` for training and validation (the test loss reported is the plain
    cross-entropy). `weight_decay`: decoupled weight decay (every parameter shrinks by lr * weight_decay per
    step): with optimizer "adam", > 0 trains with `AdamW` instead; with "adamw", its decay (None: the table's,
    PyTorch's 0.01); None means 0 for every other optimizer, and > 0 is refused there (their weight_decay
    would be an L2 penalty, another thing). The settings record the decay the run used.
    """
    from cnnlab.augment import Compose, RandomCrop, RandomHorizontalFlip
    from cnnlab.data import load_fashion_mnist, train_val_split
    from cnnlab.losses import CrossEntropyLoss
    from cnnlab.metrics import accuracy, predict
    from cnnlab.models import recipe_cnn
    from cnnlab.optim import OPTIMIZERS, AdamW, make_optimizer
    from cnnlab.train import EarlyStopping, EpochLog, ModelCheckpoint, Trainer, evaluate, remove_stale_temporaries

    source = "full" if full else "subset"
    if optimizer not in OPTIMIZERS:  # a name exactly as the table spells it: it is saved with the run
        raise SettingsError(f"optimizer must be one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")
    chosen = recipe_defaults(source, optimizer, epochs=epochs, lr=lr, augment=augment, schedule=schedule,
                             label_smoothing=label_smoothing, weight_decay=weight_decay)
    epochs, lr, augment, schedule = chosen["epochs"], chosen["lr"], chosen["augment"], chosen["schedule"]
    label_smoothing, weight_decay = chosen["label_smoothing"], chosen["weight_decay"]
    for name, value, least in (("epochs", epochs, 1), ("batch_size", batch_size, 1), ("width", width, 1),
                               ("seed", seed, 0), ("val_size", val_size, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
            raise SettingsError(f"{name} must be a whole number >= {least}, got {value!r}")
    if patience is not None and (isinstance(patience, bool) or not isinstance(patience, (int, np.integer))
                                 or patience < 1):
        raise SettingsError(f"patience must be a whole number of epochs >= 1, or None, got {patience!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise SettingsError(f"lr must be a positive finite number, got {lr!r}")
    _check_training_options(epochs, optimizer, label_smoothing, weight_decay, warmup_epochs, schedule)
    weight_decay = decoupled_decay(optimizer, weight_decay)
    if resume and not checkpoint:
        raise SettingsError("resume=True needs the checkpoint path to resume from")
    settings = {"width": int(width), "optimizer": optimizer, "lr": float(lr), "seed": int(seed), "source": source,
                "augment": augment_kind(augment), "batch_size": int(batch_size), "val_size": int(val_size),
                "patience": None if patience is None else int(patience), "label_smoothing": float(label_smoothing),
                "weight_decay": float(weight_decay), "warmup_epochs": float(warmup_epochs), "schedule": schedule}
    planned = epochs
    if checkpoint:
        checkpoint = check_checkpoint_location(checkpoint, resume, overwrite)
        removed = remove_stale_temporaries(checkpoint)
        if removed:
            log(f"removed {len(removed)} unfinished temporary file(s) of an interrupted save next to {checkpoint}")
        if resume:
            planned = _resume_settings(checkpoint, settings)["epochs"]
            if schedule == "onecycle" and epochs != planned:
                raise SettingsError(f"{checkpoint} plans a one-cycle schedule over {planned} epochs; it cannot be "
                                    f"stretched mid-run (its peak sits 30% into the planned steps): resume with "
                                    f"--epochs {planned}")

    X, y, _ = load_fashion_mnist("train", source=source)
    X_test, y_test, _ = load_fashion_mnist("test", source=source)
    val_fraction = min(val_size / len(X), 0.1)
    X_train, y_train, X_val, y_val = train_val_split(X, y, val_fraction=val_fraction, rng=seed)
    del X, y  # the split made copies: one copy of the data in memory, not two
    mean, std = float(X_train.mean()), float(X_train.std())  # from the training images only
    for images in (X_train, X_val, X_test):  # in place, for the same reason
        images -= mean
        images /= std
    net = recipe_cnn(seed, width=width)
    if optimizer == "adamw":
        opt = make_optimizer(optimizer, net.parameters(), lr, weight_decay=weight_decay)
    elif weight_decay:  # Adam with a decoupled decay is AdamW
        opt = AdamW(net.parameters(), lr=lr, weight_decay=weight_decay)
    else:
        opt = make_optimizer(optimizer, net.parameters(), lr)
    saver = ModelCheckpoint(checkpoint, meta={"recipe": {**settings, "epochs": epochs}}) if checkpoint else None
    bar = progress and _bar_fits()
    lines = [EpochLog(epochs, log)] if progress and not bar else []
    # before the saver: a checkpoint of a run that stopped early holds the weights it kept
    stopper = [EarlyStopping(patience=patience)] if patience else []
    trainer = Trainer(net, CrossEntropyLoss(label_smoothing=label_smoothing), opt, X_train, y_train,
                      batch_size=batch_size, rng=seed, X_val=X_val, y_val=y_val, scheduler_interval="step",
                      callbacks=[_ValidationDivergence()] + stopper + ([saver] if saver else []) + lines,
                      augment={"none": None, "flip": RandomHorizontalFlip(),
                               "crop-flip": Compose([RandomCrop(28, padding=2), RandomHorizontalFlip()]),
                               }[settings["augment"]],
                      diverge_above=DIVERGE_ABOVE)
    steps = len(trainer.loader)  # optimizer steps per epoch: the schedule counts them
    trainer.scheduler = sched = _schedule(opt, schedule, lr, planned * steps, round(warmup_epochs * steps))
    if resume:
        trainer.load(checkpoint)
        saver.last_saved = trainer.epoch
        log(f"resumed from {checkpoint} at epoch {trainer.epoch} of {planned}")
        if epochs != planned and trainer.epoch < epochs:
            sched.T_max = epochs * steps  # the cosine schedule over the new length, at the step reached
            for group, base in zip(opt.param_groups, sched.base_lrs):
                group["lr"] = sched.lr_at(sched.last_epoch, base)
            log(f"the cosine schedule now spans {epochs} epochs instead of {planned}: "
                f"lr {opt.param_groups[0]['lr']:.3g} at epoch {trainer.epoch + 1}")
    if trainer.history.status == "early_stopping":
        log(f"the run in {checkpoint} stopped early at epoch {trainer.epoch}: nothing to train")
    elif trainer.epoch >= epochs:
        log(f"{checkpoint} already holds {trainer.epoch} epochs (asked for {epochs}): nothing to train")
    else:
        where = "the full set" if full else "the shipped subset"
        log(f"training on {len(X_train)} images ({where}), validating on {len(X_val)}; "
            f"{_describe(settings)}, {epochs} epochs")
    t0, cpu0 = time.perf_counter(), time.process_time()
    try:
        history = trainer.fit(epochs, progress=bar and trainer.epoch < epochs)  # done: trains nothing
    except KeyboardInterrupt:
        held = saver.last_saved if saver else None
        raise KeyboardInterrupt(
            f"interrupted at epoch {trainer.epoch + 1}: " + (
                f"the checkpoint {checkpoint} holds epoch {held}; resume with --resume" if held else
                f"nothing saved: {'no epoch of this run finished' if saver else 'no --checkpoint'}")) from None
    seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0
    for e in [] if lines else history.epochs[-3:]:  # the last epochs, unless every one was logged
        log(f"epoch {e['epoch']}: train loss {_number(e['train_loss'])}, val loss {_number(e['val_loss'])}, "
            f"val accuracy {_number(e['val_accuracy'])}")
    result = {"status": history.status, "test_accuracy": None, "test_loss": None,
              "val_accuracy": history.epochs[-1]["val_accuracy"] if history.epochs else None,
              "seconds": seconds, "cpu_seconds": cpu_seconds, "epochs": trainer.epoch, "history": history, "source": source, "net": net,
              "settings": {**settings, "epochs": epochs}}
    if history.diverged:
        kept = (f"{checkpoint} still holds epoch {saver.last_saved}" if saver and saver.last_saved
                else "nothing was saved")
        log(f"diverged at step {history.diverged_at} (lr {lr:g}): try a smaller --lr; {kept}; "
            f"the test set was not scored")
        return result
    kept = ""
    if stopper and stopper[0].best_state is not None:  # the best epoch's weights, however the run ended
        best = stopper[0]
        net.load_state_dict(best.best_state)
        how = "stopped early at" if history.status == "early_stopping" else "ended after"
        kept = (f" with the weights of epoch {best.best_epoch} (lowest validation loss, {best.best:.4f}; the run "
                f"{how} epoch {trainer.epoch})")
        result["kept_epoch"] = best.best_epoch
        result["val_accuracy"] = history.epochs[best.best_epoch - 1]["val_accuracy"]
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        test_loss, _ = evaluate(net, CrossEntropyLoss(), X_test, y_test)
        test_accuracy = accuracy(predict(net, X_test), y_test)
    log(f"{history.status}: {history.message}")
    log(f"test accuracy {test_accuracy:.4f} on {len(X_test)} images (scored once){kept}, "
        f"training took {seconds:.0f} s ({cpu_seconds:.0f} s of CPU)")
    result.update(test_accuracy=test_accuracy, test_loss=test_loss)
    return result
