"""fastnn on Dask: what ships a model to a worker (pickling: round trips that predict and
train on as the original does, and pickles that carry the weights but no scratch), then,
on a LocalCluster of two worker processes, scikit-learn's GridSearchCV under joblib's Dask
backend against the same search run in this process, and ``dask.array.map_blocks`` over
``predict`` against one call on the whole array."""

import os
import pickle
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import optim
from helpers import close

N_BLOCKS = 4


@pytest.fixture(scope="module")
def client():
    """Two worker processes of one thread each, with one kernel thread per worker (the
    setting docs/guide/dask.md recommends). They inherit PYTHONPATH, which conftest.py
    points at the fastnn under test, and the test checks that they import that one."""
    distributed = pytest.importorskip("dask.distributed")
    with (
        distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env={"FASTNN_NUM_THREADS": "1"},
        ) as cluster,
        distributed.Client(cluster) as c,
    ):
        where = c.run(lambda: (fastnn.__file__, fastnn.get_num_threads()))
        assert set(where.values()) == {(fastnn.__file__, 1)}, where
        yield c


def on_cluster(client, collection):
    """`collection` computed on the cluster, after checking that its tasks ran on the
    workers."""
    from dask.distributed import get_task_stream

    with get_task_stream(client) as tasks:
        result = client.gather(client.compute(collection))
    workers = set(client.scheduler_info()["workers"])
    assert tasks.data and {t["worker"] for t in tasks.data} <= workers
    return result


# ---- the models -------------------------------------------------------------------------


def mlp(dtype, seed=0):
    """A classifier (logits out) with every kind of state a pickle must carry: BatchNorm's
    running statistics, Dropout's generator."""
    return fastnn.Sequential(
        fastnn.Dense(64, 48, rng=seed, dtype=dtype),
        fastnn.BatchNorm1d(48, dtype=dtype),
        fastnn.LeakyReLU(0.1),
        fastnn.Dropout(0.2, rng=seed + 1),
        fastnn.Maxout(48, 24, 2, rng=seed + 2, dtype=dtype),
        fastnn.Dense(24, 10, rng=seed + 3, dtype=dtype),
        dtype=dtype,
    )


def cnn(dtype, seed=0):
    return fastnn.Sequential(
        fastnn.Conv2d(1, 8, 3, padding=1, rng=seed, dtype=dtype),
        fastnn.BatchNorm2d(8, dtype=dtype),
        fastnn.ReLU(),
        fastnn.MaxPool2d(2),
        fastnn.Conv2d(8, 8, 3, padding=1, rng=seed + 1, dtype=dtype),
        fastnn.Sigmoid(),
        fastnn.AvgPool2d(2),
        fastnn.Flatten(),
        fastnn.Dropout(0.1, rng=seed + 2),
        fastnn.Dense(32, 10, rng=seed + 3, dtype=dtype),
        dtype=dtype,
    )


@pytest.fixture(scope="module")
def digits():
    X, y = fastnn.load_digits()
    return X[:1000] / 16.0, y[:1000]


def trained(build, dtype, X, y, epochs=2):
    model = build(dtype)
    model.fit(
        X,
        y,
        loss=fastnn.SoftmaxCrossEntropy(),
        optimizer=optim.Adam(model, lr=0.01),
        epochs=epochs,
        batch_size=64,
        seed=0,
    )
    return model


def images(X):
    return X.reshape(-1, 1, 8, 8)


BUILDS = {"mlp": (mlp, lambda X: X), "cnn": (cnn, images)}


# ---- pickling ---------------------------------------------------------------------------


def state_bytes(model):
    return sum(v.nbytes for v in model.state_dict().values())


@pytest.mark.parametrize("kind", BUILDS)
def test_pickle_round_trip_predicts_and_trains_on_as_the_original(kind, dtype, digits):
    build, shape = BUILDS[kind]
    X, y = shape(digits[0]), digits[1]
    fresh = build(dtype)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(fresh)).predict(X), fresh.predict(X))

    model = trained(build, dtype, X, y)
    twin = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(twin.predict(X), model.predict(X))
    # The optimizer fit used, its moments and the Dropout generators travel with the
    # model: one more epoch on each gives the same weights.
    for m in (model, twin):
        m.fit(X, y, loss=fastnn.SoftmaxCrossEntropy(), optimizer=m.optimizer, batch_size=64, seed=1)
    for (name, a), b in zip(model.state_dict().items(), twin.state_dict().values()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    assert twin.optimizer.params[0] is twin.parameters()[0]


@pytest.mark.parametrize("kind", BUILDS)
def test_a_used_model_pickles_without_its_scratch(kind, dtype, digits):
    """Training steps and predictions at several batch sizes fill the model's buffers and
    the layers' caches; none of them goes into the pickle, nor do the gradients: it is the
    size of the state_dict and a little more, and the copy still trains."""
    build, shape = BUILDS[kind]
    X, y = shape(digits[0]), digits[1]
    model = build(dtype)
    loss, opt = fastnn.SoftmaxCrossEntropy(), optim.SGD(model, lr=0.01)
    for n in (200, 64, 300):
        model.train_on_batch(X[:n], y[:n], loss=loss, optimizer=opt)
        model.predict(X[:n])
    model.forward(X[:100], training=True)  # a forward whose backward never came
    weights = state_bytes(model)
    size = len(pickle.dumps(model))
    assert weights < size < weights + 400 * len(model.layers) + 4096, (size, weights)

    twin = pickle.loads(pickle.dumps(model))
    assert all(not p.grad.any() for p in twin.parameters())
    with pytest.raises(RuntimeError, match="backward called before a forward"):
        twin.backward(np.ones((100, 10), dtype))
    np.testing.assert_array_equal(twin.predict(X), model.predict(X))
    twin_opt = optim.SGD(twin, lr=0.01)
    for m, o in ((model, opt), (twin, twin_opt)):
        m.train_on_batch(X[:64], y[:64], loss=loss, optimizer=o)
    for a, b in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(a.data, b.data)


def test_estimator_pickle_round_trips(digits):
    pytest.importorskip("sklearn")
    from fastnn.sklearn import MLPClassifier

    X, y = digits
    unfitted = MLPClassifier(hidden_layer_sizes=(32,), max_iter=10, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: few iterations on purpose
        a = pickle.loads(pickle.dumps(unfitted)).fit(X, y)
        b = unfitted.fit(X, y)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))
    back = pickle.loads(pickle.dumps(b))
    np.testing.assert_array_equal(back.predict_proba(X), b.predict_proba(X))
    np.testing.assert_array_equal(back.predict(X), b.predict(X))


