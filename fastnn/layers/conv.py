"""Convolution layers."""

import numpy as np

from fastnn import kernels
from fastnn._validation import float_dtype, positive_int
from fastnn.layers._spatial import pair, window_output
from fastnn.layers.base import Layer, Parameter, initial_weight

__all__ = ["Conv2d"]

# A training forward keeps its patch matrices for the backward, which then skips rebuilding
# them, when they take at most this many bytes (conv32-64's 1->32 3x3 layer: 1.6 MB at batch
# 64; 2->24 3x3 on 224x224 images at batch 64: 227 MB, rebuilt).
_KEEP_PATCHES_BYTES = 64 << 20


class Conv2d(Layer):
    """2-D convolution over ``(N, C, H, W)`` images with ``torch.nn.Conv2d``'s layout and
    semantics: cross-correlation with zero padding, ``weight`` of shape ``(out_channels,
    in_channels // groups, kh, kw)``, ``bias`` ``(out_channels,)``. ``kernel_size``,
    ``stride``, ``padding`` and ``dilation`` are an int or a pair (height, width);
    ``padding`` may also be ``"valid"`` (none) or ``"same"`` (the output keeps the input's
    size, stride 1; an even dilated kernel pads one more at the bottom and right, as PyTorch
    does). ``groups`` splits the channels into that many independent convolutions
    (``groups == in_channels``: depthwise).

    Each image is one GEMM over its patches (read in place from the image by the GEMM's
    micro-kernel from 64 taps on, or 16 with output channels in whole 16s, copied out first
    below, at stride 1 as runs of the padded image) with the bias, and the activation the
    model fuses in, applied as the products are stored."""

    input_ndim = 4
    _transient = ("_cache", "_patches")

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        dilation=1,
        groups=1,
        bias=True,
        *,
        init="he_uniform",
        dtype=np.float32,
        rng=None,
        **init_kwargs,
    ):
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.kernel_size = pair(kernel_size, "kernel_size", 1)
        self.stride = pair(stride, "stride", 1)
        self.dilation = pair(dilation, "dilation", 1)
        self.groups = positive_int(groups, "groups")
        if self.in_channels % self.groups or self.out_channels % self.groups:
            raise ValueError(
                f"groups={self.groups} must divide in_channels ({self.in_channels}) and "
                f"out_channels ({self.out_channels})"
            )
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise ValueError(
                    f'padding must be an int, a pair, "same" or "valid", got {padding!r}'
                )
            if padding == "same" and self.stride != (1, 1):
                raise ValueError(f'padding="same" needs stride 1, got stride={stride!r}')
            self.padding = padding
        else:
            self.padding = pair(padding, "padding", 0)
        self.dtype = float_dtype(dtype)
        self.init = init
        shape = (self.out_channels, self.in_channels // self.groups, *self.kernel_size)
        self.weight = Parameter("weight", initial_weight(init, shape, rng, self.dtype, init_kwargs))
        self._params["weight"] = self.weight
        self.bias = None
        if bias:
            self.bias = Parameter("bias", np.zeros(self.out_channels, self.dtype))
            self._params["bias"] = self.bias
        self._cache = None
        self._patches = None  # the kept patch matrices' buffer, reused while its shape fits

    @property
    def in_features(self):
        """The size of the input's axis 1 (its channels), as Sequential checks it."""
        return self.in_channels

    def get_config(self):
        return {
            "in_channels": self.in_channels,
            "out_channels": self.out_channels,
            "kernel_size": self.kernel_size,
            "stride": self.stride,
            "padding": self.padding,
            "dilation": self.dilation,
            "groups": self.groups,
            "bias": self.bias is not None,
            "dtype": self.dtype.name,
        }

    def output_features(self, in_features):
        if in_features != self.in_channels:
            raise ValueError(f"Conv2d expects {self.in_channels} channels, got {in_features}")
        return self.out_channels

    def pads(self):
        """The zero padding as (top, bottom, left, right)."""
        if self.padding == "valid":
            return (0, 0, 0, 0)
        if self.padding == "same":
            th, tw = (d * (k - 1) for d, k in zip(self.dilation, self.kernel_size))
            return (th // 2, th - th // 2, tw // 2, tw - tw // 2)
        ph, pw = self.padding
        return (ph, ph, pw, pw)

    def output_shape(self, input_shape):
        """The output's shape for an input of `input_shape` (N, C, H, W), or a clear error
        when the dilated kernel does not fit the padded input."""
        n, _, h, w = input_shape
        top, bottom, left, right = self.pads()
        name = type(self).__name__
        oh = window_output(
            h, self.kernel_size[0], self.stride[0], top, bottom, self.dilation[0], "height", name
        )
        ow = window_output(
            w, self.kernel_size[1], self.stride[1], left, right, self.dilation[1], "width", name
        )
        return (n, self.out_channels, oh, ow)

    def _geometry(self):
        return {
            "stride": self.stride,
            "padding": self.pads(),
            "dilation": self.dilation,
            "groups": self.groups,
        }

    def forward(self, x, training=False, activation=None, out=None):
        """The convolution of `x`; `activation` (an elementwise activation layer, which the
        model passes when one follows this layer) is applied in the same pass, and `out`
        (the model's buffer) receives the result."""
        x = self._input(x, self.in_channels)
        self.output_shape(x.shape)  # the layer's own error for an image smaller than the kernel
        act = "identity" if activation is None else activation.kernel_name
        slope = 0.0 if activation is None else activation.negative_slope
        patches = self._patch_buffer(x) if training else None
        y = kernels.conv2d_forward(
            x,
            self.weight.data,
            None if self.bias is None else self.bias.data,
            activation=act,
            negative_slope=slope,
            out=out,
            patches_out=patches,
            **self._geometry(),
        )
        if training:
            self._cache = (x, y, act, slope, patches)
        return y

    def _patch_buffer(self, x):
        """Where a training forward keeps its patch matrices, or None (the kernel forms
        none, or too large: they are rebuilt in the backward)."""
        shape = kernels.conv2d_patches_shape(x, self.weight.data, **self._geometry())
        if shape is None or np.prod(shape, dtype=np.float64) * x.itemsize > _KEEP_PATCHES_BYTES:
            return None
        if self._patches is None or self._patches.shape != shape or self._patches.dtype != x.dtype:
            self._patches = np.empty(shape, x.dtype)
        return self._patches

    def backward(self, dy, input_grad=True, out=None):
        """Overwrites ``weight.grad`` and ``bias.grad`` and returns d loss / d x (None
        without `input_grad`: the model skips it for its first layer)."""
        if self._cache is None:
            raise RuntimeError("Conv2d.backward called before a forward with training=True")
        x, y, act, slope, patches = self._cache
        dx, _, _ = kernels.conv2d_backward(
            dy,
            x,
            self.weight.data,
            activation=act,
            negative_slope=slope,
            output=y,
            patches=patches,
            input_grad=input_grad,
            bias_grad=self.bias is not None,
            out=out,
            weight_grad_out=self.weight.grad,
            bias_grad_out=None if self.bias is None else self.bias.grad,
            **self._geometry(),
        )
        return dx

    def extra_repr(self):
        extra = (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}"
        )
        if self.padding != (0, 0):
            extra += f", padding={self.padding!r}"
        if self.dilation != (1, 1):
            extra += f", dilation={self.dilation}"
        if self.groups != 1:
            extra += f", groups={self.groups}"
        if self.bias is None:
            extra += ", bias=False"
        return extra
