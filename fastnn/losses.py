"""Losses: ``loss, grad = loss_fn(output, target)`` with ``loss`` a Python float and ``grad``
d loss / d output, of the output's shape and dtype. Each is one fused kernel pass."""
from typing import Any, Callable
import numpy as np

from fastnn import kernels as K
from fastnn._validation import FLOAT_DTYPES, as_float_array

__all__ = ["Loss", "SoftmaxCrossEntropy", "BCEWithLogits", "MSELoss"]


class Loss:
    reductions: tuple[str, ...] = ("mean", "sum")
    kernel: Callable[..., tuple[float, Any]] | None = None
    #: the output it expects is a logit (metrics threshold binary outputs at 0, not 0.5)
    logits = False

    def __init__(self, reduction="mean"):
        if reduction not in self.reductions:
            raise ValueError(
                f"{type(self).__name__}: reduction must be one of {self.reductions}, got {reduction!r}")
        self.reduction = reduction

    def __call__(self, output, target):
        # The kernels take float32/float64 only; at this floor other numbers are converted
        # (to float64, which holds every int32 and bool exactly), as the model converts X.
        if not (isinstance(output, np.ndarray) and output.dtype in FLOAT_DTYPES):
            output = as_float_array(output, np.float64, "output")
        return type(self).kernel(output, target, reduction=self.reduction)

    def __repr__(self):
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class SoftmaxCrossEntropy(Loss):
    """Softmax + cross-entropy on logits ``(n, k)``: ``-sum_j t_j log softmax(x)_j`` per row,
    with integer labels ``(n,)`` or probability rows ``(n, k)`` as target. ``mean`` divides by n.
    The fused gradient is ``softmax(x) - onehot`` (scaled by 1/n for ``mean``)."""

    kernel = staticmethod(K.softmax_cross_entropy)
    logits = True


class BCEWithLogits(Loss):
    """Sigmoid + binary cross-entropy on logits, elementwise:
    ``max(x, 0) - x t + log(1 + exp(-|x|))``; target 0/1 or probabilities, the output's shape.
    ``mean`` averages over all elements. Gradient ``sigmoid(x) - t``."""

    kernel = staticmethod(K.bce_with_logits)
    logits = True


class MSELoss(Loss):
    """Squared error: ``mean((x - t)^2)``; ``sum``; or ``half_sum`` = ``1/2 sum (x - t)^2``
    (the lecture notes' form, whose gradient is ``x - t``)."""

    reductions = ("mean", "sum", "half_sum")
    kernel = staticmethod(K.mse)
