"""Maxout: the maximum over several affine maps of the input."""

import numpy as np

from fastnn import kernels
from fastnn._validation import float_dtype, positive_int
from fastnn.layers.base import Layer, Parameter, initial_weight

__all__ = ["Maxout"]


class Maxout(Layer):
    """Maxout (Goodfellow et al. 2013): each output unit is the max of ``pieces`` affine maps
    of the input, ``y_j = max_k (x @ weight[j*pieces + k] + bias[j*pieces + k])``.

    ``weight`` has shape ``(out_features * pieces, in_features)`` and is unit-major: rows
    ``j*pieces .. j*pieces + pieces - 1`` are unit ``j``'s pieces (likewise ``bias``). The
    gradient flows only through each unit's winning piece (the first one on ties)."""

    _transient = ("_x", "_argmax")

    def __init__(
        self,
        in_features,
        out_features,
        pieces,
        *,
        bias=True,
        init="he_uniform",
        dtype=np.float32,
        rng=None,
        **init_kwargs,
    ):
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.pieces = positive_int(pieces, "pieces")
        self.dtype = float_dtype(dtype)
        self.init = init
        rows = self.out_features * self.pieces
        self.weight = Parameter(
            "weight", initial_weight(init, (rows, self.in_features), rng, self.dtype, init_kwargs)
        )
        self._params["weight"] = self.weight
        self.bias = Parameter("bias", np.zeros(rows, self.dtype)) if bias else None
        if bias:
            self._params["bias"] = self.bias
        self._x = self._argmax = None

    def get_config(self):
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "pieces": self.pieces,
            "bias": self.bias is not None,
            "dtype": self.dtype.name,
        }

    def output_features(self, in_features):
        if in_features != self.in_features:
            raise ValueError(f"Maxout expects {self.in_features} input features, got {in_features}")
        return self.out_features

    def forward(self, x, training=False):
        x = self._input(x, self.in_features)
        z = kernels.gemm(
            x, self.weight.data, trans_b=True, bias=None if self.bias is None else self.bias.data
        )
        y, argmax = kernels.maxout_forward(z, self.pieces)
        if training:
            self._x, self._argmax = x, argmax
        return y

    def backward(self, dy):
        """dz routes dy to the winning pieces; then as Dense: dW = dz^T x, db = column sums
        of dz, dx = dz W."""
        if self._x is None:
            raise RuntimeError("Maxout.backward called before a forward with training=True")
        dz = kernels.maxout_backward(dy, self._argmax, self.pieces)
        kernels.gemm(dz, self._x, trans_a=True, out=self.weight.grad)
        if self.bias is not None:
            kernels.column_sum(dz, out=self.bias.grad)
        return kernels.gemm(dz, self.weight.data)

    def extra_repr(self):
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"pieces={self.pieces}, bias={self.bias is not None}"
        )
