"""The metrics (fastnn/metrics.py): metrics.get builds a fresh metric suited to the loss; the
regression metrics fit reports reach their optimum on a linear problem."""

import numpy as np
import pytest

import fastnn
from fastnn import metrics


def test_metrics_get_builds_a_fresh_metric_for_the_loss():
    assert metrics.NAMES == ("accuracy", "mse", "mae", "r2", "log_loss")
    first, second = (metrics.get("accuracy", fastnn.SoftmaxCrossEntropy()) for _ in range(2))
    assert type(first) is metrics.Accuracy and first is not second
    assert first.threshold == 0.0 and metrics.get("accuracy").threshold == 0.5
    assert metrics.get("log_loss", fastnn.MSELoss()).from_logits is False
    with pytest.raises(
        ValueError,
        match="unknown metric 'precision'; expected one of accuracy, mse, mae, r2, log_loss",
    ):
        metrics.get("precision")


@pytest.mark.parametrize("metric", ["mse", "mae", "r2"])
def test_regression_metrics(metric):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    y = X @ np.array([1.0, -2.0, 0.5])
    model = fastnn.Sequential(fastnn.Dense(3, 1, rng=0, dtype=np.float64))
    opt = fastnn.optim.SGD(model, lr=0.05, momentum=0.9)
    h = model.fit(X, y, loss=fastnn.MSELoss(), optimizer=opt, epochs=30, metrics=(metric,))
    value = h.history[metric][-1]
    assert (value > 0.99) if metric == "r2" else (value < 1e-3)
