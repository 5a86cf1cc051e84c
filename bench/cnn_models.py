"""The three CNNs of issue #16 on 28x28 single-channel images (MNIST-shaped), as fastnn and
PyTorch write them with identical weights, their FLOP floors, and the training steps and
inference calls the CNN benchmarks time. Shared by bench/test_bench_conv.py and
bench/compare_cnn.py.

- ``lenet5``: Conv2d(1,6,5,padding=2), ReLU, MaxPool2d(2), Conv2d(6,16,5), ReLU,
  MaxPool2d(2), Flatten, Dense 400-120-84-10 with ReLU between;
- ``conv16-32``: Conv2d(1,16,5,padding=2), ReLU, MaxPool2d(2), Conv2d(16,32,5,padding=2),
  ReLU, MaxPool2d(2), Flatten, Dense(1568,10);
- ``conv32-64``: Conv2d(1,32,3), ReLU, Conv2d(32,64,3), ReLU, MaxPool2d(2), Flatten,
  Dense(9216,128), ReLU, Dense(128,10).

The FLOP floor of a training step (:func:`step_flops`) counts GEMM FLOPs only, as for the
MLP: every layer's forward product, every weight gradient, and the input gradient of every
layer but the first (neither library computes the image's gradient). A convolution's
product is ``2 * N * O * OH * OW * (C * kh * kw)``; a Dense's ``2 * N * in * out``. Per image:
LeNet-5 2,263,920 FLOPs (144.9 MFLOP at batch 64), conv16-32 16,401,280 (1.050 GFLOP),
conv32-64 71,565,312 (4.580 GFLOP): exactly the ``fastnn.kernels.gemm_flop_count()``
difference across one fastnn training step (the manual loop) of each net, which
:func:`measured_step_flops` returns and the CNN benchmarks check.

Every ``*_step`` function returns a callable running one training step on a fixed batch
(each contender with its own copy of the weights and its own optimizer state, SGD with
momentum 0.9); every ``*_infer`` one running one inference forward."""

import numpy as np

import fastnn

SHAPE = (1, 28, 28)  # C, H, W of the inputs
CLASSES = 10
LR = 0.01
MOMENTUM = 0.9

# Each net as a list of layer specs: ("conv", in, out, kernel, padding), ("relu",),
# ("maxpool", 2), ("flatten",), ("dense", in, out). The same list builds both libraries'
# models, so their state_dict keys ("0.weight", ...) agree.
NETS = {
    "lenet5": [
        ("conv", 1, 6, 5, 2),
        ("relu",),
        ("maxpool", 2),
        ("conv", 6, 16, 5, 0),
        ("relu",),
        ("maxpool", 2),
        ("flatten",),
        ("dense", 400, 120),
        ("relu",),
        ("dense", 120, 84),
        ("relu",),
        ("dense", 84, 10),
    ],
    "conv16-32": [
        ("conv", 1, 16, 5, 2),
        ("relu",),
        ("maxpool", 2),
        ("conv", 16, 32, 5, 2),
        ("relu",),
        ("maxpool", 2),
        ("flatten",),
        ("dense", 1568, 10),
    ],
    "conv32-64": [
        ("conv", 1, 32, 3, 0),
        ("relu",),
        ("conv", 32, 64, 3, 0),
        ("relu",),
        ("maxpool", 2),
        ("flatten",),
        ("dense", 9216, 128),
        ("relu",),
        ("dense", 128, 10),
    ],
}
TITLES = {
    "lenet5": "LeNet-5",
    "conv16-32": "Conv16-Conv32 5x5",
    "conv32-64": "Conv32-Conv64 3x3 + Dense 9216-128",
}


def _walk(name):
    """(spec, (C, H, W) of the layer's input) for each layer of the net."""
    c, h, w = SHAPE
    for spec in NETS[name]:
        yield spec, (c, h, w)
        kind = spec[0]
        if kind == "conv":
            _, _, c, k, p = spec
            h, w = h + 2 * p - k + 1, w + 2 * p - k + 1
        elif kind == "maxpool":
            h, w = h // spec[1], w // spec[1]
        elif kind == "flatten":
            c, h, w = c * h * w, None, None
        elif kind == "dense":
            c = spec[2]


def conv_layers(name=None):
    """{"lenet5 conv1": (C, O, kernel, padding, H, W), ...}: the convolutions of one net (all
    three without a name) with the size of their input, in order."""
    layers = {}
    for net in [name] if name else NETS:
        convs = [(spec, shape) for spec, shape in _walk(net) if spec[0] == "conv"]
        for i, ((_, c, o, k, p), (_, h, w)) in enumerate(convs, 1):
            layers[f"{net} conv{i}"] = (c, o, k, p, h, w)
    return layers


def pool_layers(name=None):
    """{"lenet5 pool1": (C, H, W, kernel), ...}: the pooling layers' inputs, in order."""
    layers = {}
    for net in [name] if name else NETS:
        pools = [(spec, shape) for spec, shape in _walk(net) if spec[0] == "maxpool"]
        for i, ((_, k), (c, h, w)) in enumerate(pools, 1):
            layers[f"{net} pool{i}"] = (c, h, w, k)
    return layers


