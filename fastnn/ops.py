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


def gemm(
    a,
    b,
    *,
    trans_a=False,
    trans_b=False,
    bias=None,
    activation="identity",
    negative_slope=0.01,
    out=None,
):
    """act(op(a) @ op(b) + bias), op = transpose when trans_* is set."""
    a, b = np.asarray(a), np.asarray(b)
    z = (a.T if trans_a else a) @ (b.T if trans_b else b)
    if bias is not None:
        z = z + bias
    return _into(_act(z, activation, negative_slope), out)


def _csr_rows(indptr):
    """The row of each entry that rows 0 .. len(indptr) - 2 use, and those entries' positions."""
    indptr = np.asarray(indptr, dtype=np.int64)
    used = np.arange(indptr[0], indptr[-1])
    return np.repeat(np.arange(len(indptr) - 1), np.diff(indptr)), used


def csr_matmul(
    data, indices, indptr, b, *, bias=None, activation="identity", negative_slope=0.01, out=None
):
    """act(A @ b + bias), A the CSR matrix (data, indices, indptr) of len(indptr) - 1 rows:
    row i holds the entries indptr[i] .. indptr[i+1] - 1 (absolute positions, so indptr[0]
    may be above 0), entry k is data[k] in column indices[k]. Only the stored entries count
    (a zero of A times an infinite b adds nothing) and repeated columns add up: each entry's
    scaled row of b is added to its output row, in storage order."""
    b = np.asarray(b)
    rows, used = _csr_rows(indptr)
    data, indices = np.asarray(data)[used], np.asarray(indices)[used]
    z = np.zeros((len(np.asarray(indptr)) - 1, b.shape[1]), dtype=b.dtype)
    np.add.at(z, rows, data[:, None] * b[indices])
    if bias is not None:
        z = z + bias
    return _into(_act(z, activation, negative_slope), out)


def csr_t_matmul(data, indices, indptr, b, *, out):
    """A^T @ b into out (overwritten), A as in csr_matmul with out.shape[0] columns: row j of
    out sums data[k] * b[row of k] over the entries k in column j, in storage order."""
    b = np.asarray(b)
    rows, used = _csr_rows(indptr)
    data, indices = np.asarray(data)[used], np.asarray(indices)[used]
    z = np.zeros(out.shape, dtype=b.dtype)
    np.add.at(z, indices, data[:, None] * b[rows])
    return _into(z, out)


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


def dense_chain_forward(x, steps, outs=None):
    """Each step (fastnn.kernels.DenseStep) in turn: x = activation(x @ weight.T + bias),
    into outs[i] when given; returns the last x."""
    x = np.asarray(x)
    for i, (weight, bias, _, _, activation, negative_slope, _, _) in enumerate(steps):
        x = gemm(
            x,
            weight,
            trans_b=True,
            bias=bias,
            activation=activation,
            negative_slope=negative_slope,
            out=None if outs is None else outs[i],
        )
    return x


def dense_chain_backward(dy, steps, x, outputs, dx_outs=None, input_grad=True, overwrite_dy=False):
    """From the last step down, with y its output (outputs[i]) and x_i its input (x, then
    outputs[i - 1]): dz = activation_backward(dy, y) (dy for "identity");
    bias_grad = column sums of dz; weight_grad = dz^T x_i, plus penalty(weight) for l1/l2;
    dy = dz weight, into dx_outs[i] when given. Returns the last dy, d loss / d x, or None
    without input_grad. (overwrite_dy only lets the kernel write over dy.)"""
    dy = np.asarray(dy)
    inputs = [np.asarray(x)] + [np.asarray(o) for o in outputs[:-1]]
    for i in range(len(steps) - 1, -1, -1):
        weight, bias, weight_grad, bias_grad, activation, negative_slope, l1, l2 = steps[i]
        dz = (
            dy
            if activation == "identity"
            else activation_backward(dy, outputs[i], activation, negative_slope=negative_slope)
        )
        if bias is not None:
            column_sum(dz, out=bias_grad)
        gemm(dz, inputs[i], trans_a=True, out=weight_grad)
        if l1 or l2:
            penalty(weight, weight_grad, l1=l1, l2=l2)
        if i == 0 and not input_grad:
            return None
        dy = gemm(dz, weight, out=None if dx_outs is None else dx_outs[i])
    return dy


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
    m, _k = x.shape
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
    """loss = s * sum (x - t)^2 with s = 1/N (mean), 1 (sum) or 1/2 (half_sum);
    grad = 2 s (x - t)."""
    x = np.asarray(output)
    d = x - np.asarray(target, dtype=x.dtype)
    scale = {"mean": 1.0 / max(x.size, 1), "sum": 1.0, "half_sum": 0.5}[reduction]
    loss = float((d.astype(np.float64) ** 2).sum()) * scale
    return loss, _into(d * x.dtype.type(2 * scale), out)


