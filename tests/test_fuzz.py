"""Property tests: every kernel against fastnn.ops over random shapes, memory layouts
(views of larger arrays, transposes, negative strides), dtypes and magnitudes from
subnormal to huge; losses stay finite for logits far beyond any real model's; Sequential's
backward agrees with float64 finite differences over random architectures.

FASTNN_FUZZ_EXAMPLES (default 30) sets hypothesis' examples per test; raise it for a
longer hunt, e.g. FASTNN_FUZZ_EXAMPLES=2000 pytest tests/test_fuzz.py."""

import itertools
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import fastnn
from fastnn import kernels, ops
from helpers import check_model

EXAMPLES = int(os.environ.get("FASTNN_FUZZ_EXAMPLES", "30"))
fuzz = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

DTYPES = st.sampled_from([np.float32, np.float64])
LAYOUTS = st.sampled_from(["c", "fortran", "strided", "transposed", "negative"])
# Magnitudes of the entries: subnormal (for each dtype), tiny, ordinary, large, huge.
SCALES = {
    np.float32: [1e-41, 1e-30, 1e-3, 1.0, 1e3, 1e12],
    np.float64: [1e-310, 1e-200, 1e-3, 1.0, 1e3, 1e100],
}


def layout(a, kind):
    """The same values as `a` in another memory layout (a view where possible)."""
    if kind == "fortran":
        return np.asfortranarray(a)
    if kind == "strided":
        big = np.zeros(tuple(3 * s + 2 for s in a.shape), a.dtype)
        view = big[tuple(slice(1, 1 + 3 * s, 3) for s in a.shape)]
        view[...] = a
        return view
    if kind == "transposed":
        return np.ascontiguousarray(a.T).T
    if kind == "negative":
        flip = tuple(slice(None, None, -1) for _ in a.shape)
        return np.ascontiguousarray(a[flip])[flip]
    return a


@st.composite
def arrays(draw, shape, dtype, scale=None, signed=True):
    """A random array of `shape` at a random magnitude, in a random layout."""
    seed = draw(st.integers(0, 2**32 - 1))
    if scale is None:
        scale = draw(st.sampled_from(SCALES[dtype]))
    rng = np.random.default_rng(seed)
    lo = -1.0 if signed else 0.0
    a = (rng.uniform(lo, 1.0, shape) * scale).astype(dtype)
    return layout(a, draw(LAYOUTS))


def tiny(dtype):
    return float(np.finfo(dtype).smallest_subnormal)


def assert_within(got, want, bound, what):
    """|got - want| <= bound elementwise (bound an array of the same shape or a scalar)."""
    got = np.asarray(got, np.float64)
    want = np.asarray(want, np.float64)
    assert got.shape == want.shape, what
    err = np.abs(got - want)
    bad = ~(err <= bound)
    assert not bad.any(), (
        f"{what}: worst |error| {err[bad].max()} over bound; "
        f"got {got[bad][:3]}, want {want[bad][:3]}"
    )


# ---- GEMM ---------------------------------------------------------------------------------


@fuzz
@given(
    data=st.data(),
    m=st.integers(0, 24),
    k=st.integers(0, 40),
    n=st.integers(0, 24),
    dtype=DTYPES,
    ta=st.booleans(),
    tb=st.booleans(),
    act=st.sampled_from(kernels.ACTIVATIONS),
    with_bias=st.booleans(),
    threads=st.sampled_from([1, 2]),
)
def test_gemm_against_reference(data, m, k, n, dtype, ta, tb, act, with_bias, threads):
    a = data.draw(arrays((k, m) if ta else (m, k), dtype))
    b = data.draw(arrays((n, k) if tb else (k, n), dtype))
    bias = data.draw(arrays((n,), dtype)) if with_bias else None
    old = fastnn.get_num_threads()
    fastnn.set_num_threads(threads)
    try:
        got = kernels.gemm(
            a, b, trans_a=ta, trans_b=tb, bias=bias, activation=act, negative_slope=0.1
        )
    finally:
        fastnn.set_num_threads(old)
    A = (a.T if ta else a).astype(np.float64)
    B = (b.T if tb else b).astype(np.float64)
    exact = A @ B + (0.0 if bias is None else bias.astype(np.float64))
    # The classic bound for a k-term dot product, plus one rounding of the bias and one of
    # the result; every activation here is 1-Lipschitz (sigmoid 1/4, tanh 1).
    size = np.abs(A) @ np.abs(B) + (0.0 if bias is None else np.abs(bias.astype(np.float64)))
    eps = np.finfo(dtype).eps
    bound = (k + 3) * eps * size + (k + 2) * tiny(dtype) + 4 * eps * np.abs(exact)
    want = ops.gemm(exact, np.eye(n), activation=act, negative_slope=0.1)
    if np.isfinite(want).all() and np.abs(exact).max(initial=0) < np.finfo(dtype).max / 4:
        assert got.dtype == dtype and got.shape == (m, n)
        assert_within(got, want, bound + 4 * eps * np.abs(want), f"gemm {act}")


