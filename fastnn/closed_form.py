"""Closed-form models: fits that need no gradient descent, returned as ordinary fastnn
models (so they predict, evaluate, save and fine-tune like trained ones).

- :func:`linear_regression`: least squares by the normal equation, with an optional ridge
  penalty on the weights (not the bias).
- :func:`gaussian_classifier`: the generative classifier with Gaussian class-conditional
  densities and a shared covariance (or its naive-Bayes diagonal form), whose posterior
  ``P(class | x)`` is exactly ``softmax(W x + b)``: a Dense layer and a Softmax.

These are one-off fits, solved with numpy.linalg in float64; nothing here is a hot path.
"""

import numpy as np

from fastnn._validation import float_dtype, real
from fastnn.layers import Dense, Softmax
from fastnn.model import Sequential

__all__ = ["linear_regression", "gaussian_classifier"]


def _design(X):
    try:
        x = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"X must be a numeric array, got {type(X).__name__}") from exc
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(
            f"X must be 2-D (n_samples, n_features) with at least one of each, got shape {x.shape}"
        )
    if not np.all(np.isfinite(x)):
        raise ValueError("X must be finite (no NaN or inf)")
    return x


def _dense(weight, bias, dtype):
    layer = Dense(weight.shape[1], weight.shape[0], init="zeros", dtype=dtype)
    layer.weight.data[...] = weight
    layer.bias.data[...] = bias
    return layer


def linear_regression(X, y, l2=0.0, *, dtype=np.float32):
    """Least-squares linear regression by the normal equation, as ``Sequential(Dense)``.

    Minimises ``sum (x @ W.T + b - y)^2 + l2 * sum W^2``: the objective of training a
    ``Dense(..., l2=l2)`` with ``MSELoss(reduction="sum")``, solved exactly. The bias is not
    penalised. ``y`` is ``(n,)`` (one output) or ``(n, k)``. With ``l2 = 0`` the minimum-norm
    least-squares solution is taken (numpy.linalg.lstsq), so collinear features are fine."""
    x = _design(X)
    l2 = real(l2, "l2", minimum=0.0)
    dtype = float_dtype(dtype)
    try:
        t = np.asarray(y, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError("y must be numeric") from exc
    if t.ndim not in (1, 2) or t.shape[0] != x.shape[0]:
        raise ValueError(f"y must have shape ({x.shape[0]},) or ({x.shape[0]}, k), got {t.shape}")
    t2 = t.reshape(x.shape[0], -1)
    # The column of ones carries the bias; the penalty matrix leaves it out.
    a = np.hstack([x, np.ones((x.shape[0], 1))])
    if l2 == 0.0:
        coef = np.linalg.lstsq(a, t2, rcond=None)[0]
    else:
        penalty = np.eye(a.shape[1]) * l2
        penalty[-1, -1] = 0.0
        coef = np.linalg.solve(a.T @ a + penalty, a.T @ t2)
    return Sequential(_dense(coef[:-1].T, coef[-1], dtype))


def _labels(y, n):
    y = np.asarray(y)
    if y.ndim != 1 or y.shape[0] != n:
        raise ValueError(f"y must be class labels of shape ({n},), got shape {y.shape}")
    if y.dtype.kind not in "iu" and not (y.dtype.kind == "f" and np.all(y == np.round(y))):
        raise TypeError(f"y must be integer class labels, got dtype {y.dtype}")
    y = y.astype(np.int64)
    k = int(y.max()) + 1 if n else 0
    counts = np.bincount(y, minlength=k) if y.min() >= 0 else None
    if counts is None or k < 2 or np.any(counts == 0):
        raise ValueError(
            f"y must hold the labels 0 .. k-1 (k >= 2), each at least once; got "
            f"labels {np.unique(y).tolist()}"
        )
    return y, k, counts


def gaussian_classifier(
    X, y, shared_covariance=True, naive=False, *, var_smoothing=1e-9, dtype=np.float32
):
    """The Gaussian generative classifier as ``Sequential(Dense, Softmax)``.

    Maximum-likelihood fit of ``P(x | class c) = N(mu_c, Sigma)`` with priors
    ``pi_c = n_c / n``, class means ``mu_c`` and the pooled covariance
    ``Sigma = sum_c (n_c / n) Sigma_c`` (``naive=True``: its diagonal, i.e. naive Bayes with
    a shared variance per feature). With one Sigma for all classes the quadratic terms of
    the log-densities cancel and Bayes' rule gives ``P(c | x) = softmax(W x + b)_c`` with
    ``w_c = Sigma^-1 mu_c`` and ``b_c = -mu_c^T Sigma^-1 mu_c / 2 + log pi_c`` (for two
    classes, the same as ``sigmoid((w_1 - w_0) x + b_1 - b_0)``).

    ``y`` holds labels ``0 .. k-1``. ``var_smoothing`` adds that fraction of the largest
    feature variance to the diagonal of Sigma (scikit-learn's GaussianNB rule), so constant
    features (e.g. blank pixels) do not make it singular; 0 gives the exact ML estimate.
    ``shared_covariance=False`` (one covariance per class) makes the boundary quadratic,
    which a Dense + Softmax cannot represent: it raises ValueError."""
    if not shared_covariance:
        raise ValueError(
            "shared_covariance=False gives a quadratic decision boundary that "
            "Sequential(Dense, Softmax) cannot represent; use "
            "shared_covariance=True (optionally naive=True)"
        )
    x = _design(X)
    labels, k, counts = _labels(y, x.shape[0])
    var_smoothing = real(var_smoothing, "var_smoothing", minimum=0.0)
    dtype = float_dtype(dtype)
    n, d = x.shape
    onehot = np.zeros((n, k))
    onehot[np.arange(n), labels] = 1.0
    priors = counts / n
    means = (onehot.T @ x) / counts[:, None]
    centred = x - means[labels]
    cov = centred.T @ centred / n
    if naive:
        cov = np.diag(np.diag(cov))
    cov = cov + np.eye(d) * (var_smoothing * np.max(np.diag(cov)))
    # pinv: an exactly constant feature (zero variance, var_smoothing = 0) takes no part.
    precision = np.linalg.pinv(cov, hermitian=True)
    weight = means @ precision
    bias = -0.5 * np.einsum("cd,cd->c", weight, means) + np.log(priors)
    return Sequential(_dense(weight, bias, dtype), Softmax())
