"""Every kernel against its NumPy reference in fastnn.ops: shapes with 0/1-sized edges and
odd sizes, C/Fortran/transposed/strided/negative-stride layouts, both dtypes."""
import inspect

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import kernels
from fastnn import ops

from conftest import TOL, close

ACTS = kernels.ACTIVATIONS
KERNEL_NAMES = [n for n in kernels.__all__ if n not in
                ("ACTIVATIONS", "DenseStep", "info", "set_isa", "set_num_threads",
                 "get_num_threads", "fma_peak_gflops", "gemm_flop_count")]
# Every test here runs once per instruction-set path this CPU has (conftest.isa).
pytestmark = pytest.mark.usefixtures("isa")


@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_reference_has_identical_signature(name):
    assert hasattr(ops, name), f"fastnn.ops lacks {name}"
    kernel_sig = inspect.signature(getattr(kernels, name))
    ref_sig = inspect.signature(getattr(ops, name))
    assert str(kernel_sig) == str(ref_sig)


def layouts(rng, shape, dtype):
    """The same matrix in several memory layouts."""
    base = rng.standard_normal(shape).astype(dtype)
    big = rng.standard_normal((shape[0] * 2 + 1, shape[1] * 3 + 2)).astype(dtype)
    strided = big[1::2, 2::3][: shape[0], : shape[1]]
    strided[...] = base
    yield "c", base
    yield "fortran", np.asfortranarray(base)
    yield "strided", strided
    yield "negative", base[::-1, ::-1].copy()[::-1, ::-1]
    ro = base.copy()
    ro.flags.writeable = False
    yield "readonly", ro


GEMM_SHAPES = [(1, 1, 1), (0, 3, 4), (3, 0, 4), (3, 4, 0), (1, 7, 1), (7, 1, 9), (5, 13, 3),
               (17, 33, 65), (64, 64, 64), (65, 129, 31), (128, 784, 256), (31, 200, 300)]


@pytest.mark.parametrize("m,k,n", GEMM_SHAPES)
@pytest.mark.parametrize("trans_a", [False, True])
@pytest.mark.parametrize("trans_b", [False, True])
def test_gemm_shapes_and_transposes(m, k, n, trans_a, trans_b, dtype, rng):
    a = rng.standard_normal((k, m) if trans_a else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if trans_b else (k, n)).astype(dtype)
    got = kernels.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    want = ops.gemm(a, b, trans_a=trans_a, trans_b=trans_b)
    assert got.dtype == dtype and got.shape == (m, n)
    close(got, want, dtype, k=k)


@pytest.mark.parametrize("activation", ACTS)
@pytest.mark.parametrize("with_bias", [False, True])
def test_gemm_epilogue(activation, with_bias, dtype, rng):
    a = rng.standard_normal((37, 45)).astype(dtype)
    b = rng.standard_normal((29, 45)).astype(dtype)
    bias = rng.standard_normal(29).astype(dtype) if with_bias else None
    kw = dict(trans_b=True, bias=bias, activation=activation, negative_slope=0.07)
    close(kernels.gemm(a, b, **kw), ops.gemm(a, b, **kw), dtype, k=45)


def test_gemm_layouts(dtype, rng):
    m, k, n = 23, 31, 19
    a_all = list(layouts(rng, (m, k), dtype))
    b_all = list(layouts(rng, (k, n), dtype))
    want = ops.gemm(a_all[0][1], b_all[0][1])
    for _, a in a_all:
        for _, b in b_all:
            close(kernels.gemm(a, b), want, dtype, k=k)


def test_gemm_out_argument(dtype, rng):
    a = rng.standard_normal((8, 5)).astype(dtype)
    b = rng.standard_normal((5, 6)).astype(dtype)
    out = np.full((8, 6), np.nan, dtype)
    res = kernels.gemm(a, b, out=out)
    assert res is out
    close(out, a @ b, dtype, k=5)
    # a strided, transposed view as out
    big = np.zeros((6 * 2, 8 * 3), dtype)
    view = big[::2, ::3].T
    kernels.gemm(a, b, out=view)
    close(view, a @ b, dtype, k=5)
    assert np.count_nonzero(big) == np.count_nonzero(view)


@given(m=st.integers(0, 40), k=st.integers(0, 40), n=st.integers(0, 40),
       ta=st.booleans(), tb=st.booleans(), f64=st.booleans(), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=150, deadline=None)
def test_gemm_property(m, k, n, ta, tb, f64, seed):
    dtype = np.float64 if f64 else np.float32
    rng = np.random.default_rng(seed)
    a = rng.uniform(-2, 2, (k, m) if ta else (m, k)).astype(dtype)
    b = rng.uniform(-2, 2, (n, k) if tb else (k, n)).astype(dtype)
    close(kernels.gemm(a, b, trans_a=ta, trans_b=tb), ops.gemm(a, b, trans_a=ta, trans_b=tb),
          dtype, k=max(k, 1), scale=4)


