"""CSR times dense, float32, at TF-IDF-like shapes (50,000 columns, 0.2% of them set: about
100 entries a row, uniformly spread), beside SciPy's products of the same matrices: the
first Dense layer's forward act(X @ W^T + b) (fastnn fuses the bias and ReLU, SciPy's
figure is the product alone) and its weight gradient X^T @ dZ (into a preallocated output;
SciPy allocates its own)."""

import numpy as np
import pytest

from fastnn import kernels

sp = pytest.importorskip("scipy.sparse")

N_COLS, DENSITY = 50_000, 0.002
CASES = [(200, 100), (200, 256), (2000, 100), (2000, 256)]  # (batch rows, units)


def operands(rows, units, dtype=np.float32):
    rng = np.random.default_rng(0)
    x = sp.random(rows, N_COLS, density=DENSITY, format="csr", dtype=dtype, random_state=rng)
    w_t = rng.standard_normal((N_COLS, units)).astype(dtype)  # the weight's transpose
    bias = rng.standard_normal(units).astype(dtype)
    dz = rng.standard_normal((rows, units)).astype(dtype)
    return x, w_t, bias, dz


@pytest.mark.parametrize("rows,units", CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("lib", ["fastnn", "scipy"])
def test_csr_matmul(benchmark, lib, rows, units):
    x, w_t, bias, _ = operands(rows, units)
    benchmark.group = f"csr @ dense {rows}x{N_COLS} nnz {x.nnz} units {units}"
    benchmark.extra_info.update(kind="sparse", lib=lib)
    if lib == "fastnn":
        out = np.empty((rows, units), np.float32)
        benchmark(
            kernels.csr_matmul, x.data, x.indices, x.indptr, w_t, bias=bias,
            activation="relu", out=out,
        )  # fmt: skip
    else:
        benchmark(x.__matmul__, w_t)


@pytest.mark.parametrize("rows,units", CASES, ids=lambda v: str(v))
@pytest.mark.parametrize("lib", ["fastnn", "scipy"])
def test_csr_t_matmul(benchmark, lib, rows, units):
    x, _, _, dz = operands(rows, units)
    benchmark.group = f"csr^T @ dense {rows}x{N_COLS} nnz {x.nnz} units {units}"
    benchmark.extra_info.update(kind="sparse", lib=lib)
    if lib == "fastnn":
        out = np.empty((N_COLS, units), np.float32)
        benchmark(kernels.csr_t_matmul, x.data, x.indices, x.indptr, dz, out=out)
    else:
        benchmark(x.T.__matmul__, dz)
