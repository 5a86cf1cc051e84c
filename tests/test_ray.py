"""fastnn on Ray, on a local Ray instance of two CPUs: scikit-learn's GridSearchCV under
joblib's Ray backend against the same search run in this process, and ``predict`` as Ray
tasks over the blocks of an array against one call on the whole array. (What a pickle of a
model carries is tested in test_dask.py.)"""

import os
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import optim

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def workers():
    """A local Ray instance with one kernel thread per worker (the setting
    docs/guide/dask.md recommends); its workers inherit PYTHONPATH, which conftest.py points
    at the fastnn under test, and the fixture checks that they import that one."""
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"FASTNN_NUM_THREADS": "1"}},
    )
    try:

        @ray.remote
        def where():
            return fastnn.__file__, fastnn.get_num_threads()

        assert ray.get(where.remote()) == (fastnn.__file__, 1)
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def digits():
    X, y = fastnn.load_digits()
    return X[:600] / 16.0, y[:600]


def test_grid_search_on_ray_workers_equals_the_sequential_search(workers, digits):
    import joblib

    pytest.importorskip("sklearn")
    from ray.util.joblib import register_ray
    from sklearn.model_selection import GridSearchCV

    from fastnn.sklearn import MLPClassifier

    register_ray()
    X, y = digits

    def search():
        # Besides the accuracy, each fit reports the id of the process that ran it.
        return GridSearchCV(
            MLPClassifier(max_iter=15, random_state=0),
            {"hidden_layer_sizes": [(16,), (32,)], "alpha": [1e-4, 1e-1]},
            cv=3,
            scoring={"accuracy": "accuracy", "pid": lambda est, X, y: os.getpid()},
            refit="accuracy",
        )

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ConvergenceWarning: few iterations on purpose
        here = search().fit(X, y)
        with joblib.parallel_config(backend="ray", n_jobs=-1):
            there = search().fit(X, y)

    pids = [f"split{i}_test_pid" for i in range(3)]
    assert {here.cv_results_[s][j] for s in pids for j in range(4)} == {os.getpid()}
    assert os.getpid() not in {there.cv_results_[s][j] for s in pids for j in range(4)}
    for key in [f"split{i}_test_accuracy" for i in range(3)] + ["mean_test_accuracy"]:
        np.testing.assert_array_equal(there.cv_results_[key], here.cv_results_[key], key)
    assert there.best_params_ == here.best_params_ and there.best_score_ == here.best_score_

    @ray.remote
    def predict_proba(estimator, block):
        return estimator.predict_proba(block)

    ref = ray.put(there.best_estimator_)
    blocks = np.array_split(X, 2)
    proba = np.concatenate(ray.get([predict_proba.remote(ref, block) for block in blocks]))
    np.testing.assert_array_equal(proba, here.best_estimator_.predict_proba(X))


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_predict_as_ray_tasks_equals_one_call(workers, digits, dtype):
    """The model goes to the object store once (ray.put); each task predicts one block of
    more than 128 rows, which gives the whole array's bits."""
    X, y = digits
    images = X.reshape(-1, 1, 8, 8).astype(dtype)
    model = fastnn.Sequential(
        fastnn.Conv2d(1, 8, 3, padding=1, rng=0),
        fastnn.BatchNorm2d(8),
        fastnn.ReLU(),
        fastnn.MaxPool2d(2),
        fastnn.Flatten(),
        fastnn.Dropout(0.1, rng=1),
        fastnn.Dense(128, 10, rng=2),
        dtype=dtype,
    )
    model.fit(images, y, loss=fastnn.SoftmaxCrossEntropy(), optimizer=optim.Adam(model), seed=0)
    classifier = fastnn.Sequential(*model.layers, fastnn.Softmax())

    @ray.remote
    def predict(m, block):
        return os.getpid(), m.predict(block)

    ref = ray.put(classifier)
    done = ray.get([predict.remote(ref, block) for block in np.array_split(images, 3)])
    assert os.getpid() not in {pid for pid, _ in done}
    np.testing.assert_array_equal(
        np.concatenate([out for _, out in done]), classifier.predict(images)
    )
