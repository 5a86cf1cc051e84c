"""NumPy reference of every kernel in :mod:`fastnn.kernels`, with identical signatures.

This module is the readable statement of the math and the oracle the tests compare the C
kernels against. It validates nothing: the compiled floor does that. Computations run in the
inputs' dtype, as the kernels do (losses are summed in float64, as the kernels do).
"""
import numpy as np

ACTIVATIONS = ("identity", "relu", "leaky_relu", "sigmoid", "tanh")


def _sigmoid(x):
    # Split by sign so that exp never overflows: 1/(1+e^-x) for x >= 0, e^x/(1+e^x) otherwise.
    out = np.empty_like(x)
    pos = x >= 0
    out[pos] = 1 / (1 + np.exp(-x[pos]))
    e = np.exp(x[~pos])
    out[~pos] = e / (1 + e)
    return out


def _act(z, activation, negative_slope):
    if activation == "identity":
        return z
    if activation == "relu":
        return np.where(z <= 0, 0, z).astype(z.dtype)  # NaN propagates
    if activation == "leaky_relu":
        return np.where(z > 0, z, z * z.dtype.type(negative_slope)).astype(z.dtype)
    if activation == "sigmoid":
        return _sigmoid(z)
    if activation == "tanh":
        return np.tanh(z)
    raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")


def _into(result, out):
    if out is None:
        return result
    out[...] = result
    return out


def gemm(a, b, *, trans_a=False, trans_b=False, bias=None, activation="identity",
         negative_slope=0.01, out=None):
    """act(op(a) @ op(b) + bias), op = transpose when trans_* is set."""
    a, b = np.asarray(a), np.asarray(b)
    z = (a.T if trans_a else a) @ (b.T if trans_b else b)
    if bias is not None:
        z = z + bias
    return _into(_act(z, activation, negative_slope), out)


def activation_forward(x, activation, *, negative_slope=0.01, out=None):
    """relu: max(x, 0); leaky_relu: x if x > 0 else slope*x; sigmoid: 1/(1+e^-x); tanh."""
    return _into(_act(np.asarray(x), activation, negative_slope), out)


def activation_backward(dy, y, activation, *, negative_slope=0.01, out=None, bias_grad_out=None):
    """dy * act'(.), the derivative expressed through the output y:
    relu: [y > 0]; leaky_relu: 1 if y > 0 else slope; sigmoid: y (1 - y); tanh: 1 - y^2.
    Optionally the column sums of the result into bias_grad_out."""
    dy, y = np.asarray(dy), np.asarray(y)
    t = dy.dtype.type
    if activation == "identity":
        dx = dy.copy()
    elif activation == "relu":
        dx = np.where(y > 0, dy, t(0))
    elif activation == "leaky_relu":
        dx = np.where(y > 0, dy, dy * t(negative_slope))
    elif activation == "sigmoid":
        dx = dy * y * (t(1) - y)
    elif activation == "tanh":
        dx = dy * (t(1) - y * y)
    else:
        raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
    if bias_grad_out is not None:
        bias_grad_out[...] = dx.sum(axis=0)
    return _into(dx.astype(dy.dtype), out)


def add_bias(x, bias, *, out=None):
    return _into(np.asarray(x) + bias, out)


def all_finite(x):
    """True if no element is NaN or infinite."""
    return bool(np.isfinite(x).all())


def column_sum(x, *, out=None):
    return _into(np.asarray(x).sum(axis=0), out)


def softmax(x, *, out=None):
    """exp(x - max) / sum exp(x - max) over each row."""
    x = np.asarray(x)
    e = np.exp(x - x.max(axis=1, keepdims=True)) if x.shape[1] else x.copy()
    return _into(e / e.sum(axis=1, keepdims=True) if x.shape[1] else e, out)


def softmax_backward(dy, y, *, out=None):
    """dx_i = y_i (dy_i - sum_j dy_j y_j) for each row."""
    dy, y = np.asarray(dy), np.asarray(y)
    return _into(y * (dy - (dy * y).sum(axis=1, keepdims=True)), out)


def _log_softmax(x):
    z = x - x.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def softmax_cross_entropy(logits, target, *, reduction="mean", out=None):
    """loss = -sum_i sum_j t_ij log softmax(x_i)_j; grad = softmax(x) * sum_j t_ij - t.
    With class labels t is one-hot and the gradient is softmax(x) - onehot."""
    x = np.asarray(logits)
    m, k = x.shape
    target = np.asarray(target)
    if target.ndim == 2:
        t = target.astype(x.dtype)
    else:
        t = np.zeros_like(x)
        t[np.arange(m), target.astype(np.int64)] = 1
    logp = _log_softmax(x)
    loss = float(-(t.astype(np.float64) * logp).sum())
    grad = np.exp(logp) * t.sum(axis=1, keepdims=True) - t
    scale = 1.0 / m if reduction == "mean" else 1.0
    return loss * scale, _into((grad * x.dtype.type(scale)).astype(x.dtype), out)


def bce_with_logits(output, target, *, reduction="mean", out=None):
    """loss = max(x, 0) - x t + log(1 + e^-|x|) (stable form of -t log s - (1-t) log(1-s));
    grad = sigmoid(x) - t."""
    x = np.asarray(output)
    t = np.asarray(target, dtype=x.dtype)
    loss = float((np.maximum(x, 0) - x * t + np.log1p(np.exp(-np.abs(x)))).astype(np.float64).sum())
    scale = 1.0 / x.size if reduction == "mean" else 1.0
    return loss * scale, _into((_sigmoid(x) - t) * x.dtype.type(scale), out)


def mse(output, target, *, reduction="mean", out=None):
    """loss = s * sum (x - t)^2 with s = 1/N (mean), 1 (sum) or 1/2 (half_sum); grad = 2 s (x - t)."""
    x = np.asarray(output)
    d = x - np.asarray(target, dtype=x.dtype)
    scale = {"mean": 1.0 / max(x.size, 1), "sum": 1.0, "half_sum": 0.5}[reduction]
    loss = float((d.astype(np.float64) ** 2).sum()) * scale
    return loss, _into(d * x.dtype.type(2 * scale), out)


def sgd_step(param, grad, momentum_buffer, *, lr, momentum=0.0, dampening=0.0, nesterov=False,
             weight_decay=0.0, first_step=True):
    """PyTorch's SGD: d = g + wd p; buf = d (first step) or momentum buf + (1 - dampening) d;
    d = d + momentum buf (nesterov) or buf; p -= lr d. In place on param and buffer."""
    t = param.dtype.type
    d = grad + t(weight_decay) * param
    if momentum != 0.0:
        buf = d if first_step else t(momentum) * momentum_buffer + t(1 - dampening) * d
        momentum_buffer[...] = buf
        d = d + t(momentum) * buf if nesterov else buf
    param -= t(lr) * d


def penalty(weight, grad, *, l1=0.0, l2=0.0):
    """grad += l1 sign(w) + 2 l2 w; returns l1 sum|w| + l2 sum w^2."""
    t = weight.dtype.type
    grad += t(l1) * np.sign(weight) + t(2 * l2) * weight
    w = weight.astype(np.float64)
    return float(l1 * np.abs(w).sum() + l2 * (w * w).sum())
