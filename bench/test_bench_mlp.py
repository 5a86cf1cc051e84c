"""A whole training step of a 784-256-256-10 MLP (ReLU, softmax-CE, SGD momentum / Adam),
and inference at batch 1 and 1024: fastnn beside a clean NumPy implementation (and PyTorch
when it is installed)."""
import numpy as np
import pytest

import fastnn
from mlp_numpy import NumpyMLP

SIZES = (784, 256, 256, 10)


def data(batch):
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, 784)).astype(np.float32), rng.integers(0, 10, batch)


def fastnn_model():
    layers = []
    for i, (a, b) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        layers.append(fastnn.Dense(a, b, rng=i))
        if i < len(SIZES) - 2:
            layers.append(fastnn.ReLU())
    return fastnn.Sequential(*layers)


def fastnn_optimizer(model, name):
    if name == "sgd":
        return fastnn.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    if not hasattr(fastnn.optim, "Adam"):
        pytest.skip("fastnn.optim.Adam not available")
    return fastnn.optim.Adam(model.parameters(), lr=1e-3)


def torch_step(batch, opt_name):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(fastnn.get_num_threads())
    net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 256),
                              torch.nn.ReLU(), torch.nn.Linear(256, 10))
    opt = (torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9) if opt_name == "sgd"
           else torch.optim.Adam(net.parameters(), lr=1e-3))
    loss_fn = torch.nn.CrossEntropyLoss()
    X, y = data(batch)
    X, y = torch.from_numpy(X), torch.from_numpy(y)

    def step():
        opt.zero_grad(set_to_none=True)
        loss_fn(net(X), y).backward()
        opt.step()

    return step


@pytest.mark.parametrize("batch", [32, 128, 512])
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
@pytest.mark.parametrize("lib", ["fastnn", "numpy", "torch"])
def test_train_step(benchmark, lib, batch, opt_name):
    benchmark.group = f"train step 784-256-256-10 batch {batch} {opt_name}"
    benchmark.extra_info["samples"] = batch
    X, y = data(batch)
    if lib == "fastnn":
        model = fastnn_model()
        opt = fastnn_optimizer(model, opt_name)
        loss_fn = fastnn.SoftmaxCrossEntropy()

        def step():
            model.train_on_batch(X, y, loss=loss_fn, optimizer=opt)
    elif lib == "numpy":
        net = NumpyMLP(SIZES, optimizer=opt_name)

        def step():
            net.step(X, y)
    else:
        step = torch_step(batch, opt_name)
    benchmark(step)


@pytest.mark.parametrize("batch", [1, 1024])
@pytest.mark.parametrize("lib", ["fastnn", "numpy", "torch"])
def test_inference(benchmark, lib, batch):
    benchmark.group = f"inference 784-256-256-10 batch {batch}"
    X, _ = data(batch)
    if lib == "fastnn":
        benchmark(fastnn_model().forward, X)
    elif lib == "numpy":
        benchmark(NumpyMLP(SIZES).forward, X)
    else:
        torch = pytest.importorskip("torch")
        torch.set_num_threads(fastnn.get_num_threads())
        net = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(),
                                  torch.nn.Linear(256, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
        Xt = torch.from_numpy(X)
        with torch.inference_mode():
            benchmark(net, Xt)
