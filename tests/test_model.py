"""Sequential (fastnn/model.py): PyTorch's repr and state_dict keys, fused runs equal to the
layers run one by one, state_dict round trips and loading (PyTorch tensors included,
everything checked before anything is written), the dtype rules, the manual loop
(forward, backward, forward_backward, train_on_batch) and what it writes or leaves alone,
the products backward runs, and how the model follows arrays and scalars replaced between
steps."""

import itertools

import numpy as np
import pytest

import fastnn
from fastnn import BatchNorm1d, Dense, Dropout, Maxout, Sequential, Standardize, optim
from helpers import classification_batch, mlp


def test_repr_and_keys_follow_pytorch():
    model = mlp()
    assert repr(model).splitlines()[1] == "  (0): Dense(in_features=8, out_features=16, bias=True)"
    assert list(model.state_dict()) == [
        "0.weight",
        "0.bias",
        "2.weight",
        "2.bias",
        "4.weight",
        "4.bias",
    ]
    assert [p.name for p in model.parameters()] == list(model.state_dict())
    assert model[0].weight.data.shape == (16, 8)


def test_fused_equals_unfused(dtype, rng):
    """Sequential fuses Dense+activation; the result must equal running the layers one by one."""
    model = mlp(dtype)
    X = rng.standard_normal((11, 8))
    fused = model.forward(X, training=True)
    dfused = model.backward(np.ones_like(fused), input_grad=True)
    grads = [p.grad.copy() for p in model.parameters()]
    x = X.astype(dtype)
    for layer in model.layers:
        x = layer.forward(x, training=True)
    np.testing.assert_allclose(fused, x, rtol=1e-5)
    dy = np.ones_like(x)
    for layer in reversed(model.layers):
        dy = layer.backward(dy)
    np.testing.assert_allclose(dfused, dy, rtol=1e-5, atol=1e-6)
    for g, p in zip(grads, model.parameters()):
        np.testing.assert_allclose(g, p.grad, rtol=1e-5, atol=1e-6)


def test_backward_overwrites_gradients(rng):
    model = mlp()
    X = rng.standard_normal((4, 8))
    for _ in range(2):
        out = model.forward(X, training=True)
        model.backward(np.ones_like(out))
        grads = [p.grad.copy() for p in model.parameters()]
    out = model.forward(X, training=True)
    model.backward(np.ones_like(out))
    for g, p in zip(grads, model.parameters()):
        np.testing.assert_array_equal(g, p.grad)


def test_state_dict_round_trip(dtype, rng):
    a, b = mlp(dtype, seed=0), mlp(dtype, seed=10)
    X = rng.standard_normal((5, 8))
    assert not np.allclose(a(X), b(X))
    state = a.state_dict()
    b.load_state_dict(state)
    np.testing.assert_array_equal(a(X), b(X))
    state["0.weight"][...] = 0  # state_dict returns copies
    assert np.any(a[0].weight.data != 0)


def test_load_state_dict_errors():
    model = mlp()
    state = model.state_dict()
    with pytest.raises(ValueError, match="missing keys"):
        model.load_state_dict({k: v for k, v in state.items() if k != "0.bias"})
    with pytest.raises(ValueError, match="expected shape"):
        model.load_state_dict({**state, "0.weight": np.zeros((3, 3))})


def test_load_state_dict_checks_every_value_before_loading_any():
    model = fastnn.Sequential(fastnn.Dense(4, 5, rng=0), fastnn.ReLU(), fastnn.Dense(5, 3, rng=1))
    before = model.state_dict()
    bad = {k: v + 1 for k, v in before.items()}
    bad["2.weight"] = np.ones((3, 6))
    with pytest.raises(ValueError, match=r"'2\.weight'"):
        model.load_state_dict(bad)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


class FakeTensor:
    """What a torch CPU tensor offers: detach(), cpu() and the array protocol."""

    def __init__(self, array):
        self.array = array

    def detach(self):
        return self

    def cpu(self):
        return self

    def __array__(self, dtype=None, copy=None):
        return self.array if dtype is None else self.array.astype(dtype)


