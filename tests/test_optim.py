"""The optimizers (fastnn/optim.py) against a NumPy statement of PyTorch's published update
rules (the algorithm boxes of torch.optim's documentation), over 20 steps, for every
argument; state_dict resumes bit for bit; bad hyperparameters are named; clip_grad_norm;
optim.get; Adam's one-call update and its independence of the thread count."""

import numpy as np
import pytest

import fastnn
from fastnn import optim
from fastnn.layers import Parameter
from helpers import mlp

SHAPES = ((3, 4), (5,))


def grad_fn(p, c):
    """The gradient of sum(c p^2 / 2 + sin p): curved, and different for every entry."""
    return c * p + np.cos(p)


# ---- the reference: PyTorch's algorithms, written out in float64 ---------------------------


def ref_sgd(p, g, st, t, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
    g = g + weight_decay * p
    if momentum:
        st["b"] = g if t == 1 else momentum * st["b"] + (1 - dampening) * g
        g = g + momentum * st["b"] if nesterov else st["b"]
    return p - lr * g


def ref_adagrad(
    p, g, st, t, lr=0.01, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10
):
    clr = lr / (1 + (t - 1) * lr_decay)
    g = g + weight_decay * p
    st["sum"] = st.get("sum", np.full_like(p, initial_accumulator_value)) + g * g
    return p - clr * g / (np.sqrt(st["sum"]) + eps)


def ref_rmsprop(
    p, g, st, t, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False
):
    g = g + weight_decay * p
    st["v"] = alpha * st.get("v", 0.0) + (1 - alpha) * g * g
    v = st["v"]
    if centered:
        st["ga"] = alpha * st.get("ga", 0.0) + (1 - alpha) * g
        v = v - st["ga"] ** 2
    if momentum > 0:
        st["b"] = momentum * st.get("b", 0.0) + g / (np.sqrt(v) + eps)
        return p - lr * st["b"]
    return p - lr * g / (np.sqrt(v) + eps)


def ref_adam(
    p, g, st, t, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, decoupled=False
):
    b1, b2 = betas
    if decoupled:
        p = p * (1 - lr * weight_decay)
    else:
        g = g + weight_decay * p
    st["m"] = b1 * st.get("m", 0.0) + (1 - b1) * g
    st["v"] = b2 * st.get("v", 0.0) + (1 - b2) * g * g
    mhat = st["m"] / (1 - b1**t)
    vhat = st["v"] / (1 - b2**t)
    return p - lr * mhat / (np.sqrt(vhat) + eps)


def ref_adamw(p, g, st, t, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
    return ref_adam(p, g, st, t, lr, betas, eps, weight_decay, decoupled=True)


CASES = [
    (optim.SGD, ref_sgd, dict(lr=0.05)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.9, dampening=0.5, weight_decay=0.1)),
    (optim.SGD, ref_sgd, dict(lr=0.05, momentum=0.8, nesterov=True)),
    (optim.Adagrad, ref_adagrad, dict()),
    (optim.Adagrad, ref_adagrad, dict(lr=0.3, lr_decay=0.1)),
    (
        optim.Adagrad,
        ref_adagrad,
        dict(lr=0.2, weight_decay=0.1, initial_accumulator_value=0.5, eps=1e-3),
    ),
    (optim.RMSprop, ref_rmsprop, dict()),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.02, alpha=0.9, eps=1e-3, weight_decay=0.1)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01, momentum=0.9)),
    (optim.RMSprop, ref_rmsprop, dict(lr=0.01, centered=True)),
    (
        optim.RMSprop,
        ref_rmsprop,
        dict(lr=0.01, alpha=0.95, momentum=0.5, centered=True, weight_decay=0.05),
    ),
    (optim.Adam, ref_adam, dict()),
    (optim.Adam, ref_adam, dict(lr=0.05, betas=(0.8, 0.99), eps=1e-3, weight_decay=0.1)),
    (optim.AdamW, ref_adamw, dict()),
    (optim.AdamW, ref_adamw, dict(lr=0.05, betas=(0.5, 0.9), eps=1e-4, weight_decay=0.2)),
]
IDS = [
    f"{cls.__name__}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}"
    for cls, _, kw in CASES
]


def make_params(dtype, seed=0):
    rng = np.random.default_rng(seed)
    params = [
        Parameter(f"p{i}", rng.standard_normal(s).astype(dtype)) for i, s in enumerate(SHAPES)
    ]
    curv = [rng.uniform(0.5, 2.0, s) for s in SHAPES]
    return params, curv


