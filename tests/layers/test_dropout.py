"""Dropout (fastnn/layers/dropout.py): the fraction zeroed and the scaling, identity in
evaluation and at p=0, p=1, the mask reused by backward and seeded, deterministic
prediction in a trained model, the gradient with a fixed mask, and inputs of any rank
(images (N, C, H, W) included)."""

import numpy as np
import pytest

import fastnn
from fastnn import Dense, Dropout, Sequential
from helpers import assert_gradcheck, classification_batch

CE = fastnn.SoftmaxCrossEntropy()


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("p", (0.1, 0.5, 0.8))
def test_dropout_statistics(p, dtype):
    x = np.full((400, 500), 3.0, dtype)
    y = Dropout(p, rng=0).forward(x, training=True)
    assert y.dtype == dtype
    zeroed = np.mean(y == 0)
    assert abs(zeroed - p) < 0.01
    assert abs(y.mean() - 3.0) < 0.03 * 3 / (1 - p) ** 0.5
    np.testing.assert_allclose(y[y != 0], 3.0 / (1 - p), rtol=1e-6)


def test_dropout_eval_identity_and_edge_probabilities():
    x = np.random.default_rng(0).standard_normal((20, 7))
    keep = x.copy()
    np.testing.assert_array_equal(Dropout(0.5, rng=0).forward(x, training=False), keep)
    d0 = Dropout(0.0, rng=0)
    np.testing.assert_array_equal(d0.forward(x, training=True), keep)
    np.testing.assert_array_equal(d0.backward(x), keep)
    d1 = Dropout(1.0, rng=0)
    assert np.all(d1.forward(x, training=True) == 0) and np.all(d1.backward(x) == 0)
    np.testing.assert_array_equal(x, keep)  # never modifies its input
    for bad in (-0.1, 1.5, "half"):
        with pytest.raises(ValueError, match="p must"):
            Dropout(bad)


def test_dropout_reuses_mask_in_backward_and_is_seeded():
    x = np.ones((10, 10))
    a, b = Dropout(0.5, rng=42), Dropout(0.5, rng=42)
    ya, yb = a.forward(x, training=True), b.forward(x, training=True)
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(a.backward(np.ones_like(x)) != 0, ya != 0)


def test_dropout_in_a_model_trains_and_predicts_deterministically():
    X, y = classification_batch(64)
    model = Sequential(Dense(5, 16, rng=0), fastnn.ReLU(), Dropout(0.3, rng=0), Dense(16, 3, rng=1))
    model.fit(X, y, loss=CE, optimizer=fastnn.optim.Adam(model, lr=0.01), epochs=3, seed=0)
    np.testing.assert_array_equal(model.predict(X), model.predict(X))


def test_gradcheck_dropout_with_fixed_mask():
    X, y = classification_batch()
    model = Sequential(
        Dense(5, 6, rng=0), fastnn.ReLU(), Dropout(0.4, rng=7), Dense(6, 3, rng=1), dtype=np.float64
    )
    assert_gradcheck(model, X, y)
    layer = Dropout(0.3, rng=3)
    layer.forward(X, training=True)
    # a fixed mask makes dropout linear: its backward is the same masked scaling
    np.testing.assert_array_equal(layer.backward(np.ones_like(X)), layer._mask / 0.7)


@pytest.mark.parametrize("shape", [(5000,), (40, 3, 5, 7), (8, 25, 30)], ids=lambda s: f"{len(s)}d")
def test_dropout_takes_any_rank(shape):
    x = np.random.default_rng(1).standard_normal(shape)
    keep = x.copy()
    layer = Dropout(0.25, rng=0)
    assert layer.input_ndim is None
    y = layer.forward(x, training=True)
    assert y.shape == shape and abs(np.mean(y == 0) - 0.25) < 0.02
    np.testing.assert_allclose(y[y != 0], x[y != 0] / 0.75, rtol=1e-15)
    dx = layer.backward(np.ones(shape))
    np.testing.assert_array_equal(dx, (y != 0) / 0.75)
    np.testing.assert_array_equal(layer.forward(x, training=False), keep)
    np.testing.assert_array_equal(x, keep)


def test_dropout_on_a_strided_image_batch_draws_the_mask_of_its_shape():
    base = np.random.default_rng(2).standard_normal((6, 5, 4, 3))
    x = base.transpose(0, 3, 1, 2)[:, :, ::2]
    a, b = Dropout(0.5, rng=9), Dropout(0.5, rng=9)
    np.testing.assert_array_equal(
        a.forward(x, training=True), b.forward(np.ascontiguousarray(x), training=True)
    )


def test_dropout_refuses_a_scalar():
    with pytest.raises(ValueError, match=r"x: Dropout expects an array with at least one axis"):
        Dropout(0.5).forward(np.float64(2.0), training=True)


def test_gradcheck_dropout_on_images_with_fixed_mask():
    x = np.random.default_rng(3).standard_normal((2, 3, 4, 5))
    errors = fastnn.gradcheck_layer(Dropout(0.4, rng=7), x)
    assert errors["input"] < 1e-6, errors
