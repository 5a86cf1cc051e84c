"""The compiled Dense chain (Sequential's execution of runs of Dense layers and Dense.forward /
backward): forward and backward against a layer-by-layer NumPy reference, and its argument
checks."""
import numpy as np
import pytest

import fastnn
from fastnn import _kernels as _K
from fastnn import ops

from conftest import DTYPES, close

ACTS = [None, fastnn.ReLU, lambda: fastnn.LeakyReLU(0.2), fastnn.Sigmoid, fastnn.Tanh,
        fastnn.Identity]


def random_chain(rng, dtype, widths):
    steps = []
    for i, (n_in, n_out) in enumerate(zip(widths[:-1], widths[1:])):
        dense = fastnn.Dense(n_in, n_out, bias=bool(rng.integers(0, 4)), dtype=dtype,
                             rng=int(rng.integers(1 << 30)),
                             l1=float(rng.choice([0.0, 0.01])), l2=float(rng.choice([0.0, 0.02])))
        if dense.bias is not None:
            dense.bias.data[...] = rng.standard_normal(n_out)
        make = ACTS[rng.integers(len(ACTS))]
        steps.append((dense, None if make is None else make()))
    return tuple(steps)


def reference(x, dy, steps):
    """Forward outputs, input gradient and (weight, bias) gradients, one layer at a time."""
    xs, ys = [], []
    for dense, act in steps:
        xs.append(x)
        z = x @ dense.weight.data.T
        if dense.bias is not None:
            z = z + dense.bias.data
        name = "identity" if act is None else act.kernel_name
        x = ops.activation_forward(z, name, negative_slope=getattr(act, "negative_slope", 0.0))
        ys.append(x)
    grads = []
    for (dense, act), x_in, y in zip(reversed(steps), reversed(xs), reversed(ys)):
        name = "identity" if act is None else act.kernel_name
        dz = ops.activation_backward(dy, y, name, negative_slope=getattr(act, "negative_slope", 0.0))
        dw = dz.T @ x_in
        ops.penalty(dense.weight.data, dw, l1=dense.l1, l2=dense.l2)
        grads.append((dw, dz.sum(axis=0) if dense.bias is not None else None))
        dy = dz @ dense.weight.data
    return ys[-1], dy, grads[::-1]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("seed", range(12))
def test_chain_matches_layer_by_layer_numpy(dtype, seed):
    rng = np.random.default_rng(seed)
    widths = list(rng.integers(1, 40, size=rng.integers(2, 6)))
    m = int(rng.integers(1, 50))
    steps = random_chain(rng, dtype, widths)
    x = rng.standard_normal((widths[0], m)).astype(dtype).T  # a transposed (strided) input
    dy = rng.standard_normal((m, widths[-1])).astype(dtype)
    reuse = bool(seed % 2)
    outs = tuple(np.empty((m, w), dtype) for w in widths[1:]) if reuse else None
    dx_outs = tuple(np.empty((m, w), dtype) for w in widths[:-1]) if reuse else None
    y_ref, dx_ref, grads_ref = reference(x.astype(np.float64), dy.astype(np.float64), steps)

    y = _K.dense_chain_forward(x, steps, outs, training=True)
    assert y.dtype == dtype and (not reuse or y is outs[-1])
    close(y, y_ref, dtype, k=widths[0])
    dy_before = dy.copy()
    dx = _K.dense_chain_backward(dy, steps, dx_outs, input_grad=True, overwrite_dy=False)
    np.testing.assert_array_equal(dy, dy_before)
    close(dx, dx_ref, dtype, k=max(widths), scale=10)
    for (dense, _), (dw, db) in zip(steps, grads_ref):
        close(dense.weight.grad, dw, dtype, k=m, scale=10)
        if db is not None:
            close(dense.bias.grad, db, dtype, k=m, scale=10)
    assert _K.dense_chain_backward(dy, steps, dx_outs, input_grad=False) is None


def test_chain_overwrite_dy_and_single_dense(rng):
    dense, relu = fastnn.Dense(5, 4, rng=0), fastnn.ReLU()
    x = rng.standard_normal((6, 5)).astype(np.float32)
    y = _K.dense_chain_forward(x, ((dense, relu),), training=True)
    dy = rng.standard_normal(y.shape).astype(np.float32)
    expected = _K.dense_chain_backward(dy.copy(), ((dense, relu),))
    dx = _K.dense_chain_backward(dy, ((dense, relu),), overwrite_dy=True)
    np.testing.assert_array_equal(dx, expected)
    # Dense.forward/backward are the one-step chain.
    close(dense.forward(x), x @ dense.weight.data.T + dense.bias.data, np.float32, k=5)


def test_chain_rejects_bad_arguments(rng):
    dense, act = fastnn.Dense(3, 2, rng=0), fastnn.ReLU()
    steps = ((dense, act),)
    x = rng.standard_normal((4, 3)).astype(np.float32)
    with pytest.raises(RuntimeError, match="before a forward"):
        _K.dense_chain_backward(np.ones((4, 2), np.float32), ((fastnn.Dense(3, 2),  None),))
    with pytest.raises(TypeError, match="pair"):
        _K.dense_chain_forward(x, (dense,))
    with pytest.raises(ValueError, match="weight shape"):
        _K.dense_chain_forward(x[:, :2], steps)
    with pytest.raises(TypeError, match="dtype"):
        _K.dense_chain_forward(x.astype(np.float64), steps)
    with pytest.raises(ValueError, match="one array per step"):
        _K.dense_chain_forward(x, steps, outs=())
    with pytest.raises(ValueError, match="shape"):
        _K.dense_chain_forward(x, steps, outs=(np.empty((4, 3), np.float32),))
    with pytest.raises(ValueError, match="overlaps"):
        _K.dense_chain_forward(x, ((fastnn.Dense(3, 3, rng=0), None),), outs=(x,))
    _K.dense_chain_forward(x, steps, training=True)
    with pytest.raises(ValueError, match="cannot take a gradient"):
        _K.dense_chain_backward(np.ones((5, 2), np.float32), steps)
    dense.weight.grad = x[:2]  # the gradient would be written over the saved input
    with pytest.raises(ValueError, match="overlaps"):
        _K.dense_chain_backward(np.ones((4, 2), np.float32), steps)
