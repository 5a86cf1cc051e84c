"""Classification (lecture notes P10-P11): generative vs discriminative, and XOR.

On generated data (the notes' Pokemon type data is not available):

1. two Gaussian classes in 2-D with one covariance (correlation 0.8): test accuracy over
   growing training sets (mean of repeated draws) of closed_form.gaussian_classifier (shared
   covariance, and its naive-Bayes form), of one covariance per class (in NumPy: the closed
   form refuses it) and of logistic regression (Dense(2, 1) + BCEWithLogits, trained with Adam);
2. XOR (class 0 around (0, 0) and (1, 1), class 1 around (0, 1) and (1, 0)): logistic
   regression is at chance on (x1, x2) and separates the classes on the distances to (0, 0)
   and (1, 1) (the notes' feature transformation), which a cascade of logistic units,
   Dense(2, 2) + Sigmoid + Dense(2, 1), learns by itself.

Run: python examples/classification.py [--quick] [--out DIR]
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

COV = np.array([[1.0, 0.8], [0.8, 1.0]])
MEANS = np.array([[0.0, 0.0], [1.0, -0.5]])


def gaussians(rng, per_class):
    X = np.concatenate([rng.multivariate_normal(m, COV, per_class) for m in MEANS])
    return X, np.repeat([0, 1], per_class)


def xor(rng, per_cluster):
    centres = np.array([[0, 0], [1, 1], [0, 1], [1, 0]], dtype=float)
    X = np.repeat(centres, per_cluster, axis=0) + rng.normal(0, 0.08, (4 * per_cluster, 2))
    return X, np.repeat([0, 0, 1, 1], per_cluster)


def fit(layers, X, y, steps, lr=0.05):
    """Full-batch Adam on BCEWithLogits: the final training loss, and the labelling function."""
    model = fastnn.Sequential(*layers, dtype=np.float64)
    opt, loss, t = optim.Adam(model, lr=lr), fastnn.BCEWithLogits(), y[:, None].astype(float)
    for _ in range(steps):
        value, _ = model.train_on_batch(X, t, loss=loss, optimizer=opt)
    return value, lambda Z: model.predict(Z)[:, 0] > 0


def logistic(X, y, steps):
    # Standardised inputs: the distance features sit far from 0, which slows Adam's bias.
    return fit([fastnn.Standardize().adapt(X), fastnn.Dense(X.shape[1], 1, rng=0)], X, y, steps)[1]


def separate_covariances(X, y, Z):
    """One Gaussian per class (quadratic boundary): Z's labels by the larger log-posterior."""
    score = []
    for Xc in (X[y == 0], X[y == 1]):
        S = np.cov(Xc.T, bias=True) + 1e-3 * np.eye(2)  # 3 points make a near-singular S
        D = Z - Xc.mean(0)
        quadratic = np.einsum("nd,de,ne->n", D, np.linalg.inv(S), D)
        score.append(-0.5 * quadratic - 0.5 * np.linalg.slogdet(S)[1] + np.log(len(Xc) / len(X)))
    return np.argmax(score, axis=0)


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
    acc = np.zeros((len(names), len(sizes), repeats))
    for i, n in enumerate(sizes):
        for r in range(repeats):
            X, y = gaussians(rng, n)
            shared, naive = (fastnn.gaussian_classifier(X, y, naive=b) for b in (False, True))
            labels = [shared.predict(Xte).argmax(1), separate_covariances(X, y, Xte)]
            labels += [naive.predict(Xte).argmax(1), logistic(X, y, steps)(Xte)]  # as in names
            acc[:, i, r] = [np.mean(p == yte) for p in labels]
    mean_acc = {k: a.mean(1).tolist() for k, a in zip(names, acc)}

    (Xx, yx), (Xxt, yxt) = xor(rng, 100), xor(rng, 100)

    def dist(Z):  # the notes' feature transformation
        return np.stack([np.linalg.norm(Z, axis=1), np.linalg.norm(Z - 1, axis=1)], axis=1)

    # Two hidden sigmoids can stall in a poor local minimum: keep the best of a few starts.
    cascades = []
    for seed in range(3):
        layers = [fastnn.Dense(2, 2, dtype=np.float64, rng=seed), fastnn.Sigmoid()]
        layers.append(fastnn.Dense(2, 1, dtype=np.float64, rng=seed + 10))
        cascades.append(fit(layers, Xx, yx, 2000, lr=0.1))
    plane = (lambda Z: Z, (-0.6, 1.6), ("x1", "x2"))  # a model's inputs, and their plot's axes
    distances = (dist, (0, 2), ("distance to (0, 0)", "distance to (1, 1)"))
    xor_models = {
        "logistic on (x1, x2)": (plane, logistic(Xx, yx, 2000)),
        "logistic on distances": (distances, logistic(dist(Xx), yx, 2000)),
        "2-2-1 sigmoid cascade": (plane, min(cascades, key=lambda c: c[0])[1]),
    }
    xor_acc = {k: float(np.mean(f(s[0](Xxt)) == yxt)) for k, (s, f) in xor_models.items()}

    print("per class  " + "  ".join(f"{k:>20s}" for k in names))
    for i, n in enumerate(sizes):
        print(f"{n:9d}  " + "  ".join(f"{mean_acc[k][i]:20.3f}" for k in names))
    print(f"(test accuracy, mean of {repeats} draws; 2 x {len(Xte) // 2} test points)")
    for k, v in xor_acc.items():
        print(f"XOR, {k:22s}: test accuracy {v:.3f}")

    fig, ax = plt.subplots(1, 4, figsize=(19, 4.3))
    for k in names:
        ax[0].semilogx(sizes, mean_acc[k], "o-", label=k)
    ax[0].set(xlabel="training points per class", ylabel="test accuracy")
    ax[0].set_title("generative vs logistic")
    ax[0].legend()
    for a, (k, ((features, lim, axes), f)) in zip(ax[1:], xor_models.items()):
        g = np.linspace(*lim, 150)
        G = np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
        a.contourf(g, g, f(G).reshape(150, 150), alpha=0.25, cmap="coolwarm")
        a.scatter(*features(Xx).T, c=yx, s=8, cmap="coolwarm")
        a.set(xlabel=axes[0], ylabel=axes[1], title=f"XOR, {k}: {xor_acc[k]:.2f}")
    fig.tight_layout()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    fig.savefig(out / "classification.png", dpi=80)
    plt.close(fig)
    print(f"figure: {out / 'classification.png'}  ({time.perf_counter() - start:.1f} s)")
    return {"sizes": sizes, "accuracy": mean_acc, "xor_accuracy": xor_acc}


if __name__ == "__main__":
    main()
