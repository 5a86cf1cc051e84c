"""Flatten (fastnn/layers/flatten.py): (N, d1, d2, ...) -> (N, d1 * d2 * ...) in row-major
order, as torch.nn.Flatten; a view where the layout allows; the backward restores the
input's shape; empty batches; errors."""

import json

import numpy as np
import pytest

import fastnn
from fastnn import Flatten


@pytest.mark.parametrize(
    "shape", [(2, 3, 4, 5), (3, 7), (1, 1, 1, 1), (4, 2, 3), (2, 1, 2, 1, 3), (0, 3, 4, 4)]
)
def test_shapes_and_order_match_torch(shape):
    torch = pytest.importorskip("torch")
    x = np.arange(int(np.prod(shape)), dtype=np.float64).reshape(shape)
    layer = Flatten()
    y = layer.forward(x, training=True)
    want = torch.nn.Flatten()(torch.tensor(x)).numpy()
    assert y.shape == want.shape == (shape[0], int(np.prod(shape[1:])))
    np.testing.assert_array_equal(y, want)
    dy = np.random.default_rng(0).standard_normal(y.shape)
    dx = layer.backward(dy)
    assert dx.shape == shape
    np.testing.assert_array_equal(dx.reshape(y.shape), dy)


def test_view_of_a_contiguous_input_and_any_layout():
    x = np.random.default_rng(1).standard_normal((2, 3, 4, 5))
    y = Flatten().forward(x)
    assert np.shares_memory(x, y)
    for view in (np.asfortranarray(x), x[:, :, ::-1], x.transpose(0, 1, 3, 2)):
        np.testing.assert_array_equal(Flatten().forward(view), view.reshape(2, -1))


def test_dtype_follows_the_input():
    layer = Flatten()
    assert layer.forward(np.zeros((2, 3), np.float32)).dtype == np.float32
    assert layer.forward(np.zeros((2, 3), np.float64)).dtype == np.float64
    assert layer.forward(np.zeros((2, 3), np.int64)).dtype == np.float32
    assert layer.parameters() == [] and layer.state_dict() == {}


def test_a_model_that_starts_with_flatten_takes_any_rank():
    """torch.nn.Sequential(Flatten(), Linear(12, 2)) takes (3, 3, 4) images; so does this."""
    model = fastnn.Sequential(Flatten(), fastnn.Dense(12, 2, rng=0))
    assert model.input_ndim is None
    want = model.forward(np.ones((3, 12)))
    np.testing.assert_array_equal(model.forward(np.ones((3, 3, 4))), want)
    np.testing.assert_array_equal(model.predict(np.ones((3, 2, 2, 3))), want)
    with pytest.raises(ValueError, match="X must have a samples axis and at least one more"):
        model.forward(np.ones(12))
    with pytest.raises(ValueError, match="12"):
        model.forward(np.ones((3, 13)))


def test_config_and_repr():
    assert repr(Flatten()) == "Flatten()"
    config = json.loads(json.dumps(Flatten().get_config()))
    assert repr(fastnn.layers.get("Flatten")(**config)) == "Flatten()"


@pytest.mark.parametrize(
    "x,exc,match",
    [
        (np.zeros(3), ValueError, r"x: Flatten expects a batch \(N, \.\.\.\) of at least 2-D"),
        (np.float64(1.0), ValueError, "Flatten expects"),
        (np.full((2, 3), "a"), TypeError, "x must be numeric"),
        (None, TypeError, "x"),
    ],
)
def test_forward_errors(x, exc, match):
    with pytest.raises(exc, match=match):
        Flatten().forward(x)


def test_backward_before_training_forward():
    layer = Flatten()
    layer.forward(np.zeros((2, 3, 4)))
    with pytest.raises(RuntimeError, match="before a forward with training=True"):
        layer.backward(np.zeros((2, 12)))
