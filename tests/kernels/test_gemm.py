"""GEMM (kernels.gemm) against its NumPy twin in fastnn.ops: shapes with 0/1-sized edges and
odd sizes, every transpose, the fused bias + activation epilogue, C/Fortran/strided/
negative-stride/read-only layouts, ``out=``, every partial micro-tile, the transposed tile,
and row tiling that never changes a row's bits; both dtypes."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fastnn import kernels, ops
from helpers import TOL, close, layouts

ACTS = kernels.ACTIVATIONS
# Every test here runs once per instruction-set path this CPU has (conftest.isa).
pytestmark = pytest.mark.usefixtures("isa")


GEMM_SHAPES = [
    (1, 1, 1),
    (0, 3, 4),
    (3, 0, 4),
    (3, 4, 0),
    (1, 7, 1),
    (7, 1, 9),
    (5, 13, 3),
    (17, 33, 65),
    (64, 64, 64),
    (65, 129, 31),
    (128, 784, 256),
    (31, 200, 300),
    # On AVX-512 the 32-column (float32) and 16-column (float64) tile runs only where the
    # AVX2 tile would pad the columns as much (csrc/gemm_impl.h, pick_cfg): 30 and 94
    # columns take it in both types, with partial edge tiles, as A^T's 30 rows do in the
    # transposed tile.
    (23, 45, 30),
    (30, 300, 94),
]


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


@given(
    m=st.integers(0, 40),
    k=st.integers(0, 40),
    n=st.integers(0, 40),
    ta=st.booleans(),
    tb=st.booleans(),
    f64=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
@settings(max_examples=150, deadline=None)
def test_gemm_property(m, k, n, ta, tb, f64, seed):
    dtype = np.float64 if f64 else np.float32
    rng = np.random.default_rng(seed)
    a = rng.uniform(-2, 2, (k, m) if ta else (m, k)).astype(dtype)
    b = rng.uniform(-2, 2, (n, k) if tb else (k, n)).astype(dtype)
    close(
        kernels.gemm(a, b, trans_a=ta, trans_b=tb),
        ops.gemm(a, b, trans_a=ta, trans_b=tb),
        dtype,
        k=max(k, 1),
        scale=4,
    )


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
    cases += [
        (m, k, n)
        for m in (71, 143, 144, 145, 289)
        for k in (255, 256, 257, 513)
        for n in (15, 16, 17, 33)
    ]
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
    cases = [
        (m, k, n) for m in (17, 24, 28, 31, 32) for k in (127, 128, 300) for n in (1, 7, 13, 70)
    ]
    cases += [
        (m, k, n)
        for m in (1, 33, 48, 100, 127, 128, 129)
        for k in (511, 512, 784)
        for n in (5, 17, 37)
    ]
    for i, (m, k, n) in enumerate(cases):
        x = rng.uniform(-1, 1, (k, m) if i % 4 == 1 else (m, k + 3)).astype(dtype)
        x = x.T if i % 4 == 1 else x[:, 2 : k + 2]
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
    kw = dict(
        trans_a=True, trans_b=True, bias=rng.uniform(-1, 1, n).astype(dtype), activation="tanh"
    )
    whole = kernels.gemm(at, bt, **kw)
    close(whole, ops.gemm(at, bt, **kw), dtype, k=k)
    for m in range(1, m_all):
        np.testing.assert_array_equal(
            kernels.gemm(at[:, :m], bt, **kw), whole[:m], err_msg=f"first {m} rows"
        )
