"""Explaining and attacking a network (lecture notes P24, P33): saliency maps and FGSM.

The gradient of the loss with respect to the input, d loss / d x, says which pixels the
prediction is sensitive to (a saliency map). Stepping every pixel a small eps in the sign of
that gradient (the fast gradient sign method) flips the predictions of a CNN that is right
on almost every digit, while random noise of the same size does almost nothing.

    python examples/explain_attack.py [--mnist DIR] [--quick] [--out DIR] [--eps EPS]
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
    p.add_argument("--eps", type=float, default=0.15, help="the attack's step per pixel")
    return p.parse_args(argv)


def small_cnn():
    return fastnn.Sequential(
        fastnn.Conv2d(1, 8, 5, padding=2, rng=0), fastnn.ReLU(), fastnn.MaxPool2d(2),
        fastnn.Conv2d(8, 16, 5, padding=2, rng=1), fastnn.ReLU(), fastnn.MaxPool2d(2),
        fastnn.Flatten(), fastnn.Dense(16 * 7 * 7, 10, rng=2),
    )  # fmt: skip


def input_gradient(model, x, y, loss):
    # A training-mode forward keeps what backward needs; this model has no dropout or batch
    # norm, so it computes the same function as inference. No optimizer step follows.
    _, grad = loss(model.forward(x, training=True), y)
    return model.backward(grad, input_grad=True)


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def main(argv=None):
    args = parse(sys.argv[1:] if argv is None else argv)
    os.makedirs(args.out, exist_ok=True)
    (X, y), (Xt, yt) = fastnn.load_mnist(args.mnist)
    n_train, n_attack, epochs = (4000, 500, 2) if args.quick else (len(X), 2000, 1)
    X, y = X[:n_train].reshape(-1, 1, 28, 28) / np.float32(255), y[:n_train]
    Xt, yt = Xt[:n_attack].reshape(-1, 1, 28, 28) / np.float32(255), yt[:n_attack]

    model, loss = small_cnn(), fastnn.SoftmaxCrossEntropy()
    start = time.perf_counter()
    model.fit(X, y, loss=loss, optimizer=optim.Adam(model, lr=2e-3), epochs=epochs, batch_size=64,
              seed=0)  # fmt: skip
    seconds = time.perf_counter() - start

    grad = input_gradient(model, Xt, yt, loss)
    saliency = np.abs(grad)
    stroke = Xt > 0.5
    ratio = float(saliency[stroke].mean() / saliency[~stroke].mean())
    # The attack: one step of size eps per pixel, uphill for the loss, kept a valid image.
    X_adv = np.clip(Xt + args.eps * np.sign(grad), 0, 1).astype(np.float32)
    rng = np.random.default_rng(0)
    X_noise = np.clip(Xt + args.eps * rng.choice([-1, 1], Xt.shape), 0, 1).astype(np.float32)
    p_clean, p_adv = softmax(model.predict(Xt)), softmax(model.predict(X_adv))
    acc_clean = float((p_clean.argmax(1) == yt).mean())
    acc_adv = float((p_adv.argmax(1) == yt).mean())
    acc_noise = float((model.predict(X_noise).argmax(1) == yt).mean())
    print(f"trained a small CNN on {n_train} images in {seconds:.1f} s")
    print(f"saliency on strokes / on background: {ratio:.2f}")
    print(f"accuracy on {n_attack} test digits: clean {acc_clean:.4f}, random +-{args.eps} noise "
          f"{acc_noise:.4f}, FGSM eps={args.eps} {acc_adv:.4f}")  # fmt: skip

    # Raw gradients are speckled; averaging them over noisy copies of the input (SmoothGrad)
    # keeps what is stable and shows the same sensitivity more legibly.
    shown = Xt[:8] + rng.normal(0, 0.15, (20, 8, 1, 28, 28)).astype(np.float32)
    smooth = np.mean([np.abs(input_gradient(model, s, yt[:8], loss)) for s in shown], axis=0)
    fig, axes = plt.subplots(3, 8, figsize=(10, 4.2))
    for j in range(8):
        for row, (img, cmap) in enumerate(((Xt, "gray"), (saliency, "hot"), (smooth, "hot"))):
            axes[row, j].imshow(img[j, 0], cmap=cmap)
            axes[row, j].axis("off")
        axes[0, j].set_title(f"label {yt[j]}", fontsize=9)
    fig.suptitle("test digits, saliency |d loss / d x|, and its average over noisy copies")
    saliency_png = os.path.join(args.out, "explain_attack_saliency.png")
    fig.savefig(saliency_png, dpi=100, bbox_inches="tight")
    plt.close(fig)

    flipped = np.flatnonzero((p_clean.argmax(1) == yt) & (p_adv.argmax(1) != yt))[:3]
    fig, axes = plt.subplots(len(flipped), 3, figsize=(6.5, 2.3 * len(flipped)), squeeze=False)
    for row, i in enumerate(flipped):
        a, b = p_clean[i].argmax(), p_adv[i].argmax()
        panels = (
            (Xt[i, 0], f"original: {a} ({p_clean[i, a]:.0%})", "gray", 0),
            (X_adv[i, 0] - Xt[i, 0], f"perturbation (eps={args.eps})", "bwr", -args.eps),
            (X_adv[i, 0], f"adversarial: {b} ({p_adv[i, b]:.0%})", "gray", 0),
        )
        for ax, (img, title, cmap, low) in zip(axes[row], panels):
            ax.imshow(img, cmap=cmap, vmin=low, vmax=1 if low == 0 else -low)
            ax.set_title(title, fontsize=9)
            ax.axis("off")
    adversarial_png = os.path.join(args.out, "explain_attack_fgsm.png")
    fig.savefig(adversarial_png, dpi=100, bbox_inches="tight")
    plt.close(fig)
    return {
        "train_seconds": seconds,
        "eps": args.eps,
        "accuracy_clean": acc_clean,
        "accuracy_noise": acc_noise,
        "accuracy_adversarial": acc_adv,
        "saliency_stroke_ratio": ratio,
        "saliency_shape": saliency.shape,
        "input_shape": Xt.shape,
        "flipped": flipped.tolist(),
        "figures": [saliency_png, adversarial_png],
    }


if __name__ == "__main__":
    main()
