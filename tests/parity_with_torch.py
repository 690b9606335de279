"""Check that cnnlab's layers, losses, Adam/AdamW and learning-rate schedules give PyTorch's outputs, gradients,
steps and rates (float64, same layouts).

PyTorch is not a dependency, so this is a script, not part of `make test`:

    .venv/bin/pip install torch       # CPU build
    .venv/bin/python tests/parity_with_torch.py

It prints one line per case with the largest absolute difference and exits 1 if any exceeds 1e-10.
"""
import sys

import numpy as np
import torch

from cnnlab import Parameter, optim
from cnnlab.layers import (AvgPool2d, BatchNorm1d, BatchNorm2d, Conv2d, Flatten, Linear, MaxPool2d, ReLU,
                           Sigmoid, Softmax, Tanh)
from cnnlab.losses import CrossEntropyLoss, MSELoss

torch.set_default_dtype(torch.float64)
rng = np.random.default_rng(0)


def compare(name, ours, theirs, x_shape):
    """Forward on the same input, backward of the same random upstream gradient: outputs, dx, dparams."""
    ours = ours.astype(np.float64)
    for (pname, p), tp in zip(ours.named_parameters(), theirs.parameters()):
        tp.data = torch.tensor(p.data)
    x = rng.permutation(int(np.prod(x_shape))).reshape(x_shape) / np.prod(x_shape) + 0.01 * rng.standard_normal(x_shape)
    tx = torch.tensor(x, requires_grad=True)
    out, tout = ours(x), theirs(tx)
    g = rng.standard_normal(out.shape)
    dx = ours.backward(g)
    tout.backward(torch.tensor(g))
    diffs = [np.abs(out - tout.detach().numpy()).max(), np.abs(dx - tx.grad.numpy()).max()]
    diffs += [np.abs(p.grad - tp.grad.numpy()).max() for p, tp in zip(ours.parameters(), theirs.parameters())]
    return name, max(diffs)


nn = torch.nn
cases = [
    compare("Linear", Linear(7, 5), nn.Linear(7, 5), (4, 7)),
    compare("Conv2d 3x2 stride 2 pad (2,1)", Conv2d(3, 4, (3, 2), stride=2, padding=(2, 1)),
            nn.Conv2d(3, 4, (3, 2), stride=2, padding=(2, 1)), (2, 3, 9, 8)),
    compare("Conv2d 1x1", Conv2d(3, 2, 1), nn.Conv2d(3, 2, 1), (2, 3, 5, 5)),
    compare("MaxPool2d 3/2 (overlapping)", MaxPool2d(3, stride=2), nn.MaxPool2d(3, stride=2), (2, 2, 9, 7)),
    compare("MaxPool2d 2 pad 1", MaxPool2d(2, padding=1), nn.MaxPool2d(2, padding=1), (1, 2, 7, 6)),
    compare("AvgPool2d 3/2 pad 1", AvgPool2d(3, stride=2, padding=1), nn.AvgPool2d(3, stride=2, padding=1),
            (2, 2, 9, 7)),
    compare("ReLU", ReLU(), nn.ReLU(), (3, 6)), compare("Sigmoid", Sigmoid(), nn.Sigmoid(), (3, 6)),
    compare("Tanh", Tanh(), nn.Tanh(), (3, 6)), compare("Softmax", Softmax(dim=1), nn.Softmax(dim=1), (3, 6)),
    compare("Flatten", Flatten(), nn.Flatten(), (2, 3, 4, 5)),
    compare("BatchNorm1d (train)", BatchNorm1d(5), nn.BatchNorm1d(5), (6, 5)),
    compare("BatchNorm2d (train)", BatchNorm2d(3), nn.BatchNorm2d(3), (4, 3, 5, 6)),
]
logits, labels = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
ce = CrossEntropyLoss()
tl = torch.tensor(logits, requires_grad=True)
loss = nn.CrossEntropyLoss()(tl, torch.tensor(labels))
loss.backward()
cases.append(("CrossEntropyLoss", max(abs(ce(logits, labels) - loss.item()),
                                      np.abs(ce.backward() - tl.grad.numpy()).max())))
pred, target = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
mse = MSELoss()
tp = torch.tensor(pred, requires_grad=True)
tloss = nn.MSELoss()(tp, torch.tensor(target))
tloss.backward()
cases.append(("MSELoss", max(abs(mse(pred, target) - tloss.item()), np.abs(mse.backward() - tp.grad.numpy()).max())))


