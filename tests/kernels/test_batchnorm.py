"""BatchNorm1d's kernels against fastnn.ops: column_moments, batchnorm_train (batch
statistics, running averages), batchnorm_eval and batchnorm_backward, with and without the
affine parameters, in C, Fortran and strided layouts, both dtypes."""

import numpy as np
import pytest

from fastnn import kernels, ops
from helpers import DTYPES, array_in_layout, close

# Every test here runs once per instruction-set path this CPU has (conftest.isa).
pytestmark = pytest.mark.usefixtures("isa")


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ("C", "fortran", "strided"))
def test_column_moments(dtype, layout):
    x = array_in_layout(np.random.default_rng(4), (50, 130), dtype, layout) * 3 + 5
    for a, b in zip(kernels.column_moments(x), ops.column_moments(x)):
        close(a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ("C", "fortran", "strided"))
@pytest.mark.parametrize("affine", (True, False))
def test_batchnorm_kernels(dtype, layout, affine):
    rng = np.random.default_rng(5)
    x = array_in_layout(rng, (33, 70), dtype, layout) * 2 + 1
    w = rng.standard_normal(70).astype(dtype) if affine else None
    b = rng.standard_normal(70).astype(dtype) if affine else None
    rm0, rv0 = rng.standard_normal(70).astype(dtype), np.abs(rng.standard_normal(70)).astype(dtype)
    rk, vk, ro, vo = rm0.copy(), rv0.copy(), rm0.copy(), rv0.copy()
    yk, mk, ik = kernels.batchnorm_train(x, w, b, rk, vk, momentum=0.3, eps=1e-3)
    yo, mo, io = ops.batchnorm_train(x, w, b, ro, vo, momentum=0.3, eps=1e-3)
    for a, c in ((yk, yo), (mk, mo), (ik, io), (rk, ro), (vk, vo)):
        close(a, c, dtype)
    close(
        kernels.batchnorm_eval(x, w, b, rm0, rv0, eps=1e-3),
        ops.batchnorm_eval(x, w, b, rm0, rv0, eps=1e-3),
        dtype,
    )
    dy = array_in_layout(rng, (33, 70), dtype, layout)
    for a, c in zip(
        kernels.batchnorm_backward(dy, x, mk, ik, w), ops.batchnorm_backward(dy, x, mk, ik, w)
    ):
        close(a, c, dtype)
