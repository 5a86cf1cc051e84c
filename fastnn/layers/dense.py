"""Fully connected layers."""

import numpy as np

from fastnn import kernels
from fastnn._validation import elementwise_view, float_dtype, positive_int, real
from fastnn.layers.base import Layer, Parameter, initial_weight, mark_replaced

__all__ = ["Dense"]


class Dense(Layer):
    """Fully connected: ``y = x @ weight.T + bias`` with weight ``(out_features, in_features)``
    (PyTorch's ``nn.Linear`` layout). ``l1``/``l2`` add ``l1 sum|W| + l2 sum W^2`` to the loss
    (weights only) and their gradient to ``weight.grad``."""

    _transient = ("_x",)

    def __init__(
        self,
        in_features,
        out_features,
        *,
        bias=True,
        init="he_uniform",
        l1=0.0,
        l2=0.0,
        dtype=np.float32,
        rng=None,
        **init_kwargs,
    ):
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.l1, self.l2 = l1, l2
        self.dtype = float_dtype(dtype)
        self.init = init
        w = initial_weight(
            init, (self.out_features, self.in_features), rng, self.dtype, init_kwargs
        )
        self.weight = Parameter("weight", w)
        self._params["weight"] = self.weight
        self.bias = Parameter("bias", np.zeros(self.out_features, self.dtype)) if bias else None
        if bias:
            self._params["bias"] = self.bias
        self._x = None

    def get_config(self):
        return {
            "in_features": self.in_features,
            "out_features": self.out_features,
            "bias": self.bias is not None,
            "l1": self.l1,
            "l2": self.l2,
            "dtype": self.dtype.name,
        }

    def output_features(self, in_features):
        if in_features != self.in_features:
            raise ValueError(f"Dense expects {self.in_features} input features, got {in_features}")
        return self.out_features

    @property
    def l1(self):
        return self._l1

    @l1.setter
    def l1(self, value):
        self._l1 = real(value, "l1", minimum=0.0)
        mark_replaced()

    @property
    def l2(self):
        return self._l2

    @l2.setter
    def l2(self, value):
        self._l2 = real(value, "l2", minimum=0.0)
        mark_replaced()

    def _set_weight_order(self, order):
        """Store the weight and its gradient C- ("C") or F-contiguous ("F"), values and shape
        unchanged; a copy only when the order changes. Sparse input needs "F": ``weight.T`` is
        then the C-contiguous (in_features, out_features) matrix the sparse kernels multiply
        by and write the gradient into. Optimizers follow the new order."""
        if order not in ("C", "F"):
            raise ValueError(f"order must be 'C' or 'F', got {order!r}")
        w = self.weight
        flag = "C_CONTIGUOUS" if order == "C" else "F_CONTIGUOUS"
        if not w.data.flags[flag]:
            w.data = w.data.copy(order=order)
        if not w.grad.flags[flag]:
            w.grad = w.grad.copy(order=order)

    def chain_step(self, activation=None):
        """This layer, with the elementwise `activation` layer after it fused in (or None),
        as one step of the compiled Dense chain: a :class:`fastnn.kernels.DenseStep` of
        its own arrays (not copies), which the chain's backward writes the gradients into."""
        bias = self.bias
        return kernels.DenseStep(
            self.weight.data,
            None if bias is None else bias.data,
            self.weight.grad,
            None if bias is None else bias.grad,
            "identity" if activation is None else activation.kernel_name,
            0.0 if activation is None else activation.negative_slope,
            self._l1,
            self._l2,
        )

    def forward(self, x, training=False):
        x = self._input(x, self.in_features)
        if training:  # the backward writes the weight's gradient in C order
            self._set_weight_order("C")
        y = kernels.dense_chain_forward(x, (self.chain_step(),))
        if training:
            self._x = x
        return y

    def backward(self, dy):
        """dW = dy^T x and db = column sums of dy (overwriting the gradients; the l1/l2
        terms added), and returns dx = dy W."""
        if self._x is None:
            raise RuntimeError("Dense.backward called before a forward with training=True")
        return kernels.dense_chain_backward(dy, (self.chain_step(),), self._x, (None,))

    def regularization_loss(self):
        if not (self.l1 or self.l2):
            return 0.0
        w = elementwise_view(self.weight.data)
        return kernels.penalty(w, np.zeros_like(w), l1=self.l1, l2=self.l2)

    def extra_repr(self):
        extra = (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}"
        )
        if self.l1:
            extra += f", l1={self.l1}"
        if self.l2:
            extra += f", l2={self.l2}"
        return extra
