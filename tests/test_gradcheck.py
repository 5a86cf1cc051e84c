"""fastnn.gradcheck: it passes over a model of every toolbox layer with MSE, finds a 1% error
in one parameter's gradient, and checks its arguments; fastnn.gradcheck_layer does the same
for one layer, its input gradient included, on image batches (N, C, H, W) too. (Each
layer's own gradient checks are in tests/layers/.)"""

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


class _ChannelScale(fastnn.Layer):
    """An image layer: y = x * weight[c] + bias[c] per channel of (N, C, H, W), with an l2
    penalty on the weight (the leading underscore keeps it out of the layer registry)."""

    input_ndim = 4

    def __init__(self, channels, l2=0.0, dtype=np.float32):
        super().__init__()
        self.dtype, self.l2, self.channels = np.dtype(dtype), l2, channels
        rng = np.random.default_rng(0)
        self.weight = fastnn.Parameter("weight", rng.standard_normal(channels).astype(dtype))
        self.bias = fastnn.Parameter("bias", rng.standard_normal(channels).astype(dtype))
        self._params.update(weight=self.weight, bias=self.bias)
        self._x = None

    def forward(self, x, training=False):
        x = self._input(x, self.channels)
        if training:
            self._x = x
        return x * self.weight.data[:, None, None] + self.bias.data[:, None, None]

    def backward(self, dy):
        self.weight.grad[...] = (dy * self._x).sum(axis=(0, 2, 3)) + 2 * self.l2 * self.weight.data
        self.bias.grad[...] = dy.sum(axis=(0, 2, 3))
        return dy * self.weight.data[:, None, None]

    def regularization_loss(self):
        return self.l2 * float(np.sum(self.weight.data**2))


class _BrokenChannelScale(_ChannelScale):
    def backward(self, dy):
        dx = super().backward(dy)
        self.bias.grad *= 1.01
        return dx


IMAGES = np.random.default_rng(8).standard_normal((2, 3, 4, 5))


def test_gradcheck_layer_checks_the_input_and_the_parameters_of_an_image_layer():
    layer = _ChannelScale(3, l2=0.1)  # float32: checked through a float64 copy
    before = {k: v.copy() for k, v in layer.state_dict().items()}
    x = IMAGES.copy()
    errors = fastnn.gradcheck_layer(layer, x)
    assert set(errors) == {"input", "weight", "bias"}
    assert max(errors.values()) < 1e-6, errors
    np.testing.assert_array_equal(x, IMAGES)  # the caller's input and layer are untouched
    assert layer.dtype == np.float32 and layer._x is None
    for k, v in layer.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_gradcheck_layer_finds_a_wrong_gradient():
    errors = fastnn.gradcheck_layer(_BrokenChannelScale(3, dtype=np.float64), IMAGES)
    assert errors["bias"] > 1e-3 and errors["weight"] < 1e-6 and errors["input"] < 1e-6


def test_gradcheck_layer_on_the_layers_of_a_model_and_in_two_dimensions():
    X, _ = classification_batch()
    model = Sequential(Dense(5, 4, l1=0.01, rng=0), BatchNorm1d(4), dtype=np.float64)
    errors = fastnn.gradcheck_layer(model[0], X[:6])
    assert set(errors) == {"input", "0.weight", "0.bias"}
    assert max(errors.values()) < 1e-6, errors
    assert max(fastnn.gradcheck_layer(model[1], X[:6, :4]).values()) < 1e-6


def test_gradcheck_layer_checks_arguments():
    with pytest.raises(TypeError, match="Sequential: check a model with gradcheck"):
        fastnn.gradcheck_layer(Sequential(Dense(5, 3)), np.ones((2, 5)))
    with pytest.raises(TypeError, match="layer must be a fastnn Layer, got ufunc"):
        fastnn.gradcheck_layer(np.tanh, np.ones((2, 5)))
    with pytest.raises(ValueError, match="eps"):
        fastnn.gradcheck_layer(Dense(5, 3), np.ones((2, 5)), eps=-1.0)
    with pytest.raises(
        ValueError, match=r"x: _ChannelScale expects images of shape \(N, C, H, W\)"
    ):
        fastnn.gradcheck_layer(_ChannelScale(3), np.ones((2, 3)))
    with pytest.raises(TypeError, match="x must be"):
        fastnn.gradcheck_layer(Dense(5, 3), None)


def test_gradcheck_checks_the_rank_the_model_takes():
    X, y = classification_batch()
    with pytest.raises(ValueError, match=r"X must be 2-D \(n_samples, n_features\) for this model"):
        fastnn.gradcheck(Sequential(Dense(5, 3)), X[:, :, None, None], y, CE)
    with pytest.raises(ValueError, match=r"X must be 4-D \(n_samples, channels, height, width\)"):
        fastnn.gradcheck(Sequential(_ChannelScale(3)), X, y, CE)
