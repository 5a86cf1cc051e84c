"""The loss kernels against fastnn.ops: softmax_cross_entropy (integer labels of several
types, label lists, probabilities), bce_with_logits and mse, every reduction, both dtypes;
extreme logits give finite losses and gradients."""

import numpy as np
import pytest

from fastnn import kernels, ops
from helpers import close

# Every test here runs once per instruction-set path this CPU has (conftest.isa).
pytestmark = pytest.mark.usefixtures("isa")


@pytest.mark.parametrize("m,k", [(1, 1), (1, 10), (5, 3), (64, 10), (1000, 7), (3, 1000)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_softmax_cross_entropy(m, k, reduction, dtype, rng):
    x = (rng.standard_normal((m, k)) * 3).astype(dtype)
    labels = rng.integers(0, k, m)
    probs = rng.dirichlet(np.ones(k), m).astype(dtype)
    for target in (labels, probs, labels.astype(np.int32), labels.tolist()):
        l1, g1 = kernels.softmax_cross_entropy(x, target, reduction=reduction)
        l2, g2 = ops.softmax_cross_entropy(x, target, reduction=reduction)
        close(l1, l2, dtype, k=m)
        close(g1, g2, dtype)
        assert g1.dtype == dtype and isinstance(l1, float)


def test_softmax_cross_entropy_extreme_logits(dtype):
    x = np.array([[1e4, -1e4, 0.0], [-1e30, 0.0, 1e30]], dtype)
    loss, grad = kernels.softmax_cross_entropy(x, [0, 2])
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (100, 1), (33, 65)])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_bce_with_logits(shape, reduction, dtype, rng):
    x = (rng.standard_normal(shape) * 6).astype(dtype)
    for t in (rng.integers(0, 2, shape), rng.uniform(0, 1, shape)):
        l1, g1 = kernels.bce_with_logits(x, t, reduction=reduction)
        l2, g2 = ops.bce_with_logits(x, t, reduction=reduction)
        close(l1, l2, dtype, k=x.size)
        close(g1, g2, dtype)
    loss, _grad = kernels.bce_with_logits(np.array([[1e4, -1e4]], dtype), [[0, 1]])
    assert np.isfinite(loss) and loss == pytest.approx(1e4, rel=1e-6)


@pytest.mark.parametrize("shape", [(1, 1), (7, 3), (100, 1), (33, 65)])
@pytest.mark.parametrize("reduction", ["mean", "sum", "half_sum"])
def test_mse(shape, reduction, dtype, rng):
    x = rng.standard_normal(shape).astype(dtype)
    t = rng.standard_normal(shape)
    l1, g1 = kernels.mse(x, t, reduction=reduction)
    l2, g2 = ops.mse(x, t, reduction=reduction)
    close(l1, l2, dtype, k=x.size)
    close(g1, g2, dtype)
