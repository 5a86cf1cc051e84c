"""SciPy sparse input through the first Dense layer (Sequential, fit/predict, the sklearn
estimators): the same results as on X.toarray() for every format, index dtype and layout of
the entries, the caller's matrix untouched, float64 gradient checks of the sparse path, and
a 200,000 x 50,000 fit within a memory bound (slow)."""

import copy
import os
import pickle
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

sp = pytest.importorskip("scipy.sparse")

import fastnn  # noqa: E402
from helpers import numeric_grad, rel_error  # noqa: E402

# float64 runs agree to rounding; float32 ones to float32 rounding after ~20 epochs.
TOL = {np.float64: 1e-12, np.float32: 1e-5}


def _random_csr(n, d, seed, density=0.15, empty_rows=3):
    rng = np.random.default_rng(seed)
    X = sp.random(n, d, density=density, format="csr", random_state=seed, dtype=np.float64)
    X.data = rng.uniform(0.1, 1.0, X.nnz)
    X = X.tolil()
    for i in rng.choice(n, empty_rows, replace=False):
        X.rows[i], X.data[i] = [], []
    return X.tocsr()


def _labels(X, k=3):
    w = np.random.default_rng(7).normal(size=(X.shape[1], k))
    return np.argmax(X @ w, axis=1)


def _variant(X, how, seed=0):
    """X (CSR, sorted, no duplicates) as the matrix `how` names; X.toarray() is its value."""
    if how == "csr":
        return X.copy()
    if how == "csc":
        return X.tocsc()
    if how == "int64":
        Y = X.copy()
        Y.indices, Y.indptr = Y.indices.astype(np.int64), Y.indptr.astype(np.int64)
        return Y
    rng = np.random.default_rng(seed)
    data, indices = [], []
    indptr = [0]
    for i in range(X.shape[0]):
        s, e = X.indptr[i], X.indptr[i + 1]
        d, j = X.data[s:e], X.indices[s:e]
        if how == "duplicates":  # each entry as two halves, one of them at the row's end
            d, j = np.concatenate([d / 2, d / 2]), np.concatenate([j, j])
        order = rng.permutation(len(d))
        data.append(d[order])
        indices.append(j[order])
        indptr.append(indptr[-1] + len(d))
    Y = sp.csr_matrix(
        (np.concatenate(data), np.concatenate(indices).astype(np.int32), np.array(indptr)),
        shape=X.shape,
    )
    assert not Y.has_sorted_indices
    return Y


def _snapshot(X):
    arrays = (X.data, X.indices, X.indptr) if X.format in ("csr", "csc") else (X.data,)
    return X.format, [a.copy() for a in arrays], X.format in ("csr", "csc") and X.has_sorted_indices


def _unchanged(X, snap):
    fmt, arrays, sorted_ = snap
    now = (X.data, X.indices, X.indptr) if fmt in ("csr", "csc") else (X.data,)
    assert X.format == fmt
    for a, b in zip(now, arrays):
        np.testing.assert_array_equal(a, b)
    if fmt in ("csr", "csc"):
        assert X.has_sorted_indices == sorted_


def _relative(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def _assert_same_fit(a, b, dtype):
    tol = TOL[dtype]
    for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        assert _relative(ca, cb) < tol
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=tol)


