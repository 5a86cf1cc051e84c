"""MaxPool2d and AvgPool2d (fastnn/layers/pooling.py): forward and input gradient equal
torch.nn.MaxPool2d / AvgPool2d in float64 over a table of geometries (kernels 1-7 and
non-square, strides 1-3, paddings 0-2, count_include_pad both ways, odd sizes, one-pixel
outputs); the input gradient against central differences (helpers.input_gradcheck: the
layers take images, which fastnn.gradcheck's models do not yet); the config, repr and dtype;
construction and forward errors."""

import json

import numpy as np
import pytest

import fastnn
from fastnn import AvgPool2d, MaxPool2d
from helpers import input_gradcheck

# (N, C, H, W, kernel_size, stride, padding)
GEOMETRIES = [
    (2, 3, 8, 8, 2, None, 0),
    (2, 3, 7, 9, 3, 2, 1),
    (1, 2, 5, 5, 5, 1, 2),
    (1, 1, 1, 1, 1, 1, 0),
    (2, 2, 3, 4, (3, 4), 1, 0),
    (1, 2, 9, 11, (7, 2), (3, 1), (2, 1)),
    (3, 1, 13, 6, (4, 6), (2, 3), (2, 3)),
    (1, 3, 10, 7, (1, 3), (2, 2), (0, 1)),
    (2, 2, 6, 6, 6, 3, 0),
    (1, 1, 4, 4, (5, 3), 2, (2, 1)),
]


def _ids(g):
    return "-".join(str(v).replace(" ", "") for v in g)


def _torch_pair(layer, x, dy, torch_layer):
    torch = pytest.importorskip("torch")
    tx = torch.tensor(x, requires_grad=True)
    ty = torch_layer(tx)
    ty.backward(torch.tensor(dy))
    return ty.detach().numpy(), tx.grad.numpy()


@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[_ids(g) for g in GEOMETRIES])
def test_maxpool_matches_torch(geometry):
    torch = pytest.importorskip("torch")
    n, c, h, w, k, s, p = geometry
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, c, h, w))
    layer = MaxPool2d(k, s, p)
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    ty, tdx = _torch_pair(layer, x, dy, torch.nn.MaxPool2d(k, s, p))
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_allclose(layer.backward(dy), tdx, rtol=1e-10, atol=1e-12)
    # ties (few distinct values) route the gradient where torch routes it
    xt = rng.integers(-2, 3, x.shape).astype(np.float64)
    y = layer.forward(xt, training=True)
    ty, tdx = _torch_pair(layer, xt, dy, torch.nn.MaxPool2d(k, s, p))
    np.testing.assert_array_equal(y, ty)
    np.testing.assert_allclose(layer.backward(dy), tdx, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("include", (True, False), ids=("include_pad", "exclude_pad"))
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[_ids(g) for g in GEOMETRIES])
def test_avgpool_matches_torch(geometry, include):
    torch = pytest.importorskip("torch")
    n, c, h, w, k, s, p = geometry
    rng = np.random.default_rng(1)
    x = rng.standard_normal((n, c, h, w))
    layer = AvgPool2d(k, s, p, count_include_pad=include)
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    ty, tdx = _torch_pair(layer, x, dy, torch.nn.AvgPool2d(k, s, p, count_include_pad=include))
    np.testing.assert_allclose(y, ty, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dy), tdx, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "make",
    [
        lambda: MaxPool2d(2),
        lambda: MaxPool2d(3, 2, 1),
        lambda: MaxPool2d((3, 2), (1, 2), (1, 0)),
        lambda: AvgPool2d(2),
        lambda: AvgPool2d(3, 1, 1, count_include_pad=False),
        lambda: AvgPool2d((2, 3), 2, (1, 1)),
    ],
)
def test_input_gradient_against_finite_differences(make):
    x = np.random.default_rng(2).standard_normal((2, 2, 5, 6))
    input_gradcheck(make(), x)


def test_config_repr_and_dtype():
    layer = MaxPool2d(3, padding=1)
    assert layer.kernel_size == (3, 3) and layer.stride == (3, 3) and layer.padding == (1, 1)
    assert repr(layer) == "MaxPool2d(kernel_size=3, stride=3, padding=1)"
    avg = AvgPool2d((3, 2), (1, 2), (1, 0), count_include_pad=False)
    assert repr(avg) == (
        "AvgPool2d(kernel_size=(3, 2), stride=(1, 2), padding=(1, 0), count_include_pad=False)"
    )
    for original in (layer, avg):
        config = json.loads(json.dumps(original.get_config()))
        clone = fastnn.layers.get(type(original).__name__)(**config)
        assert repr(clone) == repr(original) and clone.get_config() == original.get_config()
        assert clone.parameters() == [] and clone.state_dict() == {}
    x = np.random.default_rng(3).standard_normal((1, 2, 6, 6))
    assert layer.forward(x).dtype == np.float64
    assert layer.forward(x.astype(np.float32)).dtype == np.float32
    assert avg.forward(x.astype(np.float32)).dtype == np.float32


@pytest.mark.parametrize(
    "make,exc,match",
    [
        (lambda: MaxPool2d(0), ValueError, "kernel_size"),
        (lambda: MaxPool2d(-2), ValueError, "kernel_size"),
        (lambda: MaxPool2d((2, 2, 2)), ValueError, "kernel_size"),
        (lambda: MaxPool2d(2.5), ValueError, "kernel_size"),
        (lambda: MaxPool2d(2, stride=0), ValueError, "stride"),
        (lambda: AvgPool2d(2, stride=(1, 0)), ValueError, "stride"),
        (lambda: MaxPool2d(2, padding=-1), ValueError, "padding"),
        (lambda: MaxPool2d(3, padding=2), ValueError, "half the kernel"),
        (lambda: AvgPool2d((4, 2), padding=(2, 2)), ValueError, "half the kernel"),
    ],
)
def test_construction_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize("cls", (MaxPool2d, AvgPool2d))
@pytest.mark.parametrize(
    "x,exc,match",
    [
        (np.zeros((2, 3, 4)), ValueError, r"images of shape \(N, C, H, W\)"),
        (np.zeros((2, 3)), ValueError, r"images of shape \(N, C, H, W\)"),
        (np.zeros((1, 1, 2, 5)), ValueError, "height of at least 3"),
        (np.zeros((1, 1, 5, 0)), ValueError, "width of at least 1"),
        (np.zeros((1, 1, 0, 5)), ValueError, "height"),
        (np.array([[[["a"]]]]), TypeError, "x"),
    ],
)
def test_forward_errors(cls, x, exc, match):
    layer = cls((5, 3), 1, (1, 1))
    with pytest.raises(exc, match=match):
        layer.forward(x)


@pytest.mark.parametrize("cls", (MaxPool2d, AvgPool2d))
def test_backward_before_training_forward(cls):
    layer = cls(2)
    layer.forward(np.zeros((1, 1, 4, 4)))
    with pytest.raises(RuntimeError, match="before a forward with training=True"):
        layer.backward(np.zeros((1, 1, 2, 2)))
