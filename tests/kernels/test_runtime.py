"""The runtime: kernels.info() names the instruction-set path and the thread count.
(Setting the thread count, the pool and fork: test_threads.py.)"""

import pytest

from fastnn import kernels

# Every test here runs once per instruction-set path this CPU has (conftest.isa).
pytestmark = pytest.mark.usefixtures("isa")


def test_info():
    info = kernels.info()
    assert info["isa"] in ("generic", "avx2", "avx512")
    assert info["threads"] >= 1
