"""Pre-training: starting a network from learned weights instead of random ones (Khan 5.1.4, 5.1.8).

Unsupervised, greedy and layer-wise (Khan 5.1.4; Bengio et al. 2007): before any label is used,
each hidden layer in turn learns to encode its own input well enough that a small decoder can
rebuild that input. For hidden layer k with input h_{k-1} (the codes of the layers below, already
pre-trained and then held fixed):

    encoder:  h_k = f(W_k h_{k-1} + b_k)          (the net's own Linear layer and activation)
    decoder:  r   = V_k h_k + c_k                 (a new Linear layer, thrown away afterwards)
    loss:     mean (r - h_{k-1})^2                (MSELoss reconstruction of the layer's input)

Only W_k, b_k, V_k, c_k are trained, for a few epochs; then h_k is computed for the whole data
set and feeds layer k+1. Supervised fine-tuning of the whole net follows.

Supervised pre-training and fine-tuning (Khan 5.1.8): train a net on a task with many labels,
copy its first layers into a net for a related task with few labels (`transfer`), give it a new
output layer (`replace_head`), optionally `freeze` the copied layers, and train on the small task.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cnnlab.layers import DropConnect, Linear
from cnnlab.layers.activations import LeCunTanh, ReLU, Sigmoid, Tanh
from cnnlab.losses import MSELoss
from cnnlab.module import Module, train_mode
from cnnlab.rng import as_generator
from cnnlab.sequential import Sequential

__all__ = ["LayerPretraining", "pretrain_autoencoders", "transfer", "freeze", "unfreeze", "replace_head"]

ACTIVATIONS = (ReLU, Sigmoid, Tanh, LeCunTanh)


@dataclass
class LayerPretraining:
    """The auto-encoder of one hidden layer and how its reconstruction loss went.

    - index: position of the Linear layer in the Sequential; encoder: Sequential(that layer[,
      its activation]) (the net's own modules, now pre-trained); decoder: the new Linear layer;
    - history: the cnnlab.train.History of its training (history.train_loss per epoch);
    - loss_before, loss_after: mean squared reconstruction error on the whole input, before and
      after training.
    """

    index: int
    encoder: Sequential
    decoder: Linear
    history: object
    loss_before: float
    loss_after: float


def _reconstruction_loss(ae: Module, H: np.ndarray, batch: int = 1000) -> float:
    """Mean squared error of the auto-encoder's reconstruction of H, in evaluation mode."""
    ae.eval()
    total = sum(float(np.sum(np.square(ae.forward(H[i:i + batch]) - H[i:i + batch], dtype=np.float64)))
                for i in range(0, len(H), batch))
    return total / H.size


def _forward(layers, X: np.ndarray, batch: int = 1000) -> np.ndarray:
    """X through `layers` (a list of modules) in evaluation mode, in chunks."""
    if not layers:
        return X
    net = Sequential(list(layers))
    net.eval()
    return np.concatenate([net.forward(X[i:i + batch]) for i in range(0, len(X), batch)])


def pretrain_autoencoders(net: Sequential, X, *, rng=None, layers=None, epochs: int = 3,
                          batch_size: int = 64, lr: float = 1e-3, optimizer=None) -> list[LayerPretraining]:
    """Greedy layer-wise unsupervised pre-training of the Linear layers of `net` (Khan 5.1.4), in place.

    Inputs:
    - net: a Sequential, e.g. [Flatten, Linear, ReLU, Linear, ReLU, Linear]; X: unlabelled inputs
      of the net (N, ...) in its dtype.
    - rng: Generator, int seed or None (cnnlab's library generator): the decoders' init and the
      shuffling.
    - layers: indices into `net` of the Linear layers to pre-train; None means every Linear layer
      followed directly by an activation (ReLU, Sigmoid, Tanh, LeCunTanh), i.e. the hidden layers
      of a classifier and not its output layer. The encoder is the Linear layer plus that
      activation when there is one.
    - epochs, batch_size: per auto-encoder; optimizer: a function params -> cnnlab.optim optimizer,
      default Adam(params, lr=lr).

    Layers are pre-trained in order; layer k's input is X passed through net[:k] (evaluation
    mode) after the layers before it were pre-trained. Returns one LayerPretraining per layer.
    """
    from cnnlab.optim import Adam
    from cnnlab.train import Trainer

    if not isinstance(net, Sequential):
        raise TypeError(f"pretrain_autoencoders expects a Sequential, got {type(net).__name__}")
    gen = as_generator(rng, "pretrain_autoencoders")
    if layers is None:
        layers = [i for i in range(len(net) - 1)
                  if _is_linear(net[i]) and isinstance(net[i + 1], ACTIVATIONS)]
        if not layers:
            raise ValueError("pretrain_autoencoders: the net has no Linear layer followed by an activation "
                             "(ReLU, Sigmoid, Tanh, LeCunTanh); pass layers=[...] to choose them")
    layers = list(layers)
    for i in layers:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)) or not 0 <= i < len(net) \
                or not _is_linear(net[i]):
            raise ValueError(f"pretrain_autoencoders: layers must be indices of Linear layers of the net "
                             f"(here {[k for k in range(len(net)) if _is_linear(net[k])]}), got {i!r}")
    if sorted(set(layers)) != layers:
        raise ValueError(f"pretrain_autoencoders: layers must be increasing and distinct, got {layers}")
    make_optimizer = optimizer or (lambda params: Adam(params, lr=lr))
    results = []
    # the Trainers below put the pretrained layers in training mode; afterwards each module has its own back
    with train_mode(net, net.training):
        H, done = np.asarray(X), 0  # H = X passed through net[:done]
        for i in layers:
            H, done = _forward(net.layers[done:i], H), i
            linear = net[i]
            follows = [net[i + 1]] if i + 1 < len(net) and isinstance(net[i + 1], ACTIVATIONS) else []
            encoder = Sequential([linear] + follows)
            decoder = Linear(linear.out_features, linear.in_features, rng=gen).astype(linear.weight.dtype)
            ae = Sequential([encoder, decoder])
            before = _reconstruction_loss(ae, H)
            trainer = Trainer(ae, MSELoss(), make_optimizer(ae.parameters()), H, H, batch_size=batch_size, rng=gen)
            history = trainer.fit(epochs, progress=False)
            results.append(LayerPretraining(i, encoder, decoder, history, before, _reconstruction_loss(ae, H)))
    return results


