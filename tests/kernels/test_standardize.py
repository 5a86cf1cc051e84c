"""The standardize kernel (Standardize's) against fastnn.ops, with and without a mean, a
zero standard deviation included, in C, Fortran and strided layouts, both dtypes."""

import numpy as np
import pytest

from fastnn import kernels, ops
from helpers import DTYPES, array_in_layout, close

# Every test here runs once per instruction-set path this CPU has (conftest.isa).
pytestmark = pytest.mark.usefixtures("isa")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ("C", "fortran", "strided"))
def test_standardize_kernel(dtype, layout):
    rng = np.random.default_rng(7)
    x = array_in_layout(rng, (10, 6), dtype, layout)
    mean = rng.standard_normal(6).astype(dtype)
    std = np.abs(rng.standard_normal(6)).astype(dtype)
    std[2] = 0
    close(kernels.standardize(x, mean, std), ops.standardize(x, mean, std), dtype)
    close(kernels.standardize(x, None, std), ops.standardize(x, None, std), dtype)
