"""Auto-encoder (lecture notes P58): squeeze MNIST through a 32-unit, then a 2-unit, code.

A 784-128-32-128-784 network trained to reproduce its input keeps what matters about a digit
in 32 numbers; with a 2-unit bottleneck the codes of the test digits, drawn in the plane,
gather by digit although no label was ever used.

    python examples/autoencoder.py [--mnist DIR] [--quick] [--out DIR]
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


def autoencoder(code, seed):
    # The code layer is linear, so the code may take any value; the sigmoid keeps the
    # reconstruction in the pixels' range [0, 1].
    return fastnn.Sequential(
        fastnn.Dense(784, 128, rng=seed), fastnn.ReLU(), fastnn.Dense(128, code, rng=seed + 1),
        fastnn.Dense(code, 128, rng=seed + 2), fastnn.ReLU(), fastnn.Dense(128, 784, rng=seed + 3),
        fastnn.Sigmoid(),
    )  # fmt: skip


def encode(model, X):
    # The encoder is the first three layers; running them one by one shares their weights.
    for layer in model.layers[:3]:
        X = layer.forward(X)
    return X


def train(model, X, epochs):
    # The target is the input itself: no label enters the training.
    model.fit(X, X, loss=fastnn.MSELoss(), optimizer=optim.Adam(model, lr=2e-3), epochs=epochs,
              batch_size=128, seed=0)  # fmt: skip


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    os.makedirs(args.out, exist_ok=True)
    (X, _), (Xt, yt) = fastnn.load_mnist(args.mnist)
    n_train, n_test, epochs = (5000, 2000, 8) if args.quick else (len(X), len(Xt), 8)
    X = X[:n_train].reshape(n_train, -1) / np.float32(255)
    Xt, yt = Xt[:n_test].reshape(n_test, -1) / np.float32(255), yt[:n_test]

    start = time.perf_counter()
    ae32, ae2 = autoencoder(32, 0), autoencoder(2, 10)
    train(ae32, X, epochs)
    train(ae2, X, epochs)
    seconds = time.perf_counter() - start
    R32, R2 = ae32.predict(Xt), ae2.predict(Xt)
    mse32, mse2 = float(np.mean((R32 - Xt) ** 2)), float(np.mean((R2 - Xt) ** 2))
    # The yardstick: a "reconstruction" that ignores its input and predicts the mean image.
    mse_mean = float(np.mean((X.mean(axis=0) - Xt) ** 2))
    print(f"trained two auto-encoders on {n_train} images, {epochs} epochs, in {seconds:.1f} s")
    print(f"test reconstruction MSE: 32-unit code {mse32:.4f}, 2-unit code {mse2:.4f}, "
          f"mean image {mse_mean:.4f}")  # fmt: skip

    fig, axes = plt.subplots(3, 10, figsize=(10, 3.4))
    for j in range(10):
        for row, (images, name) in enumerate(((Xt, "original"), (R32, "32-unit"), (R2, "2-unit"))):
            axes[row, j].imshow(images[j].reshape(28, 28), cmap="gray", vmin=0, vmax=1)
            axes[row, j].set_xticks([])
            axes[row, j].set_yticks([])
            if j == 0:
                axes[row, j].set_ylabel(name)
    fig.suptitle(f"test digits and their reconstructions (MSE {mse32:.4f} and {mse2:.4f})")
    recon_png = os.path.join(args.out, "autoencoder_reconstructions.png")
    fig.savefig(recon_png, dpi=100, bbox_inches="tight")
    plt.close(fig)

    codes = encode(ae2, Xt)
    fig, ax = plt.subplots(figsize=(7, 6))
    points = ax.scatter(codes[:, 0], codes[:, 1], c=yt, cmap="tab10", s=3, alpha=0.7)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    ax.set_title(f"2-unit codes of {n_test} test digits, coloured by their (unused) label")
    ax.set_xlabel("code unit 1")
    ax.set_ylabel("code unit 2")
    code_png = os.path.join(args.out, "autoencoder_code2d.png")
    fig.savefig(code_png, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return {
        "mse_code32": mse32,
        "mse_code2": mse2,
        "mse_mean_image": mse_mean,
        "train_seconds": seconds,
        "codes": codes,
        "labels": yt,
        "figures": [recon_png, code_png],
    }


if __name__ == "__main__":
    main()