# ---- elementwise and row kernels ----------------------------------------------------------

SHAPES = st.tuples(st.integers(0, 9), st.integers(1, 40))


@fuzz
@given(
    data=st.data(),
    shape=SHAPES,
    dtype=DTYPES,
    act=st.sampled_from(kernels.ACTIVATIONS),
    slope=st.sampled_from([0.0, 0.01, 0.5, -0.3]),
)
def test_activations_against_reference(data, shape, dtype, act, slope):
    x = data.draw(arrays(shape, dtype))
    dy = data.draw(arrays(shape, dtype, scale=1.0))
    x0 = x.copy()
    eps = np.finfo(dtype).eps
    got = kernels.activation_forward(x, act, negative_slope=slope)
    want = ops.activation_forward(x, act, negative_slope=slope)
    assert_within(got, want, 4 * eps * np.abs(want) + tiny(dtype), f"{act} forward")
    np.testing.assert_array_equal(x, x0)  # inputs are never modified
    src = x if act in ("relu", "leaky_relu") else want
    db, db_ref = np.empty(shape[1], dtype), np.empty(shape[1], dtype)
    got = kernels.activation_backward(dy, src, act, negative_slope=slope, bias_grad_out=db)
    want = ops.activation_backward(dy, src, act, negative_slope=slope, bias_grad_out=db_ref)
    assert_within(got, want, 4 * eps * np.abs(want) + tiny(dtype), f"{act} backward")
    assert_within(
        db,
        db_ref,
        (shape[0] + 2) * eps * np.abs(want).sum(axis=0) + tiny(dtype),
        f"{act} bias grad",
    )


@fuzz
@given(data=st.data(), shape=SHAPES, dtype=DTYPES)
def test_row_kernels_against_reference(data, shape, dtype):
    x = data.draw(arrays(shape, dtype))
    bias = data.draw(arrays((shape[1],), dtype))
    eps = np.finfo(dtype).eps
    want = ops.add_bias(x, bias)
    assert_within(kernels.add_bias(x, bias), want, eps * np.abs(want) + tiny(dtype), "add_bias")
    want = ops.column_sum(x)
    bound = (shape[0] + 1) * eps * np.abs(x.astype(np.float64)).sum(axis=0) + shape[0] * tiny(dtype)
    assert_within(kernels.column_sum(x), want, bound, "column_sum")
    p = kernels.softmax(x)
    assert np.isfinite(p).all()
    assert_within(
        p,
        ops.softmax(x),
        (shape[1] + 4) * 4 * eps * np.maximum(p, tiny(dtype)) + 8 * eps,
        "softmax",
    )
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=0, atol=(shape[1] + 2) * 4 * eps)
    dy = data.draw(arrays(shape, dtype, scale=1.0))
    want = ops.softmax_backward(dy, p)
    assert_within(
        kernels.softmax_backward(dy, p), want, (shape[1] + 4) * 4 * eps, "softmax_backward"
    )


# ---- losses ------------------------------------------------------------------------------
# Logit magnitudes up to 1e4 must give finite losses and gradients (and beyond: for float32
# the loss is summed in double, so any finite logit does).
LOGIT_SCALES = st.sampled_from([1e-30, 1e-3, 1.0, 30.0, 1e4, 1e6, 1e30])


