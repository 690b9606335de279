"""What `python -m cnnlab bench` times: the course's reference CNN, and one training step of it in cnnlab
and in PyTorch (its twin, with the same layers, the same initial weights and the same optimizer).

    Conv2d(1, 16, 3, padding=1) - ReLU - MaxPool2d(2) - Conv2d(16, 32, 3, padding=1) - ReLU -
    MaxPool2d(2) - Flatten - Linear(1568, 128) - ReLU - Linear(128, 10)

on float32 images (N, 1, 28, 28). A training step is forward, CrossEntropyLoss, backward and
`SGD(lr=0.01, momentum=0.9)`. Neither side computes the gradient of the loss with respect to the
images: PyTorch does not because the images do not require a gradient, cnnlab because the step asks
its network for `backward(dout, needs_input_grad=False)` (see `cnnlab.module`).

Each implementation is a small object with `name`, `train_step()`, `inference()` (eval mode, forward
only) and `layer_step(clock)` (a training step run layer by layer, timing each layer); the timing
harness (`cnnlab.bench_timing`) only calls these.
"""
from __future__ import annotations

import numpy as np

from cnnlab.layers import Conv2d, Flatten, Linear, MaxPool2d, ReLU
from cnnlab.losses import CrossEntropyLoss
from cnnlab.optim import SGD
from cnnlab.rng import as_generator
from cnnlab.sequential import Sequential

__all__ = ["INPUT_SHAPE", "NUM_CLASSES", "LR", "MOMENTUM", "reference_cnn", "CnnlabStep", "TorchStep"]

INPUT_SHAPE = (1, 28, 28)
NUM_CLASSES = 10
LR, MOMENTUM = 0.01, 0.9


def reference_cnn(rng=None) -> Sequential:
    """The benchmark's network (float32), initialised from `rng` (a numpy Generator, an int seed, or
    None for cnnlab's library generator)."""
    gen = as_generator(rng, "reference_cnn")
    return Sequential(
        Conv2d(1, 16, 3, padding=1, rng=gen), ReLU(), MaxPool2d(2),
        Conv2d(16, 32, 3, padding=1, rng=gen), ReLU(), MaxPool2d(2),
        Flatten(), Linear(32 * 7 * 7, 128, rng=gen), ReLU(), Linear(128, NUM_CLASSES, rng=gen))


class CnnlabStep:
    """cnnlab's side: `net` (a Sequential) trained on the fixed batch x (N, 1, 28, 28), labels y (N,)."""

    name = "cnnlab"

    def __init__(self, net, x, y):
        self.net, self.x, self.y = net, x, y
        self.loss_fn = CrossEntropyLoss()
        self.optimizer = SGD(net.parameters(), lr=LR, momentum=MOMENTUM)

    def train_step(self):
        out = self.net.forward(self.x)
        self.loss_fn.forward(out, self.y)
        self.net.backward(self.loss_fn.backward(), needs_input_grad=False)   # nobody uses dL/d(images)
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
            d = layers[i].backward(d, needs_input_grad=i > 0)   # as in train_step: none for the images
            bwd[i] = clock() - t
        t = clock()
        self.optimizer.step()
        return fwd, bwd, loss_time, clock() - t


class TorchStep:
    """PyTorch's side: the twin of `net` (same layers, weights copied), on the same batch, on the CPU."""

    name = "PyTorch"

    def __init__(self, torch, net, x, y):
        nn = torch.nn
        self.torch = torch
        self.net = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, NUM_CLASSES))
        with torch.no_grad():  # the same initial weights as cnnlab's network (same layouts)
            for p_torch, p_ours in zip(self.net.parameters(), net.parameters(), strict=True):
                p_torch.copy_(torch.from_numpy(np.ascontiguousarray(p_ours.data)))
        self.x, self.y = torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64))
        self.loss_fn = nn.CrossEntropyLoss()
        self.optimizer = torch.optim.SGD(self.net.parameters(), lr=LR, momentum=MOMENTUM)

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
