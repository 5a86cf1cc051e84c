"""Conv2d (fastnn/layers/conv.py): the forward, the input gradient and the weight and bias
gradients equal torch.nn.Conv2d's in float64 over a table of geometries (kernels 1-7 and
non-square, strides 1-3, padding 0/1/2/"same"/"valid" and pairs, dilation 1-2, groups 1, 2
and depthwise, odd sizes, one-pixel outputs); central-difference gradient checks
(fastnn.gradcheck_layer); the initialisers' fans; config round trip, repr and dtype;
construction and forward errors."""

import json

import numpy as np
import pytest

import fastnn
from fastnn import Conv2d
from helpers import rel_error


def _table():
    """(N, C, O, H, W, kernel_size, stride, padding, dilation, groups): hand-picked edge
    cases, then a seeded sample of the issue's grid."""
    cases = [
        (2, 3, 4, 8, 8, 3, 1, 1, 1, 1),
        (1, 1, 1, 1, 1, 1, 1, 0, 1, 1),  # a one-pixel image
        (2, 3, 5, 7, 9, 1, 1, 0, 1, 1),  # pointwise
        (2, 4, 6, 7, 9, 1, 1, 0, 1, 2),  # pointwise, grouped
        (1, 2, 3, 5, 5, 5, 1, 0, 1, 1),  # a one-pixel output
        (1, 2, 3, 3, 3, 7, 1, 2, 1, 1),  # a one-pixel output from padding
        (1, 2, 3, 5, 3, (5, 3), 2, 0, 1, 1),
        (2, 3, 3, 9, 7, 3, 1, 1, 1, 3),  # depthwise
        (2, 3, 6, 9, 7, (3, 5), (2, 1), (1, 2), 1, 3),  # depthwise, 2 per channel
        (2, 4, 4, 9, 10, 3, 1, "same", 2, 2),
        (2, 3, 4, 6, 7, 4, 1, "same", 1, 1),  # even: one more at the bottom and the right
        (2, 3, 4, 6, 7, (2, 5), 1, "same", (2, 1), 1),
        (2, 3, 4, 6, 7, 3, 3, "valid", 1, 1),
        (3, 2, 2, 11, 4, (7, 1), (3, 2), (2, 0), (1, 2), 2),
        (1, 2, 4, 4, 4, 2, 3, 2, 1, 1),  # stride beyond the image: corners only
        (2, 2, 3, 7, 7, 3, 2, 2, 2, 1),
        (17, 2, 3, 6, 5, 3, 1, 1, 1, 1),  # two chunks of images in the backward
        (2, 64, 4, 7, 40, 5, 1, 2, 1, 1),  # the C code slices the output rows
    ]
    rng = np.random.default_rng(0)
    paddings = [0, 1, 2, "same", "valid", (1, 0), (0, 2)]
    while len(cases) < 84:
        kh, kw = (int(v) for v in rng.integers(1, 8, 2))
        if rng.random() < 0.5:
            kw = kh
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        p = paddings[int(rng.integers(0, len(paddings)))]
        if p == "same":
            s = (1, 1)
        groups = int(rng.choice([1, 2, 3]))
        c = groups * int(rng.integers(1, 3))
        o = groups * int(rng.integers(1, 3))
        pad = (0, 0) if p in ("same", "valid") else (p, p) if isinstance(p, int) else p
        span = (d[0] * (kh - 1) + 1, d[1] * (kw - 1) + 1)
        smallest = [max(1, span[i] - (0 if p == "same" else 2 * pad[i])) for i in (0, 1)]
        h = smallest[0] + int(rng.integers(0, 5))
        w = smallest[1] + int(rng.integers(0, 5))
        cases.append((int(rng.integers(1, 4)), c, o, h, w, (kh, kw), s, p, d, groups))
    return cases


TABLE = _table()


def _ids(case):
    return "-".join(str(v).replace(" ", "").replace("'", "") for v in case)


def _pair(torch, layer, x, dy):
    """torch.nn.Conv2d with this layer's weights: (output, dx, dweight, dbias)."""
    ref = torch.nn.Conv2d(
        layer.in_channels,
        layer.out_channels,
        layer.kernel_size,
        layer.stride,
        layer.padding,
        layer.dilation,
        layer.groups,
        bias=layer.bias is not None,
        dtype=torch.float64,
    )
    with torch.no_grad():
        ref.weight.copy_(torch.tensor(layer.weight.data))
        if layer.bias is not None:
            ref.bias.copy_(torch.tensor(layer.bias.data))
    tx = torch.tensor(x, requires_grad=True)
    ty = ref(tx)
    ty.backward(torch.tensor(dy))
    db = None if ref.bias is None else ref.bias.grad.numpy()
    return ty.detach().numpy(), tx.grad.numpy(), ref.weight.grad.numpy(), db


