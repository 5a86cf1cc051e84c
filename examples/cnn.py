"""Convolution (lecture notes P17): the notes' MNIST CNN, its learned filters, its feature maps.

Two convolution stages (5x5 kernels, ReLU, 2x2 max pooling) and one Dense layer reach about
98% test accuracy after a single epoch. The first layer's 16 filters are drawn as images,
and one test digit is followed through the network layer by layer.

    python examples/cnn.py [--mnist DIR] [--quick] [--out DIR]
"""

import argparse
import os
import sys
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import fastnn
from fastnn import optim

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_MNIST = os.environ.get("FASTNN_MNIST_DIR") or os.path.join(
    ROOT, "..", "shared", "data", "mnist"
)


def parse(argv):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mnist", default=DEFAULT_MNIST, help="directory of the MNIST IDX files")
    p.add_argument("--quick", action="store_true", help="a few thousand images (seconds)")
    p.add_argument("--out", default=".", help="where the PNG figures go")
    return p.parse_args(argv)


def build_cnn():
    return fastnn.Sequential(
        fastnn.Conv2d(1, 16, 5, padding=2, rng=0), fastnn.ReLU(), fastnn.MaxPool2d(2),  # 16x14x14
        fastnn.Conv2d(16, 32, 5, padding=2, rng=1), fastnn.ReLU(), fastnn.MaxPool2d(2),  # 32x7x7
        fastnn.Flatten(), fastnn.Dense(32 * 7 * 7, 10, rng=2),
    )  # fmt: skip


def grid(ax_rows, images, title):
    for ax, img in zip(ax_rows.ravel(), images):
        # Each map on its own colour scale: the shapes matter here, not the magnitudes.
        ax.imshow(img, cmap="gray")
        ax.axis("off")
    ax_rows.ravel()[0].set_title(title, loc="left", fontsize=10)


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    os.makedirs(args.out, exist_ok=True)
    (X, y), (Xt, yt) = fastnn.load_mnist(args.mnist)
    n_train, n_test = (4000, 1000) if args.quick else (len(X), len(Xt))
    X = X[:n_train].reshape(-1, 1, 28, 28) / np.float32(255)
    Xt = Xt[:n_test].reshape(-1, 1, 28, 28) / np.float32(255)
    y, yt = y[:n_train], yt[:n_test]

    model = build_cnn()
    loss = fastnn.SoftmaxCrossEntropy()
    start = time.perf_counter()
    # Quick mode sees each of its few images twice, so that its accuracy means something.
    model.fit(X, y, loss=loss, optimizer=optim.Adam(model, lr=1e-3), epochs=2 if args.quick else 1,
              batch_size=64, seed=0)  # fmt: skip
    seconds = time.perf_counter() - start
    accuracy = model.evaluate(Xt, yt, loss=loss, metrics=("accuracy",))["accuracy"]
    print(f"trained on {n_train} images in {seconds:.1f} s; test accuracy {accuracy:.4f}")

    # The first layer's filters: what a 5x5 patch must look like to excite each channel.
    w = model[0].weight.data[:, 0]
    fig, axes = plt.subplots(2, 8, figsize=(8, 2.3))
    lim = np.abs(w).max()
    for ax, k in zip(axes.ravel(), w):
        ax.imshow(k, cmap="bwr", vmin=-lim, vmax=lim)
        ax.axis("off")
    fig.suptitle("16 learned 5x5 filters of the first convolution (red +, blue -)")
    filters_png = os.path.join(args.out, "cnn_filters.png")
    fig.savefig(filters_png, dpi=100, bbox_inches="tight")
    plt.close(fig)

    # One digit through the layers one at a time: stage 1 is layers 0-2, stage 2 is 3-5.
    x = Xt[:1]
    stages = []
    for i, layer in enumerate(model.layers[:6]):
        x = layer.forward(x)
        if i in (2, 5):
            stages.append(x[0])
    fig = plt.figure(figsize=(10, 6.5))
    sub = fig.subfigures(1, 2, width_ratios=[1, 4])
    ax = sub[0].subplots()
    ax.imshow(Xt[0, 0], cmap="gray")
    ax.set_title(f"test digit (label {yt[0]})")
    ax.axis("off")
    rows = sub[1].subfigures(2, 1, height_ratios=[1, 1.6])
    grid(rows[0].subplots(2, 8), stages[0], "after stage 1: 16 maps, 14x14")
    grid(rows[1].subplots(4, 8), stages[1], "after stage 2: 32 maps, 7x7")
    features_png = os.path.join(args.out, "cnn_features.png")
    fig.savefig(features_png, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return {
        "accuracy": float(accuracy),
        "train_seconds": seconds,
        "n_train": n_train,
        "filters_shape": tuple(w.shape),
        "stage_shapes": [tuple(s.shape) for s in stages],
        "figures": [filters_png, features_png],
    }


if __name__ == "__main__":
    main()
