"""Tips for training deep networks (lecture notes P14, the Keras MNIST demo).

A deep sigmoid network trained with MSE stalls near chance; cross-entropy, ReLU, Adam,
dropout and maxout each recover accuracy. Then: gradient norms per layer at initialisation
(sigmoid's vanish towards the input), early stopping and weight decay.

    python examples/tips.py [--mnist DIR] [--quick] [--out DIR]
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import fastnn
from fastnn import optim

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_MNIST = os.environ.get("FASTNN_MNIST_DIR") or os.path.join(HERE, "../../shared/data/mnist")
CE = fastnn.SoftmaxCrossEntropy()
# --quick: (training images, test images, epochs, hidden width, batch size)
SIZES = {False: (60000, 10000, 2, 256, 100), True: (10000, 5000, 2, 128, 50)}


def load(directory, n_train, n_test):
    (X, y), (Xt, yt) = fastnn.load_mnist(directory)
    flat = lambda a: (a.reshape(len(a), -1) / np.float32(255)).astype(np.float32)  # noqa: E731
    return flat(X[:n_train]), y[:n_train], flat(Xt[:n_test]), yt[:n_test]


def mlp(act, width, depth, dropout=0.0, softmax=False, l2=0.0):
    layers = []
    for i in range(depth):
        layers += [fastnn.Dense(784 if i == 0 else width, width, l2=l2, rng=i), act()]
        layers += [fastnn.Dropout(dropout, rng=i)] if dropout else []
    layers.append(fastnn.Dense(width, 10, l2=l2, rng=depth))
    # The Keras demo's MSE network ends in a softmax; the cross-entropy ones output logits.
    return fastnn.Sequential(*layers, *([fastnn.Softmax()] if softmax else []))


def maxout(width, depth):
    sizes = [784] + [width] * depth
    units = [fastnn.Maxout(a, width, pieces=2, rng=i) for i, a in enumerate(sizes[:-1])]
    return fastnn.Sequential(*units, fastnn.Dense(width, 10, rng=depth))


def accuracy(model, X, y):
    return float((model.predict(X).argmax(axis=1) == y).mean())


def adam_fit(model, X, y, **kw):
    return model.fit(X, y, loss=CE, optimizer=optim.Adam(model, lr=1e-3), seed=0, **kw)


def weights(model):
    return [p for p in model.parameters() if p.name.endswith("weight")]


def save(fig, out, name):
    fig.tight_layout()
    fig.savefig(os.path.join(out, name), dpi=100)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", default=DEFAULT_MNIST, help="directory of the MNIST files")
    parser.add_argument("--quick", action="store_true", help="small data, a few seconds")
    parser.add_argument("--out", default=".", help="directory for the PNG figures")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    n_train, n_test, epochs, width, batch = SIZES[args.quick]
    X, y, Xt, yt = load(args.mnist, n_train, n_test)
    depth, fit = 3, dict(epochs=epochs, batch_size=batch, seed=0)

    sig, relu = fastnn.Sigmoid, fastnn.ReLU
    recipes = [  # (name, model, MSE on one-hot targets?, optimizer)
        ("sigmoid + MSE + SGD", mlp(sig, width, depth, softmax=True), True, "sgd"),
        ("+ cross-entropy", mlp(sig, width, depth), False, "sgd"),
        ("+ ReLU", mlp(relu, width, depth), False, "sgd"),
        ("+ Adam", mlp(relu, width, depth), False, "adam"),
        ("+ dropout 0.2", mlp(relu, width, depth, dropout=0.2), False, "adam"),
        # Maxout learns its own piecewise-linear activation.
        ("maxout + Adam", maxout(width, depth), False, "adam"),
    ]
    table = {}
    print(f"{n_train} training images, {epochs} epochs, 784-{width}x{depth}-10; test on {n_test}")
    print(f"{'recipe':<22} {'train acc':>9} {'test acc':>9}")
    for name, model, mse, opt in recipes:
        o = optim.SGD(model, lr=0.1) if opt == "sgd" else optim.Adam(model, lr=1e-3)
        loss = fastnn.MSELoss() if mse else CE
        model.fit(X, np.eye(10, dtype=np.float32)[y] if mse else y, loss=loss, optimizer=o, **fit)
        table[name] = (accuracy(model, X, y), accuracy(model, Xt, yt))
        print(f"{name:<22} {table[name][0]:9.4f} {table[name][1]:9.4f}")

    norms, gdepth = {}, 6
    for a in (sig, relu):  # vanishing gradients: a deeper net, one batch, before any training
        model = mlp(a, width, gdepth)
        model.forward_backward(X[:500], y[:500], loss=CE)
        norms[a.__name__] = [float(np.linalg.norm(p.grad)) for p in weights(model)]
    for a, g in norms.items():
        print(f"|dC/dW| per layer, {a:<7}: " + " ".join(f"{v:.1e}" for v in g))

    # Early stopping and weight decay overfit a small subset on purpose, to have something to cure.
    n_small = 1000 if args.quick else 2000
    Xs, ys, Xv, yv = X[:n_small], y[:n_small], X[-1000:], y[-1000:]
    model = mlp(relu, width, depth)
    stop = fastnn.callbacks.EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    vl = adam_fit(model, Xs, ys, epochs=30, batch_size=50, validation_data=(Xv, yv),
                  callbacks=[stop]).history["val_loss"]  # fmt: skip
    early = {"epochs_run": len(vl), "best_epoch": stop.best_epoch + 1, "val_loss": vl}
    early["test_acc"] = accuracy(model, Xt, yt)
    print("early stopping: ran {epochs_run} of 30 epochs, best val_loss at epoch {best_epoch}; "
          "test acc with that epoch's weights {test_acc:.4f}".format(**early))  # fmt: skip
    decay = {}
    for l2 in (0.0, 1e-3):
        model = mlp(relu, width, depth, l2=l2)
        adam_fit(model, Xs, ys, epochs=10, batch_size=50)
        wnorm = float(np.sqrt(sum((p.data**2).sum() for p in weights(model))))
        decay[l2] = (accuracy(model, Xs, ys), accuracy(model, Xt, yt), wnorm)
        print(f"weight decay l2={l2:g}: train acc {decay[l2][0]:.4f}, test acc "
              f"{decay[l2][1]:.4f}, |W| {decay[l2][2]:.1f}")  # fmt: skip

    fig, ax = plt.subplots(figsize=(8, 4))
    bars = ax.bar(range(len(table)), [t[1] for t in table.values()], color=["#c44"] + ["#48c"] * 5)
    ax.bar_label(bars, fmt="%.3f")
    ax.set_xticks(range(len(table)), list(table), rotation=20, ha="right")
    ax.set(ylim=(0, 1.05), ylabel="test accuracy", title=f"MNIST, {n_train} images")
    save(fig, args.out, "tips_recipes.png")
    fig, ax = plt.subplots(figsize=(6, 4))
    for a, g in norms.items():
        ax.semilogy(range(1, len(g) + 1), g, "o-", label=a)
    ax.set(xlabel="layer (1 = next to the input)", ylabel="|dC/dW| at initialisation",
           title=f"Gradient norm per layer, 784-{width}x{gdepth}-10")  # fmt: skip
    ax.legend()
    save(fig, args.out, "tips_gradients.png")
    plt.close("all")
    return {"table": table, "grad_norms": norms, "early_stopping": early, "weight_decay": decay}


if __name__ == "__main__":
    main()
