"""Dropout, BatchNorm1d, Maxout, Standardize, the l1/l2 penalties and fastnn.gradcheck:
central-difference gradient checks in float64, statistics, PyTorch semantics and the
layer protocol (get_config, state_dict, dtype, repr)."""
import json

import numpy as np
import pytest

import fastnn
from fastnn import BatchNorm1d, Dense, Dropout, Maxout, Sequential, Standardize

CE = fastnn.SoftmaxCrossEntropy()


def batch(n=16, d=5, k=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * 2 + 1, rng.integers(0, k, n)


def assert_gradcheck(model, X, y, loss=CE, tol=1e-6):
    errors = fastnn.gradcheck(model, X, y, loss)
    assert set(errors) == {p.name for p in model.parameters()}
    worst = max(errors.values())
    assert worst < tol, errors


def input_gradcheck(layer, x, eps=1e-6):
    """The layer's input gradient against central differences of sum(w * layer(x))."""
    rng = np.random.default_rng(1)
    w = rng.standard_normal(layer.forward(x, training=True).shape)
    layer.forward(x, training=True)
    analytic = layer.backward(w)
    numeric = np.empty_like(x)
    for idx in np.ndindex(x.shape):
        xp, xm = x.copy(), x.copy()
        xp[idx] += eps
        xm[idx] -= eps
        numeric[idx] = ((layer.forward(xp, training=True) * w).sum()
                        - (layer.forward(xm, training=True) * w).sum()) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


# ---- gradient checks (float64 central differences) --------------------------------------------

def test_gradcheck_dense_with_l1_l2():
    X, y = batch()
    model = Sequential(Dense(5, 4, l1=0.01, l2=0.05, rng=0), fastnn.Tanh(),
                       Dense(4, 3, l2=0.1, rng=1), dtype=np.float64)
    assert_gradcheck(model, X, y)


def test_gradcheck_batchnorm_training_mode():
    X, y = batch()
    bn = BatchNorm1d(4)
    model = Sequential(Dense(5, 4, rng=0), bn, fastnn.Tanh(), Dense(4, 3, rng=1), dtype=np.float64)
    # non-trivial affine parameters so their gradients matter
    bn.weight.data[...] = [0.5, 1.5, -1.0, 2.0]
    bn.bias.data[...] = [0.1, -0.2, 0.3, 0.0]
    running = bn.running_mean.copy()
    assert_gradcheck(model, X, y)
    np.testing.assert_array_equal(bn.running_mean, running)  # the user's model is untouched


def test_gradcheck_batchnorm_without_affine_and_input_gradient():
    X, y = batch()
    model = Sequential(Dense(5, 4, rng=0), BatchNorm1d(4, affine=False), fastnn.ReLU(),
                       Dense(4, 3, rng=1), dtype=np.float64)
    assert_gradcheck(model, X, y)
    input_gradcheck(BatchNorm1d(5, dtype=np.float64), X)


def test_gradcheck_maxout():
    X, y = batch()
    model = Sequential(Maxout(5, 4, 3, rng=0), Maxout(4, 3, 2, rng=1), dtype=np.float64)
    assert_gradcheck(model, X, y)
    input_gradcheck(Maxout(5, 2, 3, rng=2, dtype=np.float64), X)


def test_gradcheck_dropout_with_fixed_mask():
    X, y = batch()
    model = Sequential(Dense(5, 6, rng=0), fastnn.ReLU(), Dropout(0.4, rng=7), Dense(6, 3, rng=1),
                       dtype=np.float64)
    assert_gradcheck(model, X, y)
    layer = Dropout(0.3, rng=3)
    layer.forward(X, training=True)
    # a fixed mask makes dropout linear: its backward is the same masked scaling
    np.testing.assert_array_equal(layer.backward(np.ones_like(X)), layer._mask / 0.7)


def test_gradcheck_standardize_and_float32_model():
    X, y = batch()
    model = Sequential(Standardize().adapt(X), Dense(5, 4, rng=0), fastnn.Sigmoid(),
                       Dense(4, 3, rng=1))  # float32: gradcheck works on a float64 copy
    assert model.dtype == np.float32
    assert_gradcheck(model, X, y)
    assert model[1].weight.data.dtype == np.float32
    std = Standardize(mean=[1, 2, 3, 4, 5], std=[2, 0, 1, 3, 0.5])
    input_gradcheck(std, X)


def test_gradcheck_mse_and_every_toolbox_layer():
    X, _ = batch()
    t = np.random.default_rng(5).standard_normal((16, 2))
    model = Sequential(Standardize().adapt(X), Maxout(5, 6, 2, rng=0), BatchNorm1d(6),
                       Dropout(0.25, rng=2), Dense(6, 2, l1=0.01, l2=0.01, rng=1),
                       dtype=np.float64)
    assert_gradcheck(model, X, t, fastnn.MSELoss())


class _BrokenDense(Dense):
    """A Dense whose weight gradient is 1% off (the leading underscore keeps it out of the
    layer registry)."""

    def backward(self, dy):
        dx = super().backward(dy)
        self.weight.grad *= 1.01
        return dx


def test_gradcheck_finds_a_wrong_gradient():
    X, y = batch()
    errors = fastnn.gradcheck(Sequential(_BrokenDense(5, 3, rng=0), dtype=np.float64), X, y, CE)
    assert errors["0.weight"] > 1e-3 and errors["0.bias"] < 1e-6


def test_gradcheck_checks_arguments():
    X, y = batch()
    with pytest.raises(TypeError, match="Sequential"):
        fastnn.gradcheck(Dense(5, 3), X, y, CE)
    with pytest.raises(ValueError, match="eps"):
        fastnn.gradcheck(Sequential(Dense(5, 3)), X, y, CE, eps=0)


# ---- Dropout ----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("p", (0.1, 0.5, 0.8))
def test_dropout_statistics(p, dtype):
    x = np.full((400, 500), 3.0, dtype)
    y = Dropout(p, rng=0).forward(x, training=True)
    assert y.dtype == dtype
    zeroed = np.mean(y == 0)
    assert abs(zeroed - p) < 0.01
    assert abs(y.mean() - 3.0) < 0.03 * 3 / (1 - p) ** 0.5
    np.testing.assert_allclose(y[y != 0], 3.0 / (1 - p), rtol=1e-6)


def test_dropout_eval_identity_and_edge_probabilities():
    x = np.random.default_rng(0).standard_normal((20, 7))
    keep = x.copy()
    np.testing.assert_array_equal(Dropout(0.5, rng=0).forward(x, training=False), keep)
    d0 = Dropout(0.0, rng=0)
    np.testing.assert_array_equal(d0.forward(x, training=True), keep)
    np.testing.assert_array_equal(d0.backward(x), keep)
    d1 = Dropout(1.0, rng=0)
    assert np.all(d1.forward(x, training=True) == 0) and np.all(d1.backward(x) == 0)
    np.testing.assert_array_equal(x, keep)  # never modifies its input
    for bad in (-0.1, 1.5, "half"):
        with pytest.raises(ValueError, match="p must"):
            Dropout(bad)


def test_dropout_reuses_mask_in_backward_and_is_seeded():
    x = np.ones((10, 10))
    a, b = Dropout(0.5, rng=42), Dropout(0.5, rng=42)
    ya, yb = a.forward(x, training=True), b.forward(x, training=True)
    np.testing.assert_array_equal(ya, yb)
    np.testing.assert_array_equal(a.backward(np.ones_like(x)) != 0, ya != 0)


def test_dropout_in_a_model_trains_and_predicts_deterministically():
    X, y = batch(64)
    model = Sequential(Dense(5, 16, rng=0), fastnn.ReLU(), Dropout(0.3, rng=0), Dense(16, 3, rng=1))
    model.fit(X, y, loss=CE, optimizer=fastnn.optim.Adam(model, lr=0.01), epochs=3, seed=0)
    np.testing.assert_array_equal(model.predict(X), model.predict(X))


# ---- BatchNorm1d ------------------------------------------------------------------------------

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
    for kwargs, match in ((dict(num_features=0), "num_features"), (dict(num_features=3, eps=-1), "eps"),
                          (dict(num_features=3, momentum=1.5), "momentum")):
        with pytest.raises(ValueError, match=match):
            BatchNorm1d(**kwargs)
    with pytest.raises(ValueError, match="features"):
        Sequential(Dense(5, 4), BatchNorm1d(3))


def test_batchnorm_matches_torch():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(2)
    tmodel = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.BatchNorm1d(4, momentum=0.3),
                                 torch.nn.ReLU(), torch.nn.Linear(4, 2)).double()
    model = Sequential(Dense(5, 4), BatchNorm1d(4, momentum=0.3), fastnn.ReLU(), Dense(4, 2),
                       dtype=np.float64)
    with torch.no_grad():
        tmodel[1].weight.uniform_(0.5, 1.5)
        tmodel[1].bias.uniform_(-0.5, 0.5)
    model.load_state_dict(tmodel.state_dict())
    for step in range(3):
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
    np.testing.assert_allclose(model.forward(x), tmodel.eval()(torch.tensor(x)).detach().numpy(),
                               rtol=1e-10, atol=1e-12)
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


