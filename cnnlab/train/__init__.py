"""cnnlab.train: the training loop, its History, callbacks and checkpoints."""
from cnnlab.train.callbacks import (EarlyStopping, EpochLog, ModelCheckpoint, TerminationTest, small_decrease,
                                    small_step)
from cnnlab.train.checkpoint import CheckpointError, remove_stale_temporaries
from cnnlab.train.checkpoint_state import read_checkpoint
from cnnlab.train.history import History
from cnnlab.metrics import accuracy  # its home is cnnlab.metrics; importable here as before
from cnnlab.train.trainer import Trainer, evaluate

__all__ = ["Trainer", "History", "CheckpointError", "read_checkpoint", "remove_stale_temporaries",
           "accuracy", "evaluate", "EarlyStopping", "ModelCheckpoint", "EpochLog",
           "TerminationTest", "small_step", "small_decrease"]
