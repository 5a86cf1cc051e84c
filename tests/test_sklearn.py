"""fastnn.sklearn: scikit-learn's estimator checks, parity with scikit-learn's own MLPs
(same seed -> same initial weights, shuffles and objective, so the loss curves agree to
float32 rounding), the extras, and model selection with joblib."""

import inspect
import pickle
import subprocess
import sys
import warnings

import numpy as np
import pytest

sklearn = pytest.importorskip("sklearn")

from sklearn import neural_network as sk_nn  # noqa: E402
from sklearn.base import clone  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.model_selection import GridSearchCV  # noqa: E402
from sklearn.utils.estimator_checks import (  # noqa: E402
    check_sample_weight_equivalence_on_dense_data,
    check_sample_weight_equivalence_on_sparse_data,
    parametrize_with_checks,
)

import fastnn  # noqa: E402
from fastnn.sklearn import _EXPECTED_FAILED_CHECKS, MLPClassifier, MLPRegressor  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

# scikit-learn checks its own MLPs with max_iter=100 (utils/_test_common/instance_generator.py).
_CHECKED = [MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)]
if "expected_failed_checks" in inspect.signature(parametrize_with_checks).parameters:
    _checks = parametrize_with_checks(
        _CHECKED, expected_failed_checks=lambda est: _EXPECTED_FAILED_CHECKS
    )
else:  # scikit-learn < 1.6 reads the _xfail_checks tag
    _checks = parametrize_with_checks(_CHECKED)


@_checks
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize(
    "estimator",
    [
        MLPClassifier(dtype="float64"),
        MLPRegressor(dtype="float64"),
        MLPClassifier(solver="lbfgs", dtype="float64"),
        MLPRegressor(solver="lbfgs", dtype="float64"),
        MLPRegressor(solver="sgd", tol=1e-2, random_state=42, dtype="float64"),
    ],
    ids=repr,
)
@pytest.mark.parametrize(
    "check",
    [check_sample_weight_equivalence_on_dense_data, check_sample_weight_equivalence_on_sparse_data],
    ids=["dense", "sparse"],
)
def test_sample_weight_equivalence_in_float64(estimator, check):
    # The checks declared as expected failures above fail only on float32 rounding
    # (rtol=1e-7): in float64 they hold for every solver, on dense and sparse data.
    check(type(estimator).__name__, estimator)


@pytest.fixture(scope="module")
def digits():
    X, y = fastnn.load_digits()
    return X / 16, y


def _pair(cls_fast, cls_sk, X, y, sample_weight=None, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        a = cls_fast(random_state=0, **kw).fit(X, y, sample_weight=sample_weight)
        b = cls_sk(random_state=0, **kw).fit(X, y, sample_weight=sample_weight)
    return a, b


@pytest.mark.parametrize(
    "kw",
    [
        dict(solver="sgd", learning_rate_init=0.1),
        dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.5),
        dict(
            solver="sgd",
            learning_rate="adaptive",
            learning_rate_init=0.5,
            n_iter_no_change=1,
            tol=0.1,
        ),
        dict(solver="sgd", nesterovs_momentum=False, momentum=0.5, shuffle=False, batch_size=64),
        dict(solver="sgd", early_stopping=True, max_iter=15),
        dict(solver="adam", activation="tanh", alpha=0.01, hidden_layer_sizes=(30, 20)),
        dict(solver="adam", activation="logistic"),
        dict(solver="adam", activation="identity", beta_1=0.8, beta_2=0.99, epsilon=1e-6),
    ],
    ids=repr,
)
def test_multiclass_follows_sklearn(digits, kw):
    X, y = digits
    kw.setdefault("max_iter", 6)
    a, b = _pair(MLPClassifier, sk_nn.MLPClassifier, X, y, **kw)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=2e-5)
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_
    for ca, cb in zip(a.coefs_, b.coefs_):
        assert ca.shape == cb.shape
        np.testing.assert_allclose(ca, cb, atol=1e-3)
    if kw.get("early_stopping"):
        np.testing.assert_allclose(a.validation_scores_, b.validation_scores_, atol=0.02)
        assert a.best_loss_ is None and b.best_loss_ is None
    else:
        assert a.best_loss_ == pytest.approx(b.best_loss_, rel=2e-5)
    assert (a.predict(X) == b.predict(X)).mean() > 0.99


