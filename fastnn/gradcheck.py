"""Gradient checking for users: a model's backward against central differences.

The model's analytic gradients (``backward`` after a training forward) are compared with
``(f(w + eps) - f(w - eps)) / (2 eps)`` for every parameter entry, where ``f`` is the loss
plus the model's l1/l2 penalties, all in float64 on a copy of the model (the caller's model,
its weights and its running statistics are left as they were).

Randomness and batch statistics: every evaluation of ``f`` is a training-mode forward, so
BatchNorm1d normalises with the batch statistics (which depend on the weights, as its
backward accounts for), and each Dropout layer's generator is reset to the same state
before every evaluation, so the same mask is drawn each time: the function checked is the
network with that one fixed mask.
"""

import copy

import numpy as np

from fastnn.layers import Dropout
from fastnn.model import Sequential
from fastnn.training import check_pair, loss_target

__all__ = ["gradcheck"]


def _objective(model, X, y, loss, dropouts):
    for layer, state in dropouts:
        layer.rng.bit_generator.state = state
    out = model.forward(X, training=True)
    value, grad = loss(out, loss_target(y, loss, out.dtype, out.shape[1]))
    return value + model.regularization_loss(), grad


def gradcheck(model, X, y, loss, eps=1e-6):
    """``{param_name: worst relative error}`` between the analytic and the central-difference
    gradient of ``loss(model(X), y)`` (plus the l1/l2 penalties) for each parameter.

    The error of an entry is ``|a - n| / max(|a|, |n|, floor)`` with ``floor`` 1% of the
    largest analytic gradient entry in the model (at least 1e-12): entries far smaller than
    the model's typical gradients (e.g. a bias feeding a BatchNorm, whose true gradient is
    0) are measured against that floor, since the finite difference only resolves them to
    its rounding noise of about 1e-9. A correct backward gives errors of 1e-6 or less with
    the default ``eps``; anything above 1e-4 is a bug. Runs ``2 * n_params + 1`` forward
    passes: use a small model and batch."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a fastnn.Sequential, got {type(model).__name__}")
    eps = float(eps)
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    X, y = check_pair(X, y)
    X, y = np.ascontiguousarray(X, dtype=np.float64), np.asarray(y)
    work = Sequential(*copy.deepcopy(model.layers), dtype=np.float64)
    if y.dtype.kind == "f":
        y = y.astype(np.float64)
    dropouts = [
        (layer, copy.deepcopy(layer.rng.bit_generator.state))
        for layer in work.layers
        if isinstance(layer, Dropout)
    ]

    _, grad = _objective(work, X, y, loss, dropouts)
    work.backward(grad)
    params = work.parameters()
    analytic = [p.grad.copy() for p in params]
    floor = max(
        0.01 * max((float(np.max(np.abs(a))) for a in analytic if a.size), default=0.0), 1e-12
    )
    errors = {}
    for p, grad_a in zip(params, analytic):
        numeric = np.empty_like(grad_a)
        flat, nflat = p.data.reshape(-1), numeric.reshape(-1)
        # One entry at a time is the definition of the check, not a training step.
        for i in range(flat.size):
            keep = flat[i]
            flat[i] = keep + eps
            up, _ = _objective(work, X, y, loss, dropouts)
            flat[i] = keep - eps
            down, _ = _objective(work, X, y, loss, dropouts)
            flat[i] = keep
            nflat[i] = (up - down) / (2 * eps)
        denom = np.maximum(np.maximum(np.abs(grad_a), np.abs(numeric)), floor)
        errors[p.name] = float(np.max(np.abs(grad_a - numeric) / denom)) if flat.size else 0.0
    return errors