def sgd_step(
    param,
    grad,
    momentum_buffer,
    *,
    lr,
    momentum=0.0,
    dampening=0.0,
    nesterov=False,
    weight_decay=0.0,
    first_step=True,
):
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


# ---- optimizer updates (PyTorch's single-tensor formulas) ---------------------------------


def adagrad_step(param, grad, state_sum, *, lr, lr_decay=0.0, weight_decay=0.0, eps=1e-10, step=1):
    """d = g + wd p; sum += d^2; p -= clr d / (sqrt(sum) + eps) with
    clr = lr / (1 + (step - 1) lr_decay). In place on param and state_sum."""
    t = param.dtype.type
    clr = lr / (1 + (step - 1) * lr_decay)
    d = grad + t(weight_decay) * param
    state_sum += d * d
    param -= t(clr) * (d / (np.sqrt(state_sum) + t(eps)))


def rmsprop_step(
    param,
    grad,
    square_avg,
    grad_avg,
    momentum_buffer,
    *,
    lr,
    alpha=0.99,
    eps=1e-8,
    weight_decay=0.0,
    momentum=0.0,
    centered=False,
):
    """d = g + wd p; sq = alpha sq + (1 - alpha) d^2; centered: ga = alpha ga + (1 - alpha) d
    and v = sq - ga^2, else v = sq; s = d / (sqrt(v) + eps); momentum: buf = momentum buf + s,
    p -= lr buf; else p -= lr s. In place."""
    t = param.dtype.type
    d = grad + t(weight_decay) * param
    square_avg[...] = t(alpha) * square_avg + t(1 - alpha) * d * d
    v = square_avg
    if centered:
        grad_avg += t(1 - alpha) * (d - grad_avg)
        v = square_avg - grad_avg * grad_avg
    s = d / (np.sqrt(v) + t(eps))
    if momentum > 0:
        momentum_buffer[...] = t(momentum) * momentum_buffer + s
        s = momentum_buffer
    param -= t(lr) * s


def adam_step(
    param,
    grad,
    exp_avg,
    exp_avg_sq,
    *,
    lr,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    weight_decay=0.0,
    decoupled=False,
    step=1,
):
    """Adam: d = g + wd p. AdamW (decoupled): p *= 1 - lr wd, d = g.
    m = beta1 m + (1 - beta1) d; v = beta2 v + (1 - beta2) d^2;
    p -= lr / (1 - beta1^step) * m / (sqrt(v) / sqrt(1 - beta2^step) + eps). In place."""
    t = param.dtype.type
    if decoupled:
        param *= t(1 - lr * weight_decay)
        d = grad
    else:
        d = grad + t(weight_decay) * param
    exp_avg += t(1 - beta1) * (d - exp_avg)
    exp_avg_sq[...] = t(beta2) * exp_avg_sq + t(1 - beta2) * d * d
    step_size = lr / (1 - beta1**step)
    denom = np.sqrt(exp_avg_sq) / t(np.sqrt(1 - beta2**step)) + t(eps)
    param -= t(step_size) * (exp_avg / denom)


