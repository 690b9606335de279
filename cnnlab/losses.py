"""Loss functions: the data term E of the training objective.

Veta writes the objective as a data term plus a regulariser,

    argmin_theta  (1/D) sum_t E(f(x_t; theta), y_t)  +  lambda * Omega(theta),

and this module provides E; the regulariser lambda * Omega lives with the optimizers and
regularizers. A loss here is *not* a Module: it is the end of the network, so its `forward`
returns a Python float and its `backward()` takes no argument and returns dL/dpred, the `dout`
that starts back-propagation through the network:

    loss_fn = CrossEntropyLoss()
    loss = loss_fn(logits, labels)      # same as loss_fn.forward(logits, labels) -> float
    dlogits = loss_fn.backward()        # same shape and dtype as logits

Three losses:
- `CrossEntropyLoss`: softmax + negative log-likelihood on integer labels (Veta), as PyTorch's,
  with its label smoothing.
- `MSELoss`: squared error, PyTorch's "mean" / "sum" plus Bouvrie's E = 1/2 sum (t - y)^2.
- `SoftmaxMSELoss`: softmax, then squared error against a target vector (Wollowski's pairing).

and the helpers `softmax`, `log_softmax` and `one_hot`.
"""
from __future__ import annotations

import numpy as np

from cnnlab._arrays import real_array

__all__ = ["softmax", "log_softmax", "one_hot", "CrossEntropyLoss", "MSELoss", "SoftmaxMSELoss"]


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------

def log_softmax(z, axis: int = -1) -> np.ndarray:
    """Logarithm of the softmax along `axis`, computed stably.

    log softmax(z)_j = z_j - log sum_i exp(z_i) = (z_j - m) - log sum_i exp(z_i - m), m = max_i z_i.
    Subtracting the maximum changes nothing mathematically but keeps every exponent <= 0, so
    exp never overflows and logits of +-1e4 give finite, correct results.

    Inputs:
    - z: array of any shape (float dtypes are kept; integers become float64).
    - axis: the class axis.
    Returns: array of z's shape and float dtype.
    """
    z = real_array(z, "z")
    shifted = z - np.max(z, axis=axis, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True))


def softmax(z, axis: int = -1) -> np.ndarray:
    """Softmax along `axis` (Veta's and Wollowski's softmax), computed stably.

    softmax(z)_j = exp(z_j) / sum_i exp(z_i) = exp(z_j - m) / sum_i exp(z_i - m), m = max_i z_i.

    Inputs:
    - z: array of any shape (float dtypes are kept; integers become float64).
    - axis: the class axis.
    Returns: array of z's shape: non-negative entries that sum to 1 along `axis`.
    """
    z = real_array(z, "z")
    e = np.exp(z - np.max(z, axis=axis, keepdims=True))
    return e / np.sum(e, axis=axis, keepdims=True)


def _check_labels(labels, num_classes: int, n: int | None = None, name: str = "labels") -> np.ndarray:
    """Validate integer class labels; return them as an int64 array (a copy)."""
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(
            f"{name} must be integer class indices, got dtype {labels.dtype}"
            + (" (float labels are refused even when integral-valued: use labels.astype(np.int64))"
               if labels.dtype.kind == "f" else ""))
    if n is not None and labels.shape != (n,):
        raise ValueError(f"{name} must have shape (N,) = ({n},) to match the {n} rows of the "
                         f"predictions, got shape {labels.shape}")
    bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
    if bad.size:
        i = np.unravel_index(bad[0], labels.shape)
        where = i[0] if len(i) == 1 else i
        raise ValueError(f"{name} must be in [0, {num_classes}), got {labels[i]} at index {where}")
    return labels.astype(np.int64)


