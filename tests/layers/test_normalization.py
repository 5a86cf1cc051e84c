"""BatchNorm1d (fastnn/layers/normalization.py): PyTorch's semantics (batch statistics,
running averages with unbiased variance, the cumulative average when momentum is None),
argument checks, agreement with torch.nn.BatchNorm1d in both directions, the state_dict
with num_batches_tracked, and float64 gradient checks in training mode."""

import numpy as np
import pytest

import fastnn
from fastnn import BatchNorm1d, Dense, Sequential
from helpers import assert_gradcheck, classification_batch, input_gradcheck


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_batchnorm_semantics(dtype):
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((32, 6)) * 3 + 2).astype(dtype)
    bn = BatchNorm1d(6, momentum=0.2, dtype=dtype)
    y = bn.forward(x, training=True)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.mean(axis=0), 0, atol=tol * 10)
    np.testing.assert_allclose(y.var(axis=0), 1 - 1e-5 / (x.var(axis=0) + 1e-5), rtol=tol * 10)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(bn.running_mean, 0.2 * x64.mean(axis=0), rtol=tol)
    np.testing.assert_allclose(bn.running_var, 0.8 + 0.2 * x64.var(axis=0, ddof=1), rtol=tol)
    assert int(bn.num_batches_tracked) == 1
    # eval uses the running statistics
    expect = (x64 - bn.running_mean) / np.sqrt(bn.running_var.astype(np.float64) + 1e-5)
    np.testing.assert_allclose(bn.forward(x, training=False), expect, rtol=tol * 10, atol=tol)
    with pytest.raises(ValueError, match="2 rows"):
        bn.forward(x[:1], training=True)


def test_batchnorm_cumulative_average_when_momentum_is_none():
    rng = np.random.default_rng(1)
    bn = BatchNorm1d(3, momentum=None, dtype=np.float64)
    xs = [rng.standard_normal((10, 3)) + i for i in range(4)]
    for x in xs:
        bn.forward(x, training=True)
    np.testing.assert_allclose(bn.running_mean, np.mean([x.mean(axis=0) for x in xs], axis=0))


def test_batchnorm_checks_arguments():
    for kwargs, match in (
        (dict(num_features=0), "num_features"),
        (dict(num_features=3, eps=-1), "eps"),
        (dict(num_features=3, momentum=1.5), "momentum"),
    ):
        with pytest.raises(ValueError, match=match):
            BatchNorm1d(**kwargs)
    with pytest.raises(ValueError, match="features"):
        Sequential(Dense(5, 4), BatchNorm1d(3))


