"""The examples of lecture notes P3-P5 and P10-P11 (examples/regression.py,
gradient_descent.py, classification.py), run in --quick mode: each test asserts the
direction of its example's lesson, not just that it ran. examples/ is not a package, so
the scripts are loaded by path (helpers.example)."""

import itertools

import pytest

from helpers import example

pytest.importorskip("matplotlib")


def run(name, tmp_path):
    result = example(name).main(["--quick", "--out", str(tmp_path)])
    assert (tmp_path / f"{name}.png").stat().st_size > 10_000
    return result


def test_regression_overfits_and_l2_helps(tmp_path):
    r = run("regression", tmp_path)
    train, test = r["train_mse"], r["test_mse"]
    # Training error never rises with the degree (nested models), test error turns up.
    assert all(b <= a * (1 + 1e-6) for a, b in itertools.pairwise(train))
    assert r["best_degree"] < 5 and test[4] > 1.5 * min(test)
    # Training error rises with lambda; test error has its minimum strictly inside the sweep.
    l2_train, l2_test = r["l2_train_mse"], r["l2_test_mse"]
    assert all(b >= a * (1 - 1e-6) for a, b in itertools.pairwise(l2_train))
    best = l2_test.index(min(l2_test))
    assert 0 < best < len(l2_test) - 1
    assert min(l2_test) < 0.8 * min(l2_test[0], l2_test[-1])
    # Gradient descent reaches the normal equation's weights.
    assert r["max_weight_gap"] < 1e-2 * max(abs(w) for w in r["w_normal_equation"])


def test_gradient_descent_lessons(tmp_path):
    r = run("gradient_descent", tmp_path)
    lr = r["lr_final_mse"]
    assert lr["right"] < 1.1 * r["optimal_mse"]
    assert lr["too small"] > 2 * lr["right"] and lr["too large"] > 2 * lr["right"]
    steps = r["steps_to_converge"]
    assert 5 * steps["scaled GD"] < steps["unscaled GD"]
    assert steps["unscaled Adagrad"] < steps["unscaled GD"]
    assert r["mse_after_100"]["adagrad"] < r["mse_after_100"]["gd"]
    full, sgd = r["mse_per_epoch"]["full"], r["mse_per_epoch"]["sgd"]
    assert sgd[1] < 0.5 * full[1]  # one epoch of batch-1 updates against one full-batch step


def test_classification_lessons(tmp_path):
    r = run("classification", tmp_path)
    acc = r["accuracy"]
    shared, logistic = acc["shared covariance"], acc["logistic regression"]
    # The Gaussian assumption holds with one covariance: the shared-covariance model matches
    # logistic regression (the same functional form); a covariance per class (more
    # parameters) needs more data; naive Bayes, whose independence assumption is wrong here,
    # stays behind once data is plentiful, where logistic regression is not hurt.
    assert abs(shared[-1] - logistic[-1]) < 0.02 and logistic[-1] > 0.85
    assert acc["separate covariances"][0] < shared[0] - 0.05
    assert logistic[-1] > acc["naive Bayes"][-1] + 0.03
    xor = r["xor_accuracy"]
    assert xor["logistic on (x1, x2)"] <= 0.75
    assert xor["logistic on distances"] >= 0.95
    assert xor["2-2-1 sigmoid cascade"] >= 0.95