def _max_error_ratio(got, want, dtype, k):
    rtol, atol = TOL[np.dtype(dtype)]
    grow = max(1.0, np.sqrt(k))
    return float(np.max(np.abs(got - want) / (atol * grow + rtol * grow * np.abs(want))))


def test_gemm_every_edge_tile(dtype):
    """Every (m, n) from 1 to 70 (every partial micro-tile and skinny-path boundary of
    every kernel) with a random k in 1..70, cycling through the four transposes, with and
    without a fused bias + ReLU; then sizes around the cache blocks."""
    rng = np.random.default_rng(7)
    cases = [(m, rng.integers(1, 71), n) for m in range(1, 71) for n in range(1, 71)]
    cases += [(m, k, n) for m in (71, 143, 144, 145, 289) for k in (255, 256, 257, 513)
              for n in (15, 16, 17, 33)]
    cases += [(7, 300, 4097), (145, 7, 130)]
    for i, (m, k, n) in enumerate(cases):
        ta, tb = bool(i & 1), bool(i & 2)
        a = rng.uniform(-1, 1, (k, m) if ta else (m, k)).astype(dtype)
        b = rng.uniform(-1, 1, (n, k) if tb else (k, n)).astype(dtype)
        kw = dict(trans_a=ta, trans_b=tb)
        if i % 3 == 0:
            kw.update(bias=rng.uniform(-1, 1, n).astype(dtype), activation="relu")
        got, want = kernels.gemm(a, b, **kw), ops.gemm(a, b, **kw)
        assert got.shape == (m, n)
        ratio = _max_error_ratio(got, want, dtype, k)
        assert ratio <= 1.0, f"m={m} k={k} n={n} {kw}: error {ratio:.2f}x the tolerance"


def test_gemm_transposed_tile(dtype):
    """x @ W^T with few rows of x and a deep K (W's rows read in place, the tile written
    back transposed): partial row groups of W and partial column panels of x^T, strided
    and transposed x, every fused activation with and without bias, and the sizes on both
    sides of its thresholds (depth, rows, padding of the last panel)."""
    rng = np.random.default_rng(11)
    cases = [(m, k, n) for m in (17, 24, 28, 31, 32) for k in (127, 128, 300)
             for n in (1, 7, 13, 70)]
    cases += [(m, k, n) for m in (1, 33, 48, 100, 127, 128, 129) for k in (511, 512, 784)
              for n in (5, 17, 37)]
    for i, (m, k, n) in enumerate(cases):
        x = rng.uniform(-1, 1, (k, m) if i % 4 == 1 else (m, k + 3)).astype(dtype)
        x = x.T if i % 4 == 1 else x[:, 2:k + 2]
        w = rng.uniform(-1, 1, (n, k)).astype(dtype)
        act = ACTS[i % len(ACTS)]
        bias = rng.uniform(-1, 1, n).astype(dtype) if i % 2 == 0 else None
        kw = dict(trans_b=True, bias=bias, activation=act, negative_slope=0.07)
        got, want = kernels.gemm(x, w, **kw), ops.gemm(x, w, **kw)
        ratio = _max_error_ratio(got, want, dtype, k)
        assert ratio <= 1.0, f"m={m} k={k} n={n} {act}: error {ratio:.2f}x the tolerance"


def test_gemm_row_tiling_never_changes_bits(dtype):
    """Row counts that the tall micro-tile divides badly are cut partly into the kernel
    set's shorter tiles (m = 32 is 6+6+6+6+4+4 on AVX2, 12+12+8 on AVX-512), so a row's
    tile depends on m: each prefix of A's rows, multiplied on its own, must give the bits
    of the same rows of the whole product. Both operands transposed and k < 128 keep
    every m on the packed path (no skinny kernel, no transposed tile)."""
    rng = np.random.default_rng(5)
    k, n, m_all = 100, 40, 50
    at = rng.uniform(-1, 1, (k, m_all)).astype(dtype)
    bt = rng.uniform(-1, 1, (n, k)).astype(dtype)
    kw = dict(trans_a=True, trans_b=True, bias=rng.uniform(-1, 1, n).astype(dtype),
              activation="tanh")
    whole = kernels.gemm(at, bt, **kw)
    close(whole, ops.gemm(at, bt, **kw), dtype, k=k)
    for m in range(1, m_all):
        np.testing.assert_array_equal(kernels.gemm(at[:, :m], bt, **kw), whole[:m],
                                      err_msg=f"first {m} rows")