def test_batchnorm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    tmodel = torch.nn.Sequential(
        torch.nn.Linear(5, 4),
        torch.nn.BatchNorm1d(4, momentum=0.3),
        torch.nn.ReLU(),
        torch.nn.Linear(4, 2),
    ).double()
    model = Sequential(
        Dense(5, 4), BatchNorm1d(4, momentum=0.3), fastnn.ReLU(), Dense(4, 2), dtype=np.float64
    )
    with torch.no_grad():
        tmodel[1].weight.uniform_(0.5, 1.5)
        tmodel[1].bias.uniform_(-0.5, 0.5)
    model.load_state_dict(tmodel.state_dict())
    for _step in range(3):
        x = rng.standard_normal((12, 5)) * 2
        tx = torch.tensor(x, requires_grad=True)
        tout = tmodel.train()(tx)
        dy = rng.standard_normal(tout.shape)
        tout.backward(torch.tensor(dy))
        out = model.forward(x, training=True)
        dx = model.backward(dy, input_grad=True)
        np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-9, atol=1e-12)
        for p in model.parameters():
            tp = dict(tmodel.named_parameters())[p.name]
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-9, atol=1e-12)
            tp.grad = None
    sd = model.state_dict()
    for k, v in tmodel.state_dict().items():
        np.testing.assert_allclose(sd[k], v.numpy(), rtol=1e-12)
    x = rng.standard_normal((7, 5))
    np.testing.assert_allclose(
        model.forward(x), tmodel.eval()(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12
    )
    # and back: fastnn's state_dict, num_batches_tracked included, loads into torch
    tmodel.load_state_dict({k: torch.tensor(v) for k, v in model.state_dict().items()})


def test_batchnorm_state_dict_round_trip_without_torch():
    bn_model = Sequential(Dense(3, 4), BatchNorm1d(4))
    bn_model.forward(np.random.default_rng(0).standard_normal((8, 3)), training=True)
    sd = bn_model.state_dict()
    assert sd["1.num_batches_tracked"].dtype == np.int64 and int(sd["1.num_batches_tracked"]) == 1
    fresh = Sequential(Dense(3, 4), BatchNorm1d(4))
    fresh.load_state_dict(sd)
    for k, v in fresh.state_dict().items():
        np.testing.assert_array_equal(v, sd[k])
    # num_batches_tracked is optional
    fresh.load_state_dict({k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")})
    assert fresh[1].num_batches_tracked.dtype == np.int64


def test_gradcheck_batchnorm_training_mode():
    X, y = classification_batch()
    bn = BatchNorm1d(4)
    model = Sequential(Dense(5, 4, rng=0), bn, fastnn.Tanh(), Dense(4, 3, rng=1), dtype=np.float64)
    # non-trivial affine parameters so their gradients matter
    bn.weight.data[...] = [0.5, 1.5, -1.0, 2.0]
    bn.bias.data[...] = [0.1, -0.2, 0.3, 0.0]
    running = bn.running_mean.copy()
    assert_gradcheck(model, X, y)
    np.testing.assert_array_equal(bn.running_mean, running)  # the user's model is untouched


def test_gradcheck_batchnorm_without_affine_and_input_gradient():
    X, y = classification_batch()
    model = Sequential(
        Dense(5, 4, rng=0),
        BatchNorm1d(4, affine=False),
        fastnn.ReLU(),
        Dense(4, 3, rng=1),
        dtype=np.float64,
    )
    assert_gradcheck(model, X, y)
    input_gradcheck(BatchNorm1d(5, dtype=np.float64), X)


# ---- BatchNorm2d ---------------------------------------------------------------------------

IMAGE_SHAPES = [(4, 3, 5, 5), (2, 1, 7, 3), (1, 4, 3, 2), (8, 2, 1, 1), (3, 5, 9, 13)]


@pytest.mark.parametrize("shape", IMAGE_SHAPES, ids=str)
@pytest.mark.parametrize("affine", (True, False))
def test_batchnorm2d_matches_torch(shape, affine):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    c = shape[1]
    tbn = torch.nn.BatchNorm2d(c, momentum=0.3, affine=affine).double()
    bn = fastnn.BatchNorm2d(c, momentum=0.3, affine=affine, dtype=np.float64)
    if affine:
        with torch.no_grad():
            tbn.weight.uniform_(0.5, 1.5)
            tbn.bias.uniform_(-0.5, 0.5)
    bn.load_state_dict({k: v.numpy() for k, v in tbn.state_dict().items()})
    for _step in range(3):
        x = rng.standard_normal(shape) * 2 + 1
        tx = torch.tensor(x, requires_grad=True)
        tout = tbn.train()(tx)
        dy = rng.standard_normal(shape)
        tout.backward(torch.tensor(dy))
        np.testing.assert_allclose(
            bn.forward(x, training=True), tout.detach().numpy(), rtol=1e-10, atol=1e-12
        )
        np.testing.assert_allclose(bn.backward(dy), tx.grad.numpy(), rtol=1e-10, atol=1e-11)
        for p in bn.parameters():
            tp = dict(tbn.named_parameters())[p.name]
            np.testing.assert_allclose(p.grad, tp.grad.numpy(), rtol=1e-10, atol=1e-11)
            tp.grad = None
    for k, v in tbn.state_dict().items():
        np.testing.assert_allclose(bn.state_dict()[k], v.numpy(), rtol=1e-12)
    x = rng.standard_normal(shape)
    np.testing.assert_allclose(
        bn.forward(x), tbn.eval()(torch.tensor(x)).detach().numpy(), rtol=1e-10, atol=1e-12
    )
    assert bn.state_dict().keys() == tbn.state_dict().keys()
    tbn.load_state_dict({k: torch.tensor(v) for k, v in bn.state_dict().items()})


def _numeric_param_grad(layer, x, w, param, eps=1e-6):
    """Central differences of sum(w * layer(x)) (training forward) in each entry of param."""
    g = np.empty_like(param.data)
    for i in np.ndindex(param.data.shape):
        keep = param.data[i]
        param.data[i] = keep + eps
        up = (layer.forward(x, training=True) * w).sum()
        param.data[i] = keep - eps
        down = (layer.forward(x, training=True) * w).sum()
        param.data[i] = keep
        g[i] = (up - down) / (2 * eps)
    return g


@pytest.mark.parametrize("affine", (True, False))
def test_batchnorm2d_gradients_against_finite_differences(affine):
    # fastnn.gradcheck checks models of 2-D inputs; BatchNorm2d takes images, so its input
    # and parameter gradients are checked here against central differences directly.
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 2, 3, 4)) * 2 + 1
    bn = fastnn.BatchNorm2d(2, affine=affine, momentum=None, dtype=np.float64)
    if affine:
        bn.weight.data[...] = [0.7, -1.3]
        bn.bias.data[...] = [0.2, -0.1]
    input_gradcheck(bn, x)
    w = rng.standard_normal(x.shape)
    bn.forward(x, training=True)
    bn.backward(w)
    for p in bn.parameters():
        np.testing.assert_allclose(
            p.grad, _numeric_param_grad(bn, x, w, p), rtol=1e-6, atol=1e-8, err_msg=p.name
        )


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_batchnorm2d_semantics_and_checks(dtype):
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((6, 3, 4, 5)) * 3 + 2).astype(dtype)
    bn = fastnn.BatchNorm2d(3, momentum=0.2, dtype=dtype)
    y = bn.forward(x, training=True)
    assert y.dtype == dtype and y.shape == x.shape
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0, atol=tol * 10)
    x64 = x.astype(np.float64)
    np.testing.assert_allclose(bn.running_mean, 0.2 * x64.mean(axis=(0, 2, 3)), rtol=tol)
    np.testing.assert_allclose(
        bn.running_var, 0.8 + 0.2 * x64.var(axis=(0, 2, 3), ddof=1), rtol=tol
    )
    assert bn.output_features(3) == 3
    assert repr(bn) == "BatchNorm2d(3, eps=1e-05, momentum=0.2, affine=True)"
    assert bn.get_config()["num_features"] == 3
    with pytest.raises(ValueError, match="BatchNorm2d expects 3 channels, got 4"):
        bn.output_features(4)
    with pytest.raises(ValueError, match=r"expects 3 channels, got shape \(6, 4, 4, 5\)"):
        bn.forward(np.zeros((6, 4, 4, 5), dtype))
    with pytest.raises(ValueError, match=r"images of shape \(N, C, H, W\)"):
        bn.forward(np.zeros((6, 3), dtype))
    with pytest.raises(ValueError, match="2 values"):
        bn.forward(np.zeros((1, 3, 1, 1), dtype), training=True)
    with pytest.raises(RuntimeError, match="BatchNorm2d.backward called before"):
        fastnn.BatchNorm2d(3).backward(np.zeros((2, 3, 2, 2)))
    for kwargs, match in (
        (dict(num_features=0), "num_features"),
        (dict(num_features=3, eps=-1), "eps"),
        (dict(num_features=3, momentum=1.5), "momentum"),
        (dict(num_features=3, dtype=np.int32), "dtype"),
    ):
        with pytest.raises((ValueError, TypeError), match=match):
            fastnn.BatchNorm2d(**kwargs)