def test_tensor_like_values_load(rng):
    model = mlp()
    state = {k: FakeTensor(v * 2) for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    np.testing.assert_array_equal(model[0].weight.data, state["0.weight"].array)


def test_pytorch_state_dict_loads_with_same_outputs():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(10, 32), torch.nn.ReLU(), torch.nn.Linear(32, 4))
    model = fastnn.Sequential(fastnn.Dense(10, 32), fastnn.ReLU(), fastnn.Dense(32, 4))
    model.load_state_dict(net.state_dict())
    X = np.random.default_rng(0).standard_normal((7, 10)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(model(X), want, rtol=1e-5, atol=1e-6)


def test_dtype_rules(rng):
    model = fastnn.Sequential(fastnn.Dense(3, 2), fastnn.ReLU(), dtype=np.float64)
    assert model.dtype == np.float64 and model[0].weight.data.dtype == np.float64
    assert model([[1, 2, 3]]).dtype == np.float64  # int lists are converted
    with pytest.raises(TypeError, match="different dtypes"):
        fastnn.Sequential(fastnn.Dense(3, 2), fastnn.Dense(2, 2, dtype=np.float64))
    with pytest.raises(ValueError, match="layer 1"):
        fastnn.Sequential(fastnn.Dense(3, 2), fastnn.Dense(4, 2))


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_model_dtype_reaches_every_toolbox_layer(dtype):
    X, _y = classification_batch(20, 4)
    model = Sequential(
        Standardize().adapt(X),
        Maxout(4, 5, 2),
        BatchNorm1d(5),
        Dropout(0.1, rng=0),
        Dense(5, 3),
        dtype=dtype,
    )
    out = model.forward(X, training=True)
    assert out.dtype == dtype
    model.backward(np.ones_like(out))
    for p in model.parameters():
        assert p.data.dtype == dtype and p.grad.dtype == dtype
    assert model[2].running_mean.dtype == dtype and model[0].mean.dtype == dtype
    assert model[2].num_batches_tracked.dtype == np.int64
    assert "Maxout(in_features=4, out_features=5, pieces=2, bias=True)" in repr(model)


def test_input_not_modified(rng):
    model = mlp()
    X = rng.standard_normal((5, 8)).astype(np.float32)
    keep = X.copy()
    out = model.forward(X, training=True)
    model.backward(out)
    np.testing.assert_array_equal(X, keep)


def test_predict_batches_large_inputs(rng):
    model = mlp()
    X = rng.standard_normal((1000, 8)).astype(np.float32)
    np.testing.assert_allclose(model.predict(X, batch_size=128), model(X), rtol=1e-6)


def test_train_on_batch_equals_manual_step(rng):
    """fit's buffered step gives exactly the public forward/backward/step result."""
    X = rng.standard_normal((20, 8)).astype(np.float32)
    y = rng.integers(0, 3, 20)
    a, b = mlp(seed=0), mlp(seed=0)
    opt_a = optim.SGD(a, lr=0.1, momentum=0.9)
    opt_b = optim.SGD(b, lr=0.1, momentum=0.9)
    loss = fastnn.SoftmaxCrossEntropy()
    for batch in (slice(0, 8), slice(8, 16), slice(16, 20), slice(0, 8)):
        value, _ = a.train_on_batch(X[batch], y[batch], loss=loss, optimizer=opt_a)
        ref, grad = loss(b.forward(X[batch], training=True), y[batch])
        b.backward(grad)
        opt_b.step()
        assert value == ref
    for pa, pb in zip(a.parameters(), b.parameters()):
        np.testing.assert_array_equal(pa.data, pb.data)


def test_train_on_batch_with_a_user_loss(rng):
    X = rng.standard_normal((6, 8))
    t = rng.standard_normal((6, 3))

    def half_sq(out, target):
        return float(((out - target) ** 2).sum() / 2), out - target

    model = mlp(np.float64)
    before = model.evaluate(X, t, loss=fastnn.MSELoss())["loss"]
    for _ in range(20):
        model.train_on_batch(X, t, loss=half_sq, optimizer=optim.SGD(model, lr=0.01))
    assert model.evaluate(X, t, loss=fastnn.MSELoss())["loss"] < before


@pytest.mark.parametrize("user_loss", [False, True], ids=["fastnn-loss", "callable"])
def test_forward_backward_is_train_on_batch_without_the_step(user_loss, rng):
    """forward_backward leaves the gradients of backward after a training forward and
    returns the loss; train_on_batch is it followed by optimizer.step()."""
    X = rng.standard_normal((10, 8))
    y = rng.integers(0, 3, 10)
    sce = fastnn.SoftmaxCrossEntropy()
    loss = (lambda out, t: sce(out.copy(), t)) if user_loss else sce
    a, b, c = mlp(np.float64), mlp(np.float64), mlp(np.float64)
    weights = [p.data.copy() for p in a.parameters()]
    value, out = a.forward_backward(X, y, loss=loss)
    ref, grad = sce(b.forward(X, training=True), y)
    b.backward(grad)
    assert value == ref and isinstance(value, float)
    np.testing.assert_array_equal(out, b.forward(X, training=False))
    for pa, pb, w in zip(a.parameters(), b.parameters(), weights):
        np.testing.assert_array_equal(pa.grad, pb.grad)
        np.testing.assert_array_equal(pa.data, w)  # no update
    opt_a, opt_c = optim.SGD(a, lr=0.1), optim.SGD(c, lr=0.1)
    opt_a.step()
    assert c.train_on_batch(X, y, loss=loss, optimizer=opt_c)[0] == value
    for pa, pc in zip(a.parameters(), c.parameters()):
        np.testing.assert_array_equal(pa.data, pc.data)


def test_forward_backward_leaves_a_user_gradient_alone_and_checks_its_shape(rng):
    X = rng.standard_normal((4, 8))
    # The last Dense runs with its activation fused: the derivative could go over dy.
    model = fastnn.Sequential(fastnn.Dense(8, 3, rng=0, dtype=np.float64), fastnn.Tanh())
    given = []

    def loss(out, t):
        given.append(np.ones_like(out))
        return 1.0, given[-1]

    model.forward_backward(X, None, loss=loss)
    np.testing.assert_array_equal(given[0], 1.0)
    with pytest.raises(ValueError, match=r"loss gradient must have the output's shape \(4, 3\)"):
        model.forward_backward(X, None, loss=lambda out, t: (1.0, np.ones((4, 2))))


def _gemm_flops(fn):
    from fastnn import kernels

    before = kernels.gemm_flop_count()
    result = fn()
    return kernels.gemm_flop_count() - before, result


@pytest.mark.parametrize(
    "front",
    [
        (),
        (fastnn.Standardize(np.zeros(8), np.ones(8)),),
        (fastnn.Dropout(0.2, rng=0), fastnn.Identity()),
    ],
)
def test_backward_runs_no_input_gradient_product_unless_asked(front, rng):
    """The manual loop's backward does exactly the products of the FLOP floor: forward, every
    weight gradient, the input gradients of all Dense layers but the first. Layers without
    parameters in front of the first Dense are not backpropagated at all."""
    m, widths = 16, [8, 16, 16, 3]
    model = fastnn.Sequential(*front, *mlp().layers)
    X = rng.standard_normal((m, 8))
    fwd, out = _gemm_flops(lambda: model.forward(X, training=True))
    dY = rng.standard_normal(out.shape)
    products = list(itertools.pairwise(widths))
    assert fwd == sum(2 * m * k * n for k, n in products)
    bwd, dx = _gemm_flops(lambda: model.backward(dY))
    assert dx is None
    weight_grads = sum(2 * m * k * n for k, n in products)
    hidden_input_grads = sum(2 * m * k * n for k, n in products[1:])
    assert bwd == weight_grads + hidden_input_grads
    bwd, dx = _gemm_flops(lambda: model.backward(dY, input_grad=True))
    assert bwd == weight_grads + hidden_input_grads + 2 * m * 8 * 16
    assert dx.shape == X.shape


def test_input_gradient_matches_finite_differences():
    model = fastnn.Sequential(
        fastnn.Standardize(np.full(4, 0.5), np.full(4, 2.0)),
        fastnn.Dense(4, 5, rng=0),
        fastnn.Tanh(),
        fastnn.Dense(5, 2, rng=1),
        dtype=np.float64,
    )
    X = np.random.default_rng(3).standard_normal((3, 4))
    W = np.random.default_rng(4).standard_normal((3, 2))

    def f(x):
        return float((model.forward(x, training=True) * W).sum())

    model.forward(X, training=True)
    dx = model.backward(W, input_grad=True)
    numeric = np.zeros_like(X)
    for idx in np.ndindex(*X.shape):
        e = np.zeros_like(X)
        e[idx] = 1e-6
        numeric[idx] = (f(X + e) - f(X - e)) / 2e-6
    np.testing.assert_allclose(dx, numeric, rtol=1e-7, atol=1e-9)


def test_manual_loop_results_survive_the_next_step(rng):
    """forward's output and backward's input gradient are the caller's: the buffers the
    model reuses between steps never hold them."""
    model = fastnn.Sequential(*mlp().layers, fastnn.Dropout(0.0))
    X1, X2 = rng.standard_normal((2, 6, 8))
    out1 = model.forward(X1, training=True)
    dY = np.ones_like(out1)
    keep_out, keep_dY = out1.copy(), dY.copy()
    dx1 = model.backward(dY, input_grad=True)
    keep_dx = dx1.copy()
    model.forward(X2, training=True)
    model.backward(np.full_like(out1, 2.0), input_grad=True)
    model.train_on_batch(
        X2,
        [0, 1, 2, 0, 1, 2],
        loss=fastnn.SoftmaxCrossEntropy(),
        optimizer=optim.SGD(model, lr=0.0),
    )
    np.testing.assert_array_equal(out1, keep_out)
    np.testing.assert_array_equal(dx1, keep_dx)
    np.testing.assert_array_equal(dY, keep_dY)


def test_backward_never_writes_over_the_callers_gradient(rng):
    """A layer that passes the gradient through unchanged (Dropout(0), Identity) hands the
    caller's dY to the Dense below it, which must not use it as scratch space."""
    for tail in ((fastnn.Dropout(0.0),), (fastnn.Dropout(0.0), fastnn.Identity())):
        model = fastnn.Sequential(fastnn.Dense(8, 4, rng=0), fastnn.ReLU(), *tail)
        out = model.forward(rng.standard_normal((5, 8)), training=True)
        dY = rng.standard_normal(out.shape).astype(np.float32)
        keep = dY.copy()
        model.backward(dY)
        np.testing.assert_array_equal(dY, keep)


def _step_grads(model, X, dY):
    model.forward(X, training=True)
    model.backward(dY)
    return [p.grad.copy() for p in model.parameters()]


def test_replaced_arrays_and_scalars_reach_the_compiled_chain(rng):
    """The model keeps its Dense layers' arrays between steps: a replaced Parameter array,
    l1/l2 or negative slope must be used from the next call on, as a fresh model would."""
    X = rng.standard_normal((5, 8))
    model = fastnn.Sequential(
        fastnn.Dense(8, 6, rng=0),
        fastnn.LeakyReLU(0.1),
        fastnn.Dense(6, 3, rng=1),
        dtype=np.float64,
    )
    dY = rng.standard_normal((5, 3))
    model.forward(X)
    new_weight = rng.standard_normal((6, 8))
    model[0].weight.data = new_weight.copy()  # replaced, not written into
    model[2].l2 = 0.3
    model[1].negative_slope = -0.5  # no longer fusable: LeakyReLU runs on its own
    fresh = fastnn.Sequential(
        fastnn.Dense(8, 6, rng=0),
        fastnn.LeakyReLU(-0.5),
        fastnn.Dense(6, 3, rng=1, l2=0.3),
        dtype=np.float64,
    )
    fresh[0].weight.data[...] = new_weight
    np.testing.assert_array_equal(model.forward(X), fresh.forward(X))
    for g, f in zip(_step_grads(model, X, dY), _step_grads(fresh, X, dY)):
        np.testing.assert_allclose(g, f, rtol=1e-12, atol=1e-14)
    # A gradient array replaced between forward and backward receives the gradient.
    model.forward(X, training=True)
    model[2].weight.grad = np.zeros((3, 6))
    model.backward(dY)
    np.testing.assert_allclose(model[2].weight.grad, fresh[2].weight.grad, rtol=1e-12)


def test_writes_in_place_keep_the_plan(rng):
    """Optimizers and load_state_dict write into the arrays: the plan stays as it is."""
    model, other = mlp(), mlp(seed=5)
    X, y = rng.standard_normal((6, 8)), rng.integers(0, 3, 6)
    adam, sgd, loss = optim.Adam(model), optim.SGD(model, lr=0.1), fastnn.SoftmaxCrossEntropy()
    model.train_on_batch(X, y, loss=loss, optimizer=adam)
    token = fastnn.layers.plan_token()
    model.train_on_batch(X, y, loss=loss, optimizer=sgd)
    model.load_state_dict(other.state_dict())
    assert fastnn.layers.plan_token() is token
    np.testing.assert_array_equal(model.forward(X), other.forward(X))


def test_layers_shared_with_a_model_of_another_dtype(rng):
    """Sequential(dtype=...) converts the layers it is given, replacing their arrays: a model
    that shares them sees the new arrays (and says their dtype is not its own) rather than
    go on with the old ones."""
    layers = mlp().layers
    first = fastnn.Sequential(*layers)
    X = rng.standard_normal((4, 8))
    first.forward(X)
    fastnn.Sequential(*layers, dtype=np.float64)
    with pytest.raises(TypeError, match=r"steps\[0\].weight has dtype float64, expected float32"):
        first.forward(X)
    # The same Dense twice cannot keep two gradients in one array: refused, not summed wrong.
    dense = fastnn.Dense(4, 4, rng=0)
    tied = fastnn.Sequential(dense, fastnn.ReLU(), dense)
    tied.forward(rng.standard_normal((3, 4)), training=True)
    with pytest.raises(ValueError, match=r"steps\[0\].(weight|bias)_grad overlaps steps\[1\]"):
        tied.backward(np.ones((3, 4)))


def test_pickled_model_trains_its_own_arrays(rng):
    import pickle

    model = mlp()
    X, y = rng.standard_normal((6, 8)), rng.integers(0, 3, 6)
    model.train_on_batch(X, y, loss=fastnn.SoftmaxCrossEntropy(), optimizer=optim.SGD(model, 0.1))
    twin = pickle.loads(pickle.dumps(model))
    opt = optim.SGD(twin, lr=0.1)
    before = [p.data.copy() for p in model.parameters()]
    twin.train_on_batch(X, y, loss=fastnn.SoftmaxCrossEntropy(), optimizer=opt)
    for p, b in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, b)
    assert any(not np.array_equal(p.data, b) for p, b in zip(twin.parameters(), before))
