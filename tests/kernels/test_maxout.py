"""Maxout's kernels against fastnn.ops: maxout_forward (values and argmax) and
maxout_backward in C, Fortran and strided layouts, both dtypes; a NaN piece wins its unit
as in NumPy's argmax."""

import numpy as np
import pytest

from fastnn import kernels, ops
from helpers import DTYPES, array_in_layout, close

# Every test here runs once per instruction-set path this CPU has (conftest.isa).
pytestmark = pytest.mark.usefixtures("isa")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ("C", "fortran", "strided"))
def test_maxout_kernels(dtype, layout):
    rng = np.random.default_rng(6)
    z = array_in_layout(rng, (17, 12), dtype, layout)
    yk, ik = kernels.maxout_forward(z, 3)
    yo, io = ops.maxout_forward(z, 3)
    close(yk, yo, dtype)
    np.testing.assert_array_equal(ik, io)
    dy = array_in_layout(rng, (17, 4), dtype, layout)
    close(kernels.maxout_backward(dy, ik, 3), ops.maxout_backward(dy, io, 3), dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxout_nan_propagates_like_argmax(dtype):
    """A NaN piece anywhere wins its unit (the first NaN, as NumPy's argmax picks it), so
    a NaN never vanishes behind a larger number; ties go to the first piece."""
    z = np.array([[1, np.nan, 5, 2, 2, 0], [np.nan, 9, np.nan, -1, 3, 3]], dtype)
    y, idx = kernels.maxout_forward(z, 3)
    yo, io = ops.maxout_forward(z, 3)
    np.testing.assert_array_equal(idx, [[1, 0], [0, 1]])
    np.testing.assert_array_equal(idx, io)
    np.testing.assert_array_equal(y, yo)
