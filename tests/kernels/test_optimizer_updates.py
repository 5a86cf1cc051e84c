"""The optimizer-update kernels against fastnn.ops: sgd_step and the l1/l2 penalty,
adagrad_step, rmsprop_step, adam_step and adam_step_many over several steps, sum_squares and
scale_inplace; gradients in any layout, both dtypes."""

import numpy as np
import pytest

from fastnn import kernels, ops
from helpers import DTYPES, array_in_layout, close, isas

# Every test here runs once per instruction-set path this CPU has (conftest.isa): the
# optimizers have AVX2 builds.
pytestmark = pytest.mark.usefixtures("isa")


@pytest.mark.parametrize(
    "momentum,dampening,nesterov,wd",
    [
        (0.0, 0.0, False, 0.0),
        (0.0, 0.0, False, 0.1),
        (0.9, 0.0, False, 0.0),
        (0.9, 0.3, False, 0.01),
        (0.9, 0.0, True, 0.0),
        (0.5, 0.0, True, 0.2),
    ],
)
def test_sgd_step(momentum, dampening, nesterov, wd, dtype, rng):
    p1 = rng.standard_normal((13, 7)).astype(dtype)
    p2 = p1.copy()
    b1, b2 = np.zeros_like(p1), np.zeros_like(p1)
    for step in range(5):
        g = rng.standard_normal(p1.shape).astype(dtype)
        kw = dict(
            lr=0.05,
            momentum=momentum,
            dampening=dampening,
            nesterov=nesterov,
            weight_decay=wd,
            first_step=step == 0,
        )
        kernels.sgd_step(p1, g, b1, **kw)
        ops.sgd_step(p2, g, b2, **kw)
    close(p1, p2, dtype, k=5)
    close(b1, b2, dtype, k=5)


def test_penalty(dtype, rng):
    w = rng.standard_normal((9, 4)).astype(dtype)
    g1, g2 = rng.standard_normal(w.shape).astype(dtype), None
    g2 = g1.copy()
    v1 = kernels.penalty(w, g1, l1=0.01, l2=0.2)
    v2 = ops.penalty(w, g2, l1=0.01, l2=0.2)
    close(v1, v2, dtype, k=w.size)
    close(g1, g2, dtype)


OPTIM_CASES = [
    ("adagrad_step", ("state_sum",), dict(lr=0.1)),
    (
        "adagrad_step",
        ("state_sum",),
        dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, eps=1e-3, step=4),
    ),
    ("rmsprop_step", ("square_avg", None, None), dict(lr=0.01)),
    (
        "rmsprop_step",
        ("square_avg", "grad_avg", "momentum_buffer"),
        dict(lr=0.01, alpha=0.9, eps=1e-4, weight_decay=0.1, momentum=0.8, centered=True),
    ),
    ("adam_step", ("exp_avg", "exp_avg_sq"), dict(lr=0.01)),
    (
        "adam_step",
        ("exp_avg", "exp_avg_sq"),
        dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-4, weight_decay=0.1, step=3),
    ),
    (
        "adam_step",
        ("exp_avg", "exp_avg_sq"),
        dict(lr=0.01, weight_decay=0.1, decoupled=True, step=2),
    ),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,states,kw", OPTIM_CASES)
