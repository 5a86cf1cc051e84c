"""Why deep (lecture notes P15): deep-and-thin against shallow-and-fat networks with the same
number of parameters on MNIST.

For each budget, a 784-Y-Y-Y-10 ReLU network and a 784-X-10 one whose X is chosen so that
both have (nearly) the same parameter count are trained alike; test accuracy is compared.

    python examples/why_deep.py [--mnist DIR] [--quick] [--out DIR]
"""

import argparse
import itertools
import os

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
DEPTH = 3


def mlp(widths):
    sizes, layers = [784, *widths, 10], []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        layers += [fastnn.Dense(a, b, rng=i), fastnn.ReLU()]
    return fastnn.Sequential(*layers[:-1])


def n_params(model):
    return sum(p.data.size for p in model.parameters())


def shallow_width(budget):
    """The X whose 784-X-10 network has the parameter count closest to ``budget``."""
    # 784-X-10 has 785 X + 10 (X + 1) parameters.
    return max(1, round((budget - 10) / 795))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=DEFAULT_MNIST, help="directory of the MNIST files")
    parser.add_argument("--quick", action="store_true", help="small data, a few seconds")
    parser.add_argument("--out", default=".", help="directory for the PNG figure")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    if args.quick:
        n_train, n_test, epochs, thin = 10000, 5000, 3, (32, 64)
    else:
        n_train, n_test, epochs, thin = 60000, 10000, 3, (32, 64, 128, 256)
    (X, y), (Xt, yt) = fastnn.load_mnist(args.mnist)
    X = (X[:n_train].reshape(n_train, -1) / np.float32(255)).astype(np.float32)
    Xt = (Xt[:n_test].reshape(n_test, -1) / np.float32(255)).astype(np.float32)
    y, yt = y[:n_train], yt[:n_test]
    loss = fastnn.SoftmaxCrossEntropy()

    print(f"{n_train} training images, {epochs} epochs, Adam; test on {n_test}")
    print(f"{'network':<22} {'parameters':>10} {'test acc':>9}")
    rows = []
    for width in thin:
        deep = mlp([width] * DEPTH)
        shallow = mlp([shallow_width(n_params(deep))])
        row = {}
        for kind, model in (("deep", deep), ("shallow", shallow)):
            model.fit(
                X,
                y,
                loss=loss,
                optimizer=optim.Adam(model, lr=1e-3),
                epochs=epochs,
                batch_size=100,
                seed=0,
            )
            acc = float((model.predict(Xt).argmax(axis=1) == yt).mean())
            widths = [
                layer.weight.data.shape[0] for layer in model if isinstance(layer, fastnn.Dense)
            ]
            name = "-".join(map(str, [784, *widths]))
            row[kind] = {"name": name, "params": n_params(model), "accuracy": acc}
            print(f"{name:<22} {n_params(model):>10} {acc:9.4f}")
        rows.append(row)

    fig, ax = plt.subplots(figsize=(6, 4))
    for kind, style in (("deep", "o-"), ("shallow", "s--")):
        ax.plot(
            [r[kind]["params"] for r in rows],
            [r[kind]["accuracy"] for r in rows],
            style,
            label=f"{kind}: " + ("784-Y-Y-Y-10" if kind == "deep" else "784-X-10"),
        )
    ax.set_xscale("log")
    ax.set(
        xlabel="parameters",
        ylabel="test accuracy",
        title=f"Deep vs shallow at equal size\n(MNIST, {n_train} images, {epochs} epochs)",
    )
    ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.out, "why_deep.png"), dpi=100)
    plt.close(fig)
    return {"rows": rows}


if __name__ == "__main__":
    main()
