"""The 784-256-256-10 MLP (ReLU, softmax cross-entropy) as each contender writes it: the
fastnn manual loop of the README, fastnn's ``train_on_batch``, the clean NumPy step
(mlp_numpy.py) and a PyTorch loop. Shared by the pytest-benchmark suite and the scripts.

Every ``*_step`` function returns a callable that runs one training step on a fixed batch
(each contender with its own weights and optimizer state); every ``*_infer`` one that runs
one inference forward."""

import itertools

import numpy as np

import fastnn
from mlp_numpy import NumpyMLP

SIZES = (784, 256, 256, 10)
LR = {"sgd": 0.01, "adam": 1e-3}
OPTIMIZERS = {"sgd": "SGD momentum 0.9", "adam": "Adam"}


def data(batch, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((batch, SIZES[0])).astype(np.float32), rng.integers(0, 10, batch)


def fastnn_model(sizes=SIZES):
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(fastnn.Dense(a, b, rng=i))
        if i < len(sizes) - 2:
            layers.append(fastnn.ReLU())
    return fastnn.Sequential(*layers)


def fastnn_optimizer(model, name):
    if name == "sgd":
        return fastnn.optim.SGD(model.parameters(), lr=LR["sgd"], momentum=0.9)
    return fastnn.optim.Adam(model.parameters(), lr=LR["adam"])


def fastnn_manual_step(X, y, opt_name):
    """The README's manual training loop, as users write it."""
    model = fastnn_model()
    opt = fastnn_optimizer(model, opt_name)
    loss_fn = fastnn.SoftmaxCrossEntropy()

    def step():
        out = model.forward(X, training=True)
        _loss, grad = loss_fn(out, y)
        model.backward(grad)
        opt.step()

    return step


def fastnn_tob_step(X, y, opt_name):
    """The same step through ``train_on_batch`` (what ``fit`` runs)."""
    model = fastnn_model()
    opt = fastnn_optimizer(model, opt_name)
    loss_fn = fastnn.SoftmaxCrossEntropy()
    return lambda: model.train_on_batch(X, y, loss=loss_fn, optimizer=opt)


def numpy_step(X, y, opt_name):
    net = NumpyMLP(SIZES, optimizer=opt_name, lr=LR[opt_name])
    return lambda: net.step(X, y)


def torch_model(torch, sizes=SIZES):
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers.append(torch.nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
    return torch.nn.Sequential(*layers)


def torch_optimizer(torch, net, name):
    if name == "sgd":
        return torch.optim.SGD(net.parameters(), lr=LR["sgd"], momentum=0.9)
    return torch.optim.Adam(net.parameters(), lr=LR["adam"])


def torch_step(torch, X, y, opt_name):
    """A PyTorch training loop's step as its tutorials write it."""
    net = torch_model(torch)
    opt = torch_optimizer(torch, net, opt_name)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss_fn(net(Xt), yt).backward()
        opt.step()

    return step


def fastnn_infer(X):
    model = fastnn_model()
    return lambda: model.forward(X)


def numpy_infer(X):
    net = NumpyMLP(SIZES)
    return lambda: net.forward(X)


def torch_infer(torch, X):
    net, Xt = torch_model(torch), torch.from_numpy(X)

    def infer():
        with torch.inference_mode():
            return net(Xt)

    return infer