def test_optimizer_kernels_match_reference(name, states, kw, dtype):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((7, 13)).astype(dtype)
    g = array_in_layout(rng, (7, 13), dtype, "strided")  # the gradient may have any layout
    # States as an earlier step would leave them: square averages above the squared means.
    s0 = [None if s is None else 0.3 * rng.standard_normal((7, 13)) for s in states]
    s0 = [
        None
        if a is None
        else (1 + a * a if s in ("square_avg", "state_sum", "exp_avg_sq") else a).astype(dtype)
        for s, a in zip(states, s0)
    ]
    results = []
    for impl in (kernels, ops):
        p = p0.copy()
        s = [None if a is None else a.copy() for a in s0]
        for _ in range(3):
            getattr(impl, name)(p, g, *s, **kw)
        results.append((p, s))
    (pk, sk), (po, so) = results
    assert np.all(np.isfinite(pk))
    close(pk, po, dtype)
    for a, b in zip(sk, so):
        if a is not None:
            close(a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "kw",
    [
        dict(lr=0.01),
        dict(lr=0.05, beta1=0.8, beta2=0.99, eps=1e-4, weight_decay=0.1),
        dict(lr=0.01, weight_decay=0.2, decoupled=True),
    ],
)
def test_adam_step_many_matches_reference(kw, dtype):
    """Adam's update of several parameters in one call (each with its own step count), and
    the sum of squares of the parameters before it."""
    rng = np.random.default_rng(4)
    shapes = [(7, 13), (5,), (4097,), (3, 1), (0, 4)]
    p0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [
        array_in_layout(rng, s, dtype, "strided")
        if len(s) == 2
        else rng.standard_normal(s).astype(dtype)
        for s in shapes
    ]  # the gradients may have any layout
    m0 = [0.1 * rng.standard_normal(s).astype(dtype) for s in shapes]
    v0 = [(0.1 + rng.random(s)).astype(dtype) for s in shapes]
    steps = [1, 4, 2, 9, 3]
    results = []
    for impl in (kernels, ops):
        p, m, v = ([a.copy() for a in arrays] for arrays in (p0, m0, v0))
        totals = [
            impl.adam_step_many(p, grads, m, v, [t + i for t in steps], sum_squares=True, **kw)
            for i in range(3)
        ]
        assert impl.adam_step_many(p, grads, m, v, steps, **kw) == 0.0
        results.append((p, m, v, totals))
    (pk, mk, vk, tk), (po, mo, vo, to) = results
    for a, b in zip(pk + mk + vk, po + mo + vo):
        close(a, b, dtype)
    assert tk == pytest.approx(to, rel=1e-12)
    # One call equals adam_step on each parameter, bit for bit.
    p, m, v = ([a.copy() for a in arrays] for arrays in (p0, m0, v0))
    kernels.adam_step_many(tuple(p), tuple(grads), m, v, steps, **kw)
    for i in range(len(shapes)):
        q, mq, vq = p0[i].copy(), m0[i].copy(), v0[i].copy()
        kernels.adam_step(q, grads[i], mq, vq, step=steps[i], **kw)
        np.testing.assert_array_equal(p[i], q)
        np.testing.assert_array_equal(m[i], mq)
        np.testing.assert_array_equal(v[i], vq)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_squares_and_scale(dtype):
    rng = np.random.default_rng(1)
    x = array_in_layout(rng, (300, 500), dtype, "strided")
    assert kernels.sum_squares(x) == pytest.approx(ops.sum_squares(x), rel=1e-12)
    a, b = np.ascontiguousarray(x), np.ascontiguousarray(x)
    kernels.scale_inplace(a, 0.37)
    ops.scale_inplace(b, 0.37)
    close(a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_squares_lanes_and_blocks(dtype):
    """Every tail length of the 16-lane loop and the sizes around the 4096-element blocks,
    against float64 NumPy; the lane order is fixed, so every ISA path gives the same bits."""
    rng = np.random.default_rng(3)
    before = kernels.info()["isa"]
    try:
        for n in [*range(40), 4095, 4096, 4097, 4096 * 3 + 17, 70001]:
            x = rng.standard_normal(n).astype(dtype)
            exact = float(np.sum(x.astype(np.float64) ** 2))
            results = set()
            for isa in isas():
                kernels.set_isa(isa)
                got = kernels.sum_squares(x)
                assert got == pytest.approx(exact, rel=1e-13, abs=0), (n, isa)
                results.add(got)
            assert len(results) == 1, (n, results)
    finally:
        kernels.set_isa(before)
