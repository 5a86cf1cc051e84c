"""The pooling kernels against fastnn.ops: max pooling (values, argmax, first maximum on
ties, the first NaN) and average pooling (count_include_pad both ways), forward and backward,
over a table of geometries (odd sizes, one-pixel outputs, non-square kernels 1-7, strides
1-3, paddings up to half the kernel) in both dtypes and on every instruction-set path;
bit-identical for any thread count; a bad-argument table."""

import itertools

import numpy as np
import pytest

from fastnn import kernels, ops
from helpers import DTYPES, close

# Every test here runs once per instruction-set path this CPU has (conftest.isa).
pytestmark = pytest.mark.usefixtures("isa")


def _geometries():
    """(N, C, H, W, kernel, stride, padding): every kernel 1-7 square and non-square, with
    strides 1-3 and paddings up to half the kernel, on images just fitting the window
    (one-pixel outputs) and odd sizes."""
    rng = np.random.default_rng(0)
    out = []
    for kh, kw in itertools.product(range(1, 8), repeat=2):
        if (kh + kw) % 3 and kh != kw:
            continue  # a third of the non-square pairs keeps the table quick
        sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        ph, pw = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
        # the smallest image of a one-pixel output, and an odd one
        out.append((1, 2, max(1, kh - 2 * ph), max(1, kw - 2 * pw), (kh, kw), (sh, sw), (ph, pw)))
        out.append(
            (2, 3, kh + 2 * int(rng.integers(0, 4)) + 1, kw + 5, (kh, kw), (sh, sw), (ph, pw))
        )
    return out


GEOMETRIES = _geometries()


def _ids(g):
    n, c, h, w, k, s, p = g
    return f"{n}x{c}x{h}x{w}-k{k[0]}{k[1]}-s{s[0]}{s[1]}-p{p[0]}{p[1]}"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[_ids(g) for g in GEOMETRIES])
def test_maxpool_matches_twin(dtype, geometry):
    n, c, h, w, k, s, p = geometry
    rng = np.random.default_rng(1)
    # Few distinct values, so that ties are frequent.
    x = rng.integers(-3, 4, (n, c, h, w)).astype(dtype)
    keep = x.copy()
    y, idx = kernels.maxpool2d_forward(x, k, s, p)
    yo, io = ops.maxpool2d_forward(x, k, s, p)
    np.testing.assert_array_equal(y, yo)
    np.testing.assert_array_equal(idx, io)
    assert y.dtype == dtype and idx.dtype == np.int64
    dy = rng.standard_normal(y.shape).astype(dtype)
    close(
        kernels.maxpool2d_backward(dy, idx, x.shape),
        ops.maxpool2d_backward(dy, idx, x.shape),
        dtype,
        k=k[0] * k[1],
    )
    np.testing.assert_array_equal(x, keep)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("include", (True, False), ids=("include_pad", "exclude_pad"))
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=[_ids(g) for g in GEOMETRIES])
def test_avgpool_matches_twin(dtype, include, geometry):
    n, c, h, w, k, s, p = geometry
    rng = np.random.default_rng(2)
    x = rng.standard_normal((n, c, h, w)).astype(dtype)
    y = kernels.avgpool2d_forward(x, k, s, p, include)
    close(y, ops.avgpool2d_forward(x, k, s, p, include), dtype, k=k[0] * k[1])
    dy = rng.standard_normal(y.shape).astype(dtype)
    close(
        kernels.avgpool2d_backward(dy, x.shape, k, s, p, include),
        ops.avgpool2d_backward(dy, x.shape, k, s, p, include),
        dtype,
        k=k[0] * k[1],
    )


