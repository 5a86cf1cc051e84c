"""What every kernel promises about its arguments: a NumPy twin in fastnn.ops with the same
signature; bad arguments raise ValueError or TypeError naming the argument; an output may
not overlap an input (exactly in place is allowed), nor an optimizer state its parameter;
inputs are never modified. (Every array argument of every kernel probed with every bad
dtype, shape and layout: tests/test_hostile_inputs.py.)"""

import inspect

import numpy as np
import pytest

from fastnn import kernels, ops
from helpers import DTYPES, close

f32 = np.float32


KERNEL_NAMES = [
    n
    for n in kernels.__all__
    if n
    not in (
        "ACTIVATIONS",
        "DenseStep",
        "info",
        "set_isa",
        "set_num_threads",
        "get_num_threads",
        "fma_peak_gflops",
        "gemm_flop_count",
        "conv2d_patches_shape",  # which form the C kernel's patches take; no arithmetic
    )
]


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("name", KERNEL_NAMES)
def test_reference_has_identical_signature(name):
    assert hasattr(ops, name), f"fastnn.ops lacks {name}"
    kernel_sig = inspect.signature(getattr(kernels, name))
    ref_sig = inspect.signature(getattr(ops, name))
    assert kernel_sig == ref_sig, (str(kernel_sig), str(ref_sig))


@pytest.mark.usefixtures("isa")
def test_inputs_are_never_modified(dtype, rng):
    a = rng.standard_normal((6, 5)).astype(dtype)
    b = rng.standard_normal((5, 4)).astype(dtype)
    keep_a, keep_b = a.copy(), b.copy()
    kernels.gemm(a, b, bias=np.ones(4, dtype), activation="relu")
    kernels.activation_forward(a, "sigmoid")
    kernels.softmax_cross_entropy(a, [0, 1, 2, 3, 4, 0])
    kernels.softmax(a)
    np.testing.assert_array_equal(a, keep_a)
    np.testing.assert_array_equal(b, keep_b)


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("dtype", DTYPES)
def test_layer_kernels_keep_inputs_and_write_out_in_place(dtype):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 4)).astype(dtype)
    x.flags.writeable = False
    keep = x.copy()
    kernels.standardize(x, np.zeros(4, dtype), np.ones(4, dtype))
    kernels.batchnorm_train(x, None, None, None, None)
    np.testing.assert_array_equal(x, keep)
    y = keep.copy()
    out = kernels.mask_scale(y, np.ones((5, 4), bool), 2.0, out=y)
    assert out is y
    close(y, 2 * keep, dtype)


