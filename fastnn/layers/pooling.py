"""Pooling layers over NCHW images: MaxPool2d and AvgPool2d, with PyTorch's semantics."""

from fastnn import kernels
from fastnn.layers._spatial import pair, window_output
from fastnn.layers.base import Layer

__all__ = ["MaxPool2d", "AvgPool2d"]


def _size(value):
    """A (height, width) pair as PyTorch's repr shows it: one int when both are equal."""
    return value[0] if value[0] == value[1] else value


class _Pool2d(Layer):
    """What the pooling layers share: the window (kernel_size, stride, padding as (height,
    width) tuples), its checks, and the input shape the backward needs. Parameter-free:
    the dtype follows the input."""

    input_ndim = 4
    _transient = ("_input_shape",)

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = self.kernel_size if stride is None else pair(stride, "stride", 1)
        self.padding = pair(padding, "padding", 0)
        # PyTorch's rule: with more padding, a window could hold padding only.
        if any(2 * p > k for p, k in zip(self.padding, self.kernel_size)):
            raise ValueError(
                f"padding must be at most half the kernel size, got padding={padding!r} for "
                f"kernel_size={kernel_size!r}"
            )
        self._input_shape = None

    def get_config(self):
        return {"kernel_size": self.kernel_size, "stride": self.stride, "padding": self.padding}

    def _images(self, x):
        """x as images whose height and width hold the padded window."""
        x = self._input(x)
        name = type(self).__name__
        for axis, size, k, s, p in zip(
            ("height", "width"), x.shape[2:], self.kernel_size, self.stride, self.padding
        ):
            window_output(size, k, s, p, p, 1, axis, name)
        return x

    def _cached_shape(self):
        if self._input_shape is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called before a forward with training=True"
            )
        return self._input_shape

    def extra_repr(self):
        return (
            f"kernel_size={_size(self.kernel_size)}, stride={_size(self.stride)}, "
            f"padding={_size(self.padding)}"
        )


class MaxPool2d(_Pool2d):
    """2-D max pooling of ``(N, C, H, W)`` images (PyTorch's ``MaxPool2d``): each output is
    the maximum of a ``kernel_size`` window moved by ``stride`` (default: ``kernel_size``)
    over the image with ``padding`` (at most half the kernel) on every side, which never
    wins; the output is ``(H + 2 padding - kernel_size) // stride + 1`` high (likewise
    wide). The gradient flows to each window's maximum (the first one on ties; a NaN is the
    maximum of its window), accumulated where windows overlap."""

    _transient = ("_input_shape", "_argmax")

    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__(kernel_size, stride, padding)
        self._argmax = None

    def forward(self, x, training=False):
        x = self._images(x)
        y, argmax = kernels.maxpool2d_forward(x, self.kernel_size, self.stride, self.padding)
        if training:
            self._input_shape, self._argmax = x.shape, argmax
        return y

    def backward(self, dy):
        """dx is zero except at each window's maximum, which receives the window's dy."""
        shape = self._cached_shape()
        return kernels.maxpool2d_backward(dy, self._argmax, shape)


class AvgPool2d(_Pool2d):
    """2-D average pooling of ``(N, C, H, W)`` images (PyTorch's ``AvgPool2d``): windows as
    :class:`MaxPool2d`'s; each output is its window's sum over the image divided, with
    ``count_include_pad`` (the default), by the window's size clipped to the padded image,
    otherwise by the number of image positions in the window."""

    def __init__(self, kernel_size, stride=None, padding=0, count_include_pad=True):
        super().__init__(kernel_size, stride, padding)
        self.count_include_pad = bool(count_include_pad)

    def get_config(self):
        return {**super().get_config(), "count_include_pad": self.count_include_pad}

    def forward(self, x, training=False):
        x = self._images(x)
        if training:
            self._input_shape = x.shape
        return kernels.avgpool2d_forward(
            x, self.kernel_size, self.stride, self.padding, self.count_include_pad
        )

    def backward(self, dy):
        """Each output's dy, divided as in the forward, spread over its window."""
        shape = self._cached_shape()
        return kernels.avgpool2d_backward(
            dy, shape, self.kernel_size, self.stride, self.padding, self.count_include_pad
        )

    def extra_repr(self):
        pad = "" if self.count_include_pad else ", count_include_pad=False"
        return super().extra_repr() + pad