def test_maxpool_ties_nan_and_infinity():
    x = np.array([[[[1.0, 1.0, np.nan], [2.0, 2.0, np.nan], [-np.inf, -np.inf, 0.0]]]])
    y, idx = kernels.maxpool2d_forward(x, 2, 1, 0)
    # the first NaN wins its window; elsewhere the first maximum
    np.testing.assert_array_equal(idx[0, 0], [[3, 2], [3, 5]])
    assert np.isnan(y[0, 0]).tolist() == [[False, True], [False, True]]
    assert y[0, 0, 0, 0] == y[0, 0, 1, 0] == 2.0
    # a window of -inf with padding picks its first real position, not the padding
    y, idx = kernels.maxpool2d_forward(np.full((1, 1, 2, 2), -np.inf), 3, 1, 1)
    np.testing.assert_array_equal(idx, 0)
    assert np.all(y == -np.inf)
    for a, b in zip(kernels.maxpool2d_forward(x, 2, 1, 0), ops.maxpool2d_forward(x, 2, 1, 0)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool_2x2_stride_2_ties_nan_and_signed_zeros(dtype):
    """The 2x2 stride-2 windows' vectorised rows (planes without a NaN) and the general path
    (planes with one) keep the twin's rules: the first maximum, the first NaN, -0.0 before
    0.0 kept as it comes."""
    rng = np.random.default_rng(3)
    x = rng.choice(np.array([-1.0, -0.0, 0.0, 2.0, np.inf, -np.inf]), (2, 3, 9, 35))
    x = x.astype(dtype)
    x[0, 1, 4, 7] = np.nan
    x[1, 2, 0, 0] = x[1, 2, 1, 1] = np.nan
    y, idx = kernels.maxpool2d_forward(x, 2, 2, 0)
    yo, io = ops.maxpool2d_forward(x, 2, 2, 0)
    np.testing.assert_array_equal(idx, io)
    np.testing.assert_array_equal(y, yo)
    np.testing.assert_array_equal(np.signbit(y), np.signbit(yo))


def test_overlapping_windows_accumulate_in_the_backward():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 5.0
    y, idx = kernels.maxpool2d_forward(x, 2, 1, 0)
    np.testing.assert_array_equal(idx, 4)
    dx = kernels.maxpool2d_backward(np.ones_like(y), idx, x.shape)
    assert dx[0, 0, 1, 1] == 4.0 and dx.sum() == 4.0


@pytest.mark.parametrize("dtype", DTYPES)
def test_layouts_and_out(dtype):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((3, 4, 9, 8)).astype(dtype)
    want_y, want_i = kernels.maxpool2d_forward(base, 3, 2, 1)
    want_a = kernels.avgpool2d_forward(base, 3, 2, 1)
    big = np.zeros((3, 4, 18, 8), dtype)
    big[:, :, ::2] = base
    for view in (
        np.asfortranarray(base),
        big[:, :, ::2],
        base.transpose(0, 1, 3, 2).copy().transpose(0, 1, 3, 2),
    ):
        y, i = kernels.maxpool2d_forward(view, 3, 2, 1)
        np.testing.assert_array_equal(y, want_y)
        np.testing.assert_array_equal(i, want_i)
        np.testing.assert_array_equal(kernels.avgpool2d_forward(view, 3, 2, 1), want_a)
    out, idx_out = np.empty_like(want_y), np.empty_like(want_i)
    y, i = kernels.maxpool2d_forward(base, 3, 2, 1, out=out, argmax_out=idx_out)
    assert y is out and i is idx_out
    np.testing.assert_array_equal(out, want_y)
    dx = np.empty_like(base)
    assert kernels.avgpool2d_backward(want_a, base.shape, 3, 2, 1, out=dx) is dx
    assert kernels.maxpool2d_backward(want_y, want_i, base.shape, out=dx) is dx


def test_results_do_not_depend_on_the_thread_count():
    x = np.random.default_rng(4).standard_normal((16, 32, 33, 31))
    n = kernels.get_num_threads()
    runs = []
    try:
        for threads in (1, 2, 4):
            kernels.set_num_threads(threads)
            y, idx = kernels.maxpool2d_forward(x, 3, 2, 1)
            a = kernels.avgpool2d_forward(x, (3, 2), (1, 2), (1, 0), False)
            runs.append(
                (
                    y,
                    idx,
                    kernels.maxpool2d_backward(y, idx, x.shape),
                    a,
                    kernels.avgpool2d_backward(a, x.shape, (3, 2), (1, 2), (1, 0), False),
                )
            )
    finally:
        kernels.set_num_threads(n)
    for run in runs[1:]:
        for got, want in zip(run, runs[0]):
            np.testing.assert_array_equal(got, want)


f64 = np.float64
X = np.zeros((2, 3, 6, 5))
Y, IDX = ops.maxpool2d_forward(X, 2, 2, 0)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: kernels.maxpool2d_forward(np.zeros((3, 6, 5)), 2, 2, 0), ValueError, "4-D"),
        (lambda: kernels.maxpool2d_forward(X.astype(np.int32), 2, 2, 0), TypeError, "dtype"),
        (lambda: kernels.maxpool2d_forward(X, 0, 1, 0), ValueError, "kernel_size"),
        (lambda: kernels.maxpool2d_forward(X, (2, -1), 1, 0), ValueError, "kernel_size"),
        (lambda: kernels.maxpool2d_forward(X, (2, 2, 2), 1, 0), ValueError, "kernel_size"),
        (lambda: kernels.maxpool2d_forward(X, 2.0, 1, 0), ValueError, "kernel_size"),
        (lambda: kernels.maxpool2d_forward(X, True, 1, 0), ValueError, "kernel_size"),
        (lambda: kernels.maxpool2d_forward(X, 2, 0, 0), ValueError, "stride"),
        (lambda: kernels.maxpool2d_forward(X, 2, 1, -1), ValueError, "padding"),
        (lambda: kernels.maxpool2d_forward(X, 3, 1, 2), ValueError, "half the kernel"),
        (lambda: kernels.avgpool2d_forward(X, (3, 2), 1, (1, 2)), ValueError, "half the kernel"),
        (lambda: kernels.maxpool2d_forward(X, 7, 1, 0), ValueError, "empty"),
        (lambda: kernels.avgpool2d_forward(X, (2, 6), 1, 0), ValueError, "empty"),
        (lambda: kernels.maxpool2d_forward(np.zeros((1, 1, 0, 3)), 1, 1, 0), ValueError, "height"),
        (
            lambda: kernels.maxpool2d_forward(X, 2, 2, 0, out=np.zeros((2, 3, 3, 3))),
            ValueError,
            "out has shape",
        ),
        (
            lambda: kernels.maxpool2d_forward(X, 2, 2, 0, argmax_out=np.zeros(Y.shape)),
            TypeError,
            "argmax_out",
        ),
        (lambda: kernels.maxpool2d_forward(X, 2, 2, 0, out=X), ValueError, "out"),
        (lambda: kernels.maxpool2d_backward(Y, IDX, (2, 3, 6)), ValueError, "input_shape"),
        (lambda: kernels.maxpool2d_backward(Y, IDX, None), TypeError, "input_shape"),
        (lambda: kernels.maxpool2d_backward(Y, IDX, (2, 4, 6, 5)), ValueError, "channels"),
        (lambda: kernels.maxpool2d_backward(Y, IDX[:, :, :2], X.shape), ValueError, "argmax"),
        (lambda: kernels.maxpool2d_backward(Y, IDX + 30, X.shape), ValueError, r"\[0, 30\)"),
        (lambda: kernels.maxpool2d_backward(Y, IDX - 1, X.shape), ValueError, "argmax"),
        (lambda: kernels.maxpool2d_backward(Y, IDX * 1.0, X.shape), TypeError, "argmax"),
        (
            lambda: kernels.maxpool2d_backward(Y.astype(np.float16), IDX, X.shape),
            TypeError,
            "dtype",
        ),
        (
            lambda: kernels.avgpool2d_backward(Y, (2, 3, 8, 5), 2, 2, 0),
            ValueError,
            r"dy has shape \(2, 3, 3, 2\), expected \(2, 3, 4, 2\)",
        ),
        (lambda: kernels.avgpool2d_backward(Y, (2, 3, 6, 9), 2, 2, 0), ValueError, "dy has shape"),
        (lambda: kernels.avgpool2d_backward(Y[0], X.shape, 2, 2, 0), ValueError, "4-D"),
        (lambda: kernels.avgpool2d_backward(Y, X.shape, 2, 2, 2), ValueError, "padding"),
    ],
)
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call()
