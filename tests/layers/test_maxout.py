"""Maxout (fastnn/layers/maxout.py): unit-major pieces, the init and std arguments (Dense's
std too), and float64 gradient checks of the parameters and the input."""

import numpy as np
import pytest

from fastnn import Dense, Maxout, Sequential
from helpers import assert_gradcheck, classification_batch, input_gradcheck


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_maxout_is_unit_major(dtype):
    rng = np.random.default_rng(0)
    layer = Maxout(4, 3, 2, dtype=dtype, rng=0)
    layer.bias.data[...] = rng.standard_normal(6)
    assert layer.weight.data.shape == (6, 4)
    x = rng.standard_normal((5, 4)).astype(dtype)
    z = x @ layer.weight.data.T + layer.bias.data
    expect = np.stack([z[:, 2 * j : 2 * j + 2].max(axis=1) for j in range(3)], axis=1)
    y = layer.forward(x)
    assert y.dtype == dtype and y.shape == (5, 3)
    np.testing.assert_allclose(y, expect, rtol=1e-5)


def test_maxout_init_and_std():
    layer = Maxout(50, 20, 3, init="normal", std=0.5, rng=0, dtype=np.float64)
    assert abs(layer.weight.data.std() - 0.5) < 0.02
    assert np.all(Maxout(4, 2, 2, init="zeros").weight.data == 0)
    dense = Dense(50, 40, init="normal", std=0.2, rng=0)
    assert abs(dense.weight.data.std() - 0.2) < 0.02
    with pytest.raises(TypeError, match="std"):
        Maxout(4, 2, 2, init="he_uniform", std=0.1)
    with pytest.raises(ValueError, match="init"):
        Maxout(4, 2, 2, init="nope")
    with pytest.raises(ValueError, match="pieces"):
        Maxout(4, 2, 0)


def test_gradcheck_maxout():
    X, y = classification_batch()
    model = Sequential(Maxout(5, 4, 3, rng=0), Maxout(4, 3, 2, rng=1), dtype=np.float64)
    assert_gradcheck(model, X, y)
    input_gradcheck(Maxout(5, 2, 3, rng=2, dtype=np.float64), X)