def run(opt, params, curv, steps):
    trajectory = []
    for _ in range(steps):
        for p, c in zip(params, curv):
            p.grad[...] = grad_fn(p.data.astype(np.float64), c)
        opt.step()
        trajectory.append([p.data.copy() for p in params])
    return trajectory


@pytest.mark.parametrize("cls,ref,kw", CASES, ids=IDS)
def test_trajectory_matches_pytorch_formula(cls, ref, kw):
    params, curv = make_params(np.float64)
    ref_p = [p.data.copy() for p in params]
    ref_state = [{} for _ in params]
    got = run(cls(params, **kw), params, curv, 20)
    for t in range(1, 21):
        ref_p = [ref(p, grad_fn(p, c), st, t, **kw) for p, c, st in zip(ref_p, curv, ref_state)]
        for a, b in zip(got[t - 1], ref_p):
            np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    # the run moved the parameters: the test is not vacuous
    assert not np.allclose(got[-1][0], make_params(np.float64)[0][0].data)


@pytest.mark.parametrize("cls,ref,kw", CASES, ids=IDS)
def test_float32_follows_float64(cls, ref, kw):
    p64, curv = make_params(np.float64)
    p32, _ = make_params(np.float32)
    a = run(cls(p64, **kw), p64, curv, 20)[-1]
    b = run(cls(p32, **kw), p32, curv, 20)[-1]
    for x, y in zip(a, b):
        assert y.dtype == np.float32
        np.testing.assert_allclose(y, x, rtol=2e-4, atol=2e-5)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
@pytest.mark.parametrize("cls,ref,kw", CASES, ids=IDS)
def test_state_dict_resume_is_bit_exact(cls, ref, kw, dtype):
    params, curv = make_params(dtype)
    opt = cls(params, **kw)
    run(opt, params, curv, 10)
    saved_state = opt.state_dict()
    saved_params = [p.data.copy() for p in params]
    straight = run(opt, params, curv, 10)[-1]

    resumed_params = [Parameter(p.name, d.copy()) for p, d in zip(params, saved_params)]
    opt2 = cls(resumed_params, **kw)
    opt2.load_state_dict(saved_state)
    resumed = run(opt2, resumed_params, curv, 10)[-1]
    for a, b in zip(straight, resumed):
        np.testing.assert_array_equal(a, b)


def test_state_dict_is_a_copy():
    params, curv = make_params(np.float64)
    opt = optim.Adam(params)
    run(opt, params, curv, 2)
    sd = opt.state_dict()
    before = sd["state"][0]["exp_avg"].copy()
    run(opt, params, curv, 1)
    np.testing.assert_array_equal(sd["state"][0]["exp_avg"], before)
    assert sd["state"][0]["step"] == 2


def test_adagrad_accumulator_exists_from_construction():
    params, _ = make_params(np.float64)
    opt = optim.Adagrad(params, initial_accumulator_value=0.25)
    np.testing.assert_array_equal(opt.state_dict()["state"][1]["sum"], np.full(5, 0.25))
    assert opt.state_dict()["state"][1]["step"] == 0


def test_per_parameter_step_counts():
    """A parameter added by loading a state with fewer steps keeps its own bias correction."""
    params, curv = make_params(np.float64)
    opt = optim.Adam(params, lr=0.1)
    run(opt, params, curv, 3)
    sd = opt.state_dict()
    sd["state"][1] = {}  # second parameter: no history
    opt.load_state_dict(sd)
    run(opt, params, curv, 1)
    assert [s["step"] for s in opt.state] == [4, 1]