# ---- GridSearchCV under joblib's Dask backend -------------------------------------------


def search(estimator, metric):
    """A small grid; besides `metric`, each fit reports the id of the process that ran it."""
    from sklearn.model_selection import GridSearchCV

    return GridSearchCV(
        estimator,
        {"hidden_layer_sizes": [(16,), (32,)], "alpha": [1e-4, 1e-1]},
        cv=3,
        scoring={metric: metric, "pid": lambda est, X, y: os.getpid()},
        refit=metric,
    )


def fit_quietly(searcher, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: few iterations on purpose
        return searcher.fit(X, y)


@pytest.mark.parametrize("task", ["classifier", "regressor"])
def test_grid_search_on_dask_workers_equals_the_sequential_search(task, client, digits):
    import joblib

    pytest.importorskip("sklearn")
    from fastnn.sklearn import MLPClassifier, MLPRegressor

    X, y = digits
    if task == "classifier":
        metric, estimator = "accuracy", MLPClassifier(max_iter=15, random_state=0)
    else:
        metric, estimator = "r2", MLPRegressor(max_iter=15, random_state=0)
        y = X[:, 20:28].sum(axis=1)  # the mean intensity of a middle row
    here = fit_quietly(search(estimator, metric), X, y)
    with joblib.parallel_config(backend="dask"):
        there = fit_quietly(search(estimator, metric), X, y)

    splits = [f"split{i}_test_pid" for i in range(3)]
    assert {here.cv_results_[s][j] for s in splits for j in range(4)} == {os.getpid()}
    workers = set(client.run(os.getpid).values())
    assert {there.cv_results_[s][j] for s in splits for j in range(4)} <= workers
    for key in [f"split{i}_test_{metric}" for i in range(3)] + [f"mean_test_{metric}"]:
        np.testing.assert_array_equal(there.cv_results_[key], here.cv_results_[key], key)
    assert there.best_params_ == here.best_params_ and there.best_score_ == here.best_score_
    np.testing.assert_array_equal(there.predict(X), here.predict(X))


# ---- map_blocks over predict ------------------------------------------------------------


@pytest.mark.parametrize("kind", BUILDS)
def test_map_blocks_predict_equals_one_call(kind, dtype, client, digits):
    """Blocks of more than 128 rows, the last one shorter, give the whole array's bits
    (class probabilities from the MLP, logits from the CNN)."""
    da = pytest.importorskip("dask.array")
    build, shape = BUILDS[kind]
    X, y = shape(digits[0]).astype(dtype), digits[1]
    model = trained(build, dtype, X, y, epochs=1)
    if kind == "mlp":
        model = fastnn.Sequential(*model.layers, fastnn.Softmax())
    rows = -(-len(X) // N_BLOCKS) + 10  # the last block is shorter than the others
    blocks = da.from_array(X, chunks=(rows,) + X.shape[1:])
    assert blocks.numblocks[0] == N_BLOCKS
    out = blocks.map_blocks(
        model.predict,
        dtype=dtype,
        chunks=(blocks.chunks[0], (10,)),
        drop_axis=tuple(range(2, X.ndim)),
    )
    got = on_cluster(client, out)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, model.predict(X))


def test_small_blocks_agree_to_rounding(client, digits):
    """Blocks of a few rows take the kernels' paths for few rows, which may add the terms
    of a dot product in another order: the results agree to rounding, not always to the
    bit."""
    da = pytest.importorskip("dask.array")
    X = digits[0].astype(np.float32)[:200]
    model = fastnn.Sequential(*mlp(np.float32).layers, fastnn.Softmax())
    out = da.from_array(X, chunks=(7, 64)).map_blocks(
        model.predict, dtype=np.float32, chunks=((7,) * 28 + (4,), (10,))
    )
    close(on_cluster(client, out), model.predict(X), np.float32, k=64)


def test_map_blocks_over_the_estimators(client, digits):
    da = pytest.importorskip("dask.array")
    pytest.importorskip("sklearn")
    from fastnn.sklearn import MLPClassifier

    X, y = digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: few iterations on purpose
        clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=10, random_state=0).fit(X, y)
    blocks = da.from_array(X, chunks=(300, 64))
    labels = blocks.map_blocks(clf.predict, dtype=clf.classes_.dtype, drop_axis=1)
    proba = blocks.map_blocks(
        clf.predict_proba, dtype=clf.predict_proba(X[:1]).dtype, chunks=(blocks.chunks[0], (10,))
    )
    got_labels, got_proba = on_cluster(client, [labels, proba])
    np.testing.assert_array_equal(got_labels, clf.predict(X))
    np.testing.assert_array_equal(got_proba, clf.predict_proba(X))
