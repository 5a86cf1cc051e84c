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


# (N, C, ...) inputs: each channel's statistics over N and the trailing axes (S = their
# product): S below, at and above the chunk of 64 and the 8 summing lanes, one image, one pixel.
SHAPES = [
    (5, 3, 1),
    (4, 7, 2),
    (3, 5, 3, 3),
    (2, 70, 9),
    (6, 4, 8, 8),
    (1, 3, 5, 7),
    (2, 2, 13, 11),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("affine", (True, False))
def test_batchnorm_kernels_over_images(dtype, shape, affine):
    rng = np.random.default_rng(6)
    c = shape[1]
    x = (rng.standard_normal(shape) * 2 + 1).astype(dtype)
    keep = x.copy()
    w = rng.standard_normal(c).astype(dtype) if affine else None
    b = rng.standard_normal(c).astype(dtype) if affine else None
    rm0, rv0 = rng.standard_normal(c).astype(dtype), np.abs(rng.standard_normal(c)).astype(dtype)
    rk, vk, ro, vo = rm0.copy(), rv0.copy(), rm0.copy(), rv0.copy()
    yk, mk, ik = kernels.batchnorm_train(x, w, b, rk, vk, momentum=0.3, eps=1e-3)
    yo, mo, io = ops.batchnorm_train(x, w, b, ro, vo, momentum=0.3, eps=1e-3)
    assert yk.shape == shape
    count = x.size // c
    for a, e in ((yk, yo), (mk, mo), (ik, io), (rk, ro), (vk, vo)):
        close(a, e, dtype, k=count)
    close(
        kernels.batchnorm_eval(x, w, b, rm0, rv0, eps=1e-3),
        ops.batchnorm_eval(x, w, b, rm0, rv0, eps=1e-3),
        dtype,
    )
    dy = rng.standard_normal(shape).astype(dtype)
    for a, e in zip(
        kernels.batchnorm_backward(dy, x, mk, ik, w), ops.batchnorm_backward(dy, x, mk, ik, w)
    ):
        close(a, e, dtype, k=count)
    np.testing.assert_array_equal(x, keep)
    # a non-contiguous view gives the same bits as its copy
    view = np.asfortranarray(x)
    np.testing.assert_array_equal(
        kernels.batchnorm_train(view, w, b, None, None)[0],
        kernels.batchnorm_train(x, w, b, None, None)[0],
    )


def test_batchnorm_of_images_is_independent_of_threads():
    x = np.random.default_rng(9).standard_normal((8, 37, 21, 19))
    n = kernels.get_num_threads()
    try:
        kernels.set_num_threads(1)
        one = kernels.batchnorm_train(x, None, None, None, None)
        dx1 = kernels.batchnorm_backward(x, x, one[1], one[2], None)
        kernels.set_num_threads(3)
        many = kernels.batchnorm_train(x, None, None, None, None)
        dxn = kernels.batchnorm_backward(x, x, many[1], many[2], None)
    finally:
        kernels.set_num_threads(n)
    for a, b in zip(one + dx1, many + dxn):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize(
    "call,match",
    [
        (lambda: kernels.batchnorm_train(np.zeros(4), None, None, None, None), "axis 1"),
        (
            lambda: kernels.batchnorm_train(np.zeros((1, 3, 1, 1)), None, None, None, None),
            "2 values",
        ),
        (
            lambda: kernels.batchnorm_eval(
                np.zeros((2, 3, 4, 4)), None, None, np.zeros(4), np.ones(3)
            ),
            "running_mean",
        ),
        (
            lambda: kernels.batchnorm_backward(
                np.zeros((2, 3, 4, 4)), np.zeros((2, 3, 4, 5)), np.zeros(3), np.ones(3), None
            ),
            "x has shape",
        ),
        (
            lambda: kernels.batchnorm_backward(
                np.zeros((2, 3, 4)), np.zeros((2, 3, 4)), np.zeros(4), np.ones(3), None
            ),
            "save_mean",
        ),
    ],
)
def test_batchnorm_bad_image_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()