ELEM_SHAPES = [(0, 5), (1, 1), (1, 17), (7, 3), (33, 65), (300, 300)]


@pytest.mark.parametrize("shape", ELEM_SHAPES)
@pytest.mark.parametrize("activation", ACTS)
def test_activation_forward(shape, activation, dtype, rng):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    for _, xv in layouts(rng, shape, dtype) if min(shape) > 0 else [("c", x)]:
        close(kernels.activation_forward(xv, activation, negative_slope=0.2),
              ops.activation_forward(xv, activation, negative_slope=0.2), dtype)


@pytest.mark.parametrize("shape", ELEM_SHAPES)
@pytest.mark.parametrize("activation", ACTS)
def test_activation_backward_and_bias_grad(shape, activation, dtype, rng):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    y = ops.activation_forward(x, activation, negative_slope=0.2)
    dy = rng.standard_normal(shape).astype(dtype)
    db, db_ref = np.empty(shape[1], dtype), np.empty(shape[1], dtype)
    got = kernels.activation_backward(dy, y, activation, negative_slope=0.2, bias_grad_out=db)
    want = ops.activation_backward(dy, y, activation, negative_slope=0.2, bias_grad_out=db_ref)
    close(got, want, dtype)
    close(db, db_ref, dtype, k=shape[0])


def test_activation_in_place(dtype, rng):
    x = rng.standard_normal((9, 11)).astype(dtype)
    want = ops.activation_forward(x, "tanh")
    assert kernels.activation_forward(x, "tanh", out=x) is x
    close(x, want, dtype)


@pytest.mark.parametrize("shape", ELEM_SHAPES)
def test_add_bias_column_sum_softmax(shape, dtype, rng):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    bias = rng.standard_normal(shape[1]).astype(dtype)
    for _, xv in layouts(rng, shape, dtype) if min(shape) > 0 else [("c", x)]:
        close(kernels.add_bias(xv, bias), ops.add_bias(xv, bias), dtype)
        close(kernels.column_sum(xv), ops.column_sum(xv), dtype, k=shape[0])
        close(kernels.softmax(xv), ops.softmax(xv), dtype)
        dy = rng.standard_normal(shape).astype(dtype)
        y = ops.softmax(xv)
        close(kernels.softmax_backward(dy, y), ops.softmax_backward(dy, y), dtype, k=shape[1])


