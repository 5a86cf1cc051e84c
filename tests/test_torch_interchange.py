"""PyTorch interchange without fastnn importing torch: a torch nn.Sequential state_dict loads
into the equivalent fastnn model, and a fastnn state_dict loads back into torch with
``{k: torch.from_numpy(v)}`` (num_batches_tracked included). Skipped without torch."""

import numpy as np
import pytest

import fastnn

torch = pytest.importorskip("torch")
nn = torch.nn


def _pair(dtype=np.float32):
    net = nn.Sequential(
        nn.Linear(5, 8),
        nn.BatchNorm1d(8),
        nn.ReLU(),
        nn.Linear(8, 6),
        nn.Tanh(),
        nn.LeakyReLU(0.2),
        nn.Dropout(0.1),
        nn.Linear(6, 4),
        nn.Sigmoid(),
        nn.Linear(4, 3),
        nn.Softmax(dim=-1),
    )
    model = fastnn.Sequential(
        fastnn.Dense(5, 8),
        fastnn.BatchNorm1d(8),
        fastnn.ReLU(),
        fastnn.Dense(8, 6),
        fastnn.Tanh(),
        fastnn.LeakyReLU(0.2),
        fastnn.Dropout(0.1),
        fastnn.Dense(6, 4),
        fastnn.Sigmoid(),
        fastnn.Dense(4, 3),
        fastnn.Softmax(),
        dtype=dtype,
    )
    return net, model


def test_torch_to_fastnn():
    torch.manual_seed(0)
    net, model = _pair()
    x = torch.randn(16, 5)
    net.train()
    for _ in range(3):  # non-trivial running statistics and num_batches_tracked
        net(x)
    net.eval()
    model.load_state_dict(net.state_dict())
    with torch.no_grad():
        expected = net(x).numpy()
    np.testing.assert_allclose(model.predict(x.numpy()), expected, rtol=1e-5, atol=1e-6)
    assert int(model.state_dict()["1.num_batches_tracked"]) == 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fastnn_to_torch(dtype):
    net, model = _pair(dtype)
    X = np.random.default_rng(0).normal(size=(32, 5))
    loss, opt = fastnn.SoftmaxCrossEntropy(), fastnn.optim.Adam(model.parameters())
    model.fit(X, np.arange(32) % 3, loss=loss, optimizer=opt, epochs=2, batch_size=8, seed=0)
    state = model.state_dict()
    assert state["1.num_batches_tracked"].dtype == np.int64
    result = net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    assert not result.missing_keys and not result.unexpected_keys
    net.eval()
    with torch.no_grad():
        out = net(torch.from_numpy(X.astype(np.float32))).numpy()
    np.testing.assert_allclose(out, model.predict(X), rtol=1e-5, atol=1e-6)
    assert int(net[1].num_batches_tracked) == int(state["1.num_batches_tracked"]) == 8


def test_sklearn_estimator_weights_to_torch():
    pytest.importorskip("sklearn")
    from fastnn.sklearn import MLPClassifier

    X, y = fastnn.load_digits()
    X = X / 16
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=5, random_state=0).fit(X, y)
    net = nn.Sequential(nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    net.load_state_dict({k: torch.from_numpy(v) for k, v in clf.model_.state_dict().items()})
    with torch.no_grad():
        proba = torch.softmax(net(torch.from_numpy(X)), dim=1).numpy()
    np.testing.assert_allclose(proba, clf.predict_proba(X), atol=1e-5)


def test_fastnn_never_imports_torch():
    import subprocess
    import sys

    code = (
        "import sys, fastnn, numpy as np\n"
        "m = fastnn.Sequential(fastnn.Dense(2, 2))\n"
        "m.load_state_dict({k: v for k, v in m.state_dict().items()})\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "False"


# ---- convolutional networks ------------------------------------------------------------


def _cnn_pair(dtype=np.float32):
    """The same CNN in torch and fastnn: convolutions with and without bias, groups,
    "same" padding with an even kernel, both pools (count_include_pad both ways), a
    trained BatchNorm2d, Flatten and Linear."""
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.BatchNorm2d(8),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, stride=(1, 2), groups=4, bias=False, dilation=(2, 1), padding=2),
        nn.LeakyReLU(0.1),
        nn.AvgPool2d(2, padding=1),
        nn.Conv2d(8, 6, 4, padding="same"),
        nn.BatchNorm2d(6, affine=False),
        nn.Tanh(),
        nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        nn.Flatten(),
        nn.Linear(6 * 2 * 1, 5),
        nn.ReLU(),
        nn.Linear(5, 3, bias=False),
    )
    model = fastnn.Sequential(
        fastnn.Conv2d(3, 8, 3, padding=1),
        fastnn.BatchNorm2d(8),
        fastnn.ReLU(),
        fastnn.MaxPool2d(2),
        fastnn.Conv2d(8, 8, 3, stride=(1, 2), groups=4, bias=False, dilation=(2, 1), padding=2),
        fastnn.LeakyReLU(0.1),
        fastnn.AvgPool2d(2, padding=1),
        fastnn.Conv2d(8, 6, 4, padding="same"),
        fastnn.BatchNorm2d(6, affine=False),
        fastnn.Tanh(),
        fastnn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
        fastnn.Flatten(),
        fastnn.Dense(6 * 2 * 1, 5),
        fastnn.ReLU(),
        fastnn.Dense(5, 3, bias=False),
        dtype=dtype,
    )
    return net.to(torch.float64 if dtype == np.float64 else torch.float32), model


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_torch_cnn_to_fastnn(dtype):
    torch.manual_seed(0)
    net, model = _cnn_pair(dtype)
    x = torch.randn(6, 3, 10, 9, dtype=torch.float64 if dtype == np.float64 else torch.float32)
    net.train()
    for k in range(3):  # non-trivial running statistics and num_batches_tracked
        net(x * (k + 1) + k)
    with torch.no_grad():
        net[1].weight.uniform_(0.5, 2.0)
        net[1].bias.normal_()
    net.eval()
    state = net.state_dict()
    model.load_state_dict(state)
    with torch.no_grad():
        expected = net(x).numpy()
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == np.float64 else {"rtol": 1e-4, "atol": 1e-5}
    np.testing.assert_allclose(model.predict(x.numpy()), expected, **tol)
    mine = model.state_dict()
    assert mine.keys() == state.keys()
    for key in state:
        np.testing.assert_array_equal(mine[key], state[key].numpy())
    assert int(mine["1.num_batches_tracked"]) == int(mine["8.num_batches_tracked"]) == 3


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fastnn_cnn_to_torch(dtype):
    net, model = _cnn_pair(dtype)
    X = np.random.default_rng(0).normal(size=(16, 3, 10, 9))
    loss, opt = fastnn.SoftmaxCrossEntropy(), fastnn.optim.Adam(model.parameters())
    model.fit(X, np.arange(16) % 3, loss=loss, optimizer=opt, epochs=2, batch_size=8, seed=0)
    state = model.state_dict()
    assert state["1.num_batches_tracked"].dtype == np.int64
    result = net.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    assert not result.missing_keys and not result.unexpected_keys
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value.numpy(), state[key])
    net.eval()
    with torch.no_grad():
        out = net(torch.from_numpy(X.astype(dtype))).numpy()
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == np.float64 else {"rtol": 1e-4, "atol": 1e-5}
    np.testing.assert_allclose(out, model.predict(X), **tol)
    assert int(net[1].num_batches_tracked) == int(net[8].num_batches_tracked) == 4
