"""Elementwise kernels and the fused loss, beside the NumPy expressions they replace."""

import numpy as np
import pytest

from fastnn import kernels, ops

SHAPE = (512, 256)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return {
        "x": rng.standard_normal(SHAPE).astype(np.float32),
        "dy": rng.standard_normal(SHAPE).astype(np.float32),
        "logits": rng.standard_normal((512, 10)).astype(np.float32),
        "labels": rng.integers(0, 10, 512),
    }


@pytest.mark.parametrize("act", ["relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("lib", ["fastnn", "numpy"])
def test_activation_forward(benchmark, data, lib, act):
    benchmark.group = f"activation {act} {SHAPE}"
    fn = kernels.activation_forward if lib == "fastnn" else ops.activation_forward
    benchmark(fn, data["x"], act)


@pytest.mark.parametrize("lib", ["fastnn", "numpy"])
def test_relu_backward_with_bias_grad(benchmark, data, lib):
    benchmark.group = f"relu backward + bias grad {SHAPE}"
    y = np.maximum(data["x"], 0)
    db = np.empty(SHAPE[1], np.float32)
    fn = kernels.activation_backward if lib == "fastnn" else ops.activation_backward
    benchmark(fn, data["dy"], y, "relu", bias_grad_out=db)


@pytest.mark.parametrize("lib", ["fastnn", "numpy"])
def test_softmax_cross_entropy(benchmark, data, lib):
    benchmark.group = "softmax cross-entropy (512, 10)"
    fn = kernels.softmax_cross_entropy if lib == "fastnn" else ops.softmax_cross_entropy
    benchmark(fn, data["logits"], data["labels"])


@pytest.mark.parametrize("lib", ["fastnn", "numpy"])
def test_sgd_momentum_update(benchmark, data, lib):
    benchmark.group = f"SGD momentum update {SHAPE}"
    p, buf = data["x"].copy(), np.zeros(SHAPE, np.float32)
    fn = kernels.sgd_step if lib == "fastnn" else ops.sgd_step
    benchmark(fn, p, data["dy"], buf, lr=1e-6, momentum=0.9, first_step=False)
