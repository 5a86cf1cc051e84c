"""A whole training step of a 784-256-256-10 MLP (ReLU, softmax-CE, SGD momentum / Adam) at
batch 32 / 128 / 512, and inference at batch 1 / 128 / 1024: fastnn (the README's manual
loop, and train_on_batch) beside a clean NumPy implementation and PyTorch when it is
installed. The summary at the end of the run (conftest.py) gives the ratios, the fractions
of the FLOP floor / FMA limit and PERFORMANCE.md's targets."""

import pytest

import fastnn
from fastnn.benchmark import mlp_flops
from mlp_models import (
    SIZES,
    data,
    fastnn_infer,
    fastnn_manual_step,
    fastnn_tob_step,
    numpy_infer,
    numpy_step,
    torch_infer,
    torch_step,
)


def _torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(fastnn.get_num_threads())
    return torch


@pytest.mark.parametrize("batch", [32, 128, 512])
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("lib", ["fastnn", "fastnn_tob", "numpy", "torch"])
def test_train_step(benchmark, lib, batch, opt_name):
    benchmark.group = f"train step 784-256-256-10 batch {batch} {opt_name}"
    benchmark.extra_info.update(
        kind="step", lib=lib, batch=batch, opt=opt_name, gflop=mlp_flops(SIZES, batch) / 1e9
    )
    X, y = data(batch)
    if lib == "fastnn":  # the README's manual loop
        step = fastnn_manual_step(X, y, opt_name)
    elif lib == "fastnn_tob":
        step = fastnn_tob_step(X, y, opt_name)
    elif lib == "numpy":
        step = numpy_step(X, y, opt_name)
    else:
        step = torch_step(_torch(), X, y, opt_name)
    benchmark(step)


@pytest.mark.parametrize("batch", [1, 128, 1024])
@pytest.mark.parametrize("lib", ["fastnn", "numpy", "torch"])
def test_inference(benchmark, lib, batch):
    benchmark.group = f"inference 784-256-256-10 batch {batch}"
    benchmark.extra_info.update(
        kind="inference", lib=lib, batch=batch, gflop=mlp_flops(SIZES, batch, training=False) / 1e9
    )
    X, _ = data(batch)
    if lib == "fastnn":
        benchmark(fastnn_infer(X))
    elif lib == "numpy":
        benchmark(numpy_infer(X))
    else:
        benchmark(torch_infer(_torch(), X))
