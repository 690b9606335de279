"""cnnlab: a small NumPy training stack for convolutional neural nets, written to be read.

Core objects live at the top level; each concept has its own submodule:

- `cnnlab.Module`, `cnnlab.Sequential`, `cnnlab.hooks`: the building blocks and PyTorch's hooks;
  `eval_mode(net)`, `train_mode(net)`, `no_input_grad(net)`: blocks that set how a net runs
- `cnnlab.layers`: Linear, Conv2d, pooling, activations, dropout, batch norm, ...
- `cnnlab.kernels`: the convolution and pooling kernel pairs, `naive` (loops) and `fast` (the default)
- `cnnlab.losses`: CrossEntropyLoss, MSELoss
- `cnnlab.data`: Fashion-MNIST, mini-batches, train/validation split
- `cnnlab.gradcheck`, `cnnlab.jacobian`, `cnnlab.backprop`: checking and seeing back-propagation
- `cnnlab.autodiff`, `cnnlab.numdiff`: automatic and numerical differentiation
- `cnnlab.optim`, `cnnlab.train`, `cnnlab.metrics`: optimizers, the training loop, evaluation
- `cnnlab.init`, `cnnlab.pretrain`, `cnnlab.regularizers`, `cnnlab.augment`, `cnnlab.ensemble`
- `cnnlab.surfaces`: 2-D functions for watching optimizers move
- `cnnlab.models`: the course's small networks (tiny_mlp, race_net, reference_cnn, recipe_cnn, ...)
- `cnnlab.bench`: the benchmark (`python -m cnnlab bench`) and BLAS thread control
- `cnnlab.manual_seed(s)`, `cnnlab.initial_seed()`: the library generator behind every rng=None
  (as `torch.manual_seed`; the one rule for randomness is in `cnnlab.rng`)

Submodules are imported on first use (`cnnlab.layers` works after `import cnnlab`).
Only NumPy (and tqdm for progress bars) is needed: no plotting, no widgets, no notebooks.
"""
import importlib

from cnnlab.module import Module, Parameter, eval_mode, no_input_grad, train_mode
from cnnlab.rng import initial_seed, manual_seed
from cnnlab.sequential import Sequential

__version__ = "0.1.0"
__all__ = ["Parameter", "Module", "Sequential", "eval_mode", "train_mode", "no_input_grad", "manual_seed",
           "initial_seed"]

_SUBMODULES = {"layers", "losses", "data", "gradcheck", "jacobian", "backprop", "autodiff", "numdiff",
               "optim", "surfaces", "train", "metrics", "init", "pretrain", "regularizers", "augment",
               "ensemble", "summary", "bench", "models", "kernels", "hooks"}


def __getattr__(name):
    if name in _SUBMODULES:
        return importlib.import_module(f"cnnlab.{name}")
    raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
