"""Benchmark set-up: pin every library's threads and say which OpenBLAS kernel NumPy uses.

Run as ``pytest bench/ --benchmark-only --benchmark-group-by=group``. Threads come from
``BENCH_THREADS`` (default 1). NumPy must run unhandicapped: unset OPENBLAS_CORETYPE (a
pin to an older kernel) before starting, as README.md's benchmark command does."""
import os
import time

import numpy as np
import pytest

import fastnn

THREADS = int(os.environ.get("BENCH_THREADS", "1"))


def _blas_report():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed: OpenBLAS kernel unknown"
    rows = [f"{i.get('internal_api')} {i.get('version')} kernel={i.get('architecture')} "
            f"threads={i.get('num_threads')}" for i in threadpool_info()]
    return "; ".join(rows) or "no BLAS found by threadpoolctl"


def pytest_report_header(config):
    pin = os.environ.get("OPENBLAS_CORETYPE")
    warn = f" WARNING: OPENBLAS_CORETYPE={pin} handicaps NumPy" if pin else ""
    return [f"fastnn {fastnn.__version__} kernels={fastnn.kernels.info()} bench threads={THREADS}",
            f"numpy {np.__version__}: {_blas_report()}{warn}"]


@pytest.fixture(scope="session", autouse=True)
def pinned_threads():
    fastnn.set_num_threads(THREADS)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        yield
        return
    with threadpool_limits(limits=THREADS):
        yield


@pytest.fixture(autouse=True)
def idle_thread_pools():
    """With several threads, the previous case's library may still be spinning its thread
    pool (for about 0.1 s after its last call) on the cores this case needs: wait first."""
    if THREADS > 1:
        time.sleep(0.3)
