"""CSR times dense (kernels.csr_matmul, kernels.csr_t_matmul) against their NumPy twins in
fastnn.ops and against SciPy: 0 rows, empty rows, one column, units 1..70 (every remainder
of the vector width), unsorted and repeated column indices, int32 and int64 indices,
batches that are slices of a longer indptr, every activation with and without bias, both
dtypes, every instruction-set path; thread counts give the same bits; entries outside the
batch are never read; out is written fully; inputs are never modified."""

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fastnn import kernels, ops
from helpers import close

ACTS = kernels.ACTIVATIONS
INDEX_DTYPES = (np.int32, np.int64)
pytestmark = pytest.mark.usefixtures("isa")


def random_csr(rng, rows, n_cols, dtype, index_dtype, per_row=4, empty=0.2, before=0, after=0):
    """(data, indices, indptr) of `rows` rows: each row empty with probability `empty`, else
    up to 2 * per_row entries in random order with repeated columns; the batch sits between
    `before` and `after` rows of another matrix in the same arrays (indptr[0] > 0)."""
    total = before + rows + after
    counts = rng.integers(1, 2 * per_row + 1, size=total) if n_cols else np.zeros(total, int)
    counts[rng.random(total) < empty] = 0
    indptr = np.concatenate([[0], np.cumsum(counts)]).astype(index_dtype)
    nnz = int(indptr[-1])
    indices = rng.integers(0, max(n_cols, 1), size=nnz).astype(index_dtype)
    if nnz > 1 and n_cols > 1:  # make sure a repeat occurs
        indices[1] = indices[0]
    data = rng.standard_normal(nnz).astype(dtype)
    return data, indices, indptr[before : before + rows + 1]


def max_row_nnz(indptr):
    return int(np.diff(indptr).max()) if len(indptr) > 1 else 1


SHAPES = [  # rows, n_cols, units
    (0, 5, 3),
    (1, 1, 1),
    (3, 1, 7),
    (5, 9, 8),
    (7, 40, 9),
    (17, 300, 15),
    (6, 50, 16),
    (9, 60, 17),
    (33, 120, 31),
    (20, 70, 33),
    (64, 500, 64),
    (13, 90, 70),
]


@pytest.mark.parametrize("rows,n_cols,units", SHAPES)
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
def test_matmul_matches_twin(rows, n_cols, units, index_dtype, dtype, rng):
    data, indices, indptr = random_csr(rng, rows, n_cols, dtype, index_dtype, before=2, after=1)
    b = rng.standard_normal((n_cols, units)).astype(dtype)
    bias = rng.standard_normal(units).astype(dtype)
    k = max_row_nnz(indptr)
    for act in ACTS:
        for bb in (None, bias):
            got = kernels.csr_matmul(
                data, indices, indptr, b, bias=bb, activation=act, negative_slope=0.2
            )
            want = ops.csr_matmul(
                data, indices, indptr, b, bias=bb, activation=act, negative_slope=0.2
            )
            assert got.shape == (rows, units) and got.dtype == dtype
            close(got, want, dtype, k=k)


@pytest.mark.parametrize("rows,n_cols,units", SHAPES)
@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
def test_t_matmul_matches_twin(rows, n_cols, units, index_dtype, dtype, rng):
    data, indices, indptr = random_csr(rng, rows, n_cols, dtype, index_dtype, before=3)
    b = rng.standard_normal((rows, units)).astype(dtype)
    out = np.full((n_cols, units), np.nan, dtype)  # every element must be written
    got = kernels.csr_t_matmul(data, indices, indptr, b, out=out)
    want = ops.csr_t_matmul(data, indices, indptr, b, out=np.empty_like(out))
    assert got is out
    # A column's terms: its entries over all rows, at most nnz of them.
    close(got, want, dtype, k=max(1, int(indptr[-1] - indptr[0])))


@pytest.mark.parametrize("index_dtype", INDEX_DTYPES)
@pytest.mark.parametrize("units", [1, 7, 16, 37, 70])
def test_both_match_scipy(index_dtype, units, dtype, rng):
    sp = pytest.importorskip("scipy.sparse")
    data, indices, indptr = random_csr(rng, 40, 200, dtype, index_dtype, per_row=6)
    a = sp.csr_matrix((data, indices, indptr), shape=(40, 200))  # unsorted, repeated
    b = rng.standard_normal((200, units)).astype(dtype)
    close(kernels.csr_matmul(data, indices, indptr, b), a @ b, dtype, k=12)
    dz = rng.standard_normal((40, units)).astype(dtype)
    out = np.empty((200, units), dtype)
    close(kernels.csr_t_matmul(data, indices, indptr, dz, out=out), a.T @ dz, dtype, k=40)