def adam_step_many(
    params,
    grads,
    exp_avgs,
    exp_avg_sqs,
    steps,
    *,
    lr,
    beta1=0.9,
    beta2=0.999,
    eps=1e-8,
    weight_decay=0.0,
    decoupled=False,
    sum_squares=False,
):
    """adam_step on each parameter, with its own step count; with sum_squares, returns
    sum p^2 over all parameters before the update (float64), else 0.0."""
    total = 0.0
    for param, grad, exp_avg, exp_avg_sq, step in zip(params, grads, exp_avgs, exp_avg_sqs, steps):
        if sum_squares:
            total += float((param.astype(np.float64) ** 2).sum())
        adam_step(
            param,
            grad,
            exp_avg,
            exp_avg_sq,
            lr=lr,
            beta1=beta1,
            beta2=beta2,
            eps=eps,
            weight_decay=weight_decay,
            decoupled=decoupled,
            step=step,
        )
    return total


def sum_squares(x):
    """sum(x^2), accumulated in float64."""
    x = np.asarray(x, dtype=np.float64)
    return float((x * x).sum())


def scale_inplace(x, alpha):
    """x *= alpha."""
    x *= x.dtype.type(alpha)


# ---- toolbox layers --------------------------------------------------------------------------


def mask_scale(x, mask, scale, *, out=None):
    """Inverted dropout: x * scale where mask is true, 0 elsewhere."""
    x = np.asarray(x)
    return _into(np.where(np.asarray(mask) != 0, x * x.dtype.type(scale), x.dtype.type(0)), out)


def column_moments(x):
    """Per-column mean and biased variance (computed in float64)."""
    x = np.asarray(x)
    x64 = x.astype(np.float64)
    return x64.mean(axis=0).astype(x.dtype), x64.var(axis=0).astype(x.dtype)


def _channel_axes(x):
    """The axes a batch norm reduces over: all but the channels' (axis 1); and the shape
    that broadcasts a per-channel vector against x."""
    return (0, *range(2, x.ndim)), (1, -1) + (1,) * (x.ndim - 2)


def batchnorm_train(
    x, weight, bias, running_mean, running_var, *, momentum=0.1, eps=1e-5, out=None
):
    """Over the channels (axis 1) of x, (N, C) or (N, C, ...): mean, var = batch mean and
    biased variance over every other axis (count values); invstd = 1 / sqrt(var + eps);
    y = (x - mean) invstd weight + bias; running = (1 - momentum) running + momentum batch,
    with the unbiased variance var * count / (count - 1). Returns (y, mean, invstd)."""
    x = np.asarray(x)
    axes, vec = _channel_axes(x)
    count = x.size // x.shape[1]
    x64 = x.astype(np.float64)
    mean, var = x64.mean(axis=axes), x64.var(axis=axes)
    invstd = 1.0 / np.sqrt(var + eps)
    if running_mean is not None:
        running_mean[...] = (1 - momentum) * running_mean + momentum * mean
        running_var[...] = (1 - momentum) * running_var + momentum * var * count / (count - 1)
    y = (x64 - mean.reshape(vec)) * invstd.reshape(vec)
    if weight is not None:
        y = y * weight.reshape(vec)
    if bias is not None:
        y = y + bias.reshape(vec)
    return _into(y.astype(x.dtype), out), mean.astype(x.dtype), invstd.astype(x.dtype)


def batchnorm_eval(x, weight, bias, running_mean, running_var, *, eps=1e-5, out=None):
    """y = (x - running_mean) / sqrt(running_var + eps) weight + bias, per channel (axis 1)."""
    x = np.asarray(x)
    _, vec = _channel_axes(x)
    std = np.sqrt(running_var.astype(np.float64) + eps).astype(x.dtype)
    y = (x - running_mean.reshape(vec)) / std.reshape(vec)
    if weight is not None:
        y = y * weight.reshape(vec)
    if bias is not None:
        y = y + bias.reshape(vec)
    return _into(y.astype(x.dtype), out)