@fuzz
@given(
    data=st.data(),
    m=st.integers(1, 12),
    k=st.integers(1, 12),
    dtype=DTYPES,
    scale=LOGIT_SCALES,
    reduction=st.sampled_from(["mean", "sum"]),
    probs=st.booleans(),
)
def test_softmax_cross_entropy_finite_and_correct(data, m, k, dtype, scale, reduction, probs):
    x = data.draw(arrays((m, k), dtype, scale=scale))
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    if probs:
        t = rng.dirichlet(np.ones(k), m).astype(dtype)
        t = layout(t, data.draw(LAYOUTS))
    else:
        t = rng.integers(0, k, m)
    loss, grad = kernels.softmax_cross_entropy(x, t, reduction=reduction)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    assert loss >= -1e-6 * max(1.0, scale * m)  # cross-entropy is never negative
    want_loss, want_grad = ops.softmax_cross_entropy(x, t, reduction=reduction)
    eps = np.finfo(dtype).eps
    # lse - x_y cancels: the error scales with the logits' magnitude.
    assert abs(loss - want_loss) <= (k + 4) * 4 * eps * (scale + 1) * (
        m if reduction == "sum" else 1
    )
    assert_within(grad, want_grad, (k + 4) * 4 * eps, "softmax_cross_entropy grad")


@fuzz
@given(
    data=st.data(),
    shape=SHAPES.filter(lambda s: s[0] > 0),
    dtype=DTYPES,
    scale=LOGIT_SCALES,
    reduction=st.sampled_from(["mean", "sum"]),
)
def test_bce_and_mse_finite_and_correct(data, shape, dtype, scale, reduction):
    x = data.draw(arrays(shape, dtype, scale=scale))
    t = data.draw(arrays(shape, dtype, scale=1.0, signed=False))
    eps = np.finfo(dtype).eps
    n = x.size
    loss, grad = kernels.bce_with_logits(x, t, reduction=reduction)
    assert np.isfinite(loss) and np.isfinite(grad).all()
    want_loss, want_grad = ops.bce_with_logits(x, t, reduction=reduction)
    per = 8 * eps * (scale + 1)
    assert abs(loss - want_loss) <= per * (n if reduction == "sum" else 1)
    assert_within(grad, want_grad, 8 * eps, "bce grad")
    if scale <= 1e12:  # squared errors of larger values overflow float32's gradient honestly
        loss, grad = kernels.mse(x, t, reduction=reduction)
        want_loss, want_grad = ops.mse(x, t, reduction=reduction)
        assert np.isfinite(loss)
        assert abs(loss - want_loss) <= 8 * eps * abs(want_loss) + tiny(dtype)
        assert_within(grad, want_grad, 4 * eps * np.abs(want_grad) + tiny(dtype), "mse grad")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("value", [1e4, -1e4, 1e30, -1e30])
def test_extreme_logits_give_finite_losses_and_activations(dtype, value):
    if abs(value) > np.finfo(dtype).max:
        pytest.skip("not representable")
    x = np.array([[value, 0.0, -value], [value, value, value]], dtype)
    loss, grad = kernels.softmax_cross_entropy(x, [2, 0])
    assert np.isfinite(loss) and np.isfinite(grad).all()
    # row 0: label 2 holds -value, so the loss is 2 value (or ~0); row 1: log 3
    assert loss == pytest.approx((max(2 * value, 0.0) + np.log(3)) / 2, rel=1e-6, abs=1e-6)
    loss, grad = kernels.bce_with_logits(x, np.ones_like(x))
    assert np.isfinite(loss) and np.isfinite(grad).all()
    for act in ("sigmoid", "tanh"):
        y = kernels.activation_forward(x, act)
        assert np.isfinite(y).all() and (np.abs(y) <= 1).all()


