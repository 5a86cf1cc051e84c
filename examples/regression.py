"""Regression and regularisation (lecture notes P3-P4), on a stand-in for the Pokemon data.

The notes predict a Pokemon's combat power after evolution (y_cp) from its combat power
before (x_cp), with 10 training and 10 test Pokemon. That data is not available, so this
script generates a stand-in of the same shape: 10 training and 10 test points, x_cp uniform
in [10, 600], y_cp = 20 + 1.2 x_cp + 0.0015 x_cp^2 (a curved truth) plus Gaussian noise of
standard deviation 40. Three experiments, one figure:

1. polynomials of degree 1..5 (features x, x^2, ..., standardised), fitted exactly by the
   normal equation: training error keeps falling, test error turns up (overfitting);
2. an L2 sweep on the degree-5 model: training error rises with lambda while test error
   first falls, then rises (its minimum is inside the sweep);
3. gradient descent on Dense(5, 1, l2=lambda) + MSELoss(sum) reaches the same weights as
   closed_form.linear_regression(l2=lambda), which minimises exactly that loss.

Run: python examples/regression.py [--quick] [--out DIR]
"""

import argparse
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import fastnn
from fastnn import optim

DEGREES = range(1, 6)
LAMBDAS = np.logspace(-5, 3, 17)


def make_data(rng, n):
    x = rng.uniform(10, 600, n)
    y = 20 + 1.2 * x + 0.0015 * x**2 + rng.normal(0, 40, n)
    return x, y[:, None]


def features(x, degree, stats=None):
    """Powers of x; standardised with the training set's statistics, because x^5 of a CP
    of 600 is ~1e14 and the normal equation (and gradient descent) would be ill-posed."""
    raw = np.stack([(x / 100) ** k for k in range(1, degree + 1)], axis=1)
    mean, std = stats if stats is not None else (raw.mean(0), raw.std(0))
    return (raw - mean) / std, (mean, std)


def mse(model, X, y):
    return float(np.mean((model.predict(X) - y) ** 2))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer gradient-descent steps")
    parser.add_argument("--out", default="examples/figures", help="where the PNG goes")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rng = np.random.default_rng(3)
    xtr, ytr = make_data(rng, 10)
    xte, yte = make_data(rng, 10)

    fits = {}
    for d in DEGREES:
        Ftr, stats = features(xtr, d)
        model = fastnn.linear_regression(Ftr, ytr, dtype=np.float64)
        fits[d] = (model, stats)
    train_err = [mse(fits[d][0], features(xtr, d, fits[d][1])[0], ytr) for d in DEGREES]
    test_err = [mse(fits[d][0], features(xte, d, fits[d][1])[0], yte) for d in DEGREES]
    best_degree = int(np.argmin(test_err)) + 1

    F5, stats5 = features(xtr, 5)
    F5te = features(xte, 5, stats5)[0]
    ridge = [fastnn.linear_regression(F5, ytr, l2=lam, dtype=np.float64) for lam in LAMBDAS]
    l2_train = [mse(m, F5, ytr) for m in ridge]
    l2_test = [mse(m, F5te, yte) for m in ridge]
    best_lam = float(LAMBDAS[int(np.argmin(l2_test))])

    # Gradient descent on the same penalised loss; the penalty also makes the standardised
    # powers (correlated ~0.99) well-conditioned enough for plain full-batch steps.
    exact = fastnn.linear_regression(F5, ytr, l2=best_lam, dtype=np.float64)
    gd = fastnn.Sequential(fastnn.Dense(5, 1, l2=best_lam, dtype=np.float64, rng=0))
    curvature = 2 * (np.linalg.eigvalsh(F5.T @ F5).max() + best_lam)
    opt = optim.SGD(gd, lr=1.0 / max(curvature, 2 * len(F5)))
    loss = fastnn.MSELoss(reduction="sum")
    for _ in range(2000 if args.quick else 5000):
        gd.train_on_batch(F5, ytr, loss=loss, optimizer=opt)
    w_exact = np.append(exact[0].weight.data.ravel(), exact[0].bias.data)
    w_gd = np.append(gd[0].weight.data.ravel(), gd[0].bias.data)

    print("degree  train MSE   test MSE")
    for d, a, b in zip(DEGREES, train_err, test_err):
        print(f"{d:6d} {a:10.1f} {b:10.1f}")
    print(f"best degree by test error: {best_degree}")
    print("degree 5, lambda  train MSE   test MSE")
    for lam, a, b in zip(LAMBDAS, l2_train, l2_test):
        print(f"{lam:16.3g} {a:10.1f} {b:10.1f}")
    print(f"best lambda by test error: {best_lam:.3g}")
    print("parameter   normal equation   gradient descent")
    for name, a, b in zip(["w1", "w2", "w3", "w4", "w5", "b"], w_exact, w_gd):
        print(f"{name:9s} {a:17.4f} {b:18.4f}")
    gap = float(np.max(np.abs(w_exact - w_gd)))
    print(f"largest difference: {gap:.2e}")

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    grid = np.linspace(10, 600, 200)
    ax[0].scatter(xtr, ytr, c="k", label="training")
    ax[0].scatter(xte, yte, c="tab:red", marker="x", label="test")
    for d in (1, best_degree, 5):
        ax[0].plot(grid, fits[d][0].predict(features(grid, d, fits[d][1])[0]), label=f"degree {d}")
    ax[0].set(xlabel="x_cp", ylabel="y_cp", title="generated CP data and fits")
    ax[0].set_ylim(ytr.min() - 200, ytr.max() + 200)
    ax[0].legend()
    ax[1].semilogy(DEGREES, train_err, "o-", label="training")
    ax[1].semilogy(DEGREES, test_err, "o-", label="test")
    ax[1].set(xlabel="polynomial degree", ylabel="MSE", title="overfitting")
    ax[1].legend()
    ax[2].loglog(LAMBDAS, l2_train, "o-", label="training")
    ax[2].loglog(LAMBDAS, l2_test, "o-", label="test")
    ax[2].axvline(best_lam, ls=":", c="gray")
    ax[2].set(xlabel="L2 lambda (degree 5)", ylabel="MSE", title="regularisation")
    ax[2].legend()
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "regression.png", dpi=90)
    plt.close(fig)
    seconds = time.perf_counter() - start
    print(f"figure: {out / 'regression.png'}  ({seconds:.1f} s)")
    return {
        "train_mse": train_err,
        "test_mse": test_err,
        "best_degree": best_degree,
        "lambdas": LAMBDAS.tolist(),
        "l2_train_mse": l2_train,
        "l2_test_mse": l2_test,
        "best_lambda": best_lam,
        "w_normal_equation": w_exact.tolist(),
        "w_gradient_descent": w_gd.tolist(),
        "max_weight_gap": gap,
    }


if __name__ == "__main__":
    main(sys.argv[1:])
