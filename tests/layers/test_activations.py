"""The activation layers (fastnn/layers/activations.py): float64 central-difference
gradient checks of a Dense followed by each activation, with and without bias, and of
Softmax; any-rank inputs against PyTorch in float64 (Softmax over the last axis), strided
inputs, scalars refused, gradient checks on images, and fusion into Dense kept."""

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


# ---- any rank: (n, features), images (N, C, H, W), anything with at least one axis ------

SHAPES = [(7,), (4, 6), (2, 3, 5), (2, 3, 5, 7)]
TORCH_ACTIVATIONS = [
    (fastnn.Identity, "Identity", {}),
    (fastnn.ReLU, "ReLU", {}),
    (lambda: fastnn.LeakyReLU(0.1), "LeakyReLU", {"negative_slope": 0.1}),
    (lambda: fastnn.LeakyReLU(-0.3), "LeakyReLU", {"negative_slope": -0.3}),
    (fastnn.Sigmoid, "Sigmoid", {}),
    (fastnn.Tanh, "Tanh", {}),
    (fastnn.Softmax, "Softmax", {"dim": -1}),
]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize(
    "make, torch_name, torch_kwargs",
    TORCH_ACTIVATIONS,
    ids=["identity", "relu", "leaky", "leaky_neg", "sigmoid", "tanh", "softmax"],
)
def test_any_rank_forward_and_backward_match_torch(make, torch_name, torch_kwargs, shape):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    x, dy = rng.standard_normal(shape), rng.standard_normal(shape)
    keep = x.copy(), dy.copy()
    layer = make()
    assert layer.input_ndim is None
    y = layer.forward(x, training=True)
    dx = layer.backward(dy)
    xt = torch.tensor(x, requires_grad=True)
    yt = getattr(torch.nn, torch_name)(**torch_kwargs)(xt)
    yt.backward(torch.tensor(dy))
    assert y.shape == dx.shape == shape and y.dtype == dx.dtype == np.float64
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_array_equal(x, keep[0])
    np.testing.assert_array_equal(dy, keep[1])


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("make", [*ACTIVATIONS, fastnn.Softmax])
def test_any_rank_strided_input_equals_contiguous(make, dtype):
    """A transposed or sliced image batch gives what its contiguous copy gives."""
    x = np.random.default_rng(4).standard_normal((5, 7, 3, 2)).astype(dtype).transpose(0, 2, 3, 1)
    x = x[:, :, ::-1, 1:]
    layer = make()
    y = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(x))
    want = make()
    np.testing.assert_array_equal(y, want.forward(np.ascontiguousarray(x), training=True))
    np.testing.assert_array_equal(dx, want.backward(np.ones(x.shape, dtype)))
    assert y.dtype == dtype and y.shape == x.shape


def test_softmax_is_over_the_last_axis_of_a_3d_input():
    x = np.random.default_rng(5).standard_normal((3, 4, 6)) * 10
    y = fastnn.Softmax().forward(x)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    np.testing.assert_allclose(y, e / e.sum(axis=-1, keepdims=True), rtol=1e-13, atol=1e-300)
    for i in range(3):  # each leading index is an independent batch of rows
        np.testing.assert_array_equal(y[i], fastnn.Softmax().forward(x[i]))
    assert fastnn.Softmax().forward(np.ones((2, 3, 0))).shape == (2, 3, 0)
    assert fastnn.Softmax().forward(np.ones((0, 3, 4))).shape == (0, 3, 4)


def test_softmax_backward_checks_the_shape_of_dy():
    layer = fastnn.Softmax()
    layer.forward(np.ones((2, 3, 4)), training=True)
    with pytest.raises(
        ValueError, match=r"dy: Softmax.backward expects .*\(2, 3, 4\), got \(6, 4\)"
    ):
        layer.backward(np.ones((6, 4)))


@pytest.mark.parametrize("make", [*ACTIVATIONS, fastnn.Softmax])
def test_any_rank_layers_refuse_a_scalar(make):
    layer = make()
    with pytest.raises(
        ValueError, match=r"x: \w+ expects an array with at least one axis.*got shape \(\)"
    ):
        layer.forward(1.5)


@pytest.mark.parametrize("make", [*ACTIVATIONS, fastnn.Softmax])
def test_gradcheck_layer_on_images(make):
    x = np.random.default_rng(6).standard_normal((2, 3, 4, 5))
    errors = fastnn.gradcheck_layer(make(), x)
    assert set(errors) == {"input"} and errors["input"] < GRAD_TOL, errors


@pytest.mark.parametrize("make_act", ACTIVATIONS[1:])
def test_fused_activations_are_unchanged_by_any_rank_support(make_act):
    """A Dense followed by an activation still runs fused in the model: its output and
    gradients equal the layer-by-layer computation."""
    rng = np.random.default_rng(7)
    X, dy = rng.standard_normal((6, 5)), rng.standard_normal((6, 4))
    dense, act = dense64(5, 4, 3), make_act()
    model = fastnn.Sequential(dense, act)
    out = model.forward(X, training=True)
    dx = model.backward(dy, input_grad=True)
    weight_grad = dense.weight.grad.copy()
    ref_dense, ref_act = dense64(5, 4, 3), make_act()
    ref = ref_act.forward(ref_dense.forward(X, training=True), training=True)
    ref_dx = ref_dense.backward(ref_act.backward(dy))
    np.testing.assert_allclose(out, ref, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(weight_grad, ref_dense.weight.grad, rtol=1e-12, atol=1e-14)
