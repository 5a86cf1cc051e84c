"""Dense (fastnn/layers/dense.py): float64 gradient checks with and without l1/l2 penalties
(with fastnn.gradcheck and with the independent central differences of helpers.py), used on
its own outside Sequential, and as the one-step compiled Dense chain (chain_step)."""

import numpy as np
import pytest

import fastnn
from fastnn import Dense, Sequential, kernels
from helpers import (
    assert_gradcheck,
    check_model,
    classification_batch,
    close,
    dense64,
    numeric_grad,
    rel_error,
)

GRAD_TOL = 1e-6


def test_gradcheck_dense_with_l1_l2():
    X, y = classification_batch()
    model = Sequential(
        Dense(5, 4, l1=0.01, l2=0.05, rng=0),
        fastnn.Tanh(),
        Dense(4, 3, l2=0.1, rng=1),
        dtype=np.float64,
    )
    assert_gradcheck(model, X, y)


@pytest.mark.parametrize("l1,l2", [(0.01, 0.0), (0.0, 0.05), (0.02, 0.03)])
def test_dense_penalties(l1, l2):
    rng = np.random.default_rng(1)
    model = fastnn.Sequential(
        dense64(4, 6, 3, l1=l1, l2=l2), fastnn.Tanh(), dense64(6, 2, 4, l2=l2)
    )
    X = rng.standard_normal((5, 4))
    y = rng.standard_normal((5, 2))
    errors = check_model(model, X, y, fastnn.MSELoss())
    assert max(errors.values()) < GRAD_TOL, errors
    assert model.regularization_loss() > 0


def test_standalone_layers_outside_sequential():
    """Layers used on their own (no fusion) give the same gradients."""
    rng = np.random.default_rng(3)
    d, act = dense64(3, 4, 6), fastnn.Tanh()
    X = rng.standard_normal((5, 3))
    t = rng.standard_normal((5, 4))

    def objective():
        return fastnn.MSELoss()(act.forward(d.forward(X, True), True), t)[0]

    _, g = fastnn.MSELoss()(act.forward(d.forward(X, True), True), t)
    d.backward(act.backward(g))
    assert rel_error(d.weight.grad, numeric_grad(objective, d.weight.data)) < GRAD_TOL
    assert rel_error(d.bias.grad, numeric_grad(objective, d.bias.data)) < GRAD_TOL


@pytest.mark.usefixtures("isa")
def test_dense_layer_is_the_one_step_chain(dtype, rng):
    dense = fastnn.Dense(5, 4, rng=0, dtype=dtype, l2=0.1)
    x = rng.standard_normal((6, 5)).astype(dtype)
    y = dense.forward(x, training=True)
    close(y, x @ dense.weight.data.T + dense.bias.data, dtype, k=5)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = dense.backward(dy)
    step = dense.chain_step()._replace(
        weight_grad=np.empty_like(dense.weight.grad), bias_grad=np.empty_like(dense.bias.grad)
    )
    np.testing.assert_array_equal(dx, kernels.dense_chain_backward(dy, (step,), x, (None,)))
    np.testing.assert_array_equal(dense.weight.grad, step.weight_grad)
    np.testing.assert_array_equal(dense.bias.grad, step.bias_grad)
    with pytest.raises(RuntimeError, match="before a forward"):
        fastnn.Dense(5, 4).backward(dy)


@pytest.mark.usefixtures("isa")
def test_chain_step_holds_the_layers_arrays():
    dense, act = fastnn.Dense(3, 2, rng=0, l1=0.5), fastnn.LeakyReLU(0.3)
    step = dense.chain_step(act)
    assert step.weight is dense.weight.data and step.bias is dense.bias.data
    assert step.weight_grad is dense.weight.grad and step.bias_grad is dense.bias.grad
    assert (step.activation, step.negative_slope, step.l1, step.l2) == ("leaky_relu", 0.3, 0.5, 0.0)
    assert fastnn.Dense(3, 2, bias=False).chain_step(fastnn.ReLU())[1:5:2] == (None, None)