def data(batch, seed=0):
    """A synthetic batch: standard normal images (batch, 1, 28, 28) and labels 0-9."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch, *SHAPE)).astype(np.float32)
    return X, rng.integers(0, CLASSES, batch)


# --------------------------------------------------------------------------------------
# FLOPs
# --------------------------------------------------------------------------------------


def layer_products(name, batch):
    """Each GEMM layer's forward FLOPs at `batch`, in order."""
    flops = []
    for spec, (c, h, w) in _walk(name):
        if spec[0] == "conv":
            flops.append(conv_flops(batch, c, spec[2], spec[3], spec[4], h, w))
        elif spec[0] == "dense":
            flops.append(2 * batch * spec[1] * spec[2])
    return flops


def step_flops(name, batch, training=True):
    """The GEMM FLOPs of one step (the FLOP floor's work): the forward, and for training
    the weight gradients and the input gradients of all but the first layer."""
    products = layer_products(name, batch)
    if not training:
        return sum(products)
    return 3 * sum(products) - products[0]


def conv_flops(batch, c, o, k, p, h, w):
    """One convolution's forward GEMM FLOPs (stride 1); its weight gradient and input
    gradient are as many each."""
    oh, ow = h + 2 * p - k + 1, w + 2 * p - k + 1
    return 2 * batch * o * oh * ow * c * k * k


def measured_step_flops(name, batch):
    """``fastnn.kernels.gemm_flop_count()`` across one fastnn training step of the manual
    loop (after one untimed step), for checking :func:`step_flops`."""
    step = fastnn_step(name, *data(batch))
    step()
    before = fastnn.kernels.gemm_flop_count()
    step()
    return fastnn.kernels.gemm_flop_count() - before


# --------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------


def fastnn_model(name, seed=0):
    layers = []
    for i, spec in enumerate(NETS[name]):
        kind = spec[0]
        if kind == "conv":
            layers.append(fastnn.Conv2d(spec[1], spec[2], spec[3], padding=spec[4], rng=seed + i))
        elif kind == "relu":
            layers.append(fastnn.ReLU())
        elif kind == "maxpool":
            layers.append(fastnn.MaxPool2d(spec[1]))
        elif kind == "flatten":
            layers.append(fastnn.Flatten())
        else:
            layers.append(fastnn.Dense(spec[1], spec[2], rng=seed + i))
    return fastnn.Sequential(*layers)


def torch_model(torch, name, weights_from=None):
    """PyTorch's twin; with `weights_from` (a fastnn model of the same net) its weights."""
    nn = torch.nn
    layers = []
    for spec in NETS[name]:
        kind = spec[0]
        if kind == "conv":
            layers.append(nn.Conv2d(spec[1], spec[2], spec[3], padding=spec[4]))
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "maxpool":
            layers.append(nn.MaxPool2d(spec[1]))
        elif kind == "flatten":
            layers.append(nn.Flatten())
        else:
            layers.append(nn.Linear(spec[1], spec[2]))
    net = nn.Sequential(*layers)
    if weights_from is None:
        weights_from = fastnn_model(name)
    state = {k: torch.from_numpy(np.array(v)) for k, v in weights_from.state_dict().items()}
    net.load_state_dict(state)
    return net


def fastnn_step(name, X, y, seed=0):
    """The manual loop as users write it: forward(training=True), the loss, backward(dY),
    SGD momentum."""
    model = fastnn_model(name, seed)
    opt = fastnn.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = fastnn.SoftmaxCrossEntropy()

    def step():
        out = model.forward(X, training=True)
        _loss, grad = loss_fn(out, y)
        model.backward(grad)
        opt.step()

    return step


def torch_step(torch, name, X, y, seed=0):
    """PyTorch's manual loop: zero_grad, forward, CrossEntropyLoss, backward, SGD momentum."""
    net = torch_model(torch, name, fastnn_model(name, seed))
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss_fn(net(Xt), yt).backward()
        opt.step()

    return step


def fastnn_infer(name, X, seed=0):
    model = fastnn_model(name, seed)
    return lambda: model.forward(X)


def torch_infer(torch, name, X, seed=0):
    net = torch_model(torch, name, fastnn_model(name, seed))
    net.eval()
    Xt = torch.from_numpy(X)

    def infer():
        with torch.inference_mode():
            return net(Xt)

    return infer


def check_twins(torch, name, batch=4, rtol=1e-4, atol=1e-5):
    """The fastnn and PyTorch models give the same outputs and, after one SGD step, the same
    weights (a sanity check of the twins, run by the benchmarks before timing)."""
    X, y = data(batch, seed=1)
    model = fastnn_model(name)
    net = torch_model(torch, name, model)
    with torch.no_grad():
        expected = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model.forward(X), expected, rtol=rtol, atol=atol)
    opt = fastnn.optim.SGD(model.parameters(), lr=LR, momentum=MOMENTUM)
    topt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
    _loss, grad = fastnn.SoftmaxCrossEntropy()(model.forward(X, training=True), y)
    model.backward(grad)
    opt.step()
    topt.zero_grad()
    torch.nn.CrossEntropyLoss()(net(torch.from_numpy(X)), torch.from_numpy(y)).backward()
    topt.step()
    theirs = net.state_dict()
    for key, value in model.state_dict().items():
        np.testing.assert_allclose(value, theirs[key].numpy(), rtol=rtol, atol=atol, err_msg=key)
