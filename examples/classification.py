"""Classification (lecture notes P10-P11): generative vs discriminative, and XOR.

Generated data (the notes' Pokemon type data is not available):

1. two classes in 2-D, each Gaussian with the same covariance (correlation 0.8) and means
   (0, 0) and (1.5, 1); for growing training sets (same size per class), test accuracy of
   the Gaussian generative classifier (closed_form.gaussian_classifier with a shared
   covariance, its naive-Bayes form, and one covariance per class, written here in NumPy
   because the closed form refuses it) against logistic regression (Dense(2, 1) +
   BCEWithLogits, trained with Adam), averaged over repeated draws;
2. XOR: clusters at (0, 0) and (1, 1) are class 0, at (0, 1) and (1, 0) class 1 (spread
   0.08). Logistic regression on (x1, x2) is at chance; on the distances to (0, 0) and to
   (1, 1) (the notes' feature transformation) it separates them; and a cascade of logistic
   units, Dense(2, 2) + Sigmoid + Dense(2, 1), learns such a transformation itself.

Run: python examples/classification.py [--quick] [--out DIR]
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

COV = np.array([[1.0, 0.8], [0.8, 1.0]])
MEANS = np.array([[0.0, 0.0], [1.0, -0.5]])


def gaussians(rng, per_class):
    X = np.concatenate([rng.multivariate_normal(m, COV, per_class) for m in MEANS])
    return X, np.repeat([0, 1], per_class)


def xor(rng, per_cluster):
    centres = np.array([[0, 0], [1, 1], [0, 1], [1, 0]], dtype=float)
    X = np.repeat(centres, per_cluster, axis=0) + rng.normal(0, 0.08, (4 * per_cluster, 2))
    return X, np.repeat([0, 0, 1, 1], per_cluster)


def train(model, X, y, steps, lr=0.05):
    """Full-batch Adam on BCEWithLogits; returns the final training loss."""
    opt, loss, t = optim.Adam(model, lr=lr), fastnn.BCEWithLogits(), y[:, None].astype(float)
    for _ in range(steps):
        value, _ = model.train_on_batch(X, t, loss=loss, optimizer=opt)
    return value


def logistic(X, y, steps, seed=0):
    # Standardised inputs: the distance features sit far from 0, which slows Adam's bias.
    model = fastnn.Sequential(
        fastnn.Standardize().adapt(X), fastnn.Dense(X.shape[1], 1, rng=seed), dtype=np.float64
    )
    train(model, X, y, steps)
    return model


def separate_covariances(X, y):
    """One Gaussian per class (quadratic boundary): log-posterior up to a constant."""
    params = []
    for c in (0, 1):
        Xc = X[y == c]
        S = np.cov(Xc.T, bias=True) + 1e-3 * np.eye(2)  # 3 points make a near-singular S
        params.append(
            (Xc.mean(0), np.linalg.inv(S), np.linalg.slogdet(S)[1], np.log(len(Xc) / len(X)))
        )

    def predict(Z):
        score = [
            -0.5 * np.einsum("nd,de,ne->n", Z - m, P, Z - m) - 0.5 * ld + lp
            for m, P, ld, lp in params
        ]
        return np.argmax(score, axis=0)

    return predict


def accuracy(pred, y):
    return float(np.mean(pred == y))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats and steps")
    parser.add_argument("--out", default="examples/figures", help="where the PNG goes")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    repeats, steps = (5, 200) if args.quick else (30, 500)
    sizes = [3, 5, 10, 30, 100, 300]
    rng = np.random.default_rng(0)
    Xte, yte = gaussians(rng, 2000)
    names = ["shared covariance", "separate covariances", "naive Bayes", "logistic regression"]
    acc = {k: np.zeros((len(sizes), repeats)) for k in names}
    for i, n in enumerate(sizes):
        for r in range(repeats):
            X, y = gaussians(rng, n)
            acc[names[0]][i, r] = accuracy(
                fastnn.gaussian_classifier(X, y).predict(Xte).argmax(1), yte
            )
            acc[names[1]][i, r] = accuracy(separate_covariances(X, y)(Xte), yte)
            acc[names[2]][i, r] = accuracy(
                fastnn.gaussian_classifier(X, y, naive=True).predict(Xte).argmax(1), yte
            )
            acc[names[3]][i, r] = accuracy(logistic(X, y, steps).predict(Xte)[:, 0] > 0, yte)
    mean_acc = {k: v.mean(1).tolist() for k, v in acc.items()}

    # XOR: raw inputs, the notes' distance features, and a 2-2-1 cascade of logistic units.
    per = 100
    Xx, yx = xor(rng, per)
    Xxt, yxt = xor(rng, per)

    def dist(Z):
        return np.stack([np.linalg.norm(Z, axis=1), np.linalg.norm(Z - 1, axis=1)], axis=1)

    raw = logistic(Xx, yx, 2000)
    transformed = logistic(dist(Xx), yx, 2000)
    # Two hidden sigmoids can stall in a poor local minimum: keep the best of a few starts.
    cascades = []
    for seed in range(3):
        net = fastnn.Sequential(
            fastnn.Dense(2, 2, dtype=np.float64, rng=seed),
            fastnn.Sigmoid(),
            fastnn.Dense(2, 1, dtype=np.float64, rng=seed + 10),
        )
        cascades.append((train(net, Xx, yx, 2000, lr=0.1), seed, net))
    cascade = min(cascades, key=lambda c: c[:2])[2]
    xor_acc = {
        "logistic on (x1, x2)": accuracy(raw.predict(Xxt)[:, 0] > 0, yxt),
        "logistic on distances": accuracy(transformed.predict(dist(Xxt))[:, 0] > 0, yxt),
        "2-2-1 sigmoid cascade": accuracy(cascade.predict(Xxt)[:, 0] > 0, yxt),
    }

    print("per class  " + "  ".join(f"{k:>20s}" for k in names))
    for i, n in enumerate(sizes):
        print(f"{n:9d}  " + "  ".join(f"{mean_acc[k][i]:20.3f}" for k in names))
    print(f"(test accuracy, mean of {repeats} draws; 2 x {len(Xte) // 2} test points)")
    for k, v in xor_acc.items():
        print(f"XOR, {k:22s}: test accuracy {v:.3f}")

    fig, ax = plt.subplots(1, 4, figsize=(19, 4.3))
    for k in names:
        ax[0].semilogx(sizes, mean_acc[k], "o-", label=k)
    ax[0].set(
        xlabel="training points per class", ylabel="test accuracy", title="generative vs logistic"
    )
    ax[0].legend()
    g = np.linspace(-0.6, 1.6, 150)
    G = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
    panels = [
        (ax[1], Xx, lambda Z: raw.predict(Z), "logistic on (x1, x2)"),
        (ax[3], Xx, lambda Z: cascade.predict(Z), "2-2-1 sigmoid cascade"),
    ]
    for a, P, f, title in panels:
        a.contourf(g, g, f(G).reshape(150, 150) > 0, alpha=0.25, cmap="coolwarm")
        a.scatter(*P.T, c=yx, s=8, cmap="coolwarm")
        a.set(xlabel="x1", ylabel="x2", title=f"XOR, {title}: {xor_acc[title]:.2f}")
    D = dist(Xx)
    h = np.linspace(0, 2, 150)
    H = np.stack(np.meshgrid(h, h), -1).reshape(-1, 2)
    ax[2].contourf(h, h, transformed.predict(H).reshape(150, 150) > 0, alpha=0.25, cmap="coolwarm")
    ax[2].scatter(*D.T, c=yx, s=8, cmap="coolwarm")
    title = "logistic on distances"
    ax[2].set(
        xlabel="distance to (0, 0)",
        ylabel="distance to (1, 1)",
        title=f"XOR, {title}: {xor_acc[title]:.2f}",
    )
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "classification.png", dpi=80)
    plt.close(fig)
    print(f"figure: {out / 'classification.png'}  ({time.perf_counter() - start:.1f} s)")
    return {"sizes": sizes, "accuracy": mean_acc, "xor_accuracy": xor_acc}


if __name__ == "__main__":
    main(sys.argv[1:])