@pytest.mark.parametrize("m,k", [(1, 1), (1, 10), (5, 3), (64, 10), (1000, 7), (3, 1000)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy(m, k, reduction, dtype, rng):
    x = (rng.standard_normal((m, k)) * 3).astype(dtype)
    labels = rng.integers(0, k, m)
    probs = rng.dirichlet(np.ones(k), m).astype(dtype)
    for target in (labels, probs, labels.astype(np.int32), labels.tolist()):
        l1, g1 = kernels.softmax_cross_entropy(x, target, reduction=reduction)
        l2, g2 = ops.softmax_cross_entropy(x, target, reduction=reduction)
        close(l1, l2, dtype, k=m)
        close(g1, g2, dtype)
        assert g1.dtype == dtype and isinstance(l1, float)


def test_softmax_cross_entropy_extreme_logits(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e30 if dtype == np.float64 else -1e30, 0.0, 1e30]], dtype)
    loss, grad = kernels.softmax_cross_entropy(x, [0, 2])
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (100, 1), (33, 65)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits(shape, reduction, dtype, rng):
    x = (rng.standard_normal(shape) * 6).astype(dtype)
    for t in (rng.integers(0, 2, shape), rng.uniform(0, 1, shape)):
        l1, g1 = kernels.bce_with_logits(x, t, reduction=reduction)
        l2, g2 = ops.bce_with_logits(x, t, reduction=reduction)
        close(l1, l2, dtype, k=x.size)
        close(g1, g2, dtype)
    loss, grad = kernels.bce_with_logits(np.array([[1e4, -1e4]], dtype), [[0, 1]])
    assert np.isfinite(loss) and loss == pytest.approx(1e4, rel=1e-6)


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (100, 1), (33, 65)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "half_sum"])
def test_mse(shape, reduction, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    t = rng.standard_normal(shape)
    l1, g1 = kernels.mse(x, t, reduction=reduction)
    l2, g2 = ops.mse(x, t, reduction=reduction)
    close(l1, l2, dtype, k=x.size)
    close(g1, g2, dtype)


@pytest.mark.parametrize("momentum,dampening,nesterov,wd", [
    (0.0, 0.0, False, 0.0), (0.0, 0.0, False, 0.1), (0.9, 0.0, False, 0.0),
    (0.9, 0.3, False, 0.01), (0.9, 0.0, True, 0.0), (0.5, 0.0, True, 0.2)])
def test_sgd_step(momentum, dampening, nesterov, wd, dtype, rng):
    p1 = rng.standard_normal((13, 7)).astype(dtype)
    p2 = p1.copy()
    b1, b2 = np.zeros_like(p1), np.zeros_like(p1)
    for step in range(5):
        g = rng.standard_normal(p1.shape).astype(dtype)
        kw = dict(lr=0.05, momentum=momentum, dampening=dampening, nesterov=nesterov,
                  weight_decay=wd, first_step=step == 0)
        kernels.sgd_step(p1, g, b1, **kw)
        ops.sgd_step(p2, g, b2, **kw)
    close(p1, p2, dtype, k=5)
    close(b1, b2, dtype, k=5)


def test_penalty(dtype, rng):
    w = rng.standard_normal((9, 4)).astype(dtype)
    g1, g2 = rng.standard_normal(w.shape).astype(dtype), None
    g2 = g1.copy()
    v1 = kernels.penalty(w, g1, l1=0.01, l2=0.2)
    v2 = ops.penalty(w, g2, l1=0.01, l2=0.2)
    close(v1, v2, dtype, k=w.size)
    close(g1, g2, dtype)


def test_inputs_are_never_modified(dtype, rng):
    a = rng.standard_normal((6, 5)).astype(dtype)
    b = rng.standard_normal((5, 4)).astype(dtype)
    keep_a, keep_b = a.copy(), b.copy()
    kernels.gemm(a, b, bias=np.ones(4, dtype), activation="relu")
    kernels.activation_forward(a, "sigmoid")
    kernels.softmax_cross_entropy(a, [0, 1, 2, 3, 4, 0])
    kernels.softmax(a)
    np.testing.assert_array_equal(a, keep_a)
    np.testing.assert_array_equal(b, keep_b)


def test_info():
    info = kernels.info()
    assert info["isa"] in ("generic", "avx2", "avx512")
    assert info["threads"] >= 1


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_kernels_accurate_over_the_whole_range(dtype):
    """softmax and sigmoid compute e^x (x <= 0) in vectorised arithmetic rather than libm:
    within a few ulps of float64/long double over the whole range, subnormal results
    included, with NaN propagating and -inf giving 0."""
    info = np.finfo(dtype)
    x = np.concatenate([-np.logspace(-30, np.log10(800), 100_001), -np.linspace(0, 120, 9973),
                        [0.0, -0.0, -1e30, -np.inf, np.nan]]).astype(dtype)
    xl = x.astype(np.longdouble)
    # Column 0 of a two-column softmax against 0 is e^x / (e^x + 1), the sigmoid of x.
    ref = np.exp(xl) / (np.exp(xl) + 1)
    for got in (kernels.softmax(np.stack([x, np.zeros_like(x)], axis=1))[:, 0],
                kernels.activation_forward(x, "sigmoid")):
        ok = np.isfinite(xl)
        err = np.abs(got[ok].astype(np.longdouble) - ref[ok])
        # 4 ulps of the result, or a subnormal ulp where the result is subnormal.
        bound = np.maximum(4 * info.eps * ref[ok], info.smallest_subnormal)
        assert np.all(err <= bound), float(np.max(err / bound))
        assert np.isnan(got[-1]) and got[-2] == 0 and got[-3] == 0
    s = kernels.activation_forward(np.array([np.inf, 1e30, 50.0], dtype), "sigmoid")
    np.testing.assert_array_equal(s, [1, 1, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_accurate_over_the_whole_range(dtype):
    """tanh is computed from the vectorised e^x (and an odd series near zero, where the
    quotient would cancel) like the GEMM epilogue's: within 4 ulps of long double over
    the whole range, odd, exact at +-0 and +-inf, NaN propagating."""
    info = np.finfo(dtype)
    mag = np.concatenate([np.logspace(-40, np.log10(40), 100_001), np.linspace(0, 1, 9973),
                          [0.29999, 0.3, 0.30001, 1e30]])
    x = np.concatenate([mag, -mag, [0.0, -0.0, np.inf, -np.inf, np.nan]]).astype(dtype)
    got = kernels.activation_forward(x, "tanh")
    ok = np.isfinite(x)
    ref = np.tanh(x[ok].astype(np.longdouble))
    err = np.abs(got[ok].astype(np.longdouble) - ref)
    bound = np.maximum(4 * info.eps * np.abs(ref), info.smallest_subnormal)
    assert np.all(err <= bound), float(np.max(err / bound))
    np.testing.assert_array_equal(got[ok][: len(mag)], -got[ok][len(mag): 2 * len(mag)])
    assert np.signbit(got[-4]) and not np.signbit(got[-5])
    np.testing.assert_array_equal(got[-3:-1], [1, -1])
    assert np.isnan(got[-1])
