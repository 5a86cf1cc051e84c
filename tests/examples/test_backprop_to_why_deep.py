"""examples/backprop.py, tips.py and why_deep.py in --quick mode: each lesson's direction,
not only that the script ran."""

import numpy as np

from helpers import example, mnist_dir


def test_backprop_hand_deltas_equal_grad_and_numeric(tmp_path):
    r = example("backprop").main(["--quick", "--out", str(tmp_path)])
    assert r["hand_vs_grad"] < 1e-12
    for name, g in r["hand"].items():
        np.testing.assert_allclose(g, r["grad"][name], rtol=1e-12, atol=1e-12)
    assert r["hand_vs_numeric"] < 1e-8
    assert r["gradcheck"] < 1e-6
    # The notes' forward values: layer 1 gives sigmoid(4) and sigmoid(-2).
    np.testing.assert_allclose(r["z1"], [4.0, -2.0])


def test_tips_recipes_vanishing_gradients(tmp_path):
    r = example("tips").main(["--quick", "--out", str(tmp_path), "--mnist", mnist_dir()])
    table = r["table"]
    assert table["sigmoid + MSE + SGD"][1] < 0.30
    assert table["+ Adam"][1] > 0.90
    assert table["maxout + Adam"][1] > 0.90
    sig, relu = r["grad_norms"]["Sigmoid"], r["grad_norms"]["ReLU"]
    assert sig[0] < sig[-1] / 100
    assert relu[-1] / 10 < relu[0] < relu[-1] * 10
    assert r["early_stopping"]["epochs_run"] < 30
    assert r["weight_decay"][1e-3][2] < r["weight_decay"][0.0][2]
    for png in ("tips_recipes.png", "tips_gradients.png"):
        assert (tmp_path / png).stat().st_size > 0


def test_why_deep_same_budget(tmp_path):
    r = example("why_deep").main(["--quick", "--out", str(tmp_path), "--mnist", mnist_dir()])
    rows = r["rows"]
    for row in rows:
        deep, shallow = row["deep"], row["shallow"]
        assert abs(deep["params"] - shallow["params"]) < 0.01 * deep["params"]
        assert deep["accuracy"] >= shallow["accuracy"] - 0.01
    # Summed over the budgets, so one close call cannot flip the lesson.
    assert sum(r["deep"]["accuracy"] for r in rows) >= sum(r["shallow"]["accuracy"] for r in rows)
    assert (tmp_path / "why_deep.png").stat().st_size > 0