def _owned_parameter_modules(net: Module) -> list[tuple[str, Module]]:
    """Modules that own Parameters directly, in order (the "weight layers" that can be transferred)."""
    from cnnlab.module import Parameter

    return [(name, m) for name, m in net.named_modules()
            if any(isinstance(v, Parameter) for v in vars(m).values())]


def transfer(source_net: Module, target_net: Module, n_layers: int) -> list[str]:
    """Copy the parameters (and buffers, e.g. batch norm's running statistics) of the first
    `n_layers` layers with parameters from `source_net` into `target_net` (Khan 5.1.8).

    Layers are counted among the modules that own parameters (Linear, Conv2d, BatchNorm, ...), in
    order; activations, pooling and Flatten do not count. Each pair must have the same type and
    shapes; values are copied (into the target's dtype), so the two nets stay independent. The
    remaining layers of the target (its head) are left untouched. Returns the copied layers' names.
    """
    if not isinstance(source_net, Module) or not isinstance(target_net, Module):
        raise TypeError(f"transfer expects two cnnlab Modules, got {type(source_net).__name__} and "
                        f"{type(target_net).__name__}")
    src, dst = _owned_parameter_modules(source_net), _owned_parameter_modules(target_net)
    limit = min(len(src), len(dst))
    if isinstance(n_layers, bool) or not isinstance(n_layers, (int, np.integer)) or not 0 <= n_layers <= limit:
        raise ValueError(f"transfer: n_layers must be an int in [0, {limit}] (the source has {len(src)} and the "
                         f"target {len(dst)} layers with parameters), got {n_layers!r}")
    pairs = list(zip(src[:n_layers], dst[:n_layers]))
    for (sname, s), (dname, d) in pairs:  # check everything before copying anything
        if type(s) is not type(d):
            raise ValueError(f"transfer: layer {sname!r} of the source is a {type(s).__name__} but layer "
                             f"{dname!r} of the target is a {type(d).__name__}")
        s_state, d_state = _own_state(s), _own_state(d)
        if {k: v.shape for k, v in s_state.items()} != {k: v.shape for k, v in d_state.items()}:
            raise ValueError(f"transfer: layer {sname!r} has {_shapes(s_state)} in the source but layer "
                             f"{dname!r} has {_shapes(d_state)} in the target")
    for (_, s), (_, d) in pairs:
        d_state = _own_state(d)
        for key, value in _own_state(s).items():
            d_state[key][...] = value
    return [dname for _, (dname, _) in pairs]