# ---- Maxout -----------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_maxout_is_unit_major(dtype):
    rng = np.random.default_rng(0)
    layer = Maxout(4, 3, 2, dtype=dtype, rng=0)
    layer.bias.data[...] = rng.standard_normal(6)
    assert layer.weight.data.shape == (6, 4)
    x = rng.standard_normal((5, 4)).astype(dtype)
    z = x @ layer.weight.data.T + layer.bias.data
    expect = np.stack([z[:, 2 * j:2 * j + 2].max(axis=1) for j in range(3)], axis=1)
    y = layer.forward(x)
    assert y.dtype == dtype and y.shape == (5, 3)
    np.testing.assert_allclose(y, expect, rtol=1e-5)


def test_maxout_init_and_std():
    layer = Maxout(50, 20, 3, init="normal", std=0.5, rng=0, dtype=np.float64)
    assert abs(layer.weight.data.std() - 0.5) < 0.02
    assert np.all(Maxout(4, 2, 2, init="zeros").weight.data == 0)
    dense = Dense(50, 40, init="normal", std=0.2, rng=0)
    assert abs(dense.weight.data.std() - 0.2) < 0.02
    with pytest.raises(TypeError, match="std"):
        Maxout(4, 2, 2, init="he_uniform", std=0.1)
    with pytest.raises(ValueError, match="init"):
        Maxout(4, 2, 2, init="nope")
    with pytest.raises(ValueError, match="pieces"):
        Maxout(4, 2, 0)


