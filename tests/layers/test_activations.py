"""The activation layers (fastnn/layers/activations.py): float64 central-difference
gradient checks of a Dense followed by each activation, with and without bias, and of
Softmax."""

import numpy as np
import pytest

import fastnn
from helpers import check_model, dense64

GRAD_TOL = 1e-6


ACTIVATIONS = [
    fastnn.Identity,
    fastnn.ReLU,
    lambda: fastnn.LeakyReLU(0.1),
    lambda: fastnn.LeakyReLU(-0.3),
    fastnn.Sigmoid,
    fastnn.Tanh,
]


@pytest.mark.parametrize(
    "make_act", ACTIVATIONS, ids=["identity", "relu", "leaky", "leaky_neg", "sigmoid", "tanh"]
)
@pytest.mark.parametrize("bias", [True, False])
def test_dense_and_activation(make_act, bias):
    rng = np.random.default_rng(0)
    model = fastnn.Sequential(dense64(5, 7, 1, bias=bias), make_act(), dense64(7, 3, 2))
    X = rng.standard_normal((6, 5))
    y = rng.integers(0, 3, 6)
    errors = check_model(model, X, y, fastnn.SoftmaxCrossEntropy())
    assert max(errors.values()) < GRAD_TOL, errors


def test_softmax_layer():
    rng = np.random.default_rng(2)
    model = fastnn.Sequential(dense64(4, 5, 5), fastnn.Softmax())
    X = rng.standard_normal((7, 4))
    y = rng.dirichlet(np.ones(5), 7)
    errors = check_model(model, X, y, fastnn.MSELoss(reduction="sum"))
    assert max(errors.values()) < GRAD_TOL, errors