def test_exact_on_small_integers(dtype, rng):
    # Integer-valued terms sum exactly in any order: the kernels and SciPy agree bit for bit.
    sp = pytest.importorskip("scipy.sparse")
    data, indices, indptr = random_csr(rng, 30, 50, dtype, np.int32, per_row=5)
    data = np.round(data * 4).astype(dtype)
    a = sp.csr_matrix((data, indices, indptr), shape=(30, 50))
    b = rng.integers(-8, 9, (50, 19)).astype(dtype)
    np.testing.assert_array_equal(kernels.csr_matmul(data, indices, indptr, b), a @ b)
    dz = rng.integers(-8, 9, (30, 19)).astype(dtype)
    out = np.empty((50, 19), dtype)
    np.testing.assert_array_equal(
        kernels.csr_t_matmul(data, indices, indptr, dz, out=out), a.T @ dz
    )


def test_batches_are_slices_of_indptr(dtype, rng):
    data, indices, indptr = random_csr(rng, 50, 80, dtype, np.int64)
    b = rng.standard_normal((80, 21)).astype(dtype)
    bias = rng.standard_normal(21).astype(dtype)
    whole = kernels.csr_matmul(data, indices, indptr, b, bias=bias, activation="tanh")
    parts = [
        kernels.csr_matmul(data, indices, indptr[s : e + 1], b, bias=bias, activation="tanh")
        for s, e in [(0, 7), (7, 8), (8, 8), (8, 31), (31, 50)]
    ]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_entries_outside_the_batch_are_never_read(dtype, rng):
    # The rows before and after the batch hold NaN values and indices far out of range:
    # neither the checks nor the kernels look at them.
    data, indices, indptr = random_csr(rng, 6, 10, dtype, np.int64, before=4, after=3)
    s, e = int(indptr[0]), int(indptr[-1])
    data[:s], data[e:] = np.nan, np.nan
    indices[:s], indices[e:] = -(2**40), 2**40
    b = rng.standard_normal((10, 5)).astype(dtype)
    got = kernels.csr_matmul(data, indices, indptr, b)
    assert np.isfinite(got).all()
    close(got, ops.csr_matmul(data, indices, indptr, b), dtype, k=8)
    out = np.empty((10, 5), dtype)
    dz = rng.standard_normal((6, 5)).astype(dtype)
    assert np.isfinite(kernels.csr_t_matmul(data, indices, indptr, dz, out=out)).all()


def test_only_stored_entries_count(dtype):
    # b's row 1 is infinite but no entry is in column 1: a dense product would give NaN.
    data = np.array([2.0, 3.0], dtype)
    indices = np.array([0, 2], np.int32)
    indptr = np.array([0, 1, 2], np.int32)
    b = np.array([[1.0, 2.0], [np.inf, np.inf], [4.0, 5.0]], dtype)
    got = kernels.csr_matmul(data, indices, indptr, b, activation="sigmoid")
    np.testing.assert_array_equal(
        got, ops.csr_matmul(data, indices, indptr, b, activation="sigmoid")
    )
    assert np.isfinite(got).all()
    out = np.full((3, 2), np.nan, dtype)
    kernels.csr_t_matmul(data, indices, indptr, np.array([[1, 1], [1, 2]], dtype), out=out)
    np.testing.assert_array_equal(out, np.array([[2, 2], [0, 0], [3, 6]], dtype))


def test_empty_and_zero_sized(dtype):
    i32 = np.int32
    # Rows without entries give act(bias); no rows give (0, units).
    got = kernels.csr_matmul(
        np.ones(5, dtype),
        np.zeros(5, i32),
        np.array([5, 5, 5], i32),
        np.ones((4, 3), dtype),
        bias=np.array([-1.0, 0.0, 2.0], dtype),
        activation="relu",
    )
    np.testing.assert_array_equal(got, np.array([[0, 0, 2], [0, 0, 2]], dtype))
    empty = kernels.csr_matmul(
        np.zeros(0, dtype), np.zeros(0, i32), np.zeros(1, i32), np.ones((4, 3), dtype)
    )
    assert empty.shape == (0, 3)
    assert kernels.csr_matmul(
        np.ones(2, dtype), np.array([0, 1], i32), np.array([0, 2], i32), np.ones((2, 0), dtype)
    ).shape == (1, 0)
    out = np.full((4, 3), np.nan, dtype)
    kernels.csr_t_matmul(
        np.zeros(0, dtype), np.zeros(0, i32), np.array([0, 0], i32), np.ones((1, 3), dtype), out=out
    )
    np.testing.assert_array_equal(out, np.zeros((4, 3), dtype))
    zero_cols = np.empty((0, 3), dtype)
    kernels.csr_t_matmul(
        np.zeros(0, dtype),
        np.zeros(0, i32),
        np.array([0, 0], i32),
        np.ones((1, 3), dtype),
        out=zero_cols,
    )


