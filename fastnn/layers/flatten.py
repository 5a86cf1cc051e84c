"""Flatten: from images (or any batch-first array) to rows of features."""

import math

from fastnn.layers.base import Layer

__all__ = ["Flatten"]


class Flatten(Layer):
    """``(N, d1, d2, ...) -> (N, d1 * d2 * ...)`` in row-major order, like
    ``torch.nn.Flatten()``: the bridge from convolution and pooling layers to Dense ones.
    A view of its input where the layout allows it, never a copy otherwise needed."""

    input_ndim = None
    _transient = ("_shape",)

    def __init__(self):
        super().__init__()
        self._shape = None

    def output_features(self, in_features):
        return None  # the other axes of the input decide it

    def forward(self, x, training=False):
        x = self._input(x)
        if x.ndim < 2:
            raise ValueError(
                f"x: Flatten expects a batch (N, ...) of at least 2-D, got shape {x.shape}"
            )
        if training:
            self._shape = x.shape
        # The width spelled out: reshape(n, -1) cannot infer it from an empty batch.
        return x.reshape(x.shape[0], math.prod(x.shape[1:]))

    def backward(self, dy):
        if self._shape is None:
            raise RuntimeError("Flatten.backward called before a forward with training=True")
        return dy.reshape(self._shape)
