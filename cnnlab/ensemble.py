"""Ensemble model averaging (Khan §5.2.5): several trained models, one combined prediction.

Models that differ in their random initialisation, hyper-parameters or training data make
partly independent mistakes; combining their outputs cancels some of them. Khan names three
ways to combine, all here:

- output averaging:   P(x) = sum_m w_m P_m(x),  w_m >= 0, sum_m w_m = 1   (`average_probabilities`)
  (plain averaging is w_m = 1/M; any other choice is the weighted combination);
- majority voting:    y(x) = argmax_k sum_m w_m [y_m(x) = k]              (`majority_vote`);
- `Ensemble(nets, weights)` applies either to a list of cnnlab networks that output logits.
"""
from __future__ import annotations

import numbers

import numpy as np

from cnnlab.losses import softmax
from cnnlab.module import Module, eval_mode

__all__ = ["average_probabilities", "majority_vote", "Ensemble"]


def _weights(weights, m: int, who: str) -> np.ndarray:
    """Non-negative weights, one per model, normalised to sum to 1; None means 1/M each."""
    if weights is None:
        return np.full(m, 1.0 / m)
    try:
        w = None if isinstance(weights, str) else np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        w = None
    if w is None or w.shape != (m,):
        raise ValueError(f"{who}: weights must be a sequence of {m} numbers (one per model), got {weights!r}")
    if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
        raise ValueError(f"{who}: weights must be finite, >= 0 and not all 0, got {weights!r}")
    return w / w.sum()


def _as_list(items, who: str, what: str) -> list:
    if isinstance(items, np.ndarray) or not hasattr(items, "__len__") or len(items) == 0:
        raise TypeError(f"{who} expects a non-empty list of {what}, one per model, got {type(items).__name__}")
    return list(items)


def _check_probabilities(p, i: int, who: str) -> np.ndarray:
    p = np.asarray(p)
    if p.dtype.kind != "f":
        raise TypeError(f"{who}: item {i} must be a float array of probabilities (N, K), got dtype {p.dtype}")
    if p.ndim != 2 or 0 in p.shape:
        raise ValueError(f"{who}: item {i} must be probabilities of shape (N, K), got shape {p.shape}")
    if not np.all(np.isfinite(p)) or np.any(p < 0) or not np.allclose(p.sum(axis=1), 1.0, atol=1e-4):
        raise ValueError(f"{who}: item {i} is not a probability array (entries >= 0, each row summing to 1; "
                         f"row sums range over [{p.sum(axis=1).min():.4g}, {p.sum(axis=1).max():.4g}]); "
                         "for logits pass cnnlab.losses.softmax(logits)")
    return p


def average_probabilities(probs, weights=None) -> np.ndarray:
    """Weighted average of the models' class probabilities (Khan 5.2.5, output averaging).

    Inputs:
    - probs: a list of M arrays (N, K), row n of array m being model m's probabilities for example n.
    - weights: None (each model 1/M) or M non-negative numbers, normalised here to sum to 1.
    Returns P (N, K) = sum_m w_m probs[m]: again probabilities (each row sums to 1), in float64
    unless every input is float32.
    """
    probs = [_check_probabilities(p, i, "average_probabilities")
             for i, p in enumerate(_as_list(probs, "average_probabilities", "probability arrays (N, K)"))]
    for i, p in enumerate(probs[1:], 1):
        if p.shape != probs[0].shape:
            raise ValueError(f"average_probabilities: every array must have the same shape (N, K); item 0 has "
                             f"{probs[0].shape}, item {i} has {p.shape}")
    w = _weights(weights, len(probs), "average_probabilities")
    out = sum(wm * p.astype(np.float64) for wm, p in zip(w, probs))
    return out.astype(np.result_type(*probs, np.float32))


