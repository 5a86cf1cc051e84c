"""Bad input raises ValueError/TypeError naming the argument; nothing crashes."""
import numpy as np
import pytest

import fastnn
from fastnn import kernels as K

f32 = np.float32


@pytest.mark.parametrize("call,exc,match", [
    (lambda: K.gemm(np.ones(3, f32), np.ones((3, 3), f32)), ValueError, "a must be 2-D"),
    (lambda: K.gemm(np.ones((2, 3), f32), np.ones((4, 3), f32)), ValueError, "inner dimensions"),
    (lambda: K.gemm(np.ones((2, 3), np.int64), np.ones((3, 3))), TypeError, "float32 or float64"),
    (lambda: K.gemm(np.ones((2, 3), f32), np.ones((3, 3))), TypeError, "expected float32"),
    (lambda: K.gemm(np.ones((2, 3), np.complex64), np.ones((3, 3))), TypeError, "a must have dtype"),
    (lambda: K.gemm(np.ones((2, 3), object), np.ones((3, 3))), TypeError, "a must have dtype"),
    (lambda: K.gemm(np.ones((2, 3), np.float16), np.ones((3, 3))), TypeError, "float16"),
    (lambda: K.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), bias=np.ones(3, f32)),
     ValueError, "bias must have shape"),
    (lambda: K.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), activation="gelu"),
     ValueError, "activation must be one of"),
    (lambda: K.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), out=np.empty((2, 5), f32)),
     ValueError, "out has shape"),
    (lambda: K.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), out=np.empty((2, 4))),
     TypeError, "out has dtype"),
    (lambda: K.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), out=[[0] * 4] * 2),
     TypeError, "out must be a numpy.ndarray"),
    (lambda: K.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32),
                    out=np.broadcast_to(np.empty(4, f32), (2, 4))), ValueError, "read-only"),
    (lambda: K.softmax_cross_entropy(np.ones((2, 3), f32), [0, 3]), ValueError, r"\[0, 3\)"),
    (lambda: K.softmax_cross_entropy(np.ones((2, 3), f32), [0, -1]), ValueError, "got -1"),
    (lambda: K.softmax_cross_entropy(np.ones((2, 3), f32), [0]), ValueError, "shape"),
    (lambda: K.softmax_cross_entropy(np.ones((2, 3), f32), [0.5, 1]), ValueError, "whole numbers"),
    (lambda: K.softmax_cross_entropy(np.ones((2, 3), f32), ["a", "b"]), TypeError, "integers"),
    (lambda: K.softmax_cross_entropy(np.ones((2, 0), f32), [0, 0]), ValueError, "at least one column"),
    (lambda: K.softmax_cross_entropy(np.ones((0, 3), f32), []), ValueError, "at least one row"),
    (lambda: K.softmax_cross_entropy(np.ones((2, 3), f32), [0, 1], reduction="max"),
     ValueError, "reduction"),
    (lambda: K.mse(np.ones((2, 3), f32), np.ones((3, 2))), ValueError, "target has shape"),
    (lambda: K.bce_with_logits(np.ones((2, 3), f32), np.full((2, 3), "x")), TypeError, "numeric"),
    (lambda: K.sgd_step(np.ones(3, f32), np.ones(4, f32), None, lr=0.1), ValueError, "grad has shape"),
    (lambda: K.sgd_step(np.ones(3, f32), np.ones(3, f32), np.ones(3), lr=0.1, momentum=0.9),
     ValueError, "momentum_buffer"),
    (lambda: K.sgd_step([1.0, 2.0], np.ones(2, f32), None, lr=0.1), TypeError, "param"),
    (lambda: K.set_num_threads(0), ValueError, "n must be"),
    (lambda: K.set_isa("sse9"), ValueError, "isa must be"),
])
def test_kernel_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_out_overlapping_input_rejected():
    a = np.ones((4, 4), f32)
    with pytest.raises(ValueError, match="overlaps"):
        K.gemm(a, a, out=a)
    buf = np.ones(20, f32)
    x, shifted = buf[:16].reshape(4, 4), buf[2:18].reshape(4, 4)
    with pytest.raises(ValueError, match="overlaps"):
        K.activation_forward(x, "relu", out=shifted)
    assert K.activation_forward(x, "relu", out=x) is x  # exactly in place is allowed


@pytest.mark.parametrize("call,exc,match", [
    (lambda m: m.forward(np.ones((2, 5))), ValueError, "expects 4 features"),
    (lambda m: m.forward(np.ones(4)), ValueError, "X must be 2-D"),
    (lambda m: m.forward(np.array([["a"] * 4])), TypeError, "numeric"),
    (lambda m: m.forward(np.ones((2, 4), complex)), TypeError, "numeric"),
    (lambda m: m.fit(np.ones((3, 4)), [0, 1], loss=fastnn.SoftmaxCrossEntropy(),
                     optimizer=fastnn.optim.SGD(m, lr=0.1)), ValueError, "y has 2 samples"),
    (lambda m: m.fit(np.ones((3, 4)), [0, 1, 2], loss=fastnn.SoftmaxCrossEntropy(),
                     optimizer=fastnn.optim.SGD(m, lr=0.1), batch_size=0), ValueError, "batch_size"),
    (lambda m: m.fit(np.ones((3, 4)), [0, 1, 9], loss=fastnn.SoftmaxCrossEntropy(),
                     optimizer=fastnn.optim.SGD(m, lr=0.1)), ValueError, r"\[0, 3\)"),
    (lambda m: m.backward(np.ones((2, 3))), RuntimeError, "before a forward"),
])
def test_model_bad_input(call, exc, match):
    model = fastnn.Sequential(fastnn.Dense(4, 3), fastnn.ReLU())
    with pytest.raises(exc, match=match):
        call(model)


@pytest.mark.parametrize("make,match", [
    (lambda: fastnn.Dense(0, 3), "in_features"),
    (lambda: fastnn.Dense(3, 2.5), "out_features"),
    (lambda: fastnn.Dense(3, 2, init="magic"), "init must be one of"),
    (lambda: fastnn.Dense(3, 2, l2=-1), "l2"),
    (lambda: fastnn.Dense(3, 2, dtype=np.int32), "dtype"),
    (lambda: fastnn.LeakyReLU("x"), "negative_slope"),
    (lambda: fastnn.MSELoss("avg"), "reduction"),
    (lambda: fastnn.Sequential(fastnn.Dense(2, 2), "relu"), "layer 1"),
])
def test_constructor_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_unusual_layouts_equal_contiguous(rng):
    model = fastnn.Sequential(fastnn.Dense(6, 5), fastnn.Sigmoid(), fastnn.Dense(5, 2))
    X = rng.standard_normal((9, 6)).astype(f32)
    want = model(X)
    ro = X.copy()
    ro.flags.writeable = False
    big = np.zeros((18, 12), f32)
    big[::2, ::2] = X
    for variant in (np.asfortranarray(X), X[::-1][::-1], big[::2, ::2], ro, X.tolist(),
                    X.astype(np.float64)):
        # A layout may take another GEMM path whose sums run in another order.
        np.testing.assert_allclose(model(variant), want, rtol=1e-5, atol=1e-6)


def test_memmap_input(tmp_path, rng):
    X = rng.standard_normal((50, 6)).astype(f32)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=f32, shape=X.shape)
    mm[...] = X
    mm.flush()
    ro = np.load(tmp_path / "x.npy", mmap_mode="r")
    model = fastnn.Sequential(fastnn.Dense(6, 3))
    np.testing.assert_allclose(model(ro), model(X))