# ---- Standardize ------------------------------------------------------------------------------

@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_standardize_adapt(dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 4)) * [1, 5, 0.1, 0] + [0, 10, -3, 7]
    layer = Standardize().adapt(X)
    model = Sequential(layer, Dense(4, 2), dtype=dtype)
    z = model[0].forward(X.astype(dtype))
    assert z.dtype == dtype
    np.testing.assert_allclose(z.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(axis=0)[:3], 1, rtol=1e-4)
    assert np.all(z[:, 3] == 0)  # constant feature: std 0 counts as 1, so it is only centred
    np.testing.assert_allclose(layer.std[3], 0)


def test_standardize_given_stats_state_dict_and_errors():
    layer = Standardize(mean=[1.0, 2.0], std=[2.0, 4.0])
    np.testing.assert_allclose(layer.forward(np.array([[3.0, 6.0]])), [[1.0, 1.0]])
    model = Sequential(layer, Dense(2, 1))
    sd = model.state_dict()
    assert set(sd) == {"0.mean", "0.std", "1.weight", "1.bias"}
    rebuilt = Sequential(Standardize(**model[0].get_config()), Dense(2, 1))
    rebuilt.load_state_dict(sd)
    np.testing.assert_array_equal(rebuilt[0].std, sd["0.std"])
    with pytest.raises(RuntimeError, match="adapt"):
        Standardize().forward(np.ones((2, 2)))
    with pytest.raises(ValueError, match="features"):
        Standardize(mean=[0, 0], std=[1, 1, 1])
    with pytest.raises(ValueError, match="std"):
        Standardize(std=[-1.0])
    with pytest.raises(ValueError, match="features"):
        layer.adapt(np.ones((3, 5)))


# ---- the layer protocol -----------------------------------------------------------------------

LAYERS = [
    lambda: Dropout(0.2),
    lambda: BatchNorm1d(4, eps=1e-3, momentum=None, affine=False, dtype=np.float64),
    lambda: BatchNorm1d(4),
    lambda: Maxout(4, 3, 2, bias=False),
    lambda: Standardize(mean=[0, 1, 2, 3], std=[1, 1, 2, 2]),
    lambda: Standardize(),
]


@pytest.mark.parametrize("make", LAYERS)
def test_get_config_rebuilds_the_layer(make):
    layer = make()
    config = layer.get_config()
    json.dumps(config)
    clone = fastnn.layers.get(type(layer).__name__)(**config)
    assert repr(clone) == repr(layer)
    assert {k: v.shape for k, v in clone.state_dict().items()} == \
        {k: v.shape for k, v in layer.state_dict().items()}
    assert [p.data.shape for p in clone.parameters()] == [p.data.shape for p in layer.parameters()]


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_model_dtype_reaches_every_toolbox_layer(dtype):
    X, y = batch(20, 4)
    model = Sequential(Standardize().adapt(X), Maxout(4, 5, 2), BatchNorm1d(5), Dropout(0.1, rng=0),
                       Dense(5, 3), dtype=dtype)
    out = model.forward(X, training=True)
    assert out.dtype == dtype
    model.backward(np.ones_like(out))
    for p in model.parameters():
        assert p.data.dtype == dtype and p.grad.dtype == dtype
    assert model[2].running_mean.dtype == dtype and model[0].mean.dtype == dtype
    assert model[2].num_batches_tracked.dtype == np.int64
    assert "Maxout(in_features=4, out_features=5, pieces=2, bias=True)" in repr(model)


def test_toolbox_model_trains():
    X, y = fastnn.load_digits()
    X, y = X[:600], y[:600]
    model = Sequential(Standardize().adapt(X), Maxout(64, 32, 2, rng=0), BatchNorm1d(32),
                       Dropout(0.2, rng=0), Dense(32, 10, rng=1))
    hist = model.fit(X, y, loss=CE, optimizer=fastnn.optim.AdamW(model, lr=0.01), epochs=8,
                     batch_size=32, seed=0, metrics=("accuracy",))
    assert hist.history["loss"][-1] < hist.history["loss"][0] / 3
    assert model.evaluate(X, y, loss=CE, metrics=("accuracy",))["accuracy"] > 0.95