@pytest.mark.parametrize("case", TABLE, ids=[_ids(c) for c in TABLE])
def test_matches_torch(case):
    torch = pytest.importorskip("torch")
    n, c, o, h, w, k, s, p, d, groups = case
    rng = np.random.default_rng(1)
    layer = Conv2d(c, o, k, s, p, d, groups, dtype=np.float64, rng=2)
    layer.bias.data[...] = rng.standard_normal(o)
    x = rng.standard_normal((n, c, h, w))
    keep = x.copy()
    y = layer.forward(x, training=True)
    assert y.shape == layer.output_shape(x.shape)
    dy = rng.standard_normal(y.shape)
    dx = layer.backward(dy)
    ty, tdx, tdw, tdb = _pair(torch, layer, x, dy)
    assert y.shape == ty.shape and dx.shape == x.shape
    for got, want in ((y, ty), (dx, tdx), (layer.weight.grad, tdw), (layer.bias.grad, tdb)):
        assert rel_error(got, want) <= 1e-10
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-11)
    np.testing.assert_array_equal(x, keep)


def test_without_bias_and_without_input_gradient():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    layer = Conv2d(4, 6, (3, 2), (2, 1), (1, 0), groups=2, bias=False, dtype=np.float64, rng=0)
    assert layer.bias is None and [p.name for p in layer.parameters()] == ["weight"]
    x = rng.standard_normal((3, 4, 7, 6))
    y = layer.forward(x, training=True)
    dy = rng.standard_normal(y.shape)
    ty, tdx, tdw, tdb = _pair(torch, layer, x, dy)
    assert tdb is None
    np.testing.assert_allclose(y, ty, rtol=1e-10, atol=1e-12)
    assert layer.backward(dy, input_grad=False) is None
    np.testing.assert_allclose(layer.weight.grad, tdw, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dy), tdx, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", ["relu", "leaky_relu", "sigmoid", "tanh"])
