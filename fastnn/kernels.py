"""The compiled kernels (csrc/ through the validating Cython floor).

Every function here has a NumPy twin with the same signature in :mod:`fastnn.ops`.
Threads and the instruction set are configured once, at import, from the environment:
``FASTNN_NUM_THREADS`` (default: the CPUs this process may run on) and ``FASTNN_ISA``
(``generic``, ``avx2`` or ``avx512``: force a lower path than the CPU's best).
"""

import os
from typing import NamedTuple

import numpy as np

from fastnn._kernels import (
    ACTIVATIONS,
    activation_backward,
    activation_forward,
    adagrad_step,
    adam_step,
    adam_step_many,
    add_bias,
    all_finite,
    avgpool2d_backward,
    avgpool2d_forward,
    batchnorm_backward,
    batchnorm_eval,
    batchnorm_train,
    bce_with_logits,
    column_moments,
    column_sum,
    conv2d_backward,
    conv2d_forward,
    conv2d_patches_shape,
    csr_matmul,
    csr_t_matmul,
    dense_chain_backward,
    dense_chain_forward,
    fma_peak_gflops,
    gemm,
    gemm_flop_count,
    get_num_threads,
    info,
    mask_scale,
    maxout_backward,
    maxout_forward,
    maxpool2d_backward,
    maxpool2d_forward,
    mse,
    penalty,
    rmsprop_step,
    scale_inplace,
    set_isa,
    set_num_threads,
    sgd_step,
    softmax,
    softmax_backward,
    softmax_cross_entropy,
    standardize,
    sum_squares,
)

__all__ = [
    "ACTIVATIONS",
    "DenseStep",
    "activation_backward",
    "activation_forward",
    "adagrad_step",
    "adam_step",
    "adam_step_many",
    "add_bias",
    "all_finite",
    "avgpool2d_backward",
    "avgpool2d_forward",
    "batchnorm_backward",
    "batchnorm_eval",
    "batchnorm_train",
    "bce_with_logits",
    "column_moments",
    "column_sum",
    "conv2d_backward",
    "conv2d_forward",
    "conv2d_patches_shape",
    "csr_matmul",
    "csr_t_matmul",
    "dense_chain_backward",
    "dense_chain_forward",
    "fma_peak_gflops",
    "gemm",
    "gemm_flop_count",
    "get_num_threads",
    "info",
    "mask_scale",
    "maxout_backward",
    "maxout_forward",
    "maxpool2d_backward",
    "maxpool2d_forward",
    "mse",
    "penalty",
    "rmsprop_step",
    "scale_inplace",
    "set_isa",
    "set_num_threads",
    "sgd_step",
    "softmax",
    "softmax_backward",
    "softmax_cross_entropy",
    "standardize",
    "sum_squares",
]


class DenseStep(NamedTuple):
    """One step of :func:`dense_chain_forward` / :func:`dense_chain_backward`:
    ``y = activation(x @ weight.T + bias)``, the arrays themselves (the chain reads them and
    writes the gradients into them). The forward reads weight, bias, activation and
    negative_slope; the backward also writes ``weight_grad`` (adding the gradient of
    ``l1 sum|weight| + l2 sum weight^2``) and ``bias_grad`` (None when ``bias`` is None)."""

    weight: np.ndarray
    bias: np.ndarray | None = None
    weight_grad: np.ndarray | None = None
    bias_grad: np.ndarray | None = None
    activation: str = "identity"
    negative_slope: float = 0.0
    l1: float = 0.0
    l2: float = 0.0


def _default_threads():
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _configure_from_env():
    threads = os.environ.get("FASTNN_NUM_THREADS")
    if threads is None or threads.strip() == "":
        set_num_threads(_default_threads())
    else:
        try:
            set_num_threads(int(threads))
        except ValueError:
            raise ValueError(
                f"FASTNN_NUM_THREADS must be an integer >= 1, got {threads!r}"
            ) from None
    isa = os.environ.get("FASTNN_ISA")
    if isa:
        set_isa(isa.strip().lower())


_configure_from_env()