@pytest.mark.parametrize("target", ["binary", "multilabel", "regression", "regression2"])
@pytest.mark.parametrize("weighted", [False, True])
def test_other_targets_and_sample_weight_follow_sklearn(digits, target, weighted):
    X, y = digits
    sw = np.random.default_rng(0).uniform(0, 2, len(X)) if weighted else None
    fast, sk = (MLPClassifier, sk_nn.MLPClassifier)
    if target == "binary":
        t = np.where(y > 4, "big", "small")
    elif target == "multilabel":
        t = np.stack([y > 4, y % 2 == 0, y == 3], axis=1).astype(int)
    else:
        fast, sk = MLPRegressor, sk_nn.MLPRegressor
        t = X[:, 10] if target == "regression" else np.stack([X[:, 10], 2 * X[:, 20]], axis=1)
    a, b = _pair(fast, sk, X, t, sample_weight=sw, solver="sgd", max_iter=4)
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=2e-5)
    assert a.n_outputs_ == b.n_outputs_ and a.out_activation_ == b.out_activation_
    assert a.n_layers_ == b.n_layers_
    if fast is MLPClassifier:
        np.testing.assert_array_equal(a.classes_, b.classes_)
        np.testing.assert_allclose(a.predict_proba(X), b.predict_proba(X), atol=1e-4)
        assert (a.predict(X) == b.predict(X)).mean() > 0.99
    else:
        np.testing.assert_allclose(a.predict(X), b.predict(X), atol=1e-4)


def test_lbfgs_follows_sklearn(digits):
    X, y = digits
    a, b = _pair(MLPClassifier, sk_nn.MLPClassifier, X, y, solver="lbfgs", max_iter=5)
    assert a.loss_ == pytest.approx(b.loss_, rel=1e-5)
    assert a.n_iter_ == b.n_iter_
    assert not hasattr(a, "loss_curve_") and not hasattr(b, "loss_curve_")
    assert not hasattr(a, "partial_fit") and not hasattr(b, "partial_fit")


def test_fitted_attributes_and_string_labels(digits):
    X, y = digits
    labels = np.array(
        ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    )[y]
    clf = MLPClassifier(hidden_layer_sizes=(32, 16), max_iter=30, random_state=1).fit(X, labels)
    assert [c.shape for c in clf.coefs_] == [(64, 32), (32, 16), (16, 10)]
    assert [b.shape for b in clf.intercepts_] == [(32,), (16,), (10,)]
    assert clf.n_features_in_ == 64 and clf.n_layers_ == 4 and clf.n_outputs_ == 10
    assert clf.out_activation_ == "softmax" and clf.coefs_[0].dtype == np.float32
    assert len(clf.loss_curve_) == clf.n_iter_ and clf.loss_ == clf.loss_curve_[-1]
    assert clf.t_ == clf.n_iter_ * len(X)
    assert set(clf.predict(X)) <= set(labels) and clf.score(X, labels) > 0.9
    proba = clf.predict_proba(X)
    np.testing.assert_allclose(proba.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(X))
    np.testing.assert_allclose(clf.predict_log_proba(X[:5]), np.log(proba[:5]), rtol=1e-5)


def test_coefs_are_the_model_weights(digits):
    X, _y = digits
    reg = MLPRegressor(hidden_layer_sizes=(8,), max_iter=3, random_state=0).fit(X, X[:, 0])
    before = reg.predict(X[:4])
    reg.coefs_[1][...] = 0
    reg.intercepts_[1][...] = 2.5
    np.testing.assert_allclose(reg.predict(X[:4]), 2.5)
    assert not np.allclose(before, 2.5)


def test_feature_names_from_dataframe(digits):
    pd = pytest.importorskip("pandas")
    X, y = digits
    df = pd.DataFrame(X[:200, :5], columns=[f"px{i}" for i in range(5)])
    clf = MLPClassifier(max_iter=5, random_state=0).fit(df, y[:200])
    assert list(clf.feature_names_in_) == list(df.columns)
    with pytest.warns(UserWarning, match="feature names"):
        clf.predict(X[:3, :5])


def test_partial_fit_and_warm_start(digits):
    X, y = digits
    clf = MLPClassifier(random_state=0)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(X[:100], y[:100])
    clf.partial_fit(X[:100], y[:100], classes=np.arange(10))
    for _ in range(5):
        clf.partial_fit(X, y)
    assert clf.n_iter_ == 6 and clf.score(X, y) > 0.5
    with pytest.raises(ValueError, match="classes not in"):
        clf.partial_fit(X[:5], np.full(5, 11))

    warm = MLPClassifier(max_iter=3, warm_start=True, random_state=0).fit(X, y)
    first = [c.copy() for c in warm.coefs_]
    warm.fit(X, y)
    assert warm.n_iter_ == 6 and len(warm.loss_curve_) == 6
    assert not np.allclose(first[0], warm.coefs_[0])
    cold = MLPClassifier(max_iter=3, random_state=0).fit(X, y)
    cold.fit(X, y)
    assert cold.n_iter_ == 3