def test_float32_loss_near_the_largest_float_is_finite():
    big = np.finfo(np.float32).max
    x = np.array([[big, -big]], np.float32)
    loss, grad = kernels.softmax_cross_entropy(x, [1])
    assert loss == pytest.approx(2.0 * float(big))  # summed in double: no overflow
    assert np.isfinite(grad).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_finite_inputs_propagate(dtype):
    # Documented behaviour (docs/reliability.md): kernels never raise on NaN or infinity;
    # NaN propagates through every activation (as in PyTorch) and into the losses;
    # infinite logits give NaN losses, which fit turns into an error.
    nan, inf = np.nan, np.inf
    x = np.array([[nan, inf, -inf, 0.0]], dtype)
    assert np.isnan(kernels.activation_forward(x, "relu")[0, 0])
    assert (
        kernels.activation_forward(x, "relu")[0, 1] == inf
        and kernels.activation_forward(x, "relu")[0, 2] == 0
    )
    np.testing.assert_array_equal(kernels.activation_forward(x, "sigmoid")[0, 1:], [1.0, 0.0, 0.5])
    np.testing.assert_array_equal(kernels.activation_forward(x, "tanh")[0, 1:], [1.0, -1.0, 0.0])
    assert np.isnan(kernels.activation_forward(x, "sigmoid")[0, 0])
    assert np.isnan(kernels.softmax_cross_entropy(x, [3])[0])
    assert np.isnan(kernels.softmax_cross_entropy(np.array([[inf, 0.0]], dtype), [0])[0])
    assert np.isnan(kernels.bce_with_logits(np.array([inf], dtype), np.array([1.0], dtype))[0])
    assert np.isnan(kernels.bce_with_logits(np.array([-inf], dtype), np.array([0.0], dtype))[0])
    assert not kernels.all_finite(x) and kernels.all_finite(x[:, 3:])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gemm_relu_epilogue_propagates_nan(dtype):
    a = np.array([[np.nan, 1.0]], dtype)
    b = np.ones((2, 3), dtype)
    fused = kernels.gemm(a, b, activation="relu")
    separate = kernels.activation_forward(kernels.gemm(a, b), "relu")
    assert np.isnan(separate).all()
    assert np.isnan(fused).all()


# ---- optimizer kernels ----------------------------------------------------------------------


@fuzz
@given(
    data=st.data(),
    n=st.integers(0, 70),
    dtype=DTYPES,
    momentum=st.sampled_from([0.0, 0.9]),
    nesterov=st.booleans(),
    first=st.booleans(),
    wd=st.sampled_from([0.0, 1e-2]),
)
def test_sgd_and_penalty_against_reference(data, n, dtype, momentum, nesterov, first, wd):
    p = np.ascontiguousarray(data.draw(arrays((n,), dtype, scale=1.0)))
    g = data.draw(arrays((n,), dtype))
    buf = np.ascontiguousarray(data.draw(arrays((n,), dtype, scale=1.0)))
    nesterov = nesterov and momentum > 0
    p2, buf2 = p.copy(), buf.copy()
    kw = dict(lr=0.05, momentum=momentum, nesterov=nesterov, weight_decay=wd, first_step=first)
    kernels.sgd_step(p, g, buf, **kw)
    ops.sgd_step(p2, g, buf2, **kw)
    eps = np.finfo(dtype).eps
    assert_within(p, p2, 8 * eps * (np.abs(p2) + np.abs(g.astype(np.float64))) + tiny(dtype), "sgd")
    w = data.draw(arrays((n,), dtype, scale=1.0))
    ga, gb = np.zeros(n, dtype), np.zeros(n, dtype)
    got = kernels.penalty(w, ga, l1=0.1, l2=0.01)
    want = ops.penalty(w, gb, l1=0.1, l2=0.01)
    assert got == pytest.approx(want, rel=1e-12 if dtype == np.float64 else 1e-6, abs=1e-30)
    assert_within(ga, gb, 4 * eps * np.abs(gb), "penalty grad")


# ---- Sequential against finite differences --------------------------------------------------

ACTIVATION_LAYERS = [
    fastnn.Tanh,
    fastnn.Sigmoid,
    fastnn.Identity,
    fastnn.ReLU,
    lambda: fastnn.LeakyReLU(0.1),
    lambda: fastnn.LeakyReLU(-0.2),
]


