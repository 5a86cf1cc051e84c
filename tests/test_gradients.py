"""float64 central-difference gradient checks of every layer and loss (rel. error < 1e-6)."""
import numpy as np
import pytest

import fastnn
from gradcheck_util import check_model, numeric_grad, rel_error

F64 = np.float64
TOL = 1e-6


def dense(i, o, seed, **kw):
    return fastnn.Dense(i, o, dtype=F64, rng=seed, init="xavier_normal", **kw)


ACTIVATIONS = [fastnn.Identity, fastnn.ReLU, lambda: fastnn.LeakyReLU(0.1),
               lambda: fastnn.LeakyReLU(-0.3), fastnn.Sigmoid, fastnn.Tanh]


@pytest.mark.parametrize("make_act", ACTIVATIONS, ids=["identity", "relu", "leaky", "leaky_neg",
                                                       "sigmoid", "tanh"])
@pytest.mark.parametrize("bias", [True, False])
def test_dense_and_activation(make_act, bias):
    rng = np.random.default_rng(0)
    model = fastnn.Sequential(dense(5, 7, 1, bias=bias), make_act(), dense(7, 3, 2))
    X = rng.standard_normal((6, 5))
    y = rng.integers(0, 3, 6)
    errors = check_model(model, X, y, fastnn.SoftmaxCrossEntropy())
    assert max(errors.values()) < TOL, errors


@pytest.mark.parametrize("l1,l2", [(0.01, 0.0), (0.0, 0.05), (0.02, 0.03)])
def test_dense_penalties(l1, l2):
    rng = np.random.default_rng(1)
    model = fastnn.Sequential(dense(4, 6, 3, l1=l1, l2=l2), fastnn.Tanh(), dense(6, 2, 4, l2=l2))
    X = rng.standard_normal((5, 4))
    y = rng.standard_normal((5, 2))
    errors = check_model(model, X, y, fastnn.MSELoss())
    assert max(errors.values()) < TOL, errors
    assert model.regularization_loss() > 0


def test_softmax_layer():
    rng = np.random.default_rng(2)
    model = fastnn.Sequential(dense(4, 5, 5), fastnn.Softmax())
    X = rng.standard_normal((7, 4))
    y = rng.dirichlet(np.ones(5), 7)
    errors = check_model(model, X, y, fastnn.MSELoss(reduction="sum"))
    assert max(errors.values()) < TOL, errors


def test_standalone_layers_outside_sequential():
    """Layers used on their own (no fusion) give the same gradients."""
    rng = np.random.default_rng(3)
    d, act = dense(3, 4, 6), fastnn.Tanh()
    X = rng.standard_normal((5, 3))
    t = rng.standard_normal((5, 4))

    def objective():
        return fastnn.MSELoss()(act.forward(d.forward(X, True), True), t)[0]

    _, g = fastnn.MSELoss()(act.forward(d.forward(X, True), True), t)
    d.backward(act.backward(g))
    assert rel_error(d.weight.grad, numeric_grad(objective, d.weight.data)) < TOL
    assert rel_error(d.bias.grad, numeric_grad(objective, d.bias.data)) < TOL


def _loss_cases(rng):
    x = rng.standard_normal((6, 4)) * 2
    yield "sce_labels", fastnn.SoftmaxCrossEntropy(), x, rng.integers(0, 4, 6)
    yield "sce_labels_sum", fastnn.SoftmaxCrossEntropy("sum"), x, rng.integers(0, 4, 6)
    yield "sce_probs", fastnn.SoftmaxCrossEntropy(), x, rng.dirichlet(np.ones(4), 6)
    yield "bce", fastnn.BCEWithLogits(), x, rng.integers(0, 2, (6, 4)).astype(F64)
    yield "bce_soft_sum", fastnn.BCEWithLogits("sum"), x, rng.uniform(0, 1, (6, 4))
    for red in ("mean", "sum", "half_sum"):
        yield f"mse_{red}", fastnn.MSELoss(red), x, rng.standard_normal((6, 4))


@pytest.mark.parametrize("case", list(_loss_cases(np.random.default_rng(4))), ids=lambda c: c[0])
def test_loss_gradient(case):
    _, loss, x, target = case
    x = x.copy()
    value, grad = loss(x, target)
    assert isinstance(value, float) and grad.shape == x.shape and grad.dtype == F64
    numeric = numeric_grad(lambda: loss(x, target)[0], x)
    assert rel_error(grad, numeric) < TOL