def _fit(est, X, y, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached
        return est.fit(X, y, **kw)


# ---- the scikit-learn estimators -------------------------------------------------------------

skl = pytest.importorskip("fastnn.sklearn")


@pytest.mark.parametrize("how", ["csr", "csc", "int64", "unsorted", "duplicates"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("shuffle", [True, False], ids=["shuffle", "no_shuffle"])
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_sparse_fit_equals_dense_fit(how, dtype, solver, shuffle, kind):
    X = _random_csr(120, 40, seed=1)
    y = _labels(X)
    cls = skl.MLPClassifier if kind == "classifier" else skl.MLPRegressor
    if kind == "regressor":
        y = (X @ np.linspace(-1, 1, 40)).astype(np.float64)
    params = dict(
        hidden_layer_sizes=(16, 8),
        solver=solver,
        shuffle=shuffle,
        alpha=1e-3,
        batch_size=32,
        max_iter=15,
        learning_rate_init=0.05 if solver == "sgd" else 0.01,
        random_state=0,
        dtype=dtype,
    )
    Xs = _variant(X, how)
    snap = _snapshot(Xs)
    sparse_fit = _fit(cls(**params), Xs, y)
    dense_fit = _fit(cls(**params), X.toarray(), y)
    _unchanged(Xs, snap)
    _assert_same_fit(sparse_fit, dense_fit, dtype)
    # coefs_ keeps scikit-learn's (n_in, n_out) layout, C-contiguous, a view of the model
    assert sparse_fit.coefs_[0].shape == (40, 16) and sparse_fit.coefs_[0].flags.c_contiguous
    assert np.shares_memory(sparse_fit.coefs_[0], sparse_fit.model_[0].weight.data)
    for est in (sparse_fit, dense_fit):
        out_sparse, out_dense = est.predict(Xs), est.predict(X.toarray())
        _unchanged(Xs, snap)
        if kind == "classifier":
            np.testing.assert_array_equal(out_sparse, out_dense)
            p, q = est.predict_proba(Xs), est.predict_proba(X.toarray())
            np.testing.assert_allclose(p, q, rtol=TOL[dtype], atol=TOL[dtype])
        else:
            np.testing.assert_allclose(out_sparse, out_dense, rtol=TOL[dtype], atol=TOL[dtype])
        assert est.score(Xs, y) == pytest.approx(est.score(X.toarray(), y), rel=1e-5)


@pytest.mark.parametrize("solver", ["lbfgs", "adam"])
def test_lbfgs_and_early_stopping_on_sparse(solver):
    X = _random_csr(150, 30, seed=2)
    y = _labels(X)
    params = dict(
        hidden_layer_sizes=(12,),
        solver=solver,
        early_stopping=solver == "adam",
        alpha=1e-2,
        max_iter=30,
        random_state=0,
        dtype=np.float64,
    )
    a = _fit(skl.MLPClassifier(**params), X, y)
    b = _fit(skl.MLPClassifier(**params), X.toarray(), y)
    for ca, cb in zip(a.coefs_, b.coefs_):
        assert _relative(ca, cb) < 1e-10
    if solver == "adam":
        np.testing.assert_allclose(a.validation_scores_, b.validation_scores_)


@pytest.mark.parametrize("fmt", ["coo", "lil", "dok", "bsr"])
def test_other_formats_are_converted_to_csr(fmt):
    X = _random_csr(80, 20, seed=3)
    y = _labels(X)
    Xf = X.asformat(fmt)
    snap_type = type(Xf)
    params = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, dtype=np.float64)
    a = _fit(skl.MLPClassifier(**params), Xf, y)
    b = _fit(skl.MLPClassifier(**params), X, y)
    assert type(Xf) is snap_type and Xf.format == fmt
    for ca, cb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(ca, cb)
    np.testing.assert_array_equal(a.predict_proba(Xf), b.predict_proba(X))


def test_sparse_arrays_as_well_as_matrices():
    X = _random_csr(60, 20, seed=4)
    y = _labels(X)
    params = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, dtype=np.float64)
    a = _fit(skl.MLPClassifier(**params), sp.csr_array(X), y)
    b = _fit(skl.MLPClassifier(**params), X, y)
    for ca, cb in zip(a.coefs_, b.coefs_):
        np.testing.assert_array_equal(ca, cb)


def test_partial_fit_and_warm_start_mixing_sparse_and_dense():
    """The first weight changes order with the input (F for sparse, C for dense training);
    the optimizers' state follows, so mixed runs equal all-dense ones."""
    X = _random_csr(100, 25, seed=5)
    y = _labels(X)
    D = X.toarray()
    params = dict(hidden_layer_sizes=(10,), random_state=0, dtype=np.float64, batch_size=20)
    for solver in ("adam", "sgd"):
        a = skl.MLPClassifier(solver=solver, momentum=0.9, **params)
        b = skl.MLPClassifier(solver=solver, momentum=0.9, **params)
        for i, inputs in enumerate([X, X, D, X.tocsc(), D]):
            a.partial_fit(inputs, y, classes=np.unique(y) if i == 0 else None)
            b.partial_fit(D, y, classes=np.unique(y) if i == 0 else None)
        for ca, cb in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
            assert _relative(ca, cb) < 1e-12
        np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-12)

    a = skl.MLPClassifier(warm_start=True, max_iter=4, **params)
    b = skl.MLPClassifier(warm_start=True, max_iter=4, **params)
    for inputs in (X, D, X):
        _fit(a, inputs, y)
        _fit(b, D, y)
    for ca, cb in zip(a.coefs_, b.coefs_):
        assert _relative(ca, cb) < 1e-12


