"""What `python -m cnnlab bench` times: the networks, and one training step of each in cnnlab and in PyTorch
(its twin, with the same layers, the same initial weights and the same optimizer).

Two networks (`NETWORKS`), both from `cnnlab.models`, on float32 images (N, 1, 28, 28):
- "reference_cnn": Conv2d(1, 16, 3, padding=1) - ReLU - MaxPool2d(2) - Conv2d(16, 32, 3, padding=1) - ReLU -
  MaxPool2d(2) - Flatten - Linear(1568, 128) - ReLU - Linear(128, 10), trained with
  `SGD(lr=0.01, momentum=0.9)`;
- "recipe_cnn": the course's recipe (`python -m cnnlab train`): two blocks Conv2d 3x3 - BatchNorm2d - ReLU -
  MaxPool2d(2) (32 and 64 channels), Flatten - Linear(3136, 128) - ReLU - Dropout(keep 0.7) - Linear(128, 10),
  trained with `Adam(lr=1e-3)` as the recipe is (batch 64 in both, the benchmark's default). cnnlab's Adam
  adds eps inside the square root (the source documents' eq. 5.33), PyTorch's outside: the same work.

A training step is forward, CrossEntropyLoss, backward and the optimizer's step. Neither side computes
the gradient of the loss with respect to the images: PyTorch does not because the images do not require
a gradient, cnnlab because the step runs its network's backward inside `no_input_grad(net)` (see
`cnnlab.module`).

Each implementation is a small object with `name`, `train_step()`, `inference()` (eval mode, forward
only) and `layer_step(clock)` (a training step run layer by layer, timing each layer); the timing
harness (`cnnlab.bench.timing`) only calls these.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from cnnlab.losses import CrossEntropyLoss
from cnnlab.models import recipe_cnn, reference_cnn
from cnnlab.module import no_input_grad
from cnnlab.optim import SGD, Adam

__all__ = ["INPUT_SHAPE", "NUM_CLASSES", "BenchNetwork", "NETWORKS", "CnnlabStep", "TorchStep"]

INPUT_SHAPE = (1, 28, 28)
NUM_CLASSES = 10


@dataclass(frozen=True)
class BenchNetwork:
    """One benchmarked network: how to build it in cnnlab (`build(seed)`) and in PyTorch (`torch_twin(nn)`,
    the same layers in the same order, so that the parameters pair up one to one), and its optimizer in
    both (`optimizer(params)`, `torch_optimizer(torch, params)`), described in words by `optimizer_text`."""
    name: str
    build: Callable
    torch_twin: Callable
    optimizer: Callable
    torch_optimizer: Callable
    optimizer_text: str


def _torch_reference_cnn(nn):
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, NUM_CLASSES))


def _torch_recipe_cnn(nn, width=32, hidden=128, p_keep=0.7):
    """`cnnlab.models.recipe_cnn()` in PyTorch (its dropout takes the drop probability 1 - p_keep)."""
    def block(c_in, c_out):
        return [nn.Conv2d(c_in, c_out, 3, padding=1), nn.BatchNorm2d(c_out), nn.ReLU(), nn.MaxPool2d(2)]

    return nn.Sequential(*block(1, width), *block(width, 2 * width), nn.Flatten(),
                         nn.Linear(2 * width * 7 * 7, hidden), nn.ReLU(), nn.Dropout(1 - p_keep),
                         nn.Linear(hidden, NUM_CLASSES))


NETWORKS = {
    "reference_cnn": BenchNetwork(
        "reference_cnn", reference_cnn, _torch_reference_cnn,
        lambda params: SGD(params, lr=0.01, momentum=0.9),
        lambda torch, params: torch.optim.SGD(params, lr=0.01, momentum=0.9), "SGD(lr=0.01, momentum=0.9)"),
    "recipe_cnn": BenchNetwork(
        "recipe_cnn", recipe_cnn, _torch_recipe_cnn,
        lambda params: Adam(params, lr=1e-3),
        lambda torch, params: torch.optim.Adam(params, lr=1e-3), "Adam(lr=0.001)"),
}


class CnnlabStep:
    """cnnlab's side: `net` (a Sequential) trained on the fixed batch x (N, 1, 28, 28), labels y (N,), with
    `optimizer(net.parameters())` (a BenchNetwork's `optimizer`)."""

    name = "cnnlab"

    def __init__(self, net, x, y, optimizer):
        self.net, self.x, self.y = net, x, y
        self.loss_fn = CrossEntropyLoss()
        self.optimizer = optimizer(net.parameters())

    def train_step(self):
        out = self.net.forward(self.x)
        self.loss_fn.forward(out, self.y)
        with no_input_grad(self.net):                          # nobody uses dL/d(images)
            self.net.backward(self.loss_fn.backward())
        self.optimizer.step()

    def inference(self):
        self.net.eval()
        try:
            return self.net.forward(self.x)
        finally:
            self.net.train()

    def layer_step(self, clock):
        """A training step that times every layer; returns (forward s, backward s, loss s, optimizer s)."""
        layers = list(self.net)
        fwd, bwd = [0.0] * len(layers), [0.0] * len(layers)
        h = self.x
        for i, layer in enumerate(layers):
            t = clock()
            h = layer.forward(h)
            fwd[i] = clock() - t
        t = clock()
        self.loss_fn.forward(h, self.y)
        d = self.loss_fn.backward()
        loss_time = clock() - t
        for i in reversed(range(len(layers))):
            t = clock()
            if i > 0:
                d = layers[i].backward(d)
            else:                                   # as in train_step: no gradient for the images
                with no_input_grad(layers[0]):
                    layers[0].backward(d)
            bwd[i] = clock() - t
        t = clock()
        self.optimizer.step()
        return fwd, bwd, loss_time, clock() - t


class TorchStep:
    """PyTorch's side: the twin of `net` (`network.torch_twin`, weights copied), on the same batch, on the CPU."""

    name = "PyTorch"

    def __init__(self, torch, net, x, y, network: BenchNetwork):
        self.torch = torch
        self.net = network.torch_twin(torch.nn)
        theirs, ours = list(self.net.parameters()), net.parameters()
        if [tuple(p.shape) for p in theirs] != [p.data.shape for p in ours]:
            raise ValueError(f"the PyTorch twin of {network.name} does not match the cnnlab network: parameter "
                             f"shapes {[tuple(p.shape) for p in theirs]} vs {[p.data.shape for p in ours]}")
        with torch.no_grad():  # the same initial weights as cnnlab's network (same layouts)
            for p_torch, p_ours in zip(theirs, ours):
                p_torch.copy_(torch.from_numpy(np.ascontiguousarray(p_ours.data)))
        self.x, self.y = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))
        self.loss_fn = torch.nn.CrossEntropyLoss()
        self.optimizer = network.torch_optimizer(torch, self.net.parameters())

    def train_step(self):
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.loss_fn(self.net(self.x), self.y)
        loss.backward()
        self.optimizer.step()

    def inference(self):
        self.net.eval()
        try:
            with self.torch.inference_mode():
                return self.net(self.x)
        finally:
            self.net.train()

    def layer_step(self, clock):
        """A training step run layer by layer (autograd per layer), timing each layer."""
        layers = list(self.net)
        fwd, bwd = [0.0] * len(layers), [0.0] * len(layers)
        self.optimizer.zero_grad(set_to_none=True)
        h, inputs, outputs = self.x, [], []
        for i, layer in enumerate(layers):
            t = clock()
            inp = h.detach().requires_grad_(i > 0)  # the images need no gradient, as in a plain step
            out = layer(inp)
            fwd[i] = clock() - t
            inputs.append(inp)
            outputs.append(out)
            h = out
        t = clock()
        logits = h.detach().requires_grad_()
        self.loss_fn(logits, self.y).backward()
        g = logits.grad
        loss_time = clock() - t
        for i in reversed(range(len(layers))):
            t = clock()
            outputs[i].backward(g)
            g = inputs[i].grad
            bwd[i] = clock() - t
        t = clock()
        self.optimizer.step()
        return fwd, bwd, loss_time, clock() - t
