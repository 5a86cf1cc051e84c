"""Window geometry shared by the convolution and pooling layers: their int-or-pair
arguments and the output size of a sliding window, each checked with an error that names
the argument and the layer."""

import numbers

__all__ = ["pair", "window_output"]


# The kernels take every size below 2**31, so that no product of two overflows.
_LIMIT = 2**31 - 1


def pair(value, name, minimum):
    """An int or a pair of ints (height, width), each in [`minimum`, 2**31 - 1], as a tuple
    of two ints."""
    items = value if isinstance(value, (tuple, list)) else (value, value)
    ok = len(items) == 2 and all(
        not isinstance(v, bool) and isinstance(v, numbers.Integral) and minimum <= v <= _LIMIT
        for v in items
    )
    if not ok:
        raise ValueError(
            f"{name} must be an integer >= {minimum} and below 2**31, or a pair of them "
            f"(height, width), got {value!r}"
        )
    return (int(items[0]), int(items[1]))


def window_output(size, kernel, stride, pad_before, pad_after, dilation, axis, layer):
    """Positions of a window of `kernel` taps `dilation` apart sliding by `stride` over an
    axis of `size` with the given zero padding (floor rounding, as PyTorch); an error when
    the dilated window is larger than the padded axis."""
    span = dilation * (kernel - 1) + 1
    padded = size + pad_before + pad_after
    if padded < span:
        raise ValueError(
            f"x: {layer} needs a {axis} of at least {span - pad_before - pad_after} "
            f"(a window of {span} with padding {pad_before}+{pad_after}), got {axis} {size}"
        )
    return (padded - span) // stride + 1
