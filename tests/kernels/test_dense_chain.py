"""The compiled Dense chain (kernels.dense_chain_forward / dense_chain_backward, what
Sequential runs for each run of Dense layers) against its NumPy twin in fastnn.ops and a
layer-by-layer float64 reference: random chains, input layouts, reused and fresh output
arrays, both dtypes, every instruction-set path. (Dense.chain_step:
tests/layers/test_dense.py; bad arguments: tests/test_hostile_inputs.py.)"""

import itertools

import numpy as np
import pytest

from fastnn import kernels, ops
from helpers import DTYPES, close

pytestmark = pytest.mark.usefixtures("isa")

ACTS = [
    ("identity", 0.0),
    ("relu", 0.0),
    ("leaky_relu", 0.2),
    ("leaky_relu", 0.0),
    ("sigmoid", 0.0),
    ("tanh", 0.0),
]


def random_chain(rng, dtype, widths):
    """DenseSteps of fresh arrays; gradients start as NaN so that every element is written."""
    steps = []
    for n_in, n_out in itertools.pairwise(widths):
        bias = rng.standard_normal(n_out).astype(dtype) if rng.integers(0, 4) else None
        act, slope = ACTS[rng.integers(len(ACTS))]
        steps.append(
            kernels.DenseStep(
                rng.uniform(-1, 1, (n_out, n_in)).astype(dtype),
                bias,
                np.full((n_out, n_in), np.nan, dtype),
                None if bias is None else np.full(n_out, np.nan, dtype),
                act,
                slope,
                float(rng.choice([0.0, 0.01])),
                float(rng.choice([0.0, 0.02])),
            )
        )
    return tuple(steps)


def copy_grads(steps):
    """The same steps with gradient arrays of their own (for the twin)."""
    return tuple(
        s._replace(
            weight_grad=np.full_like(s.weight_grad, np.nan),
            bias_grad=None if s.bias is None else np.full_like(s.bias, np.nan),
        )
        for s in steps
    )


def reference(x, dy, steps):
    """Output, input gradient and (weight, bias) gradients in float64, one layer at a time."""
    xs, ys = [], []
    for s in steps:
        xs.append(x)
        z = x @ s.weight.astype(np.float64).T
        if s.bias is not None:
            z = z + s.bias
        x = ops.activation_forward(z, s.activation, negative_slope=s.negative_slope)
        ys.append(x)
    grads = []
    for s, x_in, y in zip(reversed(steps), reversed(xs), reversed(ys)):
        dz = ops.activation_backward(dy, y, s.activation, negative_slope=s.negative_slope)
        dw = dz.T @ x_in
        ops.penalty(s.weight.astype(np.float64), dw, l1=s.l1, l2=s.l2)
        grads.append((dw, None if s.bias is None else dz.sum(axis=0)))
        dy = dz @ s.weight.astype(np.float64)
    return ys[-1], dy, grads[::-1]


