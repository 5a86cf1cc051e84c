"""The toolbox kernels (csrc/optim.c, csrc/layers.c) against their NumPy twins in
fastnn.ops, in both dtypes, with contiguous and non-contiguous inputs."""
import inspect

import numpy as np
import pytest

from fastnn import kernels
from fastnn import ops

# Once per instruction-set path this CPU has (conftest.isa): the optimizers have AVX2 builds.
pytestmark = pytest.mark.usefixtures("isa")

DTYPES = (np.float32, np.float64)
TOL = {np.float32: dict(rtol=2e-5, atol=2e-6), np.float64: dict(rtol=1e-12, atol=1e-13)}
NEW = ("adagrad_step", "rmsprop_step", "adam_step", "adam_step_many", "sum_squares",
       "scale_inplace", "mask_scale",
       "column_moments", "batchnorm_train", "batchnorm_eval", "batchnorm_backward",
       "maxout_forward", "maxout_backward", "standardize")


def close(a, b, dtype):
    np.testing.assert_allclose(a, b, **TOL[dtype])


def data(rng, shape, dtype, layout):
    """An array of `shape` that is C-contiguous, Fortran-ordered or a strided view."""
    if layout == "strided":
        big = rng.standard_normal((shape[0], 2 * shape[1])).astype(dtype)
        return big[:, ::2]
    a = rng.standard_normal(shape).astype(dtype)
    return np.asfortranarray(a) if layout == "fortran" else a


@pytest.mark.parametrize("name", NEW)
def test_signatures_match(name):
    assert inspect.signature(getattr(kernels, name)) == inspect.signature(getattr(ops, name))