def majority_vote(predictions, num_classes: int, weights=None) -> np.ndarray:
    """The class most models vote for (Khan 5.2.5, majority voting; weighted with `weights`).

    Inputs:
    - predictions: a list of M arrays, each either integer labels (N,) in [0, num_classes) or
      probabilities / scores (N, num_classes), whose argmax is that model's vote.
    - num_classes: K, a positive int.
    - weights: None (one vote per model) or M non-negative numbers (a model's vote counts w_m).
    Returns labels (N,) int64: argmax_k sum_m w_m [vote_m = k]. Ties go to the LOWEST class index
    (np.argmax keeps the first maximum), so the result never depends on chance.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, numbers.Integral) or num_classes < 1:
        raise ValueError(f"majority_vote: num_classes must be a positive int, got {num_classes!r}")
    k = int(num_classes)
    votes = []
    for i, pred in enumerate(_as_list(predictions, "majority_vote", "label arrays (N,) or probabilities (N, K)")):
        pred = np.asarray(pred)
        if pred.ndim == 2:
            if pred.shape[1] != k:
                raise ValueError(f"majority_vote: item {i} has {pred.shape[1]} columns, expected num_classes={k}")
            pred = pred.argmax(axis=1)
        elif pred.ndim != 1 or pred.dtype.kind not in "iu":
            raise ValueError(f"majority_vote: item {i} must be integer labels (N,) or scores (N, {k}), got "
                             f"shape {pred.shape} and dtype {pred.dtype}")
        elif np.any((pred < 0) | (pred >= k)):
            raise ValueError(f"majority_vote: item {i} has labels outside [0, {k}): min {pred.min()}, max {pred.max()}")
        if votes and len(pred) != len(votes[0]):
            raise ValueError(f"majority_vote: every model must predict the same N examples; item 0 has "
                             f"{len(votes[0])}, item {i} has {len(pred)}")
        votes.append(pred.astype(np.int64))
    w = _weights(weights, len(votes), "majority_vote")
    n = len(votes[0])
    tally = np.zeros((n, k))
    for wm, v in zip(w, votes):
        tally[np.arange(n), v] += wm
    return tally.argmax(axis=1).astype(np.int64)


class Ensemble:
    """A committee of trained networks that output logits (N, K), combined as in Khan 5.2.5.

    Ensemble(nets, weights=None)
    - nets: a list of cnnlab Modules mapping the same inputs X to logits (N, K).
    - weights: None (plain average) or one non-negative number per net (normalised).

    predict_proba(X) -> (N, K): softmax of each net's logits in eval mode, averaged with the weights.
    predict(X) -> (N,): argmax of predict_proba (ties to the lowest class).
    vote(X) -> (N,): weighted majority vote of the nets' own predictions.
    member_probabilities(X) -> list of M arrays (N, K), one per net.
    Each net's train/eval mode is restored afterwards.
    """

    def __init__(self, nets, weights=None):
        nets = _as_list(nets, "Ensemble", "networks")
        for i, net in enumerate(nets):
            if not isinstance(net, Module):
                raise TypeError(f"Ensemble expects cnnlab Modules, but item {i} is {type(net).__name__}")
        self.nets = nets
        self.weights = _weights(weights, len(nets), "Ensemble")

    def member_probabilities(self, X) -> list[np.ndarray]:
        out = []
        for i, net in enumerate(self.nets):
            with eval_mode(net):
                logits = net.forward(X)
            if logits.ndim != 2:
                raise ValueError(f"Ensemble: net {i} returned shape {logits.shape}; expected logits (N, K)")
            out.append(softmax(logits, axis=1))
        return out

    def predict_proba(self, X) -> np.ndarray:
        return average_probabilities(self.member_probabilities(X), self.weights)

    def predict(self, X) -> np.ndarray:
        return self.predict_proba(X).argmax(axis=1).astype(np.int64)

    def vote(self, X) -> np.ndarray:
        probs = self.member_probabilities(X)
        return majority_vote(probs, probs[0].shape[1], self.weights)

    def __len__(self) -> int:
        return len(self.nets)

    def __repr__(self) -> str:
        return f"Ensemble({len(self.nets)} nets, weights={np.round(self.weights, 4).tolist()})"