def layout(rng, a, kind):
    if kind == "c":
        return a
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "negative":
        return a[::-1, ::-1].copy()[::-1, ::-1]
    big = rng.standard_normal((2 * a.shape[0] + 1, 3 * a.shape[1] + 1)).astype(a.dtype)
    view = big[1::2, 1::3][: a.shape[0], : a.shape[1]]
    view[...] = a
    return view


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(10))
def test_chain_matches_twin_and_reference(dtype, seed):
    rng = np.random.default_rng(seed)
    widths = [int(w) for w in rng.integers(1, 40, size=rng.integers(2, 6))]
    m = int(rng.integers(1, 50))
    steps = random_chain(rng, dtype, widths)
    twin_steps = copy_grads(steps)
    x = layout(
        rng,
        rng.standard_normal((m, widths[0])).astype(dtype),
        ("c", "fortran", "strided", "negative")[seed % 4],
    )
    dy = rng.standard_normal((m, widths[-1])).astype(dtype)
    reuse = bool(seed % 2)
    outs = tuple(np.empty((m, w), dtype) for w in widths[1:]) if reuse else None
    dx_outs = tuple(np.empty((m, w), dtype) for w in widths[:-1]) if reuse else None

    y = kernels.dense_chain_forward(x, steps, outs)
    y_twin = ops.dense_chain_forward(x, twin_steps)
    assert y.dtype == dtype and y.shape == (m, widths[-1]) and (not reuse or y is outs[-1])
    close(y, y_twin, dtype, k=max(widths))
    y_ref, dx_ref, grads_ref = reference(x.astype(np.float64), dy.astype(np.float64), steps)
    close(y, y_ref, dtype, k=max(widths))

    if outs is None:  # the caller keeps what the backward needs: here, a forward with outs
        outs = tuple(np.empty((m, w), dtype) for w in widths[1:])
        kernels.dense_chain_forward(x, steps, outs)
    twin_outputs = tuple(np.array(o) for o in outs)
    dy_before = dy.copy()
    dx = kernels.dense_chain_backward(dy, steps, x, outs, dx_outs)
    dx_twin = ops.dense_chain_backward(dy, twin_steps, x, twin_outputs)
    np.testing.assert_array_equal(dy, dy_before)
    assert not reuse or dx is dx_outs[0]
    close(dx, dx_twin, dtype, k=max(widths), scale=10)
    close(dx, dx_ref, dtype, k=max(widths), scale=10)
    for s, t, (dw, db) in zip(steps, twin_steps, grads_ref):
        close(s.weight_grad, t.weight_grad, dtype, k=m, scale=10)
        close(s.weight_grad, dw, dtype, k=m, scale=10)
        if s.bias is not None:
            close(s.bias_grad, t.bias_grad, dtype, k=m, scale=10)
            close(s.bias_grad, db, dtype, k=m, scale=10)

    # Without the input gradient: None, and the same parameter gradients, bit for bit.
    grads = [(s.weight_grad.copy(), None if s.bias is None else s.bias_grad.copy()) for s in steps]
    assert kernels.dense_chain_backward(dy, steps, x, outs, dx_outs, input_grad=False) is None
    assert ops.dense_chain_backward(dy, twin_steps, x, twin_outputs, input_grad=False) is None
    for s, (wg, bg) in zip(steps, grads):
        np.testing.assert_array_equal(s.weight_grad, wg)
        if bg is not None:
            np.testing.assert_array_equal(s.bias_grad, bg)


def test_overwrite_dy_and_fresh_outputs(dtype, rng):
    steps = (
        kernels.DenseStep(
            rng.standard_normal((4, 5)).astype(dtype),
            np.zeros(4, dtype),
            np.zeros((4, 5), dtype),
            np.zeros(4, dtype),
            "tanh",
        ),
    )
    x = rng.standard_normal((6, 5)).astype(dtype)
    y = kernels.dense_chain_forward(x, steps)
    dy = rng.standard_normal(y.shape).astype(dtype)
    expected = kernels.dense_chain_backward(dy.copy(), steps, x, (y,))
    wg = steps[0].weight_grad.copy()
    dx = kernels.dense_chain_backward(dy, steps, x, [y], overwrite_dy=True)
    np.testing.assert_array_equal(dx, expected)
    np.testing.assert_array_equal(steps[0].weight_grad, wg)
    # Without an activation on the last step its output is not read: None will do.
    plain = (steps[0]._replace(activation="identity"),)
    y = kernels.dense_chain_forward(x, plain)
    np.testing.assert_array_equal(
        kernels.dense_chain_backward(dy, plain, x, (None,)),
        kernels.dense_chain_backward(dy, plain, x, (y,)),
    )


def test_outs_entries_may_be_none(dtype, rng):
    steps = tuple(
        kernels.DenseStep(rng.standard_normal((3, 3)).astype(dtype), activation="relu")
        for _ in range(3)
    )
    x = rng.standard_normal((2, 3)).astype(dtype)
    mid = np.empty((2, 3), dtype)
    y = kernels.dense_chain_forward(x, steps, [None, mid, None])
    np.testing.assert_array_equal(y, kernels.dense_chain_forward(x, steps))
    np.testing.assert_array_equal(mid, kernels.dense_chain_forward(x, steps[:2]))


def test_everything_is_checked_before_anything_is_written(rng):
    """A bad last step leaves the first step's output and gradients untouched."""
    good = kernels.DenseStep(
        rng.standard_normal((3, 3)), np.zeros(3), np.zeros((3, 3)), np.zeros(3), "relu"
    )
    bad = good._replace(activation="gelu")
    x = rng.standard_normal((2, 3))
    out0 = np.full((2, 3), 7.0)
    with pytest.raises(ValueError, match=r"steps\[1\].activation"):
        kernels.dense_chain_forward(x, (good, bad), (out0, None))
    np.testing.assert_array_equal(out0, 7.0)
    outs = (np.empty((2, 3)), np.empty((2, 3)))
    kernels.dense_chain_forward(x, (good, good), outs)
    with pytest.raises(ValueError, match=r"steps\[0\].(weight|bias)_grad overlaps steps\[1\]"):
        kernels.dense_chain_backward(np.ones((2, 3)), (good, good), x, outs)  # tied weights
    np.testing.assert_array_equal(good.weight_grad, 0.0)
