"""The convolution and pooling kernels on the layer shapes of the three CNNs of issue #16
(bench/cnn_models.py) at batch 64, float32, each group beside its PyTorch CPU twin when
PyTorch is installed (the torch case skips otherwise):

- ``conv forward``: conv2d_forward with the bias and the ReLU the nets fuse into it, against
  ``torch.relu_(F.conv2d(x, w, b))``;
- ``conv backward``: conv2d_backward through the ReLU: the weight and bias gradients, and the
  input gradient for every convolution but a net's first (which no training step computes;
  the group says ``dW`` or ``dW+dx``), against autograd's backward of the same graph
  (``torch.autograd.grad`` with the graph retained);
- ``maxpool`` / ``avgpool`` ``forward`` / ``backward``: 2x2 pooling of each pooling layer's
  input (the nets pool with max; average pooling on the same shapes), against
  ``F.max_pool2d(..., return_indices=True)`` (fastnn's forward also keeps the argmax) /
  ``F.avg_pool2d`` and their autograd backward.

Threads are pinned by conftest.py (``BENCH_THREADS``; PyTorch to fastnn's count here). The
convolution cases store ``gflop`` (their GEMM FLOPs) in extra_info, and, once timed,
``gflops`` (GFLOP/s at the median) and ``fma_fraction`` (of the FMA limit of the run's
threads); conftest's closing summary prints the ratios to PyTorch and the fractions.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE BENCH_THREADS=1 \\
        pytest bench/test_bench_conv.py --benchmark-only --benchmark-group-by=group
"""

import numpy as np
import pytest

import fastnn
from cnn_models import conv_flops, conv_layers, pool_layers
from fastnn import kernels

BATCH = 64
CONVS = conv_layers()
POOLS = pool_layers()


def _torch():
    torch = pytest.importorskip("torch")
    torch.set_num_threads(fastnn.get_num_threads())
    return torch


def _rates(benchmark, fma_limit):
    """GFLOP/s and the fraction of the FMA limit at the median, into extra_info."""
    stats = getattr(benchmark, "stats", None)
    gflop = benchmark.extra_info.get("gflop")
    if stats is None or not gflop:  # --benchmark-disable
        return
    rate = gflop / stats.stats.median
    benchmark.extra_info["gflops"] = round(rate, 2)
    if fma_limit:
        benchmark.extra_info["fma_fraction"] = round(rate / fma_limit, 4)


def _first(label):
    return label.endswith("conv1")


def conv_operands(label):
    c, o, k, p, h, w = CONVS[label]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, c, h, w)).astype(np.float32)
    weight = fastnn.Conv2d(c, o, k, padding=p, rng=0).weight.data.copy()
    bias = (0.1 * rng.standard_normal(o)).astype(np.float32)
    oh, ow = h + 2 * p - k + 1, w + 2 * p - k + 1
    dy = rng.standard_normal((BATCH, o, oh, ow)).astype(np.float32)
    return x, weight, bias, dy, (p, p, p, p)


def _torch_conv(torch, x, weight, bias, pad, grads=()):
    """PyTorch's twin of the fused layer: relu(conv2d(x, weight, bias)); `grads` names the
    operands that require a gradient."""
    t = {
        name: torch.from_numpy(a).requires_grad_(name in grads)
        for name, a in (("x", x), ("weight", weight), ("bias", bias))
    }
    y = torch.relu_(torch.nn.functional.conv2d(t["x"], t["weight"], t["bias"], padding=pad[0]))
    return t, y


@pytest.mark.parametrize("label", list(CONVS))
@pytest.mark.parametrize("lib", ["fastnn", "torch"])
def test_conv_forward(benchmark, fma_limit, lib, label):
    c, o, k, p, h, w = CONVS[label]
    benchmark.group = f"conv forward {label} ({c}->{o} {k}x{k} pad {p} on {h}x{w}) batch {BATCH}"
    benchmark.extra_info.update(
        kind="conv", lib=lib, batch=BATCH, gflop=conv_flops(BATCH, c, o, k, p, h, w) / 1e9
    )
    x, weight, bias, _, pad = conv_operands(label)
    out = np.empty((BATCH, o, h + 2 * p - k + 1, w + 2 * p - k + 1), np.float32)

    def run():
        return kernels.conv2d_forward(x, weight, bias, padding=pad, activation="relu", out=out)

    if lib == "fastnn":
        benchmark(run)
    else:
        torch = _torch()
        xt, wt, bt = (torch.from_numpy(a) for a in (x, weight, bias))
        F = torch.nn.functional

        def twin():
            with torch.inference_mode():
                return torch.relu_(F.conv2d(xt, wt, bt, padding=p))

        np.testing.assert_allclose(twin().numpy(), run(), rtol=1e-4, atol=1e-4)
        benchmark(twin)
    _rates(benchmark, fma_limit)