def test_prediction_leaves_the_weight_order_alone():
    """Only training changes the first weight's order: coefs_ stays the model's own array
    whatever the estimator predicts."""
    X = _random_csr(60, 20, seed=13)
    y = _labels(X)
    params = dict(hidden_layer_sizes=(8,), max_iter=5, random_state=0, dtype=np.float64)
    for fitted_on, other in ((X.toarray(), X), (X, X.toarray())):
        est = _fit(skl.MLPClassifier(**params), fitted_on, y)
        weight = est.model_[0].weight.data
        np.testing.assert_allclose(est.predict_proba(other), est.predict_proba(fitted_on))
        assert est.model_[0].weight.data is weight
        assert np.shares_memory(est.coefs_[0], weight)


def test_pickle_of_an_estimator_trained_on_sparse():
    X = _random_csr(90, 30, seed=6)
    y = _labels(X)
    est = _fit(skl.MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0), X, y)
    assert est.model_[0].weight.data.flags.f_contiguous
    back = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(back.predict_proba(X), est.predict_proba(X))
    np.testing.assert_array_equal(back.coefs_[0], est.coefs_[0])
    assert np.shares_memory(back.coefs_[0], back.model_[0].weight.data)
    back.partial_fit(X, y)
    est.partial_fit(X, y)
    np.testing.assert_array_equal(back.coefs_[0], est.coefs_[0])


# ---- Sequential --------------------------------------------------------------------------------


def _mlp(dtype, act="relu", seed=0, l2=0.0):
    acts = {"relu": fastnn.ReLU, "tanh": fastnn.Tanh, "sigmoid": fastnn.Sigmoid}
    layers = [fastnn.Dense(30, 12, rng=seed, dtype=dtype, l2=l2)]
    if act != "identity":
        layers.append(acts[act]())
    layers += [fastnn.Dense(12, 7, rng=seed + 1, dtype=dtype), fastnn.Tanh()]
    layers += [fastnn.Dense(7, 3, rng=seed + 2, dtype=dtype)]
    return fastnn.Sequential(*layers)


@pytest.mark.parametrize("act", ["relu", "tanh", "sigmoid", "identity"])
def test_gradients_of_the_sparse_first_layer(act):
    X = _variant(_random_csr(20, 30, seed=8), "duplicates")
    y = _labels(X)
    loss = fastnn.SoftmaxCrossEntropy()
    model = _mlp(np.float64, act, l2=0.01)
    # Away from ReLU's kink, where the empty rows' pre-activations (the bias) would sit.
    model[0].bias.data[...] = np.random.default_rng(0).uniform(-1, 1, 12)

    def objective():
        return loss(model.forward(X, training=True), y)[0] + model.regularization_loss()

    out = model.forward(X, training=True)
    assert model.backward(loss(out, y)[1]) is None
    first = model[0].weight
    assert first.data.flags.f_contiguous and first.grad.flags.f_contiguous
    for p in model.parameters():
        # The F-ordered weight is perturbed through its C-contiguous transpose.
        data, grad = (p.data.T, p.grad.T) if p is first else (p.data, p.grad)
        assert rel_error(grad, numeric_grad(objective, data)) < 1e-7, p.name
    with pytest.raises(ValueError, match="input_grad=True needs dense X"):
        model.backward(loss(out, y)[1], input_grad=True)


def test_one_dense_layer_model_on_sparse():
    X = _random_csr(40, 30, seed=9)
    y = np.asarray(X.sum(axis=1)).reshape(-1, 1)
    m_sparse = fastnn.Sequential(fastnn.Dense(30, 1, rng=0, dtype=np.float64))
    m_dense = copy.deepcopy(m_sparse)
    loss = fastnn.MSELoss()
    for model, inputs in ((m_sparse, X), (m_dense, X.toarray())):
        opt = fastnn.optim.Adam(model, lr=0.01)
        for _ in range(5):
            model.train_on_batch(inputs, y, loss=loss, optimizer=opt)
    for a, b in zip(m_sparse.state_dict().values(), m_dense.state_dict().values()):
        np.testing.assert_allclose(a, b, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["float64", "float32"])
