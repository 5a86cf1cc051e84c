import os

import numpy as np
import pytest

DTYPES = (np.float32, np.float64)

# One tolerance table for every kernel-vs-reference comparison: (rtol, atol) per dtype.
# Reductions over k terms are scaled by sqrt(k) in close().
TOL = {np.dtype(np.float32): (2e-5, 2e-6), np.dtype(np.float64): (1e-12, 1e-13)}


def close(actual, expected, dtype, k=1, scale=1.0):
    rtol, atol = TOL[np.dtype(dtype)]
    grow = max(1.0, np.sqrt(k))
    np.testing.assert_allclose(actual, expected, rtol=rtol * grow, atol=atol * grow * scale)


def _isas():
    from fastnn import kernels as K

    order = ("generic", "avx2", "avx512")
    return order[: order.index(K.info()["cpu_isa"]) + 1]


@pytest.fixture(params=_isas())
def isa(request):
    """Runs a test once per instruction-set path this CPU has, as FASTNN_ISA would force
    it: the GEMM micro-kernels and packing, and the AVX2 builds of the other kernels."""
    from fastnn import kernels as K

    before = K.info()["isa"]
    K.set_isa(request.param)
    yield request.param
    K.set_isa(before)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return request.param


@pytest.fixture(scope="session", autouse=True)
def _outside_the_source_tree(tmp_path_factory):
    """Child interpreters must import the fastnn under test, not the source tree's fastnn/
    (which has no compiled extension): the session runs from a scratch directory, with the
    tested package first on PYTHONPATH."""
    import fastnn

    cwd, path = os.getcwd(), os.environ.get("PYTHONPATH")
    tested = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    os.environ["PYTHONPATH"] = os.pathsep.join([tested] + ([path] if path else []))
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(cwd)
    if path is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = path