def test_lr_is_settable():
    params, curv = make_params(np.float64)
    opt = optim.Adam(params, lr=0.1)
    opt.lr = 0.0
    before = [p.data.copy() for p in params]
    run(opt, params, curv, 2)
    for a, p in zip(before, params):
        np.testing.assert_array_equal(a, p.data)
    with pytest.raises(ValueError, match="lr"):
        opt.lr = -1


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda p: optim.Adagrad(p, lr=-0.1), "lr"),
        (lambda p: optim.Adagrad(p, lr_decay=-1), "lr_decay"),
        (lambda p: optim.Adagrad(p, initial_accumulator_value=-1), "initial_accumulator_value"),
        (lambda p: optim.Adagrad(p, eps=-1), "eps"),
        (lambda p: optim.Adagrad(p, weight_decay=-1), "weight_decay"),
        (lambda p: optim.RMSprop(p, alpha=-0.5), "alpha"),
        (lambda p: optim.RMSprop(p, momentum=-0.5), "momentum"),
        (lambda p: optim.RMSprop(p, eps=float("nan")), "eps"),
        (lambda p: optim.Adam(p, betas=(1.0, 0.999)), r"betas\[0\]"),
        (lambda p: optim.Adam(p, betas=(0.9, -0.1)), r"betas\[1\]"),
        (lambda p: optim.Adam(p, betas=0.9), "betas"),
        (lambda p: optim.Adam(p, eps=-1e-8), "eps"),
        (lambda p: optim.AdamW(p, weight_decay=-0.01), "weight_decay"),
        (lambda p: optim.AdamW(p, lr="fast"), "lr"),
        (lambda p: optim.Adam([]), "params"),
    ],
)
def test_invalid_hyperparameters_are_named(make, match):
    params, _ = make_params(np.float64)
    with pytest.raises(ValueError, match=match):
        make(params if match != "params" else [])


def test_load_state_dict_rejects_other_optimizer():
    params, curv = make_params(np.float64)
    a = optim.Adam(params)
    run(a, params, curv, 1)
    with pytest.raises(ValueError, match="Adam"):
        optim.RMSprop(params).load_state_dict(a.state_dict())


# ---- clip_grad_norm -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_clip_grad_norm(dtype):
    from fastnn import clip_grad_norm

    params, _ = make_params(dtype)
    rng = np.random.default_rng(3)
    for p in params:
        p.grad[...] = rng.standard_normal(p.grad.shape)
    grads = [p.grad.astype(np.float64) for p in params]
    total = np.sqrt(sum((g * g).sum() for g in grads))
    got = clip_grad_norm(params, 1.0)
    assert got == pytest.approx(total, rel=1e-6)
    coef = 1.0 / (total + 1e-6)
    for p, g in zip(params, grads):
        np.testing.assert_allclose(p.grad, g * coef, rtol=1e-6)
    after = np.sqrt(sum((p.grad.astype(np.float64) ** 2).sum() for p in params))
    assert after == pytest.approx(1.0, rel=1e-5)
    # below the limit: unchanged
    kept = [p.grad.copy() for p in params]
    assert clip_grad_norm(params, 10.0) == pytest.approx(1.0, rel=1e-5)
    for p, g in zip(params, kept):
        np.testing.assert_array_equal(p.grad, g)


def test_clip_grad_norm_accepts_model_and_checks_args():
    model = fastnn.Sequential(fastnn.Dense(3, 2))
    for p in model.parameters():
        p.grad[...] = 3.0
    assert fastnn.clip_grad_norm(model, 0.5) == pytest.approx(np.sqrt(9 * 8))
    with pytest.raises(ValueError, match="max_norm"):
        fastnn.clip_grad_norm(model, -1)
    for p in model.parameters():
        p.grad[...] = np.inf
    with pytest.raises(RuntimeError, match="norm"):
        fastnn.clip_grad_norm(model, 1.0, error_if_nonfinite=True)


# ---- against PyTorch itself, when it is installed -------------------------------------------