def test_sequential_fit_evaluate_predict_on_sparse(dtype):
    X = _variant(_random_csr(300, 30, seed=10), "unsorted")
    y = _labels(X)
    snap = _snapshot(X)
    a = _mlp(dtype)
    b = copy.deepcopy(a)
    loss = fastnn.SoftmaxCrossEntropy()
    runs = []
    for model, inputs in ((a, X), (b, X.toarray())):
        opt = fastnn.optim.SGD(model, lr=0.05, momentum=0.9)
        runs.append(
            model.fit(
                inputs,
                y,
                loss=loss,
                optimizer=opt,
                epochs=3,
                batch_size=32,
                seed=0,
                validation_split=0.2,
                metrics=["accuracy"],
            ).history
        )
    _unchanged(X, snap)
    for key in runs[1]:
        np.testing.assert_allclose(runs[0][key], runs[1][key], rtol=TOL[dtype])
    np.testing.assert_allclose(
        a.predict(X, batch_size=64), b.predict(X.toarray()), rtol=TOL[dtype], atol=TOL[dtype]
    )
    ev_a, ev_b = a.evaluate(X.tocsc(), y, loss=loss), b.evaluate(X.toarray(), y, loss=loss)
    assert ev_a["loss"] == pytest.approx(ev_b["loss"], rel=TOL[dtype])


def test_save_and_resume_a_model_trained_on_sparse(tmp_path):
    pytest.importorskip("safetensors")
    X = _random_csr(64, 30, seed=11)
    y = _labels(X)
    loss = fastnn.SoftmaxCrossEntropy()
    model = _mlp(np.float64)
    opt = fastnn.optim.Adam(model, lr=0.01)
    model.train_on_batch(X, y, loss=loss, optimizer=opt)
    fastnn.save(model, tmp_path / "m.safetensors", optimizer=opt)
    ckpt = fastnn.load_checkpoint(tmp_path / "m.safetensors")
    resumed, resumed_opt = ckpt.model, ckpt.make_optimizer()
    for m, o in ((model, opt), (resumed, resumed_opt)):
        m.train_on_batch(X, y, loss=loss, optimizer=o)
    for a, b in zip(model.state_dict().values(), resumed.state_dict().values()):
        np.testing.assert_array_equal(a, b)


def test_sparse_input_errors():
    X = _random_csr(10, 30, seed=12)
    with pytest.raises(ValueError, match="expects 30 features"):
        _mlp(np.float64).forward(X[:, :20])
    conv_first = fastnn.Sequential(fastnn.ReLU(), fastnn.Dense(30, 2, rng=0))
    with pytest.raises(TypeError, match="first layer is Dense, got ReLU"):
        conv_first.forward(X)
    with pytest.raises(TypeError, match="gradcheck: X must be dense"):
        fastnn.gradcheck(_mlp(np.float64), X, _labels(X), fastnn.SoftmaxCrossEntropy())


# ---- scale (slow) ---------------------------------------------------------------------------

MEMORY_SCRIPT = textwrap.dedent("""
    import sys, warnings
    import numpy as np
    import scipy.sparse as sp
    from fastnn.sklearn import MLPClassifier

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

    n, d, per_row = 200_000, 50_000, 75
    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, n)
    # TF-IDF-like rows: Zipfian column draws, class-dependent offsets, positive weights
    cols = (rng.zipf(1.3, (n, per_row)) + 997 * y[:, None]) % d
    data = rng.uniform(0.01, 1.0, n * per_row).astype(np.float32)
    X = sp.csr_matrix(
        (data, cols.ravel().astype(np.int32), np.arange(0, n * per_row + 1, per_row)),
        shape=(n, d),
    )
    del cols, data
    input_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # restart the peak-RSS counter from here
    base = status("VmRSS")
    est = MLPClassifier(hidden_layer_sizes=(64,), max_iter=2, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        est.fit(X, y)
    est.predict(X)
    print((status("VmHWM") - base) / 2**20, input_bytes / 2**20, est.score(X, y))
""")


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
@pytest.mark.skipif(
    os.environ.get("FASTNN_SANITIZED") == "1",
    reason="ASan's shadow memory and quarantine inflate the resident set",
)
def test_fit_200k_by_50k_sparse_stays_under_1gb_extra():
    env = {**os.environ, "FASTNN_NUM_THREADS": "2"}
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_SCRIPT], capture_output=True, text=True, env=env, check=True
    )
    extra_mb, input_mb, accuracy = map(float, out.stdout.split())
    print(f"peak extra resident memory {extra_mb:.0f} MiB (input {input_mb:.0f} MiB)")
    assert extra_mb < 1024
    assert accuracy > 0.5  # it learned: five classes