def one_hot(labels, num_classes: int, dtype=np.float32) -> np.ndarray:
    """One-of-c code of integer labels (Bouvrie's targets t^n; Wollowski's [0, 0, 1, 0]).

    Inputs:
    - labels: integer array of any shape S, values in [0, num_classes).
    - num_classes: C, a positive int.
    - dtype: dtype of the result (float32 by default; PyTorch's one_hot returns int64).
    Returns: array of shape S + (C,), 1 at each label's position and 0 elsewhere.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    labels = _check_labels(labels, int(num_classes))
    out = np.zeros(labels.shape + (int(num_classes),), dtype=dtype)
    np.put_along_axis(out, labels[..., None], 1, axis=-1)
    return out


def _check_logits(logits, name: str = "logits") -> np.ndarray:
    """Logits must be a finite 2-D float array (N, C) with N, C >= 1."""
    logits = np.asarray(logits)
    if logits.dtype.kind != "f":
        raise TypeError(f"{name} must be a float array of shape (N, C), got dtype {logits.dtype} "
                        f"(shape {logits.shape})")
    if logits.ndim != 2 or logits.shape[0] == 0 or logits.shape[1] == 0:
        raise ValueError(f"{name} must be 2-D of shape (N, C) with N, C >= 1, got shape {logits.shape}")
    _check_finite(logits, name)
    return logits


def _check_finite(a: np.ndarray, name: str) -> None:
    finite = np.isfinite(a)
    if not finite.all():
        i = tuple(int(k) for k in np.argwhere(~finite)[0])
        raise ValueError(f"{name} contain NaN/inf at index {i} (value {a[i]})")


# ---------------------------------------------------------------------------------------------
# losses
# ---------------------------------------------------------------------------------------------

class _Loss:
    """Shared plumbing: the reduction argument, `__call__` = forward, backward-before-forward."""

    _reductions: tuple[str, ...] = ("mean", "sum")

    def __init__(self, reduction: str = "mean"):
        if reduction not in self._reductions:
            raise ValueError(f"{type(self).__name__}: reduction must be one of {self._reductions}, "
                             f"got {reduction!r}")
        self.reduction = reduction
        self._grad = None

    def __call__(self, pred, target) -> float:
        return self.forward(pred, target)

    def backward(self) -> np.ndarray:
        """dL/dpred for the last forward: an array of pred's shape and dtype (a fresh copy)."""
        if self._grad is None:
            name = type(self).__name__
            raise RuntimeError(f"{name}.backward() was called before {name}.forward(): the "
                               "gradient needs the values saved by forward(pred, target)")
        return self._grad.copy()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class _SoftmaxLoss(_Loss):
    """A loss on logits through their softmax; after forward, `.probs` holds softmax(logits), (N, C)."""

    def __init__(self, reduction: str = "mean"):
        super().__init__(reduction)
        self.probs = None


class CrossEntropyLoss(_SoftmaxLoss):
    """Softmax + cross-entropy on integer labels (Veta: negative log-likelihood -> cross-entropy).

    For logits z of one example and its label y, with p = softmax(z):
        E = -sum_c 1[y = c] log p_c = -log p_y = log sum_c exp(z_c) - z_y,
    computed with the stable `log_softmax`. The gradient is dE/dz = p - onehot(y).

    Like torch.nn.CrossEntropyLoss it takes raw logits (no softmax layer before it) and
    reduction "mean" (default: average over the N examples, so dL/dz = (p - onehot) / N) or
    "sum" (dL/dz = p - onehot).

    label_smoothing = eps in [0, 1] (PyTorch's argument): the target becomes the mixture
    q = (1 - eps) onehot(y) + eps / C, so E = -sum_c q_c log p_c
      = (1 - eps) (-log p_y) + eps (-(1/C) sum_c log p_c), and dE/dz = p - q. The net is no longer
    pushed to make p_y = 1 (logits growing without bound); the lowest loss is at p = q. eps = 0 is
    the plain loss above.

    forward(pred, target):
    - pred: logits of shape (N, C), float dtype, finite.
    - target: integer labels of shape (N,), values in [0, C).
    Returns the loss as a Python float. After forward, `.probs` holds softmax(logits), shape (N, C).

    backward(): dL/dlogits of shape (N, C), logits' dtype.
    """

    def __init__(self, reduction: str = "mean", label_smoothing: float = 0.0):
        super().__init__(reduction)
        if isinstance(label_smoothing, bool) or not isinstance(label_smoothing, (int, float, np.floating)) \
                or not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"CrossEntropyLoss: label_smoothing must be a number in [0, 1], got {label_smoothing!r}")
        self.label_smoothing = float(label_smoothing)

    def __repr__(self) -> str:
        return f"CrossEntropyLoss(reduction={self.reduction!r}, label_smoothing={self.label_smoothing!r})"

    def forward(self, pred, target) -> float:
        logits = _check_logits(pred)
        n, c = logits.shape
        labels = _check_labels(target, c, n)
        logp = log_softmax(logits, axis=1)
        nll = -logp[np.arange(n), labels]                      # -log p_y per example, shape (N,)
        eps = self.label_smoothing
        loss = np.sum(nll, dtype=np.float64)
        self.probs = np.exp(logp)
        grad = self.probs.copy()
        if eps:  # q = (1 - eps) onehot + eps / C
            loss = (1 - eps) * loss - eps / c * np.sum(logp, dtype=np.float64)
            grad[np.arange(n), labels] -= 1 - eps
            grad -= grad.dtype.type(eps / c)                    # p - q
        else:
            grad[np.arange(n), labels] -= 1                     # p - onehot(y)
        if self.reduction == "mean":
            loss = loss / n
            grad /= n
        self._grad = grad
        return float(loss)