@st.composite
def architectures(draw):
    """(model, X, y, loss) for a random small float64 network."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=4))
    layers = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        layers.append(
            fastnn.Dense(
                a,
                b,
                rng=int(rng.integers(1 << 30)),
                l2=draw(st.sampled_from([0.0, 0.01])),
                dtype=np.float64,
            )
        )
        if i < len(widths) - 2:
            layers.append(draw(st.sampled_from(ACTIVATION_LAYERS))())
    model = fastnn.Sequential(*layers, dtype=np.float64)
    # Zero biases behind a dead ReLU put the next pre-activation exactly on the kink, where
    # the difference quotient sees half a slope: random biases keep the check meaningful.
    for p in model.parameters():
        if p.name.endswith("bias"):
            p.data[...] = rng.standard_normal(p.data.shape)
    batch = draw(st.integers(1, 5))
    X = rng.standard_normal((batch, widths[0]))
    kind = draw(st.sampled_from(["mse", "sce", "bce"]))
    out = widths[-1]
    if kind == "mse":
        return model, X, rng.standard_normal((batch, out)), fastnn.MSELoss()
    if kind == "sce":
        return model, X, rng.integers(0, out, batch), fastnn.SoftmaxCrossEntropy()
    return model, X, rng.integers(0, 2, (batch, out)).astype(np.float64), fastnn.BCEWithLogits()


@settings(
    max_examples=max(5, EXAMPLES // 2), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
@given(arch=architectures())
def test_sequential_backward_matches_finite_differences(arch):
    model, X, y, loss = arch
    errors = check_model(model, X, y, loss)
    # A ReLU kink within eps of a pre-activation would break the difference quotient; with
    # standard-normal data that has probability ~1e-6 per unit, so a failure is a bug.
    assert max(errors.values()) < 1e-5, errors


# ---- convolution and pooling geometries -----------------------------------------------------


@fuzz
@given(
    data=st.data(),
    n=st.integers(0, 3),
    groups=st.sampled_from([1, 2, 3]),
    cg=st.integers(1, 3),
    og=st.integers(1, 3),
    h=st.integers(0, 9),
    w=st.integers(0, 9),
    kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    stride=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    padding=st.tuples(*[st.integers(0, 3)] * 4),
    dilation=st.tuples(st.integers(1, 3), st.integers(1, 3)),
    dtype=DTYPES,
    act=st.sampled_from(["identity", "relu", "leaky_relu", "sigmoid", "tanh"]),
    with_bias=st.booleans(),
)
def test_conv_geometries_match_the_twin_or_raise(
    data, n, groups, cg, og, h, w, kernel, stride, padding, dilation, dtype, act, with_bias
):
    """A random geometry gives the twin's result, or a ValueError exactly when the dilated
    kernel does not fit the padded image; never a crash."""
    c, o = groups * cg, groups * og
    x = data.draw(arrays((n, c, h, w), dtype, scale=1.0))
    wt = data.draw(arrays((o, cg, *kernel), dtype, scale=1.0))
    b = data.draw(arrays((o,), dtype, scale=1.0)) if with_bias else None
    geo = dict(stride=stride, padding=padding, dilation=dilation, groups=groups)
    span = [d * (k - 1) + 1 for d, k in zip(dilation, kernel)]
    fits = h + padding[0] + padding[1] >= span[0] and w + padding[2] + padding[3] >= span[1]
    try:
        y = kernels.conv2d_forward(x, wt, b, activation=act, **geo)
    except ValueError:
        if fits:
            raise
        with pytest.raises(ValueError, match="smaller than the dilated kernel"):
            kernels.conv2d_forward(x, wt, b, activation=act, **geo)
        return
    assert fits
    k = cg * kernel[0] * kernel[1]
    rtol = 8 * np.sqrt(k) * np.finfo(dtype).eps
    atol = 64 * np.sqrt(k) * np.finfo(dtype).eps
    np.testing.assert_allclose(y, ops.conv2d_forward(x, wt, b, activation=act, **geo), rtol, atol)
    dy = data.draw(arrays(y.shape, dtype, scale=1.0))
    got = kernels.conv2d_backward(dy, x, wt, activation=act, output=y, **geo)
    want = ops.conv2d_backward(dy, x, wt, activation=act, output=y, **geo)
    k = max(k, o * kernel[0] * kernel[1], n * y.shape[2] * y.shape[3])
    for g, e in zip(got, want):
        bound = 64 * np.sqrt(k) * np.finfo(dtype).eps * (1 + np.abs(np.asarray(e, np.float64)))
        assert_within(g, e, bound, "conv2d_backward")


@fuzz
@given(
    data=st.data(),
    n=st.integers(0, 2),
    c=st.integers(1, 3),
    h=st.integers(0, 8),
    w=st.integers(0, 8),
    kernel=st.tuples(st.integers(1, 5), st.integers(1, 5)),
    stride=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    padding=st.tuples(st.integers(0, 3), st.integers(0, 3)),
    dtype=DTYPES,
    include=st.booleans(),
)
def test_pool_geometries_match_the_twin_or_raise(
    data, n, c, h, w, kernel, stride, padding, dtype, include
):
    x = data.draw(arrays((n, c, h, w), dtype, scale=1.0))
    valid = (
        all(2 * p <= k for p, k in zip(padding, kernel))
        and h >= 1
        and w >= 1
        and h + 2 * padding[0] >= kernel[0]
        and w + 2 * padding[1] >= kernel[1]
    )
    try:
        y, idx = kernels.maxpool2d_forward(x, kernel, stride, padding)
        a = kernels.avgpool2d_forward(x, kernel, stride, padding, include)
    except ValueError:
        assert not valid
        return
    assert valid
    yo, io = ops.maxpool2d_forward(x, kernel, stride, padding)
    np.testing.assert_array_equal(y, yo)
    np.testing.assert_array_equal(idx, io)
    k = kernel[0] * kernel[1]
    tol = 8 * k * np.finfo(dtype).eps
    np.testing.assert_allclose(
        a, ops.avgpool2d_forward(x, kernel, stride, padding, include), tol, tol
    )
    dy = data.draw(arrays(y.shape, dtype, scale=1.0))
    np.testing.assert_allclose(
        kernels.maxpool2d_backward(dy, idx, x.shape),
        ops.maxpool2d_backward(dy, idx, x.shape),
        tol,
        tol,
    )
    np.testing.assert_allclose(
        kernels.avgpool2d_backward(dy, x.shape, kernel, stride, padding, include),
        ops.avgpool2d_backward(dy, x.shape, kernel, stride, padding, include),
        tol,
        tol,
    )


@fuzz
@given(
    seed=st.integers(0, 2**32 - 1),
    kernel=st.one_of(st.integers(-1, 5), st.tuples(st.integers(0, 5), st.integers(0, 5))),
    stride=st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 3), st.integers(1, 3))),
    padding=st.one_of(
        st.integers(-1, 3), st.sampled_from(["same", "valid", "full"]), st.just((1, 2))
    ),
    dilation=st.integers(0, 3),
    groups=st.integers(0, 3),
    size=st.tuples(st.integers(0, 3), st.integers(1, 7), st.integers(1, 7)),
)
def test_conv2d_layer_builds_and_runs_or_raises(
    seed, kernel, stride, padding, dilation, groups, size
):
    """Conv2d's constructor and forward take any arguments: a ValueError or the kernel's
    result for the layer's padding, never a crash."""
    try:
        layer = fastnn.Conv2d(6, 6, kernel, stride, padding, dilation, groups, rng=seed)
    except ValueError:
        return
    n, h, w = size
    x = np.random.default_rng(seed).standard_normal((n, 6, h, w)).astype(np.float32)
    try:
        y = layer.forward(x, training=True)
    except ValueError:
        with pytest.raises(ValueError, match=r"x: Conv2d needs a (height|width) of at least"):
            layer.forward(x, training=True)
        return
    geo = dict(stride=layer.stride, padding=layer.pads(), dilation=layer.dilation, groups=groups)
    want = ops.conv2d_forward(x, layer.weight.data, layer.bias.data, **geo)
    np.testing.assert_allclose(y, want, rtol=1e-4, atol=1e-5)
    if padding == "same":
        assert y.shape[2:] == x.shape[2:]
    assert layer.backward(np.ones_like(y)).shape == x.shape