def batchnorm_backward(
    dy, x, save_mean, save_invstd, weight, *, out=None, weight_grad_out=None, bias_grad_out=None
):
    """Per channel (axis 1), over the count values of every other axis: xhat = (x - mean)
    invstd; dbias = sum dy; dweight = sum dy xhat; dx = weight invstd (dy - dbias / count -
    xhat dweight / count) (the batch statistics depend on x)."""
    dy, x = np.asarray(dy), np.asarray(x)
    axes, vec = _channel_axes(dy)
    count = dy.size // dy.shape[1]
    dy64 = dy.astype(np.float64)
    xhat = (x.astype(np.float64) - save_mean.reshape(vec)) * save_invstd.reshape(vec)
    dbias, dweight = dy64.sum(axis=axes), (dy64 * xhat).sum(axis=axes)
    g = 1.0 if weight is None else weight.astype(np.float64)
    scale = (g * save_invstd).reshape(vec)
    dx = scale * (dy64 - (dbias / count).reshape(vec) - xhat * (dweight / count).reshape(vec))
    return (
        _into(dx.astype(dy.dtype), out),
        _into(dweight.astype(dy.dtype), weight_grad_out),
        _into(dbias.astype(dy.dtype), bias_grad_out),
    )


def maxout_forward(z, pieces, *, out=None):
    """Unit u of row i: max over z[i, u*pieces : (u+1)*pieces] (unit-major), and which piece
    won (the first on ties)."""
    z = np.asarray(z)
    g = z.reshape(z.shape[0], -1, pieces)
    idx = g.argmax(axis=2)
    return _into(np.take_along_axis(g, idx[..., None], axis=2)[..., 0], out), idx.astype(np.int64)


def maxout_backward(dy, argmax, pieces, *, out=None):
    """dz[i, u*pieces + argmax[i, u]] = dy[i, u], zero elsewhere."""
    dy = np.asarray(dy)
    dz = np.zeros(dy.shape + (pieces,), dtype=dy.dtype)
    np.put_along_axis(dz, np.asarray(argmax)[..., None], dy[..., None], axis=2)
    return _into(dz.reshape(dy.shape[0], -1), out)


def standardize(x, mean, std, *, out=None):
    """(x - mean) / s with s = std, or 1 where std == 0; mean None means 0 (the backward)."""
    x = np.asarray(x)
    s = np.where(std == 0, x.dtype.type(1), std).astype(x.dtype)
    return _into((x if mean is None else x - mean) / s, out)


def _patches(x, kh, kw, stride, padding, dilation):
    """The (N, C, kh, kw, OH, OW) patches of zero-padded x, padding (top, bottom, left, right)."""
    top, bottom, left, right = padding
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    sh, sw = stride
    dh, dw = dilation
    oh = (xp.shape[2] - dh * (kh - 1) - 1) // sh + 1
    ow = (xp.shape[3] - dw * (kw - 1) - 1) // sw + 1
    n, c = x.shape[:2]
    cols = np.empty((n, c, kh, kw, oh, ow), x.dtype)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dh, kx * dw
            cols[:, :, ky, kx] = xp[
                :, :, y0 : y0 + sh * (oh - 1) + 1 : sh, x0 : x0 + sw * (ow - 1) + 1 : sw
            ]
    return cols, oh, ow