class MSELoss(_Loss):
    """Squared error between predictions y and targets t (Bouvrie eq. 1, Wollowski step 3).

    Reductions, with the sums over every element:
    - "mean"     (PyTorch's default): L = mean (y - t)^2,          dL/dy = 2 (y - t) / numel
    - "sum"      (PyTorch's "sum"):   L = sum (y - t)^2,           dL/dy = 2 (y - t)
    - "half_sum" (Bouvrie, Wollowski): L = 1/2 sum (y - t)^2,      dL/dy = y - t
    "half_sum" is not in PyTorch: it is half of "sum", and the 1/2 is there so that it cancels the
    2 of the derivative. That is why Bouvrie's output sensitivity delta^L = f'(u^L) o (y - t) has
    no factor 2. Bouvrie sums over all N examples (E^N); use "mean" to average instead.

    forward(pred, target):
    - pred: float array of any shape (at least one element).
    - target: numeric array of exactly pred's shape (no broadcasting); cast to pred's dtype.
    Returns the loss as a Python float.

    backward(): dL/dpred, pred's shape and dtype.
    """

    _reductions = ("mean", "sum", "half_sum")

    def forward(self, pred, target) -> float:
        pred = np.asarray(pred)
        target = np.asarray(target)
        if pred.dtype.kind != "f":
            raise TypeError(f"pred must be a float array, got dtype {pred.dtype} (shape {pred.shape})")
        if target.dtype.kind not in "fiu":
            raise TypeError(f"target must be a numeric array, got dtype {target.dtype}")
        if pred.shape != target.shape:
            raise ValueError(f"pred and target must have the same shape (MSELoss does not broadcast), "
                             f"got pred {pred.shape} and target {target.shape}")
        if pred.size == 0:
            raise ValueError(f"pred must have at least one element, got shape {pred.shape}")
        _check_finite(pred, "pred")
        _check_finite(target, "target")
        diff = pred - target.astype(pred.dtype)
        self._grad = _mse_grad(diff, self.reduction)
        return _mse_value(diff, self.reduction)


def _mse_value(diff: np.ndarray, reduction: str) -> float:
    total = np.sum(np.square(diff), dtype=np.float64)
    if reduction == "mean":
        return float(total / diff.size)
    return float(0.5 * total if reduction == "half_sum" else total)


def _mse_grad(diff: np.ndarray, reduction: str) -> np.ndarray:
    if reduction == "mean":
        return diff * diff.dtype.type(2.0 / diff.size)
    return diff.copy() if reduction == "half_sum" else 2 * diff


class SoftmaxMSELoss(_SoftmaxLoss):
    """Softmax of the logits, then squared error against a target vector (Wollowski's pairing).

    Wollowski finishes the network with a softmax and scores it with E = sum 1/2 (t - p)^2 against
    a target such as [0, 0, 1, 0]. This loss is exactly `MSELoss(reduction)` applied to
    p = softmax(logits), so "mean" averages over all N * C entries, "sum" is sum (p - t)^2 and
    "half_sum" is Wollowski's and Bouvrie's 1/2 sum (p - t)^2. PyTorch has no such class (it would
    be MSELoss(softmax(z), t)); cross-entropy is the usual choice for classification (Bouvrie
    notes it can be more effective), this one is for the exercise and the comparison.

    Backward goes through the softmax Jacobian dp_k/dz_i = p_k (delta_ki - p_i) (Bouvrie eq. 8):
        dL/dz_i = sum_k dL/dp_k p_k (delta_ki - p_i) = p_i (g_i - sum_k g_k p_k),  g = dL/dp.

    forward(pred, target):
    - pred: logits of shape (N, C), float dtype, finite.
    - target: either a float array (N, C) (one-hot rows or any distribution), or integer labels
      of shape (N,) in [0, C), converted to one-hot.
    Returns the loss as a Python float. After forward, `.probs` holds softmax(logits).

    backward(): dL/dlogits of shape (N, C), logits' dtype.
    """

    _reductions = ("mean", "sum", "half_sum")

    def forward(self, pred, target) -> float:
        logits = _check_logits(pred)
        n, c = logits.shape
        target = np.asarray(target)
        if target.dtype.kind in "iu":
            if target.shape != (n,):
                raise ValueError(
                    f"an integer target is read as class labels of shape (N,) = ({n},), got shape "
                    f"{target.shape}; for a one-hot or probability target pass a float array of "
                    f"shape (N, C) = {logits.shape}")
            target = one_hot(target, c, dtype=logits.dtype)
        elif target.dtype.kind == "f":
            if target.shape != logits.shape:
                raise ValueError(f"a float target must have the logits' shape (N, C) = {logits.shape}, "
                                 f"got {target.shape}")
            _check_finite(target, "target")
        else:
            raise TypeError(f"target must be integer labels or a float array, got dtype {target.dtype}")
        p = softmax(logits, axis=1)
        self.probs = p
        diff = p - target.astype(logits.dtype)
        g = _mse_grad(diff, self.reduction)                     # dL/dp
        self._grad = p * (g - np.sum(g * p, axis=1, keepdims=True))
        return _mse_value(diff, self.reduction)
