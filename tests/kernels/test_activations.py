"""The elementwise and row kernels against fastnn.ops: activation_forward and
activation_backward (with the fused bias gradient), add_bias, column_sum, softmax and
softmax_backward, in every layout and both dtypes; and the vectorised e^x (softmax, sigmoid)
and tanh within a few ulps over the whole range."""

import numpy as np
import pytest

from fastnn import kernels, ops
from helpers import close, layouts

ACTS = kernels.ACTIVATIONS
# Every test here runs once per instruction-set path this CPU has (conftest.isa).
pytestmark = pytest.mark.usefixtures("isa")


ELEM_SHAPES = [(0, 5), (1, 1), (1, 17), (7, 3), (33, 65), (300, 300)]


@pytest.mark.parametrize("shape", ELEM_SHAPES)
@pytest.mark.parametrize("activation", ACTS)
def test_activation_forward(shape, activation, dtype, rng):
    x = (rng.standard_normal(shape) * 4).astype(dtype)
    for _, xv in layouts(rng, shape, dtype) if min(shape) > 0 else [("c", x)]:
        close(
            kernels.activation_forward(xv, activation, negative_slope=0.2),
            ops.activation_forward(xv, activation, negative_slope=0.2),
            dtype,
        )


@pytest.mark.parametrize("shape", ELEM_SHAPES)
@pytest.mark.parametrize("activation", ACTS)
def test_activation_backward_and_bias_grad(shape, activation, dtype, rng):
    x = (rng.standard_normal(shape) * 3).astype(dtype)
    y = ops.activation_forward(x, activation, negative_slope=0.2)
    dy = rng.standard_normal(shape).astype(dtype)
    db, db_ref = np.empty(shape[1], dtype), np.empty(shape[1], dtype)
    got = kernels.activation_backward(dy, y, activation, negative_slope=0.2, bias_grad_out=db)
    want = ops.activation_backward(dy, y, activation, negative_slope=0.2, bias_grad_out=db_ref)
    close(got, want, dtype)
    close(db, db_ref, dtype, k=shape[0])


def test_activation_in_place(dtype, rng):
    x = rng.standard_normal((9, 11)).astype(dtype)
    want = ops.activation_forward(x, "tanh")
    assert kernels.activation_forward(x, "tanh", out=x) is x
    close(x, want, dtype)


@pytest.mark.parametrize("shape", ELEM_SHAPES)
def test_add_bias_column_sum_softmax(shape, dtype, rng):
    x = (rng.standard_normal(shape) * 5).astype(dtype)
    bias = rng.standard_normal(shape[1]).astype(dtype)
    for _, xv in layouts(rng, shape, dtype) if min(shape) > 0 else [("c", x)]:
        close(kernels.add_bias(xv, bias), ops.add_bias(xv, bias), dtype)
        close(kernels.column_sum(xv), ops.column_sum(xv), dtype, k=shape[0])
        close(kernels.softmax(xv), ops.softmax(xv), dtype)
        dy = rng.standard_normal(shape).astype(dtype)
        y = ops.softmax(xv)
        close(kernels.softmax_backward(dy, y), ops.softmax_backward(dy, y), dtype, k=shape[1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_exp_kernels_accurate_over_the_whole_range(dtype):
    """softmax and sigmoid compute e^x (x <= 0) in vectorised arithmetic rather than libm:
    within a few ulps of float64/long double over the whole range, subnormal results
    included, with NaN propagating and -inf giving 0."""
    info = np.finfo(dtype)
    x = np.concatenate(
        [
            -np.logspace(-30, np.log10(800), 100_001),
            -np.linspace(0, 120, 9973),
            [0.0, -0.0, -1e30, -np.inf, np.nan],
        ]
    ).astype(dtype)
    xl = x.astype(np.longdouble)
    # Column 0 of a two-column softmax against 0 is e^x / (e^x + 1), the sigmoid of x.
    ref = np.exp(xl) / (np.exp(xl) + 1)
    for got in (
        kernels.softmax(np.stack([x, np.zeros_like(x)], axis=1))[:, 0],
        kernels.activation_forward(x, "sigmoid"),
    ):
        ok = np.isfinite(xl)
        err = np.abs(got[ok].astype(np.longdouble) - ref[ok])
        # 4 ulps of the result, or a subnormal ulp where the result is subnormal.
        bound = np.maximum(4 * info.eps * ref[ok], info.smallest_subnormal)
        assert np.all(err <= bound), float(np.max(err / bound))
        assert np.isnan(got[-1]) and got[-2] == 0 and got[-3] == 0
    s = kernels.activation_forward(np.array([np.inf, 1e30, 50.0], dtype), "sigmoid")
    np.testing.assert_array_equal(s, [1, 1, 1])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_accurate_over_the_whole_range(dtype):
    """tanh is computed from the vectorised e^x (and an odd series near zero, where the
    quotient would cancel) like the GEMM epilogue's: within 4 ulps of long double over
    the whole range, odd, exact at +-0 and +-inf, NaN propagating."""
    info = np.finfo(dtype)
    mag = np.concatenate(
        [
            np.logspace(-40, np.log10(40), 100_001),
            np.linspace(0, 1, 9973),
            [0.29999, 0.3, 0.30001, 1e30],
        ]
    )
    x = np.concatenate([mag, -mag, [0.0, -0.0, np.inf, -np.inf, np.nan]]).astype(dtype)
    got = kernels.activation_forward(x, "tanh")
    ok = np.isfinite(x)
    ref = np.tanh(x[ok].astype(np.longdouble))
    err = np.abs(got[ok].astype(np.longdouble) - ref)
    bound = np.maximum(4 * info.eps * np.abs(ref), info.smallest_subnormal)
    assert np.all(err <= bound), float(np.max(err / bound))
    np.testing.assert_array_equal(got[ok][: len(mag)], -got[ok][len(mag) : 2 * len(mag)])
    assert np.signbit(got[-4]) and not np.signbit(got[-5])
    np.testing.assert_array_equal(got[-3:-1], [1, -1])
    assert np.isnan(got[-1])
