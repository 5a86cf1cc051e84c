"""fastnn.gradcheck: it passes over a model of every toolbox layer with MSE, finds a 1% error
in one parameter's gradient, and checks its arguments. (Each layer's own gradient checks
are in tests/layers/.)"""

import numpy as np
import pytest

import fastnn
from fastnn import BatchNorm1d, Dense, Dropout, Maxout, Sequential, Standardize
from helpers import assert_gradcheck, classification_batch

CE = fastnn.SoftmaxCrossEntropy()


def test_gradcheck_mse_and_every_toolbox_layer():
    X, _ = classification_batch()
    t = np.random.default_rng(5).standard_normal((16, 2))
    model = Sequential(
        Standardize().adapt(X),
        Maxout(5, 6, 2, rng=0),
        BatchNorm1d(6),
        Dropout(0.25, rng=2),
        Dense(6, 2, l1=0.01, l2=0.01, rng=1),
        dtype=np.float64,
    )
    assert_gradcheck(model, X, t, fastnn.MSELoss())


class _BrokenDense(Dense):
    """A Dense whose weight gradient is 1% off (the leading underscore keeps it out of the
    layer registry)."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.weight.grad *= 1.01
        return dx


def test_gradcheck_finds_a_wrong_gradient():
    X, y = classification_batch()
    errors = fastnn.gradcheck(Sequential(_BrokenDense(5, 3, rng=0), dtype=np.float64), X, y, CE)
    assert errors["0.weight"] > 1e-3 and errors["0.bias"] < 1e-6


def test_gradcheck_checks_arguments():
    X, y = classification_batch()
    with pytest.raises(TypeError, match="Sequential"):
        fastnn.gradcheck(Dense(5, 3), X, y, CE)
    with pytest.raises(ValueError, match="eps"):
        fastnn.gradcheck(Sequential(Dense(5, 3)), X, y, CE, eps=0)