@pytest.mark.parametrize(
    "call,exc,match",
    [
        (lambda: kernels.gemm(np.ones(3, f32), np.ones((3, 3), f32)), ValueError, "a must be 2-D"),
        (
            lambda: kernels.gemm(np.ones((2, 3), f32), np.ones((4, 3), f32)),
            ValueError,
            "inner dimensions",
        ),
        (
            lambda: kernels.gemm(np.ones((2, 3), np.int64), np.ones((3, 3))),
            TypeError,
            "float32 or float64",
        ),
        (
            lambda: kernels.gemm(np.ones((2, 3), f32), np.ones((3, 3))),
            TypeError,
            "expected float32",
        ),
        (
            lambda: kernels.gemm(np.ones((2, 3), np.complex64), np.ones((3, 3))),
            TypeError,
            "a must have dtype",
        ),
        (
            lambda: kernels.gemm(np.ones((2, 3), object), np.ones((3, 3))),
            TypeError,
            "a must have dtype",
        ),
        (lambda: kernels.gemm(np.ones((2, 3), np.float16), np.ones((3, 3))), TypeError, "float16"),
        (
            lambda: kernels.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), bias=np.ones(3, f32)),
            ValueError,
            "bias must have shape",
        ),
        (
            lambda: kernels.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), activation="gelu"),
            ValueError,
            "activation must be one of",
        ),
        (
            lambda: kernels.gemm(
                np.ones((2, 3), f32), np.ones((3, 4), f32), out=np.empty((2, 5), f32)
            ),
            ValueError,
            "out has shape",
        ),
        (
            lambda: kernels.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), out=np.empty((2, 4))),
            TypeError,
            "out has dtype",
        ),
        (
            lambda: kernels.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), out=[[0] * 4] * 2),
            TypeError,
            "out must be a numpy.ndarray",
        ),
        (
            lambda: kernels.gemm(
                np.ones((2, 3), f32),
                np.ones((3, 4), f32),
                out=np.broadcast_to(np.empty(4, f32), (2, 4)),
            ),
            ValueError,
            "read-only",
        ),
        (
            lambda: kernels.softmax_cross_entropy(np.ones((2, 3), f32), [0, 3]),
            ValueError,
            r"\[0, 3\)",
        ),
        (
            lambda: kernels.softmax_cross_entropy(np.ones((2, 3), f32), [0, -1]),
            ValueError,
            "got -1",
        ),
        (lambda: kernels.softmax_cross_entropy(np.ones((2, 3), f32), [0]), ValueError, "shape"),
        (
            lambda: kernels.softmax_cross_entropy(np.ones((2, 3), f32), [0.5, 1]),
            ValueError,
            "whole numbers",
        ),
        (
            lambda: kernels.softmax_cross_entropy(np.ones((2, 3), f32), ["a", "b"]),
            TypeError,
            "integers",
        ),
        (
            lambda: kernels.softmax_cross_entropy(np.ones((2, 0), f32), [0, 0]),
            ValueError,
            "at least one column",
        ),
        (
            lambda: kernels.softmax_cross_entropy(np.ones((0, 3), f32), []),
            ValueError,
            "at least one row",
        ),
        (
            lambda: kernels.softmax_cross_entropy(np.ones((2, 3), f32), [0, 1], reduction="max"),
            ValueError,
            "reduction",
        ),
        (
            lambda: kernels.mse(np.ones((2, 3), f32), np.ones((3, 2))),
            ValueError,
            "target has shape",
        ),
        (
            lambda: kernels.bce_with_logits(np.ones((2, 3), f32), np.full((2, 3), "x")),
            TypeError,
            "numeric",
        ),
        (
            lambda: kernels.sgd_step(np.ones(3, f32), np.ones(4, f32), None, lr=0.1),
            ValueError,
            "grad has shape",
        ),
        (
            lambda: kernels.sgd_step(
                np.ones(3, f32), np.ones(3, f32), np.ones(3), lr=0.1, momentum=0.9
            ),
            ValueError,
            "momentum_buffer",
        ),
        (lambda: kernels.sgd_step([1.0, 2.0], np.ones(2, f32), None, lr=0.1), TypeError, "param"),
        (
            lambda: kernels.csr_matmul(
                np.ones(2, f32),
                np.array([0, 4], np.int32),
                np.array([0, 2], np.int32),
                np.ones((4, 3), f32),
            ),
            ValueError,
            r"indices must be in \[0, 4\)",
        ),
        (
            lambda: kernels.csr_matmul(
                np.ones(2, f32),
                np.array([0, 1], np.int32),
                np.array([0, 2, 1], np.int32),
                np.ones((4, 3), f32),
            ),
            ValueError,
            "indptr must be non-decreasing",
        ),
        (
            lambda: kernels.csr_t_matmul(
                np.ones(2, f32),
                np.array([0, 1]),
                np.array([0, 2]),
                np.ones((1, 3), f32),
                out=np.empty((2, 3)),
            ),
            TypeError,
            "out has dtype float64, expected float32",
        ),
        (lambda: kernels.set_num_threads(0), ValueError, "n must be"),
        (lambda: kernels.set_isa("sse9"), ValueError, "isa must be"),
    ],
)
def test_kernel_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_out_overlapping_input_rejected():
    a = np.ones((4, 4), f32)
    with pytest.raises(ValueError, match="overlaps"):
        kernels.gemm(a, a, out=a)
    buf = np.ones(20, f32)
    x, shifted = buf[:16].reshape(4, 4), buf[2:18].reshape(4, 4)
    with pytest.raises(ValueError, match="overlaps"):
        kernels.activation_forward(x, "relu", out=shifted)
    assert kernels.activation_forward(x, "relu", out=x) is x  # exactly in place is allowed


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize(
    "call,exc,match",
    [
        (
            lambda: kernels.adam_step(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(4), lr=0.1),
            ValueError,
            "exp_avg_sq",
        ),
        (
            lambda: kernels.adam_step(
                np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), lr=0.1, step=0
            ),
            ValueError,
            "step",
        ),
        (
            lambda: kernels.adam_step(
                np.zeros(3), np.zeros(3), np.zeros(3, np.float32), np.zeros(3), lr=0.1
            ),
            ValueError,
            "exp_avg",
        ),
        (lambda: kernels.adagrad_step([0.0], np.zeros(1), np.zeros(1), lr=0.1), TypeError, "param"),
        (
            lambda: kernels.rmsprop_step(
                np.zeros(3), np.zeros(3), np.zeros(3), None, None, lr=0.1, centered=True
            ),
            TypeError,
            "grad_avg",
        ),
        (
            lambda: kernels.rmsprop_step(
                np.zeros(3), np.zeros(3), np.zeros(3), None, None, lr=0.1, momentum=0.5
            ),
            TypeError,
            "momentum_buffer",
        ),
        (lambda: kernels.mask_scale(np.zeros((2, 2)), np.ones(3, bool), 1.0), ValueError, "mask"),
        (
            lambda: kernels.batchnorm_train(np.zeros((1, 3)), None, None, None, None),
            ValueError,
            "2 rows",
        ),
        (
            lambda: kernels.batchnorm_train(np.zeros((4, 3)), np.ones(2), None, None, None),
            ValueError,
            "weight",
        ),
        (
            lambda: kernels.batchnorm_eval(np.zeros((4, 3)), None, None, np.zeros(3), np.zeros(2)),
            ValueError,
            "running_var",
        ),
        (lambda: kernels.maxout_forward(np.zeros((2, 5)), 2), ValueError, "pieces"),
        (
            lambda: kernels.maxout_backward(np.zeros((2, 2)), np.full((2, 2), 3), 3),
            ValueError,
            "argmax",
        ),
        (
            lambda: kernels.maxout_backward(np.zeros((2, 2)), np.zeros((2, 2)), 0),
            ValueError,
            "pieces",
        ),
        (lambda: kernels.standardize(np.zeros((2, 3)), None, np.ones(4)), ValueError, "std"),
        (lambda: kernels.column_moments(np.zeros((0, 3))), ValueError, "one row"),
    ],
)
def test_optimizer_and_layer_kernel_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.usefixtures("isa")
def test_state_overlap_rejected():
    p = np.zeros(6)
    with pytest.raises(ValueError, match="overlaps"):
        kernels.adam_step(p, np.zeros(6), p, np.zeros(6), lr=0.1)