def optimizer_parity(name, ours_cls, theirs_cls, **kwargs):
    """Five steps of both optimizers on the same parameter and the same random gradients."""
    start = rng.standard_normal((3, 4))
    p, tp = Parameter(start.copy()), torch.tensor(start.copy(), requires_grad=True)
    ours, theirs = ours_cls([p], **kwargs), theirs_cls([tp], **kwargs)
    for _ in range(5):
        g = rng.standard_normal(start.shape)
        p.grad[...] = g
        tp.grad = torch.tensor(g)
        ours.step(), theirs.step()
    return name, np.abs(p.data - tp.detach().numpy()).max()


cases += [optimizer_parity("Adam (L2 weight decay)", lambda ps, **k: optim.Adam(ps, eps_inside_sqrt=False, **k),
                           torch.optim.Adam, lr=0.05, weight_decay=0.1),
          optimizer_parity("AdamW (decoupled weight decay)", lambda ps, **k: optim.AdamW(ps, eps_inside_sqrt=False, **k),
                           torch.optim.AdamW, lr=0.05, weight_decay=0.1)]
logits, labels = rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
ce = CrossEntropyLoss(label_smoothing=0.2)
tl = torch.tensor(logits, requires_grad=True)
loss = nn.CrossEntropyLoss(label_smoothing=0.2)(tl, torch.tensor(labels))
loss.backward()
cases.append(("CrossEntropyLoss(label_smoothing=0.2)", max(abs(ce(logits, labels) - loss.item()),
                                                           np.abs(ce.backward() - tl.grad.numpy()).max())))


def schedule_parity(name, ours, theirs, steps, optimizer="sgd"):
    """The lr (and beta1 or momentum) after construction and after each of `steps` steps, both libraries."""
    if optimizer == "adam":
        opt, topt = optim.Adam([Parameter(np.zeros(2))], lr=0.1), torch.optim.Adam([torch.zeros(2)], lr=0.1)
    else:
        opt = optim.SGD([Parameter(np.zeros(2))], lr=0.1, momentum=0.9)
        topt = torch.optim.SGD([torch.zeros(2)], lr=0.1, momentum=0.9)
    sched, tsched = ours(opt), theirs(topt)

    def values(group):
        return [group["lr"], group["betas"][0] if "betas" in group else group["momentum"]]

    diff = 0.0
    for step in range(steps + 1):
        if step:
            topt.step()  # PyTorch warns when a scheduler steps before its optimizer
            sched.step(), tsched.step()
        diff = max(diff, *np.abs(np.subtract(values(opt.param_groups[0]), values(topt.param_groups[0]))))
    return name, diff


sched = torch.optim.lr_scheduler
cases += [
    schedule_parity("LinearLR", lambda o: optim.LinearLR(o, 0.25, 0.9, total_iters=7),
                    lambda o: sched.LinearLR(o, 0.25, 0.9, total_iters=7), 12),
    schedule_parity("CosineAnnealingLR warmup = SequentialLR",
                    lambda o: optim.CosineAnnealingLR(o, T_max=20, eta_min=0.01, warmup_iters=5),
                    lambda o: sched.SequentialLR(o, [sched.LinearLR(o, 0.1, 1.0, total_iters=5),
                                                     sched.CosineAnnealingLR(o, T_max=15, eta_min=0.01)],
                                                 milestones=[5]), 20),
    schedule_parity("OneCycleLR (Adam: beta1 cycles)", lambda o: optim.OneCycleLR(o, max_lr=0.3, total_steps=40),
                    lambda o: sched.OneCycleLR(o, max_lr=0.3, total_steps=40), 40, optimizer="adam"),
    schedule_parity("OneCycleLR linear (SGD momentum)",
                    lambda o: optim.OneCycleLR(o, max_lr=0.3, total_steps=25, pct_start=0.4, anneal_strategy="linear",
                                               div_factor=10, final_div_factor=100),
                    lambda o: sched.OneCycleLR(o, max_lr=0.3, total_steps=25, pct_start=0.4,
                                               anneal_strategy="linear", div_factor=10, final_div_factor=100), 25),
]
bad = 0
for name, diff in cases:
    ok = diff <= 1e-10
    bad += not ok
    print(f"{'ok  ' if ok else 'FAIL'} {name:40s} max |difference| {diff:.2e}")
print(f"{len(cases) - bad} passed, {bad} failed")
sys.exit(1 if bad else 0)
