"""Gradient descent (lecture notes P5): learning rates, Adagrad, stochastic steps, scaling.

One problem throughout: linear regression without bias, y = 2 x1 + 0.3 x2 + noise, on
generated data where x1 has standard deviation 1 and x2 standard deviation 10 (both centred),
so the loss surface over (w1, w2) is a long, thin valley. The model is fastnn's
Dense(2, 1, bias=False) + MSELoss; every run starts from the same function.

1. learning rates too small, about right and too large (on scaled features);
2. Adagrad against plain gradient descent on the unscaled features;
3. stochastic gradient descent (batch 1) against full batch, per epoch;
4. feature scaling: loss contours over (w1, w2) and the descent path, before and after
   dividing each feature by its standard deviation.

Run: python examples/gradient_descent.py [--quick] [--out DIR]
"""

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import fastnn
from fastnn import optim

START = np.array([-1.0, -1.0])  # the starting function, as weights on the unscaled features


def descend(X, y, w0, optimizer, lr, steps, batch=None, seed=0):
    """Loss on all the data (and the weights) after every update."""
    model = fastnn.Sequential(fastnn.Dense(2, 1, bias=False, dtype=np.float64))
    model[0].weight.data[...] = w0
    opt, loss, rng = optimizer(model, lr=lr), fastnn.MSELoss(), np.random.default_rng(seed)
    losses, path = [loss(model.predict(X), y)[0]], [w0.copy()]
    for _ in range(steps):
        rows = rng.permutation(len(X)) if batch else [slice(None)]
        for r in np.array_split(rows, len(X) // batch) if batch else rows:
            model.train_on_batch(X[r], y[r], loss=loss, optimizer=opt)
            losses.append(loss(model.predict(X), y)[0])
            path.append(model[0].weight.data.ravel().copy())
    return np.array(losses), np.array(path)


def steps_to_converge(losses, best, tol=1e-3):
    """Updates until the excess loss is below tol of the starting excess."""
    hit = np.flatnonzero((losses - best) / (losses[0] - best) < tol)
    return int(hit[0]) if len(hit) else len(losses)


def contour(ax, X, y, path, title):
    w_best = np.linalg.lstsq(X, y, rcond=None)[0].ravel()
    span = np.abs(path - w_best).max(0) * 1.3 + 0.1
    lo, hi = w_best - span, w_best + span
    g1, g2 = np.meshgrid(np.linspace(lo[0], hi[0], 120), np.linspace(lo[1], hi[1], 120))
    L = np.mean((X @ np.stack([g1.ravel(), g2.ravel()]) - y) ** 2, axis=0).reshape(g1.shape)
    ax.contour(g1, g2, np.log(L), levels=25, cmap="viridis")
    ax.plot(path[:, 0], path[:, 1], ".-", c="tab:red", ms=3, lw=1)
    ax.plot(*w_best, "k*", ms=12)
    ax.set(xlabel="w1", ylabel="w2", title=f"{title}: {len(path) - 1} updates")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="less data, fewer steps")
    parser.add_argument("--out", default="examples/figures", help="where the PNG goes")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    n = 64 if args.quick else 512
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 2)) * [1.0, 10.0]
    y = (X @ [2.0, 0.3] + rng.normal(0, 0.5, n))[:, None]
    scale = X.std(0)
    Xs, start_s = X / scale, START * scale  # the same starting function on scaled features
    best = float(np.mean((X @ np.linalg.lstsq(X, y, rcond=None)[0] - y) ** 2))

    # A step above 2 / (largest curvature) diverges; 1 / (largest curvature) is the "right"
    # fixed rate, which the thin valley then makes crawl along its flat direction.
    right_raw, right_s = (1 / np.linalg.eigvalsh(2 * A.T @ A / len(A)).max() for A in (X, Xs))
    rates = {"too small": 0.01 * right_s, "right": right_s, "too large": 2.2 * right_s}
    lr_curves = {k: descend(Xs, y, start_s, optim.SGD, lr, 30)[0] for k, lr in rates.items()}

    runs = {  # features, start, optimizer, learning rate, and the title of the path's contours
        "unscaled GD": (X, START, optim.SGD, right_raw, "GD, unscaled"),
        "scaled GD": (Xs, start_s, optim.SGD, right_s, "GD, scaled"),
        "unscaled Adagrad": (X, START, optim.Adagrad, 1.0, "Adagrad, unscaled"),
    }
    curves = {k: descend(A, y, w0, opt, lr, 2000) for k, (A, w0, opt, lr, _) in runs.items()}
    conv = {k: steps_to_converge(losses, best) for k, (losses, _) in curves.items()}
    gd_raw, ada = curves["unscaled GD"][0], curves["unscaled Adagrad"][0]

    epochs = 5
    full_epoch, sgd = (descend(Xs, y, start_s, optim.SGD, 0.02, epochs, b)[0] for b in (None, 1))
    sgd_epoch, sgd_x = sgd[:: len(X)], np.arange(len(sgd)) / len(X)  # per epoch; in epochs

    lr_note = f"learning rate 1/curvature: unscaled {right_raw:.4g}, scaled {right_s:.4g}"
    print(f"optimal MSE {best:.4f}; {lr_note}")
    for k, c in lr_curves.items():
        print(f"lr {k:9s} ({rates[k]:.4g}): MSE after 30 steps {c[-1]:.4g}")
    for k, s in conv.items():
        print(f"{k:16s}: {s} updates to reach the optimum (excess loss < 0.1% of the start)")
    print(f"after 100 updates: unscaled GD {gd_raw[100]:.4f}, Adagrad {ada[100]:.4f}")
    print("epoch  full-batch MSE  stochastic (batch 1) MSE")
    for e in range(epochs + 1):
        print(f"{e:5d} {full_epoch[e]:15.4f} {sgd_epoch[e]:15.4f}")

    fig, ax = plt.subplots(2, 3, figsize=(15, 8.5))
    for k, c in lr_curves.items():
        ax[0, 0].semilogy(c, label=f"{k} ({rates[k]:.3g})")
    ax[0, 0].set(xlabel="update", ylabel="MSE", title="learning rate (scaled features)")
    ax[0, 1].semilogy(gd_raw[:300] - best, label="gradient descent")
    ax[0, 1].semilogy(ada[:300] - best, label="Adagrad")
    ax[0, 1].set(xlabel="update", ylabel="MSE - optimum", title="Adagrad vs GD (unscaled)")
    ax[0, 2].semilogy(full_epoch, "o-", label="full batch: 1 update / epoch")
    ax[0, 2].semilogy(sgd_x, sgd, lw=0.8, label=f"batch 1: {len(X)} updates / epoch")
    ax[0, 2].set(xlabel="epoch", ylabel="MSE", title="stochastic vs full batch (lr 0.02)")
    for a in ax[0]:
        a.legend()
    for a, (k, (A, *_, title)) in zip(ax[1], runs.items()):
        contour(a, A, y, curves[k][1][: conv[k] + 1], title)
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "gradient_descent.png", dpi=80)
    plt.close(fig)
    print(f"figure: {out / 'gradient_descent.png'}  ({time.perf_counter() - start:.1f} s)")
    return {
        "optimal_mse": best,
        "lr_final_mse": {k: float(c[-1]) for k, c in lr_curves.items()},
        "steps_to_converge": conv,
        "mse_after_100": {"gd": float(gd_raw[100]), "adagrad": float(ada[100])},
        "mse_per_epoch": {"full": full_epoch.tolist(), "sgd": sgd_epoch.tolist()},
    }


if __name__ == "__main__":
    main()
