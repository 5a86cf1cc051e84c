"""Weight initialisers. Each takes the weight's shape in PyTorch's layout
``(fan_out, fan_in)`` (or a convolution's ``(out_channels, in_channels, *kernel)``, whose
fans count the kernel's taps) and returns a new array of ``dtype`` drawn from ``rng``
(None, an int seed or a ``numpy.random.Generator``).

Why they differ: the variance of a layer's output is ``fan_in * Var(w) * Var(x)``. Xavier
(Glorot) keeps it near 1 for both the forward and the backward pass with tanh/sigmoid
(``Var(w) = 2 / (fan_in + fan_out)``); He (Kaiming) doubles it because ReLU zeroes half of
the units (``Var(w) = 2 / fan_in``); LeCun uses ``1 / fan_in`` (SELU, and tanh nets).
A uniform draw on ``[-a, a]`` has variance ``a^2 / 3``.
"""

import numpy as np

from fastnn._validation import float_dtype, lookup, real, rng_from

__all__ = [
    "normal",
    "xavier_normal",
    "xavier_uniform",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "zeros",
    "get",
]


def _fans(shape):
    """(shape, fan_in, fan_out); a convolution's (out, in, *kernel) weight counts every tap
    of the kernel, as PyTorch does."""
    shape = tuple(int(s) for s in shape)
    if len(shape) < 2 or min(shape) < 0:
        raise ValueError(
            f"shape must be (fan_out, fan_in) or (fan_out, fan_in, *kernel), got {shape}"
        )
    taps = int(np.prod(shape[2:]))
    return shape, shape[1] * taps, shape[0] * taps


def _normal(shape, std, rng, dtype):
    return (rng_from(rng).standard_normal(shape) * std).astype(float_dtype(dtype))


def _uniform(shape, bound, rng, dtype):
    return rng_from(rng).uniform(-bound, bound, size=shape).astype(float_dtype(dtype))


def normal(shape, *, std=0.01, rng=None, dtype=np.float32):
    """N(0, std^2)."""
    std = real(std, "std", minimum=0.0)
    return _normal(_fans(shape)[0], std, rng, dtype)


def xavier_normal(shape, *, rng=None, dtype=np.float32):
    """N(0, 2 / (fan_in + fan_out))."""
    shape, fan_in, fan_out = _fans(shape)
    return _normal(shape, np.sqrt(2.0 / max(fan_in + fan_out, 1)), rng, dtype)


def xavier_uniform(shape, *, rng=None, dtype=np.float32):
    """U(-a, a) with a = sqrt(6 / (fan_in + fan_out))."""
    shape, fan_in, fan_out = _fans(shape)
    return _uniform(shape, np.sqrt(6.0 / max(fan_in + fan_out, 1)), rng, dtype)


def he_normal(shape, *, rng=None, dtype=np.float32):
    """N(0, 2 / fan_in)."""
    shape, fan_in, _ = _fans(shape)
    return _normal(shape, np.sqrt(2.0 / max(fan_in, 1)), rng, dtype)


def he_uniform(shape, *, rng=None, dtype=np.float32):
    """U(-a, a) with a = sqrt(6 / fan_in)."""
    shape, fan_in, _ = _fans(shape)
    return _uniform(shape, np.sqrt(6.0 / max(fan_in, 1)), rng, dtype)


def lecun_normal(shape, *, rng=None, dtype=np.float32):
    """N(0, 1 / fan_in)."""
    shape, fan_in, _ = _fans(shape)
    return _normal(shape, np.sqrt(1.0 / max(fan_in, 1)), rng, dtype)


def lecun_uniform(shape, *, rng=None, dtype=np.float32):
    """U(-a, a) with a = sqrt(3 / fan_in)."""
    shape, fan_in, _ = _fans(shape)
    return _uniform(shape, np.sqrt(3.0 / max(fan_in, 1)), rng, dtype)


def zeros(shape, *, rng=None, dtype=np.float32):
    return np.zeros(_fans(shape)[0], dtype=float_dtype(dtype))


_BY_NAME = {
    f.__name__: f
    for f in (
        normal,
        xavier_normal,
        xavier_uniform,
        he_normal,
        he_uniform,
        lecun_normal,
        lecun_uniform,
        zeros,
    )
}


def get(name):
    """The initialiser called `name` (``"he_uniform"``...): what the layers' ``init=``
    argument names."""
    return lookup(_BY_NAME, name, "init")