def test_out_is_written_fully_and_returned(dtype, rng):
    data, indices, indptr = random_csr(rng, 9, 30, dtype, np.int32, empty=0.4)
    b = rng.standard_normal((30, 11)).astype(dtype)
    out = np.full((9, 11), np.nan, dtype)
    got = kernels.csr_matmul(data, indices, indptr, b, out=out)
    assert got is out
    close(out, ops.csr_matmul(data, indices, indptr, b), dtype, k=8)


def test_inputs_are_never_modified(dtype, rng):
    data, indices, indptr = random_csr(rng, 12, 25, dtype, np.int64)
    b = rng.standard_normal((25, 6)).astype(dtype)
    dz = rng.standard_normal((12, 6)).astype(dtype)
    bias = rng.standard_normal(6).astype(dtype)
    arrays = (data, indices, indptr, b, dz, bias)
    keep = [a.copy() for a in arrays]
    for a in arrays:
        a.flags.writeable = False
    kernels.csr_matmul(data, indices, indptr, b, bias=bias, activation="leaky_relu")
    kernels.csr_t_matmul(data, indices, indptr, dz, out=np.empty((25, 6), dtype))
    for a, k in zip(arrays, keep):
        np.testing.assert_array_equal(a, k)


def test_other_layouts_give_the_same_bits(dtype, rng):
    # Non-contiguous, byte-swapped or list inputs are converted; the bits do not change.
    data, indices, indptr = random_csr(rng, 10, 20, dtype, np.int64)
    b = rng.standard_normal((20, 9)).astype(dtype)
    want = kernels.csr_matmul(data, indices, indptr, b)
    wide = np.zeros((2, len(indices)), np.int64)
    wide[0] = indices
    got = kernels.csr_matmul(
        data.astype(data.dtype.newbyteorder("S")),
        wide[0, :],
        indptr.tolist(),
        np.asfortranarray(b),
    )
    np.testing.assert_array_equal(got, want)
    strided = np.repeat(indices, 2)[::2]
    np.testing.assert_array_equal(kernels.csr_matmul(data, strided, indptr, b), want)
    swapped = indices.astype(indices.dtype.newbyteorder("S"))
    np.testing.assert_array_equal(kernels.csr_matmul(data, swapped, indptr, b), want)


@pytest.mark.parametrize(
    "rows,n_cols,units",
    [(300, 2000, 70), (301, 2000, 100), (64, 2000, 256), (1000, 2000, 9), (2000, 3, 40)],
    ids=lambda v: str(v),
)
def test_thread_counts_give_identical_bits(rows, n_cols, units, dtype, rng):
    # Big enough to run on several threads: csr_matmul splits its output rows, csr_t_matmul
    # the rows of out (fewer of them than parts in the last case), never a sum.
    data, indices, indptr = random_csr(rng, rows, n_cols, dtype, np.int32, per_row=30, before=5)
    b = rng.standard_normal((n_cols, units)).astype(dtype)
    bias = rng.standard_normal(units).astype(dtype)
    dz = rng.standard_normal((rows, units)).astype(dtype)
    before = kernels.get_num_threads()
    results = []
    try:
        for n in (1, 2, 3):
            kernels.set_num_threads(n)
            y = kernels.csr_matmul(data, indices, indptr, b, bias=bias, activation="relu")
            g = kernels.csr_t_matmul(
                data, indices, indptr, dz, out=np.empty((n_cols, units), dtype)
            )
            results.append((y, g))
    finally:
        kernels.set_num_threads(before)
    for y, g in results[1:]:
        np.testing.assert_array_equal(y, results[0][0])
        np.testing.assert_array_equal(g, results[0][1])
    want = ops.csr_matmul(data, indices, indptr, b, bias=bias, activation="relu")
    close(results[0][0], want, dtype, k=60)
    want = ops.csr_t_matmul(data, indices, indptr, dz, out=np.empty((n_cols, units), dtype))
    close(results[0][1], want, dtype, k=int(indptr[-1] - indptr[0]))


def test_concurrent_calls_from_python_threads(dtype, rng):
    # The kernels release the GIL; calls made while another holds the pool run on their own
    # thread with their own scratch, and give the results of serial calls.
    data, indices, indptr = random_csr(rng, 400, 3000, dtype, np.int64, per_row=20)
    b = rng.standard_normal((3000, 48)).astype(dtype)
    dz = rng.standard_normal((400, 48)).astype(dtype)

    def both(_):
        y = kernels.csr_matmul(data, indices, indptr, b, activation="tanh")
        g = kernels.csr_t_matmul(data, indices, indptr, dz, out=np.empty((3000, 48), dtype))
        return y, g

    want = both(None)
    with ThreadPoolExecutor(4) as pool:
        for y, g in pool.map(both, range(8)):
            np.testing.assert_array_equal(y, want[0])
            np.testing.assert_array_equal(g, want[1])
