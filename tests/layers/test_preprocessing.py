"""Standardize (fastnn/layers/preprocessing.py): adapt to data (a constant feature is only
centred), given statistics, the state_dict, argument checks, and the input gradient."""

import numpy as np
import pytest

import fastnn
from fastnn import Dense, Sequential, Standardize
from helpers import assert_gradcheck, classification_batch, input_gradcheck


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_standardize_adapt(dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 4)) * [1, 5, 0.1, 0] + [0, 10, -3, 7]
    layer = Standardize().adapt(X)
    model = Sequential(layer, Dense(4, 2), dtype=dtype)
    z = model[0].forward(X.astype(dtype))
    assert z.dtype == dtype
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0)[:3], 1, rtol=1e-4)
    assert np.all(z[:, 3] == 0)  # constant feature: std 0 counts as 1, so it is only centred
    np.testing.assert_allclose(layer.std[3], 0)


def test_standardize_given_stats_state_dict_and_errors():
    layer = Standardize(mean=[1.0, 2.0], std=[2.0, 4.0])
    np.testing.assert_allclose(layer.forward(np.array([[3.0, 6.0]])), [[1.0, 1.0]])
    model = Sequential(layer, Dense(2, 1))
    sd = model.state_dict()
    assert set(sd) == {"0.mean", "0.std", "1.weight", "1.bias"}
    rebuilt = Sequential(Standardize(**model[0].get_config()), Dense(2, 1))
    rebuilt.load_state_dict(sd)
    np.testing.assert_array_equal(rebuilt[0].std, sd["0.std"])
    with pytest.raises(RuntimeError, match="adapt"):
        Standardize().forward(np.ones((2, 2)))
    with pytest.raises(ValueError, match="features"):
        Standardize(mean=[0, 0], std=[1, 1, 1])
    with pytest.raises(ValueError, match="std"):
        Standardize(std=[-1.0])
    with pytest.raises(ValueError, match="features"):
        layer.adapt(np.ones((3, 5)))


def test_gradcheck_standardize_and_float32_model():
    X, y = classification_batch()
    model = Sequential(
        Standardize().adapt(X), Dense(5, 4, rng=0), fastnn.Sigmoid(), Dense(4, 3, rng=1)
    )  # float32: gradcheck works on a float64 copy
    assert model.dtype == np.float32
    assert_gradcheck(model, X, y)
    assert model[1].weight.data.dtype == np.float32
    std = Standardize(mean=[1, 2, 3, 4, 5], std=[2, 0, 1, 3, 0.5])
    input_gradcheck(std, X)
