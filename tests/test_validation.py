"""Checks at the public boundary of the Python floor (fastnn/_validation.py): bad
constructor arguments and bad user data raise ValueError/TypeError naming the argument;
valid data in an unusual layout, dtype or a memmap gives the contiguous result; names are
looked up by one get() per family, with one error form. (The kernel floor's checks:
tests/kernels/test_arguments.py; the exhaustive probe tables: tests/test_hostile_inputs.py.)"""

import re

import numpy as np
import pytest

import fastnn
from fastnn._validation import as_sparse_rows

f32 = np.float32


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda m: m.forward(np.ones((2, 5))), ValueError, "expects 4 features"),
        (lambda m: m.forward(np.ones(4)), ValueError, "X must be 2-D"),
        (lambda m: m.forward(np.array([["a"] * 4])), TypeError, "numeric"),
        (lambda m: m.forward(np.ones((2, 4), complex)), TypeError, "numeric"),
        (
            lambda m: m.fit(
                np.ones((3, 4)),
                [0, 1],
                loss=fastnn.SoftmaxCrossEntropy(),
                optimizer=fastnn.optim.SGD(m, lr=0.1),
            ),
            ValueError,
            "y has 2 samples",
        ),
        (
            lambda m: m.fit(
                np.ones((3, 4)),
                [0, 1, 2],
                loss=fastnn.SoftmaxCrossEntropy(),
                optimizer=fastnn.optim.SGD(m, lr=0.1),
                batch_size=0,
            ),
            ValueError,
            "batch_size",
        ),
        (
            lambda m: m.fit(
                np.ones((3, 4)),
                [0, 1, 9],
                loss=fastnn.SoftmaxCrossEntropy(),
                optimizer=fastnn.optim.SGD(m, lr=0.1),
            ),
            ValueError,
            r"\[0, 3\)",
        ),
        (lambda m: m.backward(np.ones((2, 3))), RuntimeError, "before a forward"),
    ],
)
def test_model_bad_input(call, exc, match):
    model = fastnn.Sequential(fastnn.Dense(4, 3), fastnn.ReLU())
    with pytest.raises(exc, match=match):
        call(model)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: fastnn.Dense(0, 3), "in_features"),
        (lambda: fastnn.Dense(3, 2.5), "out_features"),
        (lambda: fastnn.Dense(3, 2, init="magic"), "unknown init 'magic'"),
        (lambda: fastnn.Dense(3, 2, l2=-1), "l2"),
        (lambda: fastnn.Dense(3, 2, dtype=np.int32), "dtype"),
        (lambda: fastnn.LeakyReLU("x"), "negative_slope"),
        (lambda: fastnn.MSELoss("avg"), "reduction"),
        (lambda: fastnn.Sequential(fastnn.Dense(2, 2), "relu"), "layer 1"),
    ],
)
def test_constructor_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_unusual_layouts_equal_contiguous(rng):
    model = fastnn.Sequential(fastnn.Dense(6, 5), fastnn.Sigmoid(), fastnn.Dense(5, 2))
    X = rng.standard_normal((9, 6)).astype(f32)
    want = model(X)
    ro = X.copy()
    ro.flags.writeable = False
    big = np.zeros((18, 12), f32)
    big[::2, ::2] = X
    for variant in (
        np.asfortranarray(X),
        X[::-1][::-1],
        big[::2, ::2],
        ro,
        X.tolist(),
        X.astype(np.float64),
    ):
        # A layout may take another GEMM path whose sums run in another order.
        np.testing.assert_allclose(model(variant), want, rtol=1e-5, atol=1e-6)


def test_memmap_input(tmp_path, rng):
    X = rng.standard_normal((50, 6)).astype(f32)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=f32, shape=X.shape)
    mm[...] = X
    mm.flush()
    ro = np.load(tmp_path / "x.npy", mmap_mode="r")
    model = fastnn.Sequential(fastnn.Dense(6, 3))
    np.testing.assert_allclose(model(ro), model(X))


# ---- looking names up: one get() per family, one error form ------------------------------

#: family -> (its get, {name: what it returns}, a name it does not have, names its error lists)
LOOKUPS = {
    "init": (
        fastnn.init.get,
        {"he_uniform": fastnn.init.he_uniform, "zeros": fastnn.init.zeros},
        "He_Uniform",
        ["normal", "xavier_uniform", "lecun_normal", "zeros"],
    ),
    "optimizer": (
        fastnn.optim.get,
        {
            "adam": fastnn.optim.Adam,
            "AdamW": fastnn.optim.AdamW,
            "sgd": fastnn.optim.SGD,
            "RMS-prop": fastnn.optim.RMSprop,
        },
        "Optimizer",
        ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"],
    ),
    "activation": (
        fastnn.layers.get_activation,
        {
            "relu": fastnn.ReLU,
            "leaky_relu": fastnn.LeakyReLU,
            "Tanh": fastnn.Tanh,
            "SIGMOID": fastnn.Sigmoid,
            "identity": fastnn.Identity,
        },
        "softmax",
        ["Identity", "ReLU", "LeakyReLU", "Sigmoid", "Tanh"],
    ),
    "layer class": (
        fastnn.layers.get,
        {
            "Dense": fastnn.Dense,
            "BatchNorm1d": fastnn.BatchNorm1d,
            "Standardize": fastnn.Standardize,
        },
        "dense",
        ["Dense", "Maxout", "Dropout", "Softmax"],
    ),
}


@pytest.mark.parametrize("family", sorted(LOOKUPS))
def test_each_family_looks_names_up_with_one_get(family):
    get, found, unknown, listed = LOOKUPS[family]
    for name, expected in found.items():
        assert get(name) is expected, name
    for bad in (unknown, None, ["relu"], ""):
        with pytest.raises(
            ValueError, match=f"unknown {family} {re.escape(repr(bad))}; expected one of "
        ) as info:
            get(bad)
        assert all(name in str(info.value) for name in listed), str(info.value)


def test_sparse_rows_views_and_gathers():
    sp = pytest.importorskip("scipy.sparse")
    X = sp.random(30, 12, density=0.3, format="csr", random_state=0)
    X.indices = X.indices.astype(np.int64)
    X.indptr = X.indptr.astype(np.int64)
    rows = as_sparse_rows(X, np.float64, "X")
    assert rows.data is X.data and rows.indices is X.indices  # CSR of the dtype: no copy

    def dense(r):
        s = slice(int(r.indptr[0]), int(r.indptr[-1]))
        local = sp.csr_matrix((r.data[s], r.indices[s], r.indptr - r.indptr[0]), shape=r.shape)
        return local.toarray()

    view = rows[5:17]
    assert np.shares_memory(view.indptr, rows.indptr) and view.shape == (12, 12)
    np.testing.assert_array_equal(dense(view), X.toarray()[5:17])
    idx = np.array([29, 0, 7, 7, 3])
    np.testing.assert_array_equal(dense(rows[idx]), X.toarray()[idx])
    assert rows[np.array([], np.int64)].shape == (0, 12)
    with pytest.raises(IndexError, match=r"in \[0, 30\)"):
        rows[np.array([30])]
    with pytest.raises(TypeError, match="1-D integer array"):
        rows[3]
    single = as_sparse_rows(X.tocsc(), np.float32, "X")
    assert single.data.dtype == np.float32  # SciPy picks the index dtype of a conversion
    np.testing.assert_array_equal(dense(single), X.toarray().astype(np.float32))
