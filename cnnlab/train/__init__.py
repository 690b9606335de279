"""cnnlab.train: the training loop, its History, callbacks and checkpoints."""
from cnnlab.train.callbacks import EarlyStopping, ModelCheckpoint, TerminationTest, small_decrease, small_step
from cnnlab.train.history import History
from cnnlab.train.trainer import Trainer, accuracy, evaluate

__all__ = ["Trainer", "History", "accuracy", "evaluate", "EarlyStopping", "ModelCheckpoint",
           "TerminationTest", "small_step", "small_decrease"]
