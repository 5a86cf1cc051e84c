"""Gradient checking for users: a model's or a layer's backward against central differences.

The analytic gradients (``backward`` after a training forward) are compared with
``(f(w + eps) - f(w - eps)) / (2 eps)`` for every entry, all in float64 on a copy (the
caller's model or layer, its weights and its running statistics are left as they were).
:func:`gradcheck` checks a model's parameters, with ``f`` the loss plus the model's l1/l2
penalties; :func:`gradcheck_layer` checks one layer's parameters and its input gradient
(inputs of any rank: images ``(N, C, H, W)`` too), with ``f`` a fixed random projection of
its output, ``sum(g * layer(x))``, plus its penalties.

Randomness and batch statistics: every evaluation of ``f`` is a training-mode forward, so
batch normalisation uses the batch statistics (which depend on the weights, as its
backward accounts for), and each Dropout layer's generator is reset to the same state
before every evaluation, so the same mask is drawn each time: the function checked is the
network with that one fixed mask.
"""

import copy

import numpy as np

from fastnn._validation import as_float_array, is_sparse
from fastnn.layers import Dropout, Layer
from fastnn.model import Sequential
from fastnn.training import check_pair, loss_target

__all__ = ["gradcheck", "gradcheck_layer"]


def _dropout_states(layers):
    return [
        (layer, copy.deepcopy(layer.rng.bit_generator.state))
        for layer in layers
        if isinstance(layer, Dropout)
    ]


def _reset(dropouts):
    for layer, state in dropouts:
        layer.rng.bit_generator.state = state


def _objective(model, X, y, loss, dropouts):
    _reset(dropouts)
    out = model.forward(X, training=True)
    value, grad = loss(out, loss_target(y, loss, out.dtype, out.shape[1]))
    return value + model.regularization_loss(), grad


def _check_eps(eps):
    eps = float(eps)
    if not (np.isfinite(eps) and eps > 0):
        raise ValueError(f"eps must be a finite number > 0, got {eps!r}")
    return eps


def _errors(named, f, eps):
    """``{name: worst relative error}`` for each ``(name, array, analytic gradient)`` of
    `named`: each entry of the array (perturbed in place, then restored) against the central
    difference of ``f()``. The floor of the error's denominator is 1% of the largest analytic
    entry of them all (see :func:`gradcheck`)."""
    floor = max(
        0.01 * max((float(np.max(np.abs(a))) for _, _, a in named if a.size), default=0.0),
        1e-12,
    )
    errors = {}
    for name, data, grad_a in named:
        numeric = np.empty_like(grad_a)
        flat, nflat = data.reshape(-1), numeric.reshape(-1)
        # One entry at a time is the definition of the check, not a training step.
        for i in range(flat.size):
            keep = flat[i]
            flat[i] = keep + eps
            up = f()
            flat[i] = keep - eps
            down = f()
            flat[i] = keep
            nflat[i] = (up - down) / (2 * eps)
        denom = np.maximum(np.maximum(np.abs(grad_a), np.abs(numeric)), floor)
        errors[name] = float(np.max(np.abs(grad_a - numeric) / denom)) if flat.size else 0.0
    return errors


def gradcheck(model, X, y, loss, eps=1e-6):
    """``{param_name: worst relative error}`` between the analytic and the central-difference
    gradient of ``loss(model(X), y)`` (plus the l1/l2 penalties) for each parameter. ``X``
    is a batch of the rank the model takes (``(n, features)``, or images ``(N, C, H, W)``
    for a model that starts with an image layer).

    The error of an entry is ``|a - n| / max(|a|, |n|, floor)`` with ``floor`` 1% of the
    largest analytic gradient entry in the model (at least 1e-12): entries far smaller than
    the model's typical gradients (e.g. a bias feeding a BatchNorm, whose true gradient is
    0) are measured against that floor, since the finite difference only resolves them to
    its rounding noise of about 1e-9. A correct backward gives errors of 1e-6 or less with
    the default ``eps``; anything above 1e-4 is a bug. Runs ``2 * n_params + 1`` forward
    passes: use a small model and batch."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a fastnn.Sequential, got {type(model).__name__}")
    eps = _check_eps(eps)
    if is_sparse(X):
        raise TypeError(
            "gradcheck: X must be dense (the check perturbs it as an array); pass X.toarray()"
        )
    X, y = check_pair(X, y, model=model)
    X, y = np.ascontiguousarray(X, dtype=np.float64), np.asarray(y)
    work = Sequential(*copy.deepcopy(model.layers), dtype=np.float64)
    if y.dtype.kind == "f":
        y = y.astype(np.float64)
    dropouts = _dropout_states(work.layers)

    _, grad = _objective(work, X, y, loss, dropouts)
    work.backward(grad)
    named = [(p.name, p.data, p.grad.copy()) for p in work.parameters()]
    return _errors(named, lambda: _objective(work, X, y, loss, dropouts)[0], eps)


def gradcheck_layer(layer, x, *, eps=1e-6, seed=0):
    """``{"input": worst relative error, name: ... for each parameter}`` between the
    analytic and the central-difference gradients of one layer, on the batch ``x`` of any
    rank its forward takes (images ``(N, C, H, W)`` for the image layers): those of the
    input (what its backward returns) and of each parameter, by its name (``"weight"``,
    ``"bias"`` for a layer of its own; ``"0.weight"`` for one taken from a model).

    The function differentiated is ``sum(g * layer.forward(x, training=True))`` plus the
    layer's l1/l2 penalties, with ``g`` a fixed standard normal array of the output's shape
    drawn from `seed`: every entry of the output counts, with a weight that no symmetry of
    the layer cancels. Errors are measured as :func:`gradcheck` measures them, with the same
    thresholds. Runs ``2 * (x.size + n_params) + 1`` forward passes: use a small batch."""
    if not isinstance(layer, Layer):
        hint = ": check a model with gradcheck" if isinstance(layer, Sequential) else ""
        raise TypeError(f"layer must be a fastnn Layer, got {type(layer).__name__}{hint}")
    eps = _check_eps(eps)
    # A copy the check may perturb in place: the caller's array stays as it was.
    x = np.array(as_float_array(x, np.float64, "x"), dtype=np.float64)
    work = copy.deepcopy(layer)
    # What Sequential(..., dtype=np.float64) does to its layers, without renaming them.
    if work.dtype is not None and work.dtype != np.float64:
        work._set_dtype(np.float64)
    dropouts = _dropout_states([work])
    penalty = getattr(work, "regularization_loss", lambda: 0.0)

    _reset(dropouts)
    out = work.forward(x, training=True)
    g = np.random.default_rng(seed).standard_normal(np.shape(out))
    dx = np.array(work.backward(g.copy()), dtype=np.float64)
    if dx.shape != x.shape:
        raise ValueError(
            f"{type(layer).__name__}.backward returned an input gradient of shape "
            f"{dx.shape}, expected the input's shape {x.shape}"
        )
    named = [("input", x, dx)] + [(p.name, p.data, p.grad.copy()) for p in work.parameters()]

    def f():
        _reset(dropouts)
        return float(np.sum(g * work.forward(x, training=True))) + penalty()

    return _errors(named, f, eps)