def test_fused_activation_is_conv_then_activation(name):
    """forward(activation=...) as the model fuses it: the activation layer's output, and the
    backward through both."""
    rng = np.random.default_rng(4)
    act = {
        "relu": fastnn.ReLU(),
        "leaky_relu": fastnn.LeakyReLU(0.1),
        "sigmoid": fastnn.Sigmoid(),
        "tanh": fastnn.Tanh(),
    }[name]
    conv = Conv2d(3, 4, 3, padding=1, dtype=np.float64, rng=0)
    x = rng.standard_normal((2, 3, 5, 6))
    z = conv.forward(x, training=True)
    want = act.forward(z, training=True)
    dy = rng.standard_normal(want.shape)
    want_dx = conv.backward(act.backward(dy))
    want_dw = conv.weight.grad.copy()
    got = conv.forward(x, training=True, activation=act)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(conv.backward(dy), want_dx, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(conv.weight.grad, want_dw, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize(
    "args",
    [
        dict(in_channels=2, out_channels=3, kernel_size=3, padding=1),
        dict(in_channels=2, out_channels=2, kernel_size=(2, 3), stride=(2, 1), padding=(1, 0)),
        dict(in_channels=4, out_channels=2, kernel_size=3, padding="same", dilation=2, groups=2),
        dict(in_channels=3, out_channels=3, kernel_size=2, groups=3, bias=False),
        dict(in_channels=2, out_channels=3, kernel_size=1),
    ],
)
def test_gradcheck_layer(args):
    layer = Conv2d(**args, dtype=np.float64, rng=5)
    if layer.bias is not None:
        layer.bias.data[...] = np.random.default_rng(6).standard_normal(layer.out_channels)
    x = np.random.default_rng(7).standard_normal((2, layer.in_channels, 5, 6))
    errors = fastnn.gradcheck_layer(layer, x)
    assert set(errors) == {"input"} | {p.name for p in layer.parameters()}
    assert max(errors.values()) < 1e-6, errors


def test_float32_layer_runs_in_float32():
    layer = Conv2d(2, 3, 3, rng=0)
    assert layer.weight.data.dtype == np.float32 and layer.bias.data.dtype == np.float32
    x = np.random.default_rng(8).standard_normal((2, 2, 5, 5))
    y = layer.forward(x, training=True)
    assert y.dtype == np.float32
    assert layer.backward(np.ones_like(y)).dtype == np.float32
    ref = Conv2d(2, 3, 3, dtype=np.float64, rng=0)
    ref.weight.data[...] = layer.weight.data
    np.testing.assert_allclose(y, ref.forward(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    "c,o,k,groups",
    [(8, 64, (3, 5), 1), (8, 64, (3, 5), 2), (16, 32, 3, 16), (3, 48, 7, 1), (6, 96, 1, 3)],
)
def test_initialisers_count_the_taps_per_group(c, o, k, groups):
    kh, kw = (k, k) if isinstance(k, int) else k
    fan_in, fan_out = c // groups * kh * kw, o * kh * kw
    bound = np.sqrt(6.0 / fan_in)
    w = Conv2d(c, o, k, groups=groups, rng=0, dtype=np.float64).weight.data
    assert w.shape == (o, c // groups, kh, kw)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.9 * bound
    torch = pytest.importorskip("torch")
    tw = torch.empty(w.shape, dtype=torch.float64)
    assert torch.nn.init._calculate_fan_in_and_fan_out(tw) == (fan_in, fan_out)
    xb = np.sqrt(6.0 / (fan_in + fan_out))
    w = Conv2d(c, o, k, groups=groups, rng=0, init="xavier_uniform").weight.data
    assert np.abs(w).max() <= xb * (1 + 1e-6) and np.abs(w).max() > 0.9 * xb
    w = Conv2d(c, o, k, groups=groups, rng=0, init="he_normal", dtype=np.float64).weight.data
    assert abs(w.std() / np.sqrt(2.0 / fan_in) - 1) < 0.25
    # bias starts at zero; the same seed gives the same weights
    conv = Conv2d(c, o, k, groups=groups, rng=3)
    np.testing.assert_array_equal(conv.bias.data, 0)
    np.testing.assert_array_equal(
        conv.weight.data, Conv2d(c, o, k, groups=groups, rng=3).weight.data
    )


@pytest.mark.parametrize(
    "layer,text",
    [
        (Conv2d(3, 8, 3), "Conv2d(3, 8, kernel_size=(3, 3), stride=(1, 1))"),
        (
            Conv2d(4, 8, (3, 5), 2, 1, 2, 2, bias=False),
            "Conv2d(4, 8, kernel_size=(3, 5), stride=(2, 2), padding=(1, 1), dilation=(2, 2), "
            "groups=2, bias=False)",
        ),
        (
            Conv2d(3, 3, 3, padding="same", groups=3),
            "Conv2d(3, 3, kernel_size=(3, 3), stride=(1, 1), padding='same', groups=3)",
        ),
        (
            Conv2d(3, 3, 3, padding="valid"),
            "Conv2d(3, 3, kernel_size=(3, 3), stride=(1, 1), padding='valid')",
        ),
    ],
)
def test_repr_and_config_round_trip(layer, text):
    assert repr(layer) == text
    config = json.loads(json.dumps(layer.get_config()))
    clone = fastnn.layers.get("Conv2d")(**config)
    assert repr(clone) == repr(layer) and clone.get_config() == layer.get_config()
    clone.load_state_dict(layer.state_dict())
    x = np.random.default_rng(9).standard_normal((1, layer.in_channels, 6, 7))
    np.testing.assert_array_equal(clone.forward(x), layer.forward(x))
    assert set(layer.state_dict()) == {p for p in ("weight", "bias") if p in layer._params}


def test_torch_repr_matches():
    torch = pytest.importorskip("torch")
    for args, kw in (((3, 8, 3), {}), ((4, 8, (3, 5), 2, 1, 2, 2), dict(bias=False))):
        assert repr(Conv2d(*args, **kw)) == repr(torch.nn.Conv2d(*args, **kw))


def test_output_shape_and_pads():
    layer = Conv2d(1, 1, (4, 3), padding="same", dilation=(1, 2))
    assert layer.pads() == (1, 2, 2, 2)
    assert layer.output_shape((5, 1, 9, 8)) == (5, 1, 9, 8)
    assert Conv2d(1, 1, 3, 2, 1).output_shape((1, 1, 7, 6)) == (1, 1, 4, 3)
    assert Conv2d(1, 1, 3, padding="valid").pads() == (0, 0, 0, 0)


def test_zero_size_batch():
    """N = 0: an empty output (as torch.nn.Conv2d), and zero parameter gradients."""
    layer = Conv2d(2, 3, 3, padding=1, dtype=np.float64, rng=0)
    y = layer.forward(np.zeros((0, 2, 5, 5)), training=True)
    assert y.shape == (0, 3, 5, 5)
    assert layer.backward(y).shape == (0, 2, 5, 5)
    np.testing.assert_array_equal(layer.weight.grad, 0)
    np.testing.assert_array_equal(layer.bias.grad, 0)


@pytest.mark.parametrize(
    "make,exc,match",
    [
        (lambda: Conv2d(0, 4, 3), ValueError, "in_channels must be an integer >= 1, got 0"),
        (lambda: Conv2d(3, -4, 3), ValueError, "out_channels must be an integer >= 1, got -4"),
        (lambda: Conv2d(3, 4, 0), ValueError, "kernel_size must be an integer >= 1"),
        (lambda: Conv2d(3, 4, (3, -1)), ValueError, "kernel_size"),
        (lambda: Conv2d(3, 4, (3, 3, 3)), ValueError, "kernel_size"),
        (lambda: Conv2d(3, 4, 2.5), ValueError, "kernel_size"),
        (lambda: Conv2d(3, 4, True), ValueError, "kernel_size"),
        (lambda: Conv2d(3, 4, "3"), ValueError, "kernel_size"),
        (lambda: Conv2d(3, 4, None), ValueError, "kernel_size"),
        (lambda: Conv2d(3, 4, 3, stride=0), ValueError, "stride must be an integer >= 1"),
        (lambda: Conv2d(3, 4, 3, stride=(1, 0)), ValueError, "stride"),
        (lambda: Conv2d(3, 4, 3, dilation=0), ValueError, "dilation must be an integer >= 1"),
        (lambda: Conv2d(3, 4, 3, dilation=(2, -1)), ValueError, "dilation"),
        (lambda: Conv2d(3, 4, 3, padding=-1), ValueError, "padding must be an integer >= 0"),
        (lambda: Conv2d(3, 4, 3, padding=(1, 1, 1, 1)), ValueError, "padding"),
        (lambda: Conv2d(3, 4, 3, padding=False), ValueError, "padding"),
        (lambda: Conv2d(3, 4, 3, padding=1.0), ValueError, "padding"),
        (lambda: Conv2d(3, 4, 3, padding="full"), ValueError, "padding must be .*'full'"),
        (lambda: Conv2d(3, 4, 3, padding="SAME"), ValueError, "padding"),
        (lambda: Conv2d(3, 4, 3, 2, "same"), ValueError, 'padding="same" needs stride 1'),
        (lambda: Conv2d(3, 4, 3, groups=2), ValueError, r"groups=2 must divide in_channels \(3\)"),
        (lambda: Conv2d(4, 3, 3, groups=2), ValueError, r"out_channels \(3\)"),
        (lambda: Conv2d(4, 4, 3, groups=0), ValueError, "groups must be an integer >= 1"),
        (lambda: Conv2d(4, 4, 3, groups=True), ValueError, "groups"),
        (lambda: Conv2d(True, 4, 3), ValueError, "in_channels"),
        (lambda: Conv2d(3.0, 4, 3), ValueError, "in_channels"),
        (lambda: Conv2d("3", 4, 3), ValueError, "in_channels"),
        (lambda: Conv2d(None, 4, 3), ValueError, "in_channels"),
        (lambda: Conv2d(3, 4, 3, dtype=np.float16), TypeError, "dtype must be float32 or"),
        (lambda: Conv2d(3, 4, 3, dtype="int32"), TypeError, "dtype"),
        (lambda: Conv2d(3, 4, 3, init="magic"), ValueError, "unknown init 'magic'"),
        (lambda: Conv2d(3, 4, 3, rng="seed"), TypeError, "rng must be None"),
        (lambda: Conv2d(3, 4, 3, std=0.1), TypeError, "does not take the keyword"),
    ],
)
def test_construction_errors(make, exc, match):
    with pytest.raises(exc, match=match):
        make()


@pytest.mark.parametrize(
    "x,exc,match",
    [
        (np.zeros((2, 3, 8)), ValueError, r"x: Conv2d expects images of shape \(N, C, H, W\)"),
        (np.zeros((2, 3)), ValueError, r"images of shape \(N, C, H, W\), got shape \(2, 3\)"),
        (np.zeros((1, 2, 3, 8, 8)), ValueError, "images of shape"),
        (np.zeros((2, 4, 8, 8)), ValueError, r"x: Conv2d expects 3 channels, got shape"),
        (np.zeros((1, 3, 2, 8)), ValueError, "x: Conv2d needs a height of at least 3"),
        (np.zeros((1, 3, 8, 0)), ValueError, "x: Conv2d needs a width of at least 1"),
        (np.array([[[["a"]]]]), TypeError, "x must be numeric"),
        (np.zeros((1, 3, 8, 8), complex), TypeError, "x must be numeric"),
        (None, TypeError, "x"),
    ],
)
def test_forward_errors(x, exc, match):
    # a 3x3 kernel dilated to (3, 5) with padding (0, 2): height >= 3, width >= 1
    layer = Conv2d(3, 2, (3, 3), padding=(0, 2), dilation=(1, 2))
    with pytest.raises(exc, match=match):
        layer.forward(x)


def test_integer_input_is_converted():
    layer = Conv2d(1, 1, 2, rng=0)
    y = layer.forward(np.ones((1, 1, 3, 3), np.int64))
    assert y.dtype == np.float32 and y.shape == (1, 1, 2, 2)


def test_backward_before_training_forward():
    layer = Conv2d(1, 1, 2)
    layer.forward(np.zeros((1, 1, 3, 3)))
    with pytest.raises(RuntimeError, match="before a forward with training=True"):
        layer.backward(np.zeros((1, 1, 2, 2)))
