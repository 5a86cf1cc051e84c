"""Activations: the elementwise ones (which the model fuses into a preceding Dense) and
Softmax; :func:`get` finds an elementwise one by name."""

import math

from fastnn import kernels
from fastnn._validation import as_array, lookup, real
from fastnn.layers.base import Layer, mark_replaced

__all__ = ["Identity", "ReLU", "LeakyReLU", "Sigmoid", "Tanh", "Softmax", "get"]


class _Activation(Layer):
    """An elementwise activation, of an input of any shape with at least one axis;
    ``kernel_name`` is its name in the kernels."""

    input_ndim = None
    kernel_name = "identity"
    negative_slope = 0.0
    _transient = ("_y",)

    def __init__(self):
        super().__init__()
        self._y = None

    @property
    def fusable(self):
        """Whether its backward can run from its output alone (then Sequential fuses it
        into the preceding Dense)."""
        return True

    def forward(self, x, training=False):
        x = self._input(x)
        y = kernels.activation_forward(x, self.kernel_name, negative_slope=self.negative_slope)
        if training:
            self._y = y if self.fusable else x
        return y

    def backward(self, dy, bias_grad_out=None, out=None):
        if self._y is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called before a forward with training=True"
            )
        return kernels.activation_backward(
            dy,
            self._y,
            self.kernel_name,
            negative_slope=self.negative_slope,
            bias_grad_out=bias_grad_out,
            out=out,
        )


class Identity(_Activation):
    kernel_name = "identity"


class ReLU(_Activation):
    """max(x, 0)."""

    kernel_name = "relu"


class LeakyReLU(_Activation):
    """x if x > 0 else negative_slope * x."""

    kernel_name = "leaky_relu"

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    @property
    def negative_slope(self):
        return self._negative_slope

    @negative_slope.setter
    def negative_slope(self, value):
        self._negative_slope = real(value, "negative_slope")
        mark_replaced()

    def get_config(self):
        return {"negative_slope": self.negative_slope}

    @property
    def fusable(self):
        # The derivative's test "x > 0" can be read off the output only when the slope is
        # not negative; otherwise the layer keeps its input.
        return self.negative_slope >= 0

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(_Activation):
    """1 / (1 + exp(-x)); derivative y (1 - y)."""

    kernel_name = "sigmoid"


class Tanh(_Activation):
    """tanh(x); derivative 1 - y^2."""

    kernel_name = "tanh"


class Softmax(Layer):
    """Softmax over the last axis of an input of any shape with at least one axis
    (``torch.nn.Softmax(dim=-1)``), for inference outputs (train on logits with
    SoftmaxCrossEntropy, whose fused gradient is exact and stable)."""

    input_ndim = None
    _transient = ("_y",)

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x, training=False):
        x = self._input(x)
        # The kernel works on the rows of a matrix: every other axis becomes a row, a view
        # when x is C-contiguous.
        y = kernels.softmax(x.reshape(_rows(x.shape))).reshape(x.shape)
        if training:
            self._y = y
        return y

    def backward(self, dy):
        if self._y is None:
            raise RuntimeError("Softmax.backward called before a forward with training=True")
        shape = self._y.shape
        dy = as_array(dy, "dy", f"an array of the last output's shape {shape}")
        if dy.shape != shape:
            raise ValueError(
                f"dy: Softmax.backward expects the shape of its last output {shape}, got {dy.shape}"
            )
        rows = _rows(shape)
        return kernels.softmax_backward(dy.reshape(rows), self._y.reshape(rows)).reshape(shape)


def _rows(shape):
    """`shape` as (rows, last axis); explicit, since -1 is ambiguous for an empty axis."""
    return (math.prod(shape[:-1]), shape[-1])


def get(name):
    """The elementwise activation layer class called `name`, ignoring case, ``_`` and ``-``
    (``"relu"``, ``"leaky_relu"``, ``"Tanh"``): a registered subclass of the elementwise
    activations, so the ones a user defines are found too. Re-exported as
    ``fastnn.layers.get_activation``."""
    table = {
        cls_name: cls for cls_name, cls in Layer.registry.items() if issubclass(cls, _Activation)
    }
    return lookup(table, name, "activation", loose=True)
