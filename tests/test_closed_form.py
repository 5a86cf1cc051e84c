"""Closed-form models against numpy.linalg.lstsq and the explicit maximum-likelihood
formulas of the Gaussian generative classifier."""

import numpy as np
import pytest

import fastnn
from fastnn import gaussian_classifier, linear_regression


def regression_data(n=60, d=4, k=None, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * [1, 3, 0.5, 2][:d] + 1
    w = rng.standard_normal((d,) if k is None else (d, k))
    y = X @ w + 0.5 + 0.1 * rng.standard_normal((n,) if k is None else (n, k))
    return X, y


@pytest.mark.parametrize("k", (None, 3))
def test_linear_regression_matches_lstsq(k):
    X, y = regression_data(k=k)
    model = linear_regression(X, y, dtype=np.float64)
    A = np.hstack([X, np.ones((len(X), 1))])
    coef = np.linalg.lstsq(A, y.reshape(len(X), -1), rcond=None)[0]
    dense = model[0]
    np.testing.assert_allclose(dense.weight.data, coef[:-1].T, rtol=1e-10)
    np.testing.assert_allclose(dense.bias.data, coef[-1], rtol=1e-10)
    np.testing.assert_allclose(model.predict(X), A @ coef, rtol=1e-9, atol=1e-12)
    assert len(model) == 1 and isinstance(dense, fastnn.Dense)
    assert linear_regression(X, y).dtype == np.float32


def test_ridge_does_not_penalise_the_bias():
    X, y = regression_data()
    l2 = 5.0
    model = linear_regression(X, y, l2=l2, dtype=np.float64)
    w, b = model[0].weight.data[0], model[0].bias.data[0]
    # the explicit ridge solution on centred data: the bias absorbs the means
    xm, ym = X.mean(axis=0), y.mean()
    Xc = X - xm
    w_ref = np.linalg.solve(Xc.T @ Xc + l2 * np.eye(X.shape[1]), Xc.T @ (y - ym))
    np.testing.assert_allclose(w, w_ref, rtol=1e-10)
    np.testing.assert_allclose(b, ym - xm @ w_ref, rtol=1e-10)

    # and it is the minimum of the loss that Dense(l2=...) + MSELoss("sum") trains on
    def objective(w_, b_):
        return ((X @ w_ + b_ - y) ** 2).sum() + l2 * (w_**2).sum()

    base = objective(w, b)
    rng = np.random.default_rng(1)
    for _ in range(5):
        assert (
            objective(w + 1e-3 * rng.standard_normal(w.shape), b + 1e-3 * rng.standard_normal())
            > base
        )


def test_linear_regression_handles_collinear_features_and_checks_input():
    X, y = regression_data()
    X2 = np.hstack([X, X[:, :1]])  # a duplicated column: singular normal equations
    model = linear_regression(X2, y, dtype=np.float64)
    np.testing.assert_allclose(
        model.predict(X2)[:, 0],
        linear_regression(X, y, dtype=np.float64).predict(X)[:, 0],
        rtol=1e-8,
    )
    with pytest.raises(ValueError, match="y must have shape"):
        linear_regression(X, y[:-1])
    with pytest.raises(ValueError, match="X must be 2-D"):
        linear_regression(X[:, 0], y)
    with pytest.raises(ValueError, match="l2"):
        linear_regression(X, y, l2=-1)
    with pytest.raises(ValueError, match="finite"):
        linear_regression(np.full_like(X, np.nan), y)


def class_data(k=3, n_per=(40, 60, 50), d=3, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((d, d))
    means = rng.standard_normal((k, d)) * 2
    X = np.vstack([rng.standard_normal((n, d)) @ A + means[c] for c, n in enumerate(n_per[:k])])
    y = np.concatenate([np.full(n, c) for c, n in enumerate(n_per[:k])])
    return X, y


def ml_posterior(X, y, naive):
    """Bayes' rule with the maximum-likelihood Gaussians, written out density by density."""
    k = y.max() + 1
    n, d = X.shape
    priors = np.array([np.mean(y == c) for c in range(k)])
    mus = np.array([X[y == c].mean(axis=0) for c in range(k)])
    pooled = sum((X[y == c] - mus[c]).T @ (X[y == c] - mus[c]) for c in range(k)) / n
    if naive:
        pooled = np.diag(np.diag(pooled))
    inv = np.linalg.inv(pooled)
    _, logdet = np.linalg.slogdet(pooled)
    logp = np.stack(
        [
            -0.5 * np.einsum("nd,de,ne->n", X - mus[c], inv, X - mus[c])
            - 0.5 * logdet
            - 0.5 * d * np.log(2 * np.pi)
            + np.log(priors[c])
            for c in range(k)
        ],
        axis=1,
    )
    logp -= logp.max(axis=1, keepdims=True)
    p = np.exp(logp)
    return p / p.sum(axis=1, keepdims=True), priors, mus, pooled


@pytest.mark.parametrize("naive", (False, True))
@pytest.mark.parametrize("k", (2, 3))
def test_gaussian_classifier_is_bayes_rule_with_ml_estimates(k, naive):
    X, y = class_data(k)
    model = gaussian_classifier(X, y, naive=naive, var_smoothing=0.0, dtype=np.float64)
    assert isinstance(model[0], fastnn.Dense) and isinstance(model[1], fastnn.Softmax)
    post, priors, mus, pooled = ml_posterior(X, y, naive)
    np.testing.assert_allclose(model.predict(X), post, rtol=1e-8, atol=1e-12)
    # the parameters are the textbook ones: w_c = S^-1 mu_c, b_c = -mu_c S^-1 mu_c / 2 + log pi_c
    inv = np.linalg.inv(pooled)
    np.testing.assert_allclose(model[0].weight.data, mus @ inv, rtol=1e-9)
    np.testing.assert_allclose(
        model[0].bias.data,
        -0.5 * np.einsum("cd,de,ce->c", mus, inv, mus) + np.log(priors),
        rtol=1e-9,
    )


def test_two_class_posterior_is_a_sigmoid():
    X, y = class_data(2)
    model = gaussian_classifier(X, y, var_smoothing=0.0, dtype=np.float64)
    w, b = model[0].weight.data, model[0].bias.data
    z = X @ (w[1] - w[0]) + (b[1] - b[0])
    np.testing.assert_allclose(model.predict(X)[:, 1], 1 / (1 + np.exp(-z)), rtol=1e-10)


def test_gaussian_classifier_on_constant_features_and_errors():
    X, y = class_data(3)
    Xc = np.hstack([X, np.zeros((len(X), 2))])  # blank "pixels": singular covariance
    p = gaussian_classifier(Xc, y).predict(Xc)
    assert np.all(np.isfinite(p)) and p.dtype == np.float32
    np.testing.assert_allclose(p.sum(axis=1), 1, rtol=1e-5)
    with pytest.raises(ValueError, match="quadratic"):
        gaussian_classifier(X, y, shared_covariance=False)
    with pytest.raises(ValueError, match="labels"):
        gaussian_classifier(X, y + 1)  # class 0 missing
    with pytest.raises(ValueError, match="labels"):
        gaussian_classifier(X, np.zeros(len(X), int))
    with pytest.raises(TypeError, match="integer"):
        gaussian_classifier(X, y + 0.5)
    with pytest.raises(ValueError, match="shape"):
        gaussian_classifier(X, y[:-1])


def test_closed_form_model_evaluates_and_has_plain_state():
    X, y = class_data(3)
    model = gaussian_classifier(X, y)
    before = model.evaluate(X, y, loss=fastnn.SoftmaxCrossEntropy(), metrics=("accuracy",))
    assert before["accuracy"] > 0.8
    sd = model.state_dict()
    assert set(sd) == {"0.weight", "0.bias"}