def test_convergence_semantics(digits):
    X, y = digits
    with pytest.warns(ConvergenceWarning, match="Maximum iterations"):
        MLPClassifier(max_iter=2, random_state=0).fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        a, b = _pair(
            MLPClassifier, sk_nn.MLPClassifier, X, y, max_iter=500, tol=1.0, n_iter_no_change=2
        )
    # Only the first epoch beats best_loss_ (inf) by tol; stop when the count exceeds 2.
    assert a.n_iter_ == b.n_iter_ == 4


def test_extras(digits):
    X, y = digits
    for kw in [
        dict(activation="leaky_relu"),
        dict(solver="adamw"),
        dict(solver="rmsprop"),
        dict(solver="adagrad", learning_rate_init=0.05),
        dict(dropout=0.2, batch_norm=True),
        dict(dtype="float64"),
    ]:
        clf = MLPClassifier(max_iter=15, random_state=0, **kw).fit(X, y)
        assert clf.score(X, y) > 0.85, kw
    bn = MLPClassifier(max_iter=5, batch_norm=True, dropout=0.3, random_state=0).fit(X, y)
    assert "BatchNorm1d" in repr(bn.model_) and "Dropout" in repr(bn.model_)
    np.testing.assert_array_equal(bn.predict(X), bn.predict(X))  # inference is deterministic
    assert clf.coefs_[0].dtype == np.float64


def test_inputs_not_modified_and_any_layout(digits):
    X, y = digits
    Xf = np.asfortranarray(X[:300].astype(np.float64))
    Xf.flags.writeable = False
    yy = y[:300].copy()
    yy.flags.writeable = False
    keep = Xf.copy()
    clf = MLPClassifier(max_iter=3, random_state=0).fit(Xf, yy)
    np.testing.assert_array_equal(Xf, keep)
    clf.predict(Xf[:, :][::2])


@pytest.mark.parametrize(
    "kw, exc, match",
    [
        (dict(activation="softplus"), ValueError, "activation must be one of"),
        (dict(solver="newton"), ValueError, "solver must be one of"),
        (dict(alpha=-1.0), ValueError, r"alpha must be in \[0, inf\), got -1.0"),
        (dict(batch_size=0), ValueError, "batch_size must be in"),
        (dict(batch_size="big"), TypeError, "batch_size must be an integer"),
        (dict(hidden_layer_sizes=(10, 0)), ValueError, "hidden_layer_sizes"),
        (dict(momentum=1.5), ValueError, "momentum must be in"),
        (dict(beta_2=1.0), ValueError, r"beta_2 must be in \[0, 1\)"),
        (dict(dtype="int32"), TypeError, "dtype must be float32 or float64"),
        (dict(dropout=0.5, solver="lbfgs"), ValueError, "dropout must be 0"),
        (dict(shuffle="yes"), TypeError, "shuffle must be a bool"),
    ],
)
def test_bad_parameters_name_themselves(kw, exc, match):
    X = np.zeros((10, 3))
    with pytest.raises(exc, match=match):
        MLPClassifier(**kw).fit(X, np.arange(10) % 2)


def test_regressor_rejects_unknown_loss():
    with pytest.raises(ValueError, match="loss must be 'squared_error'"):
        MLPRegressor(loss="poisson").fit(np.zeros((4, 2)), np.ones(4))


def test_same_parameters_and_defaults_as_sklearn():
    for ours, theirs in [(MLPClassifier, sk_nn.MLPClassifier), (MLPRegressor, sk_nn.MLPRegressor)]:
        p_ours = inspect.signature(ours.__init__).parameters
        for name, p in inspect.signature(theirs.__init__).parameters.items():
            assert name in p_ours, name
            assert p_ours[name].default == p.default, name
            assert p_ours[name].kind == p.kind, name


def test_pickle_and_clone(digits):
    X, y = digits
    clf = MLPClassifier(max_iter=5, random_state=0, dropout=0.1).fit(X, y)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    back.coefs_[-1][...] = 0  # the views are re-linked to the unpickled model
    back.intercepts_[-1][...] = 0
    np.testing.assert_allclose(back.predict_proba(X[:3]), 0.1, rtol=1e-6)
    back.partial_fit(X, y)  # optimizer state survives too
    twin = clone(clf)
    assert twin.get_params() == clf.get_params() and not hasattr(twin, "coefs_")


def test_grid_search_with_joblib_workers(digits):
    X, y = digits
    search = GridSearchCV(
        MLPClassifier(max_iter=20, random_state=0),
        {"hidden_layer_sizes": [(16,), (64,)], "alpha": [1e-4, 1e-2]},
        cv=3,
        n_jobs=2,
    )
    search.fit(X, y)
    assert set(search.best_params_) == {"hidden_layer_sizes", "alpha"}
    assert search.best_score_ > 0.8 and len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.score(X, y) > 0.9


def test_missing_sklearn_names_the_extra():
    code = (
        "import sys; sys.modules['sklearn'] = None\n"
        "try:\n    import fastnn.sklearn\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'fastnn[sklearn]'" in out
