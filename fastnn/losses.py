"""Losses: ``loss, grad = loss_fn(output, target)`` with ``loss`` a Python float and ``grad``
d loss / d output, of the output's shape and dtype. Each is one fused kernel pass.

Dtypes: the output's dtype decides (it is the model's, fixed at construction). A float32
or float64 output array is used as it is; any other output (a list, ints, bools, float16)
is converted to float64. Probability and regression targets are converted to the output's
float dtype (as ``fit`` converts them to the model's), so a float64 or list target beside a
float32 output gives a float32 gradient. Class labels stay integers: any integer
dtype, or floats that are whole numbers; anything else is an error naming the first bad
label and its index. Arrays already in the kernel's form are passed on without a copy, and
the caller's arrays are never modified."""

from collections.abc import Callable
from typing import Any

import numpy as np

from fastnn import kernels
from fastnn._validation import _first_non_number, as_array, as_float_array, check_numeric

__all__ = ["Loss", "SoftmaxCrossEntropy", "BCEWithLogits", "MSELoss"]


class Loss:
    """Base class: ``loss(output, target) -> (float, grad)``, ``grad`` of the output's shape
    and float dtype. Converts its inputs as the module's docstring says, then runs ``kernel``
    (which ``Sequential.forward_backward`` calls directly, into the model's buffer)."""

    reductions: tuple[str, ...] = ("mean", "sum")
    kernel: Callable[..., tuple[float, Any]] | None = None
    #: the output it expects is a logit (metrics threshold binary outputs at 0, not 0.5)
    logits = False

    def __init__(self, reduction="mean"):
        if reduction not in self.reductions:
            raise ValueError(
                f"{type(self).__name__}: reduction must be one of {self.reductions}, "
                f"got {reduction!r}"
            )
        self.reduction = reduction

    def __call__(self, output, target):
        output = self._output(output)
        return type(self).kernel(output, self.target_for(target, output), reduction=self.reduction)

    def _output(self, output):
        # The kernels take float32/float64 only; at this floor other numbers are converted
        # (to float64, which holds every int32 and bool exactly), as the model converts X.
        if (
            isinstance(output, np.ndarray)
            and output.dtype.kind == "f"
            and output.dtype.itemsize in (4, 8)
        ):
            return output  # any byte order: the kernel copies a byte-swapped array
        return as_float_array(output, np.float64, "output", prefix=self._prefix)

    def target_for(self, target, output):
        """``target`` in the form the kernel takes beside the float array ``output``: numbers
        in the output's dtype (class labels: int64), the same object when it already is."""
        if isinstance(target, np.ndarray) and target.dtype == output.dtype:
            return target
        dtype = np.dtype(f"f{output.dtype.itemsize}")
        arr = as_array(
            target,
            "target",
            f"an array-like of numbers with the output's shape {output.shape}",
            self._prefix,
        )
        return check_numeric(arr, "target", self._prefix).astype(dtype, copy=False)

    @property
    def _prefix(self):
        return f"{type(self).__name__}: "

    def __repr__(self):
        return f"{type(self).__name__}(reduction={self.reduction!r})"


class SoftmaxCrossEntropy(Loss):
    """Softmax + cross-entropy on logits ``(n, k)``: ``-sum_j t_j log softmax(x)_j`` per row,
    with integer labels ``(n,)`` or probability rows ``(n, k)`` as target. ``mean`` divides by n.
    The fused gradient is ``softmax(x) - onehot`` (scaled by 1/n for ``mean``)."""

    kernel = staticmethod(kernels.softmax_cross_entropy)
    logits = True

    def target_for(self, target, output):
        """Probabilities (2-D) in the output's dtype, or class labels checked here (first
        bad label and its index) unless they are int64 already (the kernel checks those)."""
        if output.ndim != 2:
            raise ValueError(
                f"{self._prefix}output must be 2-D logits (n_samples, n_classes), "
                f"got shape {output.shape}"
            )
        if isinstance(target, np.ndarray) and (
            target.dtype == output.dtype
            if target.ndim == 2
            else target.ndim == 1 and target.dtype == np.int64
        ):
            return target
        dtype = np.dtype(f"f{output.dtype.itemsize}")
        m, k = output.shape
        what = f"class labels of shape ({m},) or probabilities of shape ({m}, {k})"
        t = as_array(target, "target", what, self._prefix)
        if t.ndim == 2:
            check_numeric(t, "target", self._prefix)
            if t.shape != (m, k):
                hint = f" (class labels are 1-D, shape ({m},))" if t.shape == (m, 1) else ""
                raise ValueError(
                    f"{self._prefix}target probabilities must have shape {(m, k)}, "
                    f"got {t.shape}{hint}"
                )
            return t.astype(dtype, copy=False)
        if t.ndim != 1 or t.shape[0] != m:
            raise ValueError(f"{self._prefix}target must be {what}, got shape {t.shape}")
        return _labels(t, k, self._prefix)


def _labels(t, k, prefix):
    """1-D class labels as contiguous int64 in [0, k): integers, or floats that are whole."""
    if t.dtype.kind == "f":
        bad = ~np.isfinite(t)
        bad[~bad] = t[~bad] != np.floor(t[~bad])
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(
                f"{prefix}target labels must be whole numbers, got {t[i]} at index {i}"
            )
    elif t.dtype.kind not in "iu":
        raise TypeError(
            f"{prefix}target labels must be integers, got dtype {t.dtype}{_first_non_number(t)}"
        )
    bad = (t < 0) | (t >= k)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"{prefix}target labels must be in [0, {k}), got {t[i]} at index {i}")
    return np.ascontiguousarray(t, dtype=np.int64)


class BCEWithLogits(Loss):
    """Sigmoid + binary cross-entropy on logits, elementwise:
    ``max(x, 0) - x t + log(1 + exp(-|x|))``; target 0/1 or probabilities, the output's shape.
    ``mean`` averages over all elements. Gradient ``sigmoid(x) - t``."""

    kernel = staticmethod(kernels.bce_with_logits)
    logits = True


class MSELoss(Loss):
    """Squared error: ``mean((x - t)^2)``; ``sum``; or ``half_sum`` = ``1/2 sum (x - t)^2``
    (the lecture notes' form, whose gradient is ``x - t``)."""

    reductions = ("mean", "sum", "half_sum")
    kernel = staticmethod(kernels.mse)
