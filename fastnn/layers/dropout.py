"""Dropout."""

from fastnn import kernels
from fastnn._validation import real, rng_from
from fastnn.layers.base import Layer

__all__ = ["Dropout"]


class Dropout(Layer):
    """Inverted dropout: when training, zeroes each element with probability ``p`` and
    scales the kept ones by ``1 / (1 - p)`` so the expected output equals the input; the
    identity otherwise. ``p = 1`` zeroes everything (PyTorch). The mask is drawn from
    ``rng`` (None, a seed or a ``numpy.random.Generator``) and reused by the backward.
    Elementwise: the input may have any shape with at least one axis."""

    input_ndim = None
    _transient = ("_mask",)

    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        self.p = real(p, "p", minimum=0.0, maximum=1.0)
        self.rng = rng_from(rng)
        self._mask = None
        self._scale = 1.0

    def get_config(self):
        return {"p": self.p}

    def forward(self, x, training=False):
        x = self._input(x)
        if not training or self.p == 0.0:
            self._mask = None
            return x
        # Keep with probability 1 - p: uniform draws in [0, 1) at or above p.
        self._mask = self.rng.random(x.shape) >= self.p
        self._scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        return kernels.mask_scale(x, self._mask, self._scale)

    def backward(self, dy):
        if self._mask is None:
            return dy
        return kernels.mask_scale(dy, self._mask, self._scale)

    def extra_repr(self):
        return f"p={self.p}"
