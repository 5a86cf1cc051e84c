"""The convolution kernels against fastnn.ops: conv2d_forward and conv2d_backward over a table
of geometries (kernels 1-7 and non-square, strides 1-3, uneven paddings (top, bottom, left,
right), dilation 1-2, groups 1, 2 and depthwise, odd sizes, one-pixel outputs, the 1x1
pointwise path, batches of 1 and more than one chunk of 16 images, channel counts that make
the C code slice the output rows), every fused activation, both dtypes and every
instruction-set path; input layouts, out= buffers, input_grad=False / bias_grad=False,
bit-identical results for 1, 2 and 4 threads, and a bad-argument table."""

import itertools

import numpy as np
import pytest

from fastnn import _kernels, kernels, ops
from helpers import DTYPES, close

# Every test here runs once per instruction-set path this CPU has (conftest.isa).
pytestmark = pytest.mark.usefixtures("isa")

ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh")


def _geometries():
    """(N, C, O, H, W, kernel, stride, padding (t, b, l, r), dilation, groups)."""
    rng = np.random.default_rng(0)
    out = []
    for kh, kw in itertools.product(range(1, 8), repeat=2):
        if (kh + kw) % 3 and kh != kw:
            continue  # a third of the non-square pairs keeps the table quick
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        dh, dw = int(rng.integers(1, 3)), int(rng.integers(1, 3))
        pad = tuple(int(v) for v in rng.integers(0, 3, 4))
        groups = int(rng.choice([1, 2]))
        c, o = 2 * groups, 3 * groups
        span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
        # the smallest padded image of a one-pixel output, and an odd one
        h = max(1, span_h - pad[0] - pad[1])
        w = max(1, span_w - pad[2] - pad[3])
        out.append((1, c, o, h, w, (kh, kw), (sh, sw), pad, (dh, dw), groups))
        h = max(1, span_h - pad[0] - pad[1]) + 2 * int(rng.integers(0, 4)) + 1
        out.append((2, c, o, h, span_w + 4, (kh, kw), (sh, sw), pad, (dh, dw), groups))
    out += [
        # pointwise (the C code's fast path), and 1x1 kernels that are not: stride, padding
        (3, 5, 4, 7, 9, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),
        (2, 4, 6, 5, 3, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 2),
        (2, 4, 6, 7, 6, (1, 1), (2, 1), (0, 0, 0, 0), (1, 1), 1),
        (2, 4, 6, 5, 5, (1, 1), (1, 1), (1, 0, 0, 2), (1, 1), 1),
        # depthwise, with and without a channel multiplier
        (2, 6, 6, 9, 8, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 6),
        (2, 4, 8, 7, 7, (3, 5), (2, 1), (0, 2, 1, 2), (2, 1), 4),
        # "same" padding of an even kernel: one more at the bottom and the right
        (2, 3, 4, 6, 7, (4, 2), (1, 1), (1, 2, 0, 1), (1, 1), 1),
        # padding larger than the kernel: whole rows and columns of the output are the bias
        (1, 2, 3, 3, 2, (2, 2), (1, 1), (3, 0, 0, 4), (1, 1), 1),
        # more than one chunk of 16 images in the backward, and a batch of 17
        (33, 2, 3, 5, 6, (3, 2), (1, 2), (1, 0, 1, 1), (1, 1), 1),
        (17, 4, 4, 6, 5, (2, 3), (2, 1), (0, 1, 2, 0), (2, 1), 2),
        # at stride 1, 8 or more input channels a group and an output no smaller than the
        # input, the input gradient is a convolution of dz: dilation, an even kernel, padding
        # past the kernel's reach, a padded 1x1, channel counts no tile divides
        (2, 8, 5, 6, 7, (3, 3), (1, 1), (2, 2, 2, 2), (2, 2), 1),
        (2, 9, 4, 5, 6, (4, 2), (1, 1), (1, 2, 0, 1), (1, 1), 1),
        (1, 12, 3, 4, 5, (3, 3), (1, 1), (2, 1, 0, 3), (1, 1), 1),
        (2, 20, 6, 5, 5, (1, 1), (1, 1), (1, 1, 1, 1), (1, 1), 2),
        (3, 17, 19, 7, 9, (5, 3), (1, 1), (2, 2, 1, 1), (1, 1), 1),
        # 26 input and 30 output channels: products the AVX-512 tile takes in both types
        # (where the AVX2 tile pads the columns less, 16 channels say, it takes that one:
        # csrc/gemm_impl.h, pick_cfg)
        (2, 26, 30, 5, 6, (3, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),
        # more than CONV_SLICE_BYTES (4 MiB) of patches an image: the output rows are cut into
        # slices (the first in float64, the last in both types), output rows of 40 and of
        # 15, the input gradient by rows below 16 (csrc/conv_impl.h, F(col2im_rows))
        (2, 64, 8, 12, 40, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1),
        (1, 96, 6, 9, 36, (3, 7), (1, 1), (1, 1, 3, 3), (1, 1), 2),
        (1, 512, 4, 12, 18, (4, 4), (1, 1), (0, 0, 0, 0), (1, 1), 1),
    ]
    return out


GEOMETRIES = _geometries()


@pytest.fixture(params=["im2col", "implicit"], autouse=True)
def patch_path(request):
    """Every test here runs with the patches copied out (im2col) and packed from the image
    inside the GEMM, whatever the default rule (from 64 taps on) would pick for its shape."""
    before = _kernels._set_conv_implicit_min_k(2**62 if request.param == "im2col" else 0)
    yield request.param
    _kernels._set_conv_implicit_min_k(before)


def _ids(g):
    n, c, o, h, w, k, s, p, d, gr = g
    pads = "".join(map(str, p))
    return f"{n}x{c}x{h}x{w}-o{o}-k{k[0]}{k[1]}-s{s[0]}{s[1]}-p{pads}-d{d[0]}{d[1]}-g{gr}"


def _case(g, dtype, seed=0):
    n, c, o, h, w, k, s, p, d, groups = g
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    wt = rng.standard_normal((o, c // groups, *k)).astype(dtype)
    b = rng.standard_normal(o).astype(dtype)
    geo = dict(stride=s, padding=p, dilation=d, groups=groups)
    return x, wt, b, geo


def _reductions(x, wt, y):
    """The lengths of the forward's, the input gradient's and the weight gradient's sums."""
    k_fwd = wt.shape[1] * wt.shape[2] * wt.shape[3]
    k_dx = wt.shape[0] * wt.shape[2] * wt.shape[3]
    k_dw = y.shape[0] * y.shape[2] * y.shape[3]
    return k_fwd, k_dx, k_dw


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[_ids(g) for g in GEOMETRIES])
def test_matches_twin(dtype, geometry):
    x, wt, b, geo = _case(geometry, dtype)
    keep = (x.copy(), wt.copy(), b.copy())
    y = kernels.conv2d_forward(x, wt, b, **geo)
    want = ops.conv2d_forward(x, wt, b, **geo)
    assert y.shape == want.shape and y.dtype == dtype
    k_fwd, k_dx, k_dw = _reductions(x, wt, y)
    close(y, want, dtype, k=k_fwd, scale=np.sqrt(k_fwd))
    dy = np.random.default_rng(5).standard_normal(y.shape).astype(dtype)
    dx, dw, db = kernels.conv2d_backward(dy, x, wt, **geo)
    ex, ew, eb = ops.conv2d_backward(dy, x, wt, **geo)
    close(dx, ex, dtype, k=k_dx, scale=np.sqrt(k_dx))
    close(dw, ew, dtype, k=k_dw, scale=np.sqrt(k_dw))
    close(db, eb, dtype, k=k_dw, scale=np.sqrt(k_dw))
    assert dx.dtype == dw.dtype == db.dtype == dtype
    for a, k in zip((x, wt, b), keep):
        np.testing.assert_array_equal(a, k)


# A few geometries for the cross products with activations and layouts.
SMALL = [
    GEOMETRIES[2],
    (2, 4, 6, 7, 9, (3, 3), (2, 1), (1, 0, 2, 1), (1, 2), 2),
    (3, 5, 4, 7, 9, (1, 1), (1, 1), (0, 0, 0, 0), (1, 1), 1),  # pointwise
    (18, 3, 4, 5, 6, (2, 3), (1, 1), (1, 1, 1, 1), (1, 1), 1),  # two chunks
    (1, 64, 4, 6, 40, (5, 5), (1, 1), (2, 2, 2, 2), (1, 1), 1),
    # 1600 x 800 patches (5 MB in float32) go in two slices of output rows
    (1, 64, 4, 12, 104, (5, 5), (1, 1), (0, 0, 0, 0), (1, 1), 1),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", SMALL, ids=[_ids(g) for g in SMALL])
def test_kept_patches(dtype, geometry):
    """patches_out holds what the twin's patches are, exactly (copies), and a backward that
    reads them gives the bits of one that rebuilds them; where the kernel forms no patches
    (pointwise, or packed from the image) passing a buffer is an error."""
    x, wt, b, geo = _case(geometry, dtype)
    n, _, oh, ow = ops.conv2d_forward(x, wt, b, **geo).shape
    shape = (n, geo["groups"], wt[0].size, oh * ow)
    if kernels.conv2d_patches_shape(x, wt, **geo) is None:
        buffer = np.zeros(shape, dtype)
        with pytest.raises(ValueError, match="patches_out must be None for this convolution"):
            kernels.conv2d_forward(x, wt, b, patches_out=buffer, **geo)
        dy = np.ones((n, wt.shape[0], oh, ow), dtype)
        with pytest.raises(ValueError, match="patches must be None for this convolution"):
            kernels.conv2d_backward(dy, x, wt, patches=buffer, **geo)
        assert not buffer.any()
        return
    assert kernels.conv2d_patches_shape(x, wt, **geo) == shape
    kept, want = np.full(shape, 7, dtype), np.full(shape, 7, dtype)
    y = kernels.conv2d_forward(x, wt, b, activation="relu", patches_out=kept, **geo)
    ops.conv2d_forward(x, wt, b, activation="relu", patches_out=want, **geo)
    np.testing.assert_array_equal(kept, want)
    np.testing.assert_array_equal(y, kernels.conv2d_forward(x, wt, b, activation="relu", **geo))
    dy = np.random.default_rng(5).standard_normal(y.shape).astype(dtype)
    common = dict(activation="relu", output=y, **geo)
    for a, e in zip(
        kernels.conv2d_backward(dy, x, wt, patches=kept, **common),
        kernels.conv2d_backward(dy, x, wt, **common),
    ):
        np.testing.assert_array_equal(a, e)
    with pytest.raises(ValueError, match="patches must have shape"):
        kernels.conv2d_backward(dy, x, wt, patches=kept[:, :, :1], **common)


@pytest.mark.parametrize("patch_path", ["default"], indirect=False)
def test_patches_form_by_default(patch_path):
    """By default a convolution with few taps copies its patches out (and can keep them for
    the backward), one with many packs them from the image, a pointwise one reads x itself,
    and one whose strides skip most of the image copies its patches out whatever its taps.
    Output channels in whole 16s (full GEMM tiles) lower "many" from 64 taps to 16. At
    stride 1 with at least twice as many taps as output channels the copies are runs of the
    padded image, rebuilt in the backward rather than kept."""
    x = np.zeros((2, 64, 26, 26), np.float32)

    def shape(channels, out, k, **geo):
        weight = np.zeros((out, channels, k, k), np.float32)
        return kernels.conv2d_patches_shape(x[:, :channels], weight, **geo)

    assert shape(1, 32, 3) == (2, 1, 9, 576)
    assert shape(32, 64, 3) is None
    assert shape(1, 16, 5) is None  # 25 taps, 16 channels
    assert shape(2, 32, 3) is None  # 18 taps, 32 channels
    assert shape(1, 6, 5) is None  # 25 taps, 6 channels: runs of the image
    assert shape(1, 6, 5, stride=(2, 1)) == (2, 1, 25, 242)
    assert shape(1, 13, 5) == (2, 1, 25, 484)
    assert shape(2, 24, 3) == (2, 1, 18, 576)
    assert shape(1, 16, 3) == (2, 1, 9, 576)
    assert shape(64, 8, 1) is None
    assert shape(64, 8, 1, stride=(3, 3)) == (2, 1, 64, 81)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("geometry", SMALL, ids=[_ids(g) for g in SMALL])
def test_fused_activations(dtype, activation, geometry):
    x, wt, b, geo = _case(geometry, dtype, seed=1)
    y = kernels.conv2d_forward(x, wt, b, activation=activation, negative_slope=0.2, **geo)
    want = ops.conv2d_forward(x, wt, b, activation=activation, negative_slope=0.2, **geo)
    k_fwd, k_dx, k_dw = _reductions(x, wt, y)
    close(y, want, dtype, k=k_fwd, scale=np.sqrt(k_fwd))
    dy = np.random.default_rng(6).standard_normal(y.shape).astype(dtype)
    dy_keep, y_keep = dy.copy(), y.copy()
    got = kernels.conv2d_backward(
        dy, x, wt, activation=activation, negative_slope=0.2, output=y, **geo
    )
    exp = ops.conv2d_backward(dy, x, wt, activation=activation, negative_slope=0.2, output=y, **geo)
    for g, e, k in zip(got, exp, (k_dx, k_dw, k_dw)):
        close(g, e, dtype, k=k, scale=np.sqrt(k))
    np.testing.assert_array_equal(dy, dy_keep)
    np.testing.assert_array_equal(y, y_keep)
    if activation == "identity":
        # the fused derivative of identity needs no output: the same numbers without it
        for g, e in zip(got, kernels.conv2d_backward(dy, x, wt, **geo)):
            np.testing.assert_array_equal(g, e)


@pytest.mark.parametrize("dtype", DTYPES)
def test_no_bias_and_partial_gradients(dtype):
    g = SMALL[1]
    x, wt, _, geo = _case(g, dtype, seed=2)
    y = kernels.conv2d_forward(x, wt, None, **geo)
    close(y, ops.conv2d_forward(x, wt, None, **geo), dtype, k=wt[0].size, scale=3)
    dy = np.random.default_rng(7).standard_normal(y.shape).astype(dtype)
    full = kernels.conv2d_backward(dy, x, wt, **geo)
    dx, dw, db = kernels.conv2d_backward(dy, x, wt, input_grad=False, **geo)
    assert dx is None and db is not None
    np.testing.assert_array_equal(dw, full[1])
    np.testing.assert_array_equal(db, full[2])
    dx, dw, db = kernels.conv2d_backward(dy, x, wt, bias_grad=False, **geo)
    assert db is None
    np.testing.assert_array_equal(dx, full[0])
    np.testing.assert_array_equal(dw, full[1])
    dx, dw, db = kernels.conv2d_backward(dy, x, wt, input_grad=False, bias_grad=False, **geo)
    assert dx is None and db is None
    np.testing.assert_array_equal(dw, full[1])
    for got, want in zip(
        ops.conv2d_backward(dy, x, wt, input_grad=False, bias_grad=False, **geo), (None, dw, None)
    ):
        assert (got is None) == (want is None)


def _views(a):
    """The same values in other layouts: Fortran, a strided view, negative strides,
    read-only."""
    yield "fortran", np.asfortranarray(a)
    big = np.zeros(tuple(2 * s + 1 for s in a.shape), a.dtype)
    view = big[tuple(slice(1, 1 + 2 * s, 2) for s in a.shape)]
    view[...] = a
    yield "strided", view
    flip = (slice(None), slice(None), slice(None, None, -1), slice(None, None, -1))
    yield "negative", np.ascontiguousarray(a[flip])[flip]
    ro = a.copy()
    ro.flags.writeable = False
    yield "readonly", ro


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_give_the_contiguous_result(dtype):
    x, wt, b, geo = _case(SMALL[1], dtype, seed=3)
    y = kernels.conv2d_forward(x, wt, b, activation="tanh", **geo)
    dy = np.random.default_rng(8).standard_normal(y.shape).astype(dtype)
    want = kernels.conv2d_backward(dy, x, wt, activation="tanh", output=y, **geo)
    for (name, vx), (_, vw), (_, vb), (_, vdy), (_, vy) in zip(
        _views(x), _views(wt), _views(b[None, None, None, :]), _views(dy), _views(y)
    ):
        keep = [a.copy() for a in (vx, vw, vdy, vy)]
        vb = vb[0, 0, 0]
        np.testing.assert_array_equal(
            kernels.conv2d_forward(vx, vw, vb, activation="tanh", **geo), y, err_msg=name
        )
        got = kernels.conv2d_backward(vdy, vx, vw, activation="tanh", output=vy, **geo)
        for g, e in zip(got, want):
            np.testing.assert_array_equal(g, e, err_msg=name)
        for a, k in zip((vx, vw, vdy, vy), keep):
            np.testing.assert_array_equal(a, k, err_msg=name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_out_buffers(dtype):
    x, wt, b, geo = _case(SMALL[3], dtype, seed=4)
    want_y = kernels.conv2d_forward(x, wt, b, activation="relu", **geo)
    out = np.full_like(want_y, np.nan)
    assert kernels.conv2d_forward(x, wt, b, activation="relu", out=out, **geo) is out
    np.testing.assert_array_equal(out, want_y)
    dy = np.random.default_rng(9).standard_normal(want_y.shape).astype(dtype)
    want = kernels.conv2d_backward(dy, x, wt, activation="relu", output=want_y, **geo)
    # buffers full of NaN: every entry is overwritten, none accumulated onto
    bufs = [np.full(a.shape, np.nan, dtype) for a in want]
    got = kernels.conv2d_backward(
        dy,
        x,
        wt,
        activation="relu",
        output=want_y,
        out=bufs[0],
        weight_grad_out=bufs[1],
        bias_grad_out=bufs[2],
        **geo,
    )
    for g, buf, w in zip(got, bufs, want):
        assert g is buf
        np.testing.assert_array_equal(buf, w)


@pytest.mark.parametrize("dtype", DTYPES)
def test_zero_size_batch(dtype):
    """N = 0, as torch.nn.Conv2d: an empty output, zero weight and bias gradients."""
    x = np.zeros((0, 2, 5, 5), dtype)
    wt = np.ones((3, 2, 3, 3), dtype)
    y = kernels.conv2d_forward(x, wt, np.ones(3, dtype), padding=(1, 1, 1, 1))
    assert y.shape == (0, 3, 5, 5)
    dx, dw, db = kernels.conv2d_backward(
        y,
        x,
        wt,
        padding=(1, 1, 1, 1),
        weight_grad_out=np.full(wt.shape, np.nan, dtype),
        bias_grad_out=np.full(3, np.nan, dtype),
    )
    assert dx.shape == x.shape
    np.testing.assert_array_equal(dw, 0)
    np.testing.assert_array_equal(db, 0)
    # empty images whose padding holds the window: every output is the bias, as the twin
    # computes it (torch refuses such an input; nothing here reads outside it)
    x = np.zeros((2, 4, 0, 0), dtype)
    wt = np.ones((4, 2, 3, 2), dtype)
    b = np.arange(4, dtype=dtype)
    geo = dict(padding=(2, 2, 2, 2), groups=2)
    y = kernels.conv2d_forward(x, wt, b, **geo)
    np.testing.assert_array_equal(y, ops.conv2d_forward(x, wt, b, **geo))
    for got, want in zip(
        kernels.conv2d_backward(y, x, wt, **geo), ops.conv2d_backward(y, x, wt, **geo)
    ):
        np.testing.assert_array_equal(got, want)


def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(10)
    cases = [
        # 37 images: three chunks of the weight gradient, the last one short
        ((37, 8, 12, 11), (16, 8, 3, 3), dict(padding=(1, 1, 1, 1))),
        ((20, 6, 10, 10), (6, 3, 3, 2), dict(stride=(2, 1), groups=2, dilation=(1, 2))),
        ((18, 32, 8, 8), (16, 32, 1, 1), {}),  # pointwise
        ((4, 64, 10, 40), (8, 64, 5, 5), dict(padding=(2, 2, 2, 2))),  # sliced rows
        # fewer images than threads: the implicit forward splits each image's pixels
        ((1, 16, 40, 37), (16, 16, 3, 3), dict(padding=(1, 1, 1, 1))),
        ((3, 16, 33, 30), (8, 16, 3, 3), dict(stride=(1, 2))),
    ]
    n = kernels.get_num_threads()
    try:
        for xs, ws, geo in cases:
            x, wt = rng.standard_normal(xs), rng.standard_normal(ws)
            b = rng.standard_normal(ws[0])
            runs = []
            for threads in (1, 2, 4):
                kernels.set_num_threads(threads)
                y = kernels.conv2d_forward(x, wt, b, activation="tanh", **geo)
                runs.append(
                    (y, *kernels.conv2d_backward(y, x, wt, activation="tanh", output=y, **geo))
                )
            for run in runs[1:]:
                for got, want in zip(run, runs[0]):
                    np.testing.assert_array_equal(got, want)
    finally:
        kernels.set_num_threads(n)


def test_nan_propagates():
    x = np.ones((1, 1, 4, 4))
    x[0, 0, 1, 1] = np.nan
    y = kernels.conv2d_forward(x, np.ones((1, 1, 2, 2)), activation="relu")
    assert np.isnan(y[0, 0, :2, :2]).all() and np.isfinite(y[0, 0, 2:]).all()
    assert np.isfinite(y[0, 0, :, 2:]).all()
    # a NaN in the last column reaches only the weight gradient of the taps that read it
    # (the patches copied as runs of the image pass through that column on every row)
    x = np.ones((1, 1, 4, 4))
    x[0, 0, 1, 3] = np.nan
    _, dw, _ = kernels.conv2d_backward(np.ones((1, 1, 3, 3)), x, np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(np.isnan(dw[0, 0]), [[False, True], [False, True]])


f32, f64 = np.float32, np.float64
X = np.zeros((2, 4, 6, 5))
W = np.zeros((4, 2, 3, 2))  # groups=2 fits X; groups=1 does not
Y = ops.conv2d_forward(X, W, groups=2)


def fwd(**kw):
    args = {"x": X, "weight": W, "groups": 2, **kw}
    return lambda: kernels.conv2d_forward(**args)


def bwd(**kw):
    args = {"dy": Y, "x": X, "weight": W, "groups": 2, **kw}
    return lambda: kernels.conv2d_backward(**args)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (fwd(x=X[0]), ValueError, r"x must be 4-D"),
        (fwd(x=X[None]), ValueError, r"x must be 4-D"),
        (fwd(weight=W[0]), ValueError, r"weight must be 4-D"),
        (fwd(x=X.astype(np.int32)), TypeError, "x must have dtype float32 or float64"),
        (fwd(x=X.astype(np.float16)), TypeError, "x must have dtype"),
        (fwd(weight=W.astype(f32)), TypeError, "weight has dtype float32, expected float64"),
        (
            lambda: kernels.conv2d_forward(X, W, np.zeros(4, f32), groups=2),
            TypeError,
            "bias has dtype",
        ),
        (
            lambda: kernels.conv2d_forward(X, W, np.zeros(3), groups=2),
            ValueError,
            r"bias must have shape \(4,\)",
        ),
        (
            lambda: kernels.conv2d_forward(X, W, np.zeros((4, 1)), groups=2),
            ValueError,
            "bias must be 1-D",
        ),
        (fwd(x="abc"), TypeError, "x"),
        (fwd(weight=None), TypeError, "weight"),
        (fwd(groups=1), ValueError, r"weight must have shape \(O, 4, kh, kw\)"),
        (
            fwd(weight=np.zeros((3, 2, 3, 2))),
            ValueError,
            r"groups=2 must divide .* output channels \(3\)",
        ),
        (fwd(groups=4), ValueError, r"weight must have shape \(O, 1, kh, kw\)"),
        (fwd(groups=3), ValueError, r"groups=3 must divide the input channels \(4\)"),
        (fwd(weight=np.zeros((4, 1, 3, 2)), groups=2), ValueError, "weight must have shape"),
        (fwd(weight=np.zeros((4, 2, 0, 2))), ValueError, "weight must have shape"),
        (fwd(weight=np.zeros((0, 2, 3, 2))), ValueError, r"weight must have shape|groups"),
        (fwd(groups=0), ValueError, "groups must be an integer >= 1"),
        (fwd(groups=-2), ValueError, "groups must be an integer >= 1"),
        (fwd(groups=True), ValueError, "groups must be an integer >= 1"),
        (fwd(groups=2.0), ValueError, "groups must be an integer >= 1"),
        (fwd(groups=None), ValueError, "groups"),
        (fwd(stride=(0, 1)), ValueError, r"stride must be 2 integers in \[1, 2\*\*31 - 1\]"),
        (fwd(stride=(1, -1)), ValueError, "stride"),
        (fwd(stride=1), ValueError, "stride"),
        (fwd(stride=(1, 1, 1)), ValueError, "stride"),
        (fwd(stride=(True, 1)), ValueError, "stride"),
        (fwd(stride=(1.0, 1)), ValueError, "stride"),
        (fwd(stride=(2**31, 1)), ValueError, "stride"),
        (fwd(stride="12"), ValueError, "stride"),
        (fwd(dilation=(0, 1)), ValueError, "dilation"),
        (fwd(dilation=(1, -2)), ValueError, "dilation"),
        (fwd(dilation=(1, np.bool_(True))), ValueError, "dilation"),
        (fwd(padding=(0, 0, 0, -1)), ValueError, r"padding \(top, bottom, left, right\)"),
        (fwd(padding=(1, 1)), ValueError, r"padding \(top, bottom, left, right\) must be 4"),
        (fwd(padding=1), ValueError, "padding"),
        (fwd(padding=(0, 0, False, 0)), ValueError, "padding"),
        (fwd(padding=(0, 2**31, 0, 0)), ValueError, "padding"),
        (fwd(padding=(0, 0, 0, None)), ValueError, "padding"),
        (fwd(x=np.zeros((2, 4, 2, 5))), ValueError, r"smaller than the dilated kernel \(3, 2\)"),
        (fwd(dilation=(3, 1)), ValueError, r"smaller than the dilated kernel \(7, 2\)"),
        (fwd(x=np.zeros((2, 4, 6, 0))), ValueError, "smaller than the dilated kernel"),
        (
            fwd(padding=(2**31 - 1, 2**31 - 1, 0, 0)),
            ValueError,
            "output of .* pixels is too large",
        ),
        (
            lambda: kernels.conv2d_forward(
                np.broadcast_to(np.float32(0), (2**15,) * 4), np.zeros((1, 2**15, 1, 1), f32)
            ),
            (MemoryError, ValueError),
            None,
        ),
        (fwd(activation="gelu"), ValueError, "activation"),
        (fwd(activation=None), (ValueError, TypeError), "activation"),
        (fwd(negative_slope="a"), TypeError, "negative_slope"),
        (fwd(negative_slope=True), TypeError, "negative_slope"),
        (fwd(out=np.zeros((2, 3, 4, 4))), ValueError, r"out has shape \(2, 3, 4, 4\), expected"),
        (fwd(out=np.zeros(Y.shape, f32)), TypeError, "out"),
        (fwd(out=np.zeros(Y.shape, np.int64)), TypeError, "out"),
        (fwd(out=np.zeros((2, 4, 4, 8))[..., ::2]), ValueError, "out must be C-contiguous"),
        (fwd(out=np.zeros(Y.shape)[::-1]), ValueError, "out must be C-contiguous"),
        (fwd(out=[[0.0]]), TypeError, "out must be a numpy.ndarray"),
        (bwd(dy=Y[:, :2]), ValueError, r"dy must have the output's shape \(2, 4, 4, 4\)"),
        (bwd(dy=Y[0]), ValueError, "dy must be 4-D"),
        (bwd(dy=Y.astype(f32)), TypeError, "dy has dtype float32, expected float64"),
        (bwd(x=X.astype(f32)), TypeError, "weight has dtype float64, expected float32"),
        (bwd(activation="relu"), ValueError, r"activation='relu' needs the forward's output"),
        (bwd(activation="tanh", output=Y[:, :1]), ValueError, r"output must have shape"),
        (bwd(activation="tanh", output=Y.astype(f32)), TypeError, "output has dtype"),
        (bwd(out=np.zeros((2, 4, 6, 4))), ValueError, "out"),
        (bwd(weight_grad_out=np.zeros((4, 2, 3, 3))), ValueError, "weight_grad_out"),
        (bwd(weight_grad_out=np.zeros(W.shape, f32)), TypeError, "weight_grad_out"),
        (bwd(bias_grad_out=np.zeros(3)), ValueError, "bias_grad_out"),
        (bwd(groups=1), ValueError, "weight must have shape"),
        (bwd(stride=(0, 0)), ValueError, "stride"),
    ],
)
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def _overlap_cases():
    """(name, call) pairs whose output buffer shares memory with an input."""
    x, w = np.zeros((2, 4, 6, 5)), np.zeros((4, 2, 3, 2))
    y = ops.conv2d_forward(x, w, groups=2)
    pool = np.zeros(x.size + w.size + y.size)
    xs = pool[: x.size].reshape(x.shape)
    ws = pool[x.size : x.size + w.size].reshape(w.shape)
    ys = pool[x.size - 1 : x.size - 1 + y.size].reshape(y.shape)  # one element of x shared
    dw_buf = np.zeros_like(w)
    return [
        ("out-x", lambda: kernels.conv2d_forward(xs, w, out=ys, groups=2), "out overlaps"),
        (
            "out-weight",
            lambda: kernels.conv2d_forward(
                x, ws, out=pool[x.size + w.size - 1 :][: y.size].reshape(y.shape), groups=2
            ),
            "out overlaps",
        ),
        (
            "dx-dy",
            lambda: kernels.conv2d_backward(ys, x, w, out=xs, groups=2),
            "out overlaps",
        ),
        (
            "dx-output",
            lambda: kernels.conv2d_backward(
                y, x, w, activation="tanh", output=ys, out=xs, groups=2
            ),
            "out overlaps",
        ),
        (
            "dw-x",
            lambda: kernels.conv2d_backward(
                y, xs, w, weight_grad_out=pool[x.size - 1 :][: w.size].reshape(w.shape), groups=2
            ),
            "weight_grad_out overlaps",
        ),
        (
            "dw-dx",
            lambda: kernels.conv2d_backward(
                y, x, w, out=xs, weight_grad_out=pool[: w.size].reshape(w.shape), groups=2
            ),
            "weight_grad_out overlaps",
        ),
        (
            "db-dw",
            lambda: kernels.conv2d_backward(
                y, x, w, weight_grad_out=dw_buf, bias_grad_out=dw_buf.reshape(-1)[:4], groups=2
            ),
            "bias_grad_out overlaps",
        ),
    ]


OVERLAPS = _overlap_cases()


@pytest.mark.parametrize("call,match", [c[1:] for c in OVERLAPS], ids=[c[0] for c in OVERLAPS])
def test_outputs_overlapping_inputs(call, match):
    with pytest.raises(ValueError, match=match):
        call()