def conv2d_forward(
    x,
    weight,
    bias=None,
    *,
    stride=(1, 1),
    padding=(0, 0, 0, 0),
    dilation=(1, 1),
    groups=1,
    activation="identity",
    negative_slope=0.01,
    out=None,
    patches_out=None,
):
    """act(cross-correlation of x (N, C, H, W) with weight (O, C/groups, kh, kw) + bias);
    `patches_out` (N, groups, C/groups*kh*kw, OH*OW) receives each image's patches."""
    x, w = np.asarray(x), np.asarray(weight)
    o, cg, kh, kw = w.shape
    cols, oh, ow = _patches(x, kh, kw, stride, padding, dilation)
    n = x.shape[0]
    og = o // groups
    pointwise = (kh, kw, *stride, *padding) == (1, 1, 1, 1, 0, 0, 0, 0)
    if patches_out is not None and not pointwise:
        patches_out[...] = cols.reshape(n, groups, cg * kh * kw, oh * ow)
    y = np.empty((n, o, oh, ow), x.dtype)
    for g in range(groups):
        cg_cols = cols[:, g * cg : (g + 1) * cg].reshape(n, cg * kh * kw, oh * ow)
        wg = w[g * og : (g + 1) * og].reshape(og, cg * kh * kw)
        y[:, g * og : (g + 1) * og] = (wg @ cg_cols).reshape(n, og, oh, ow)
    if bias is not None:
        y = y + np.asarray(bias)[:, None, None]
    return _into(_act(y, activation, negative_slope), out)


def conv2d_backward(
    dy,
    x,
    weight,
    *,
    stride=(1, 1),
    padding=(0, 0, 0, 0),
    dilation=(1, 1),
    groups=1,
    activation="identity",
    negative_slope=0.01,
    output=None,
    patches=None,
    input_grad=True,
    bias_grad=True,
    out=None,
    weight_grad_out=None,
    bias_grad_out=None,
):
    """(dx or None, dweight, dbias or None) of conv2d_forward; dy passes through the
    activation's derivative at `output` first. `patches` (what the forward kept) are
    rebuilt from x here."""
    x, w = np.asarray(x), np.asarray(weight)
    dz = np.asarray(dy)
    if activation != "identity":
        dz = activation_backward(dz, np.asarray(output), activation, negative_slope=negative_slope)
    o, cg, kh, kw = w.shape
    cols, oh, ow = _patches(x, kh, kw, stride, padding, dilation)
    n, c, h, wd = x.shape
    og = o // groups
    dw = np.empty_like(w)
    dcols = np.empty_like(cols)
    for g in range(groups):
        dzg = dz[:, g * og : (g + 1) * og].reshape(n, og, oh * ow)
        colg = cols[:, g * cg : (g + 1) * cg].reshape(n, cg * kh * kw, oh * ow)
        dw[g * og : (g + 1) * og] = np.einsum("nop,nkp->ok", dzg, colg).reshape(og, cg, kh, kw)
        wg = w[g * og : (g + 1) * og].reshape(og, cg * kh * kw)
        dcols[:, g * cg : (g + 1) * cg] = np.einsum("ok,nop->nkp", wg, dzg).reshape(
            n, cg, kh, kw, oh, ow
        )
    dx = None
    if input_grad:
        top, bottom, left, right = padding
        sh, sw = stride
        dh, dwl = dilation
        dxp = np.zeros((n, c, h + top + bottom, wd + left + right), x.dtype)
        for ky in range(kh):
            for kx in range(kw):
                y0, x0 = ky * dh, kx * dwl
                dxp[:, :, y0 : y0 + sh * (oh - 1) + 1 : sh, x0 : x0 + sw * (ow - 1) + 1 : sw] += (
                    dcols[:, :, ky, kx]
                )
        dx = _into(dxp[:, :, top : top + h, left : left + wd], out)
    db = _into(dz.sum(axis=(0, 2, 3)).astype(x.dtype), bias_grad_out) if bias_grad else None
    return dx, _into(dw, weight_grad_out), db


# ---- pooling ---------------------------------------------------------------------------------


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _windows(shape, kernel_size, stride, padding):
    """Every output position (oy, ox) of NCHW images of `shape` with its window clipped to
    the input, rows r0:r1 and columns c0:c1, and count_include_pad's divisor: the window
    clipped to the padded image. Output size (H + 2 padding - kernel) // stride + 1."""
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel_size), _pair(stride), _pair(padding)
    h, w = shape[2], shape[3]
    oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
    for oy in range(oh):
        a = oy * sh - ph
        b = min(a + kh, h + ph)
        for ox in range(ow):
            c = ox * sw - pw
            d = min(c + kw, w + pw)
            yield oy, ox, max(a, 0), min(b, h), max(c, 0), min(d, w), (b - a) * (d - c)