def _own_state(module: Module) -> dict:
    """The arrays of the module's own parameters and buffers (not its children's), by attribute name."""
    from cnnlab.module import Parameter

    state = {k: v.data for k, v in vars(module).items() if isinstance(v, Parameter)}
    state.update((k, getattr(module, k)) for k in vars(module).get("_buffer_names", []))
    return state


def _shapes(state: dict) -> str:
    return ", ".join(f"{k} {tuple(v.shape)}" for k, v in state.items())


def freeze(module: Module) -> Module:
    """Set requires_grad = False on every parameter of `module`: optimizers leave them alone.

    Backward still computes their .grad (the gradient must pass through to the layers below) and
    freezing does not stop dropout or batch norm's running averages (use .eval() for those).
    Returns the module.
    """
    if not isinstance(module, Module):
        raise TypeError(f"freeze expects a cnnlab Module, got {type(module).__name__}")
    for p in module.parameters():
        p.requires_grad = False
    return module


def unfreeze(module: Module) -> Module:
    """Set requires_grad = True on every parameter of `module`; returns the module."""
    if not isinstance(module, Module):
        raise TypeError(f"unfreeze expects a cnnlab Module, got {type(module).__name__}")
    for p in module.parameters():
        p.requires_grad = True
    return module


def _is_linear(module) -> bool:
    """A Linear layer (or a student's subclass), but not a DropConnect (a Linear with masked weights)."""
    return isinstance(module, Linear) and not isinstance(module, DropConnect)


def replace_head(net: Module, out_features: int, rng=None) -> Linear:
    """Replace the last Linear layer of `net` by a new Linear(in_features, out_features) (Khan 5.1.8).

    The new head has the old one's in_features, bias setting and dtype and PyTorch's default
    init drawn from `rng` (Generator, int seed or None: cnnlab's library generator). It is placed
    where the old head was, in place; returns it.
    """
    if not isinstance(net, Module):
        raise TypeError(f"replace_head expects a cnnlab Module, got {type(net).__name__}")
    gen = as_generator(rng, "replace_head")
    found = None
    for _, parent in net.named_modules():
        for key, child in parent.named_children():
            if _is_linear(child):
                found = (parent, key, child)
    if found is None:
        raise ValueError("replace_head: the net has no Linear layer to replace")
    parent, key, old = found
    head = Linear(old.in_features, out_features, bias=old.bias is not None, rng=gen).astype(old.weight.dtype)
    if isinstance(parent, Sequential):
        parent.layers[int(key)] = head
    elif "." in key:
        attr, index = key.rsplit(".", 1)
        getattr(parent, attr)[int(index)] = head
    else:
        setattr(parent, key, head)
    return head
