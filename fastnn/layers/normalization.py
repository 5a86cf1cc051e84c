"""Normalisation layers."""

import numpy as np

from fastnn import kernels
from fastnn._validation import float_dtype, positive_int, real
from fastnn.layers.base import Layer, Parameter

__all__ = ["BatchNorm1d", "BatchNorm2d"]


class _BatchNorm(Layer):
    """What BatchNorm1d and BatchNorm2d share: everything but the rank of their input (the
    kernels normalise over axis 1 whatever follows it)."""

    _buffers = ("running_mean", "running_var", "num_batches_tracked")
    _transient = ("_cache",)

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32):
        super().__init__()
        self.num_features = positive_int(num_features, "num_features")
        self.eps = real(eps, "eps", minimum=0.0)
        self.momentum = (
            None if momentum is None else real(momentum, "momentum", minimum=0.0, maximum=1.0)
        )
        self.affine = bool(affine)
        self.dtype = float_dtype(dtype)
        n = self.num_features
        self.weight = self.bias = None
        if self.affine:
            self.weight = Parameter("weight", np.ones(n, self.dtype))
            self.bias = Parameter("bias", np.zeros(n, self.dtype))
            self._params.update(weight=self.weight, bias=self.bias)
        self.running_mean = np.zeros(n, self.dtype)
        self.running_var = np.ones(n, self.dtype)
        self.num_batches_tracked = np.zeros((), np.int64)
        self._cache = None

    @property
    def in_features(self):
        return self.num_features

    def get_config(self):
        return {
            "num_features": self.num_features,
            "eps": self.eps,
            "momentum": self.momentum,
            "affine": self.affine,
            "dtype": self.dtype.name,
        }

    def output_features(self, in_features):
        if in_features != self.num_features:
            what = "channels" if self.input_ndim == 4 else "features"
            raise ValueError(
                f"{type(self).__name__} expects {self.num_features} {what}, got {in_features}"
            )
        return in_features

    def _set_dtype(self, dtype):
        count = self.num_batches_tracked
        super()._set_dtype(dtype)
        self.num_batches_tracked = count  # a count, whatever the model's float dtype

    def _affine(self):
        return (None, None) if not self.affine else (self.weight.data, self.bias.data)

    def forward(self, x, training=False):
        x = self._input(x, self.num_features)
        weight, bias = self._affine()
        if not training:
            return kernels.batchnorm_eval(
                x, weight, bias, self.running_mean, self.running_var, eps=self.eps
            )
        self.num_batches_tracked += 1
        factor = 1.0 / int(self.num_batches_tracked) if self.momentum is None else self.momentum
        y, mean, invstd = kernels.batchnorm_train(
            x, weight, bias, self.running_mean, self.running_var, momentum=factor, eps=self.eps
        )
        self._cache = (x, mean, invstd)
        return y

    def backward(self, dy):
        """Through the batch statistics: dx = weight invstd (dy - mean(dy) - xhat
        mean(dy xhat)); dweight = sum dy xhat; dbias = sum dy."""
        if self._cache is None:
            raise RuntimeError(
                f"{type(self).__name__}.backward called before a forward with training=True"
            )
        x, mean, invstd = self._cache
        dx, _, _ = kernels.batchnorm_backward(
            dy,
            x,
            mean,
            invstd,
            self.weight.data if self.affine else None,
            weight_grad_out=self.weight.grad if self.affine else None,
            bias_grad_out=self.bias.grad if self.affine else None,
        )
        return dx

    def extra_repr(self):
        return (
            f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, affine={self.affine}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalisation over the features of ``(n, num_features)`` inputs (Ioffe &
    Szegedy 2015), with PyTorch's semantics: when training, each feature is normalised with
    the batch mean and biased variance, and ``running_mean``/``running_var`` move towards the
    batch mean and the unbiased variance by ``momentum`` (``momentum=None``: a cumulative
    average); otherwise the running statistics are used. ``y = xhat * weight + bias`` with
    learnable ``weight`` (ones) and ``bias`` (zeros) when ``affine``. ``num_batches_tracked``
    counts training batches, so PyTorch state_dicts round-trip."""


class BatchNorm2d(_BatchNorm):
    """Batch normalisation over the channels of ``(N, num_features, H, W)`` images (PyTorch's
    ``BatchNorm2d``): as :class:`BatchNorm1d`, each channel's statistics taken over the
    batch and every position of its planes (``N * H * W`` values); the same parameters,
    buffers and state_dict keys."""

    input_ndim = 4
