"""The mask_scale kernel (Dropout's) against fastnn.ops, with a boolean or an int8 mask, in C,
Fortran and strided layouts, both dtypes."""

import numpy as np
import pytest

from fastnn import kernels, ops
from helpers import DTYPES, array_in_layout, close

# Every test here runs once per instruction-set path this CPU has (conftest.isa).
pytestmark = pytest.mark.usefixtures("isa")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ("C", "fortran", "strided"))
def test_mask_scale(dtype, layout):
    rng = np.random.default_rng(3)
    x = array_in_layout(rng, (9, 11), dtype, layout)
    mask = rng.random((9, 11)) > 0.3
    close(kernels.mask_scale(x, mask, 1 / 0.7), ops.mask_scale(x, mask, 1 / 0.7), dtype)
    close(kernels.mask_scale(x, mask.astype(np.int8), 2.0), ops.mask_scale(x, mask, 2.0), dtype)
