"""GEMM, float32, at MLP-shaped and square sizes in every transpose, beside NumPy's matmul."""

import numpy as np
import pytest

from fastnn import kernels

# (m, k, n): forward of 784-256-256-10 at batch 32/128/512, the backward's weight gradient
# (dW = dY^T X: k is the batch) and input gradient, and squares.
SHAPES = [
    (32, 784, 256),
    (128, 784, 256),
    (512, 784, 256),
    (128, 256, 256),
    (128, 256, 10),
    (256, 128, 784),
    (256, 512, 256),
    (10, 128, 256),
    (512, 512, 512),
    (1024, 1024, 1024),
]
TRANSPOSES = [(False, False), (False, True), (True, False), (True, True)]


def operands(m, k, n, ta, tb, dtype=np.float32):
    rng = np.random.default_rng(0)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    return a, b


@pytest.mark.parametrize("m,k,n", SHAPES, ids=lambda s: str(s))
@pytest.mark.parametrize("ta,tb", TRANSPOSES, ids=["NN", "NT", "TN", "TT"])
@pytest.mark.parametrize("lib", ["fastnn", "numpy"])
def test_gemm(benchmark, lib, m, k, n, ta, tb):
    a, b = operands(m, k, n, ta, tb)
    out = np.empty((m, n), np.float32)
    benchmark.group = f"gemm {m}x{k}x{n} {'T' if ta else 'N'}{'T' if tb else 'N'}"
    benchmark.extra_info.update(kind="gemm", lib=lib, gflop=2 * m * n * k / 1e9)
    if lib == "fastnn":
        benchmark(kernels.gemm, a, b, trans_a=ta, trans_b=tb, out=out)
    else:
        opa, opb = (a.T if ta else a), (b.T if tb else b)
        benchmark(np.matmul, opa, opb, out=out)