def _out_size(shape, kernel_size, stride, padding):
    (kh, kw), (sh, sw), (ph, pw) = _pair(kernel_size), _pair(stride), _pair(padding)
    return (
        shape[0],
        shape[1],
        (shape[2] + 2 * ph - kh) // sh + 1,
        (shape[3] + 2 * pw - kw) // sw + 1,
    )


def maxpool2d_forward(x, kernel_size, stride, padding, *, out=None, argmax_out=None):
    """y[n, c, oy, ox] = max of x[n, c] over the window of (oy, ox) (padding skipped);
    argmax = its index h * W + w in the plane, the first in row-major order on ties, the
    first NaN if the window has one (np.argmax's rules)."""
    x = np.asarray(x)
    y = np.empty(_out_size(x.shape, kernel_size, stride, padding), x.dtype)
    idx = np.empty(y.shape, np.int64)
    for oy, ox, r0, r1, c0, c1, _ in _windows(x.shape, kernel_size, stride, padding):
        win = x[:, :, r0:r1, c0:c1].reshape(x.shape[0], x.shape[1], (r1 - r0) * (c1 - c0))
        k = win.argmax(axis=2)
        y[:, :, oy, ox] = np.take_along_axis(win, k[..., None], axis=2)[..., 0]
        idx[:, :, oy, ox] = (r0 + k // (c1 - c0)) * x.shape[3] + c0 + k % (c1 - c0)
    return _into(y, out), _into(idx, argmax_out)


def maxpool2d_backward(dy, argmax, input_shape, *, out=None):
    """dx = 0, then dx[n, c].flat[argmax[n, c, oy, ox]] += dy[n, c, oy, ox]."""
    dy = np.asarray(dy)
    n, c, h, w = input_shape
    dx = np.zeros((n * c, h * w), dy.dtype)
    planes = np.arange(n * c).repeat(dy.shape[2] * dy.shape[3])
    np.add.at(dx, (planes, np.asarray(argmax).reshape(-1)), dy.reshape(-1))
    return _into(dx.reshape(input_shape), out)


def avgpool2d_forward(x, kernel_size, stride, padding, count_include_pad=True, *, out=None):
    """y[n, c, oy, ox] = the sum of x[n, c] over the window of (oy, ox) / divisor: the window
    clipped to the padded image with count_include_pad, else its input positions."""
    x = np.asarray(x)
    y = np.empty(_out_size(x.shape, kernel_size, stride, padding), x.dtype)
    for oy, ox, r0, r1, c0, c1, padded in _windows(x.shape, kernel_size, stride, padding):
        total = x[:, :, r0:r1, c0:c1].astype(np.float64).sum(axis=(2, 3))
        y[:, :, oy, ox] = total / (padded if count_include_pad else (r1 - r0) * (c1 - c0))
    return _into(y, out)


def avgpool2d_backward(
    dy, input_shape, kernel_size, stride, padding, count_include_pad=True, *, out=None
):
    """dx = 0, then dy[n, c, oy, ox] / divisor (as the forward's) added to the window of
    (oy, ox)."""
    dy = np.asarray(dy)
    dx = np.zeros(input_shape, np.float64)
    for oy, ox, r0, r1, c0, c1, padded in _windows(input_shape, kernel_size, stride, padding):
        divisor = padded if count_include_pad else (r1 - r0) * (c1 - c0)
        dx[:, :, r0:r1, c0:c1] += (dy[:, :, oy, ox].astype(np.float64) / divisor)[..., None, None]
    return _into(dx.astype(dy.dtype), out)
