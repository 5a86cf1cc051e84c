"""The --quick runs of examples 7-9 (cnn, autoencoder, explain_attack) and the direction of
each lesson: a CNN well above chance, an auto-encoder well below the mean image's error, a
saliency map on the strokes and an attack that collapses the accuracy."""

import os
from pathlib import Path

import numpy as np
import pytest

from helpers import example, mnist_dir

pytest.importorskip("matplotlib")


def run(name, tmp_path):
    result = example(name).main(["--quick", "--out", str(tmp_path), "--mnist", mnist_dir()])
    for png in result["figures"]:
        assert os.path.dirname(png) == str(tmp_path)
        assert Path(png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", png
    return result


def test_cnn_learns_mnist_and_draws_its_filters(tmp_path):
    result = run("cnn", tmp_path)
    assert result["accuracy"] >= 0.8, result["accuracy"]  # chance is 0.1
    assert result["filters_shape"] == (16, 5, 5)
    assert result["stage_shapes"] == [(16, 14, 14), (32, 7, 7)]
    assert len(result["figures"]) == 2


def test_autoencoder_reconstructs_far_better_than_the_mean_image(tmp_path):
    result = run("autoencoder", tmp_path)
    assert result["mse_code32"] < 0.5 * result["mse_mean_image"], result
    # Even two numbers per digit beat the mean image, and 32 beat two.
    assert result["mse_code32"] < result["mse_code2"] < result["mse_mean_image"], result
    codes, labels = result["codes"], result["labels"]
    assert codes.shape == (len(labels), 2) and np.isfinite(codes).all()
    # The 2-D codes gather by digit: the class centres are spread out compared with the
    # spread within a class, though no label was used in training.
    centres = np.array([codes[labels == d].mean(axis=0) for d in range(10)])
    within = np.mean([codes[labels == d].std(axis=0).mean() for d in range(10)])
    assert centres.std(axis=0).mean() > 0.5 * within, (centres, within)


def test_saliency_sits_on_the_strokes_and_fgsm_collapses_accuracy(tmp_path):
    result = run("explain_attack", tmp_path)
    assert result["saliency_shape"] == result["input_shape"]
    assert result["saliency_stroke_ratio"] > 1.0, result["saliency_stroke_ratio"]
    assert result["eps"] <= 0.2
    assert result["accuracy_clean"] >= 0.85, result
    assert result["accuracy_adversarial"] <= result["accuracy_clean"] - 0.30, result
    # The direction matters, not the size: random signs of the same eps barely hurt.
    assert result["accuracy_noise"] >= result["accuracy_clean"] - 0.10, result
    assert len(result["flipped"]) >= 1