@pytest.mark.parametrize("label", list(CONVS))
@pytest.mark.parametrize("lib", ["fastnn", "torch"])
def test_conv_backward(benchmark, fma_limit, lib, label):
    c, o, k, p, h, w = CONVS[label]
    input_grad = not _first(label)
    what = "dW+dx" if input_grad else "dW (a first layer: no dx)"
    benchmark.group = (
        f"conv backward {what} {label} ({c}->{o} {k}x{k} pad {p} on {h}x{w}) batch {BATCH}"
    )
    products = 2 if input_grad else 1
    benchmark.extra_info.update(
        kind="conv",
        lib=lib,
        batch=BATCH,
        input_grad=input_grad,
        gflop=products * conv_flops(BATCH, c, o, k, p, h, w) / 1e9,
    )
    x, weight, bias, dy, pad = conv_operands(label)
    y = kernels.conv2d_forward(x, weight, bias, padding=pad, activation="relu")
    dx = np.empty_like(x) if input_grad else None
    dw, db = np.empty_like(weight), np.empty_like(bias)
    if lib == "fastnn":
        benchmark(
            kernels.conv2d_backward,
            dy,
            x,
            weight,
            padding=pad,
            activation="relu",
            output=y,
            input_grad=input_grad,
            bias_grad=True,
            out=dx,
            weight_grad_out=dw,
            bias_grad_out=db,
        )
    else:
        torch = _torch()
        names = ("weight", "bias", "x") if input_grad else ("weight", "bias")
        t, yt = _torch_conv(torch, x, weight, bias, pad, names)
        dyt = torch.from_numpy(dy)
        inputs = [t[name] for name in names]

        def twin():
            return torch.autograd.grad(yt, inputs, dyt, retain_graph=True)

        benchmark(twin)
    _rates(benchmark, fma_limit)


def pool_operands(label):
    c, h, w, k = POOLS[label]
    rng = np.random.default_rng(0)
    x = rng.standard_normal((BATCH, c, h, w)).astype(np.float32)
    dy = rng.standard_normal((BATCH, c, h // k, w // k)).astype(np.float32)
    return x, dy, k


def _group(kind, direction, label):
    c, h, w, k = POOLS[label]
    return f"{kind} {direction} {label} ({c}x{h}x{w}, {k}x{k}) batch {BATCH}"


@pytest.mark.parametrize("label", list(POOLS))
@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
@pytest.mark.parametrize("lib", ["fastnn", "torch"])
def test_pool_forward(benchmark, lib, kind, label):
    benchmark.group = _group(kind, "forward", label)
    benchmark.extra_info.update(kind="pool", lib=lib, batch=BATCH)
    x, _, k = pool_operands(label)
    y = np.empty((*x.shape[:2], x.shape[2] // k, x.shape[3] // k), np.float32)
    if lib == "fastnn":
        if kind == "maxpool":
            idx = np.empty(y.shape, np.int64)
            benchmark(kernels.maxpool2d_forward, x, k, k, 0, out=y, argmax_out=idx)
        else:
            benchmark(kernels.avgpool2d_forward, x, k, k, 0, out=y)
        return
    torch = _torch()
    F, xt = torch.nn.functional, torch.from_numpy(x)
    with torch.inference_mode():
        if kind == "maxpool":
            benchmark(F.max_pool2d, xt, k, return_indices=True)
        else:
            benchmark(F.avg_pool2d, xt, k)


@pytest.mark.parametrize("label", list(POOLS))
@pytest.mark.parametrize("kind", ["maxpool", "avgpool"])
@pytest.mark.parametrize("lib", ["fastnn", "torch"])
def test_pool_backward(benchmark, lib, kind, label):
    benchmark.group = _group(kind, "backward", label)
    benchmark.extra_info.update(kind="pool", lib=lib, batch=BATCH)
    x, dy, k = pool_operands(label)
    dx = np.empty_like(x)
    if lib == "fastnn":
        if kind == "maxpool":
            _, idx = kernels.maxpool2d_forward(x, k, k, 0)
            benchmark(kernels.maxpool2d_backward, dy, idx, x.shape, out=dx)
        else:
            benchmark(kernels.avgpool2d_backward, dy, x.shape, k, k, 0, out=dx)
        return
    torch = _torch()
    F = torch.nn.functional
    xt = torch.from_numpy(x).requires_grad_(True)
    yt = F.max_pool2d(xt, k) if kind == "maxpool" else F.avg_pool2d(xt, k)
    dyt = torch.from_numpy(dy)
    benchmark(torch.autograd.grad, yt, [xt], dyt, retain_graph=True)