@pytest.mark.parametrize("cls,ref,kw", CASES, ids=IDS)
def test_against_torch(cls, ref, kw):
    torch = pytest.importorskip("torch")
    params, curv = make_params(np.float64)
    tparams = [torch.tensor(p.data.copy(), requires_grad=True) for p in params]
    topt = getattr(torch.optim, cls.__name__)(tparams, **kw)
    got = run(cls(params, **kw), params, curv, 20)
    for t in range(20):
        for tp, c in zip(tparams, curv):
            tp.grad = torch.tensor(grad_fn(tp.detach().numpy(), c))
        topt.step()
        for a, tp in zip(got[t], tparams):
            np.testing.assert_allclose(a, tp.detach().numpy(), rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("cls", [optim.Adam, optim.AdamW])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_one_call_equals_the_per_parameter_kernel(cls, dtype):
    """Adam.step updates every parameter in one call; it must give the single-tensor
    kernel's bits, and step(sum_squares=True) the pre-update sum_squares (None without)."""
    from fastnn import kernels

    rng = np.random.default_rng(7)
    shapes = [(70, 33), (5,), (4097,), (3, 1)]
    params = [
        Parameter(f"p{i}", rng.standard_normal(s).astype(dtype)) for i, s in enumerate(shapes)
    ]
    twins = [p.data.copy() for p in params]
    states = [{"exp_avg": np.zeros_like(t), "exp_avg_sq": np.zeros_like(t)} for t in twins]
    opt = cls(params, lr=0.01, weight_decay=0.03)
    for t in range(1, 5):
        for p in params:
            p.grad[...] = rng.standard_normal(p.data.shape)
        expected = sum(kernels.sum_squares(w) for w in twins)
        for p, w, st in zip(params, twins, states):
            kernels.adam_step(
                w,
                p.grad,
                st["exp_avg"],
                st["exp_avg_sq"],
                lr=0.01,
                beta1=0.9,
                beta2=0.999,
                eps=1e-8,
                weight_decay=0.03,
                decoupled=cls is optim.AdamW,
                step=t,
            )
        if t < 4:
            assert opt.step(sum_squares=True) == expected
        else:
            assert opt.step() is None
        for p, w in zip(params, twins):
            np.testing.assert_array_equal(p.data, w)


def test_adam_sum_of_squares_and_update_independent_of_threads():
    from fastnn import kernels

    rng = np.random.default_rng(8)
    start = rng.standard_normal(300_001).astype(np.float32)
    grad = np.linspace(-1, 1, start.size, dtype=np.float32)
    results = []
    n = kernels.get_num_threads()
    try:
        for threads in (1, 3):
            kernels.set_num_threads(threads)
            p = Parameter("w", start.copy())
            p.grad[...] = grad
            opt = optim.Adam([p], lr=0.01)
            results.append((opt.step(sum_squares=True), p.data))
    finally:
        kernels.set_num_threads(n)
    assert results[0][0] == results[1][0] == kernels.sum_squares(start)
    np.testing.assert_array_equal(results[0][1], results[1][1])


# ---- on a model ------------------------------------------------------------------------------


def test_sgd_optimizer_matches_pytorch_formula(rng):
    """Momentum SGD with dampening and weight decay over 20 steps, float64."""
    model = fastnn.Sequential(fastnn.Dense(3, 2, dtype=np.float64, rng=0))
    opt = optim.SGD(model, lr=0.1, momentum=0.9, dampening=0.1, weight_decay=0.01)
    p = model[0].weight
    ref, buf = p.data.copy(), None
    for _ in range(20):
        g = rng.standard_normal(p.data.shape)
        p.grad[...] = g
        model[0].bias.grad[...] = 0
        opt.step()
        d = g + 0.01 * ref
        buf = d if buf is None else 0.9 * buf + 0.9 * d
        ref = ref - 0.1 * buf
    np.testing.assert_allclose(p.data, ref, rtol=1e-12)


def test_optimizer_state_resumes_exactly(rng):
    def run(steps, resume_at=None):
        model = fastnn.Sequential(fastnn.Dense(4, 3, rng=0))
        opt = optim.SGD(model, lr=0.05, momentum=0.9, nesterov=True)
        grads = np.random.default_rng(5).standard_normal((steps, 3, 4)).astype(np.float32)
        for i in range(steps):
            if i == resume_at:
                saved_model, saved_opt = model.state_dict(), opt.state_dict()
                model = fastnn.Sequential(fastnn.Dense(4, 3, rng=9))
                model.load_state_dict(saved_model)
                opt = optim.SGD(model, lr=1.0)
                with pytest.raises(ValueError):
                    opt.load_state_dict({**saved_opt, "type": "Adam"})
                opt = optim.SGD(model, lr=0.05, momentum=0.9, nesterov=True)
                opt.load_state_dict(saved_opt)
            model[0].weight.grad[...] = grads[i]
            opt.step()
        return model[0].weight.data

    np.testing.assert_array_equal(run(10), run(10, resume_at=4))


def test_optimizer_rejects_bad_hyperparameters():
    model = mlp()
    with pytest.raises(ValueError, match="lr"):
        optim.SGD(model, lr=-1)
    with pytest.raises(ValueError, match="momentum"):
        optim.SGD(model, lr=0.1, momentum=-0.5)
    with pytest.raises(ValueError, match="nesterov"):
        optim.SGD(model, lr=0.1, nesterov=True)


def test_optimizer_names_resolve_generically():
    get = fastnn.optim.get
    assert get("SGD") is get("sgd") is fastnn.optim.SGD
    for name in ("Adam", "AdamW", "RMSprop", "Adagrad"):
        assert get(name.lower()) is getattr(fastnn.optim, name)
    with pytest.raises(ValueError):
        get("Optimizer")  # the base class is not an optimizer to train with
