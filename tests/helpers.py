"""Plain helpers for the test modules, imported by name (``from helpers import close``).
The fixtures (``isa``, ``rng``, ``dtype``) and CI's rule for skips are in conftest.py."""

import importlib.util
import os

import numpy as np
import pytest

import fastnn
from fastnn import kernels

# ---- tolerances and instruction sets ----------------------------------------------------

DTYPES = (np.float32, np.float64)

# One tolerance table for every kernel-vs-reference comparison: (rtol, atol) per dtype.
# Reductions over k terms are scaled by sqrt(k) in close().
TOL = {np.dtype(np.float32): (2e-5, 2e-6), np.dtype(np.float64): (1e-12, 1e-13)}


def close(actual, expected, dtype, k=1, scale=1.0):
    rtol, atol = TOL[np.dtype(dtype)]
    grow = max(1.0, np.sqrt(k))
    np.testing.assert_allclose(actual, expected, rtol=rtol * grow, atol=atol * grow * scale)


def isas():
    """The instruction-set paths this CPU has, lowest first (the ``isa`` fixture's values)."""
    order = ("generic", "avx2", "avx512")
    return order[: order.index(kernels.info()["cpu_isa"]) + 1]


# ---- memory layouts ---------------------------------------------------------------------


def layouts(rng, shape, dtype):
    """The same matrix in several memory layouts."""
    base = rng.standard_normal(shape).astype(dtype)
    big = rng.standard_normal((shape[0] * 2 + 1, shape[1] * 3 + 2)).astype(dtype)
    strided = big[1::2, 2::3][: shape[0], : shape[1]]
    strided[...] = base
    yield "c", base
    yield "fortran", np.asfortranarray(base)
    yield "strided", strided
    yield "negative", base[::-1, ::-1].copy()[::-1, ::-1]
    ro = base.copy()
    ro.flags.writeable = False
    yield "readonly", ro


def array_in_layout(rng, shape, dtype, layout):
    """An array of `shape` that is C-contiguous, Fortran-ordered or a strided view."""
    if layout == "strided":
        big = rng.standard_normal((shape[0], 2 * shape[1])).astype(dtype)
        return big[:, ::2]
    a = rng.standard_normal(shape).astype(dtype)
    return np.asfortranarray(a) if layout == "fortran" else a


# ---- gradient checks --------------------------------------------------------------------
# rel_error, numeric_grad and check_model are an oracle independent of fastnn.gradcheck:
# float64 central differences written out here.


def rel_error(a, b):
    """||a - b|| / (||a|| + ||b||), 0 when both vanish."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    denom = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if denom == 0 else float(np.linalg.norm(a - b) / denom)


def numeric_grad(f, x, eps=1e-6):
    """Central differences of the scalar f() with respect to the array x, in place."""
    g = np.zeros_like(x)
    flat, gflat = x.reshape(-1), g.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + eps
        up = f()
        flat[i] = old - eps
        down = f()
        flat[i] = old
        gflat[i] = (up - down) / (2 * eps)
    return g


def check_model(model, X, y, loss):
    """Worst relative error over every parameter and the input gradient."""
    X = np.array(X, dtype=np.float64)

    def objective():
        out = model.forward(X, training=True)
        return loss(out, y)[0] + model.regularization_loss()

    out = model.forward(X, training=True)
    _, grad = loss(out, y)
    dX = model.backward(grad)
    errors = {
        p.name: rel_error(p.grad, numeric_grad(objective, p.data)) for p in model.parameters()
    }
    errors["input"] = rel_error(dX, numeric_grad(objective, X))
    return errors


def assert_gradcheck(model, X, y, loss=None, tol=1e-6):
    """fastnn.gradcheck reports every parameter, each within `tol` (loss: softmax
    cross-entropy unless given)."""
    errors = fastnn.gradcheck(model, X, y, loss or fastnn.SoftmaxCrossEntropy())
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
        numeric[idx] = (
            (layer.forward(xp, training=True) * w).sum()
            - (layer.forward(xm, training=True) * w).sum()
        ) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


# ---- small models and data --------------------------------------------------------------


def mlp(dtype=np.float32, seed=0):
    """8 -> 16 (ReLU) -> 16 (Tanh) -> 3."""
    return fastnn.Sequential(
        fastnn.Dense(8, 16, rng=seed, dtype=dtype),
        fastnn.ReLU(),
        fastnn.Dense(16, 16, rng=seed + 1, dtype=dtype),
        fastnn.Tanh(),
        fastnn.Dense(16, 3, rng=seed + 2, dtype=dtype),
    )


def dense64(i, o, seed, **kw):
    """A float64 Dense with xavier_normal weights, for the gradient checks."""
    return fastnn.Dense(i, o, dtype=np.float64, rng=seed, init="xavier_normal", **kw)


def classification_batch(n=16, d=5, k=3, seed=0):
    """n rows of d features (mean 1, std 2) and labels in [0, k)."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)) * 2 + 1, rng.integers(0, k, n)


def digits_subset():
    """The first 400 digits, scaled to [0, 1]."""
    X, y = fastnn.load_digits()
    return X[:400] / 16.0, y[:400]


def digits_mlp():
    """64 -> 32 (ReLU) -> 10 for the digits."""
    return fastnn.Sequential(
        fastnn.Dense(64, 32, rng=0), fastnn.ReLU(), fastnn.Dense(32, 10, rng=1)
    )


def mnist_dir():
    """FASTNN_MNIST_DIR, else <repository>/../shared/data/mnist; skip when neither exists."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    directory = os.environ.get("FASTNN_MNIST_DIR") or os.path.join(
        root, "..", "shared", "data", "mnist"
    )
    if not os.path.isdir(directory):
        pytest.skip(
            f"no MNIST files: set FASTNN_MNIST_DIR to the directory holding them "
            f"(looked in {directory})"
        )
    return directory


EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")


def example(name):
    """examples/NAME.py as a module; examples/ is not a package, so it is loaded by path."""
    spec = importlib.util.spec_from_file_location(
        f"example_{name}", os.path.join(EXAMPLES, f"{name}.py")
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