OPTIM_CASES = [
    ("adagrad_step", ("state_sum",), dict(lr=0.1)),
    ("adagrad_step", ("state_sum",), dict(lr=0.1, lr_decay=0.05, weight_decay=0.1, eps=1e-3, step=4)),
    ("rmsprop_step", ("square_avg", None, None), dict(lr=0.01)),
    ("rmsprop_step", ("square_avg", "grad_avg", "momentum_buffer"),
     dict(lr=0.01, alpha=0.9, eps=1e-4, weight_decay=0.1, momentum=0.8, centered=True)),
    ("adam_step", ("exp_avg", "exp_avg_sq"), dict(lr=0.01)),
    ("adam_step", ("exp_avg", "exp_avg_sq"),
     dict(lr=0.01, beta1=0.8, beta2=0.99, eps=1e-4, weight_decay=0.1, step=3)),
    ("adam_step", ("exp_avg", "exp_avg_sq"), dict(lr=0.01, weight_decay=0.1, decoupled=True, step=2)),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,states,kw", OPTIM_CASES)
def test_optimizer_kernels_match_reference(name, states, kw, dtype):
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal((7, 13)).astype(dtype)
    g = data(rng, (7, 13), dtype, "strided")  # the gradient may have any layout
    # States as an earlier step would leave them: square averages above the squared means.
    s0 = [None if s is None else 0.3 * rng.standard_normal((7, 13)) for s in states]
    s0 = [None if a is None else (1 + a * a if s in ("square_avg", "state_sum", "exp_avg_sq") else a)
          .astype(dtype) for s, a in zip(states, s0)]
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
@pytest.mark.parametrize("kw", [dict(lr=0.01), dict(lr=0.05, beta1=0.8, beta2=0.99, eps=1e-4,
                                                    weight_decay=0.1),
                                dict(lr=0.01, weight_decay=0.2, decoupled=True)])
def test_adam_step_many_matches_reference(kw, dtype):
    """Adam's update of several parameters in one call (each with its own step count), and
    the sum of squares of the parameters before it."""
    rng = np.random.default_rng(4)
    shapes = [(7, 13), (5,), (4097,), (3, 1), (0, 4)]
    p0 = [rng.standard_normal(s).astype(dtype) for s in shapes]
    grads = [data(rng, s, dtype, "strided") if len(s) == 2 else rng.standard_normal(s).astype(dtype)
             for s in shapes]  # the gradients may have any layout
    m0 = [0.1 * rng.standard_normal(s).astype(dtype) for s in shapes]
    v0 = [(0.1 + rng.random(s)).astype(dtype) for s in shapes]
    steps = [1, 4, 2, 9, 3]
    results = []
    for impl in (kernels, ops):
        p, m, v = ([a.copy() for a in arrays] for arrays in (p0, m0, v0))
        totals = [impl.adam_step_many(p, grads, m, v, [t + i for t in steps], sum_squares=True,
                                      **kw) for i in range(3)]
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
    x = data(rng, (300, 500), dtype, "strided")
    assert kernels.sum_squares(x) == pytest.approx(ops.sum_squares(x), rel=1e-12)
    a, b = np.ascontiguousarray(x), np.ascontiguousarray(x)
    kernels.scale_inplace(a, 0.37)
    ops.scale_inplace(b, 0.37)
    close(a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_sum_squares_lanes_and_blocks(dtype):
    """Every tail length of the 16-lane loop and the sizes around the 4096-element blocks,
    against float64 NumPy; the lane order is fixed, so every ISA path gives the same bits."""
    from conftest import _isas

    rng = np.random.default_rng(3)
    before = kernels.info()["isa"]
    try:
        for n in [*range(0, 40), 4095, 4096, 4097, 4096 * 3 + 17, 70001]:
            x = rng.standard_normal(n).astype(dtype)
            exact = float(np.sum(x.astype(np.float64) ** 2))
            results = set()
            for isa in _isas():
                kernels.set_isa(isa)
                got = kernels.sum_squares(x)
                assert got == pytest.approx(exact, rel=1e-13, abs=0), (n, isa)
                results.add(got)
            assert len(results) == 1, (n, results)
    finally:
        kernels.set_isa(before)


def test_sum_squares_independent_of_threads():
    x = np.random.default_rng(2).standard_normal(1_000_003)
    n = kernels.get_num_threads()
    try:
        kernels.set_num_threads(1)
        one = kernels.sum_squares(x)
        kernels.set_num_threads(4)
        assert kernels.sum_squares(x) == one
    finally:
        kernels.set_num_threads(n)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ("C", "fortran", "strided"))
def test_mask_scale(dtype, layout):
    rng = np.random.default_rng(3)
    x = data(rng, (9, 11), dtype, layout)
    mask = rng.random((9, 11)) > 0.3
    close(kernels.mask_scale(x, mask, 1 / 0.7), ops.mask_scale(x, mask, 1 / 0.7), dtype)
    close(kernels.mask_scale(x, mask.astype(np.int8), 2.0), ops.mask_scale(x, mask, 2.0), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ("C", "fortran", "strided"))
def test_column_moments(dtype, layout):
    x = data(np.random.default_rng(4), (50, 130), dtype, layout) * 3 + 5
    for a, b in zip(kernels.column_moments(x), ops.column_moments(x)):
        close(a, b, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ("C", "fortran", "strided"))
@pytest.mark.parametrize("affine", (True, False))
def test_batchnorm_kernels(dtype, layout, affine):
    rng = np.random.default_rng(5)
    x = data(rng, (33, 70), dtype, layout) * 2 + 1
    w = rng.standard_normal(70).astype(dtype) if affine else None
    b = rng.standard_normal(70).astype(dtype) if affine else None
    rm0, rv0 = rng.standard_normal(70).astype(dtype), np.abs(rng.standard_normal(70)).astype(dtype)
    rk, vk, ro, vo = rm0.copy(), rv0.copy(), rm0.copy(), rv0.copy()
    yk, mk, ik = kernels.batchnorm_train(x, w, b, rk, vk, momentum=0.3, eps=1e-3)
    yo, mo, io = ops.batchnorm_train(x, w, b, ro, vo, momentum=0.3, eps=1e-3)
    for a, c in ((yk, yo), (mk, mo), (ik, io), (rk, ro), (vk, vo)):
        close(a, c, dtype)
    close(kernels.batchnorm_eval(x, w, b, rm0, rv0, eps=1e-3), ops.batchnorm_eval(x, w, b, rm0, rv0, eps=1e-3), dtype)
    dy = data(rng, (33, 70), dtype, layout)
    for a, c in zip(kernels.batchnorm_backward(dy, x, mk, ik, w), ops.batchnorm_backward(dy, x, mk, ik, w)):
        close(a, c, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ("C", "fortran", "strided"))
def test_maxout_kernels(dtype, layout):
    rng = np.random.default_rng(6)
    z = data(rng, (17, 12), dtype, layout)
    yk, ik = kernels.maxout_forward(z, 3)
    yo, io = ops.maxout_forward(z, 3)
    close(yk, yo, dtype)
    np.testing.assert_array_equal(ik, io)
    dy = data(rng, (17, 4), dtype, layout)
    close(kernels.maxout_backward(dy, ik, 3), ops.maxout_backward(dy, io, 3), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("layout", ("C", "fortran", "strided"))
def test_standardize_kernel(dtype, layout):
    rng = np.random.default_rng(7)
    x = data(rng, (10, 6), dtype, layout)
    mean = rng.standard_normal(6).astype(dtype)
    std = np.abs(rng.standard_normal(6)).astype(dtype)
    std[2] = 0
    close(kernels.standardize(x, mean, std), ops.standardize(x, mean, std), dtype)
    close(kernels.standardize(x, None, std), ops.standardize(x, None, std), dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_in_place_and_inputs_untouched(dtype):
    rng = np.random.default_rng(8)
    x = rng.standard_normal((5, 4)).astype(dtype)
    x.flags.writeable = False
    keep = x.copy()
    kernels.standardize(x, np.zeros(4, dtype), np.ones(4, dtype))
    kernels.batchnorm_train(x, None, None, None, None)
    np.testing.assert_array_equal(x, keep)
    y = keep.copy()
    out = kernels.mask_scale(y, np.ones((5, 4), bool), 2.0, out=y)
    assert out is y
    close(y, 2 * keep, dtype)


def test_threads_do_not_change_batchnorm():
    x = np.random.default_rng(9).standard_normal((2000, 300))
    n = kernels.get_num_threads()
    try:
        kernels.set_num_threads(1)
        one = kernels.batchnorm_train(x, None, None, None, None)
        dx1 = kernels.batchnorm_backward(x, x, one[1], one[2], None)
        kernels.set_num_threads(4)
        many = kernels.batchnorm_train(x, None, None, None, None)
        dxn = kernels.batchnorm_backward(x, x, many[1], many[2], None)
    finally:
        kernels.set_num_threads(n)
    for a, b in zip(one + dx1, many + dxn):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("call,exc,match", [
    (lambda: kernels.adam_step(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(4), lr=0.1), ValueError, "exp_avg_sq"),
    (lambda: kernels.adam_step(np.zeros(3), np.zeros(3), np.zeros(3), np.zeros(3), lr=0.1, step=0), ValueError, "step"),
    (lambda: kernels.adam_step(np.zeros(3), np.zeros(3), np.zeros(3, np.float32), np.zeros(3), lr=0.1), ValueError, "exp_avg"),
    (lambda: kernels.adagrad_step([0.0], np.zeros(1), np.zeros(1), lr=0.1), TypeError, "param"),
    (lambda: kernels.rmsprop_step(np.zeros(3), np.zeros(3), np.zeros(3), None, None, lr=0.1, centered=True), TypeError, "grad_avg"),
    (lambda: kernels.rmsprop_step(np.zeros(3), np.zeros(3), np.zeros(3), None, None, lr=0.1, momentum=0.5), TypeError, "momentum_buffer"),
    (lambda: kernels.mask_scale(np.zeros((2, 2)), np.ones(3, bool), 1.0), ValueError, "mask"),
    (lambda: kernels.batchnorm_train(np.zeros((1, 3)), None, None, None, None), ValueError, "2 rows"),
    (lambda: kernels.batchnorm_train(np.zeros((4, 3)), np.ones(2), None, None, None), ValueError, "weight"),
    (lambda: kernels.batchnorm_eval(np.zeros((4, 3)), None, None, np.zeros(3), np.zeros(2)), ValueError, "running_var"),
    (lambda: kernels.maxout_forward(np.zeros((2, 5)), 2), ValueError, "pieces"),
    (lambda: kernels.maxout_backward(np.zeros((2, 2)), np.full((2, 2), 3), 3), ValueError, "argmax"),
    (lambda: kernels.maxout_backward(np.zeros((2, 2)), np.zeros((2, 2)), 0), ValueError, "pieces"),
    (lambda: kernels.standardize(np.zeros((2, 3)), None, np.ones(4)), ValueError, "std"),
    (lambda: kernels.column_moments(np.zeros((0, 3))), ValueError, "one row"),
])
def test_bad_inputs_raise(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_state_overlap_rejected():
    p = np.zeros(6)
    with pytest.raises(ValueError, match="overlaps"):
        kernels.adam_step(p, np.zeros(6), p, np.zeros(6), lr=0.1)


@pytest.mark.usefixtures("isa")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxout_nan_propagates_like_argmax(dtype):
    """A NaN piece anywhere wins its unit (the first NaN, as NumPy's argmax picks it), so
    a NaN never vanishes behind a larger number; ties go to the first piece."""
    z = np.array([[1, np.nan, 5, 2, 2, 0], [np.nan, 9, np.nan, -1, 3, 3]], dtype)
    y, idx = kernels.maxout_forward(z, 3)
    yo, io = ops.maxout_forward(z, 3)
    np.testing.assert_array_equal(idx, [[1, 0], [0, 1]])
    np.testing.assert_array_equal(idx, io)
    np.testing.assert_array_equal(y, yo)
