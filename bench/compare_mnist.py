"""An MNIST epoch of a 784-256-256-10 MLP (ReLU, softmax cross-entropy, Adam lr 1e-3, batch
128) in fastnn, PyTorch and scikit-learn, in one run, every library pinned to one thread count:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/compare_mnist.py \\
        [--epochs E] [--threads N] [--data DIR] [--no-torch] [--no-sklearn]

Contenders: fastnn ``fit``; the README's manual loop in fastnn (shuffled index slices,
forward(training=True), loss, backward, step); a PyTorch loop written the same way;
scikit-learn's MLPClassifier and fastnn.sklearn.MLPClassifier (``partial_fit``, one epoch
per call, alpha=0 so that every contender minimises the same loss). The contenders take
turns epoch by epoch (A B C D E A B C D E ...), so background load hits them alike.

Prints the host (fastnn.benchmark's header), then per contender the median time per epoch,
the total, GFLOP/s and the fraction of the FMA limit (an epoch's GEMM FLOPs: forward, weight
gradients and the input gradients of all but the first layer), the time against fastnn fit's
(median of the per-epoch paired ratios) and the test accuracy after the last epoch.

The MNIST files are read with fastnn.load_mnist from --data, else $FASTNN_MNIST_DIR, else
<repository>/../shared/data/mnist. MNIST: Y. LeCun, C. Cortes, C. J. C. Burges, Creative
Commons Attribution-Share Alike 3.0."""

import argparse
import os
import sys
import warnings

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np

import fastnn
from fastnn import benchmark as B
from mlp_models import SIZES, fastnn_model, torch_model

BATCH, LR = 128, 1e-3
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def mnist_dir(given):
    directory = (
        given
        or os.environ.get("FASTNN_MNIST_DIR")
        or os.path.join(ROOT, "..", "shared", "data", "mnist")
    )
    if not os.path.isdir(directory):
        sys.exit(
            f"compare_mnist.py: no MNIST directory {directory}: pass --data DIR or set "
            "FASTNN_MNIST_DIR to the directory holding the four IDX files"
        )
    return directory


def fastnn_fit(X, y):
    model = fastnn_model()
    opt, loss = fastnn.optim.Adam(model, lr=LR), fastnn.SoftmaxCrossEntropy()
    epoch = iter(range(1 << 30))

    def run():
        model.fit(
            X,
            y,
            loss=loss,
            optimizer=opt,
            epochs=1,
            batch_size=BATCH,
            shuffle=True,
            seed=next(epoch),
        )

    return run, lambda X: model.predict(X).argmax(axis=1)


def fastnn_manual(X, y):
    model = fastnn_model()
    opt, loss_fn = fastnn.optim.Adam(model, lr=LR), fastnn.SoftmaxCrossEntropy()
    rng = np.random.default_rng(0)

    def run():
        order = rng.permutation(len(X))
        for start in range(0, len(X), BATCH):
            batch = order[start : start + BATCH]
            out = model.forward(X[batch], training=True)
            _loss, grad = loss_fn(out, y[batch])
            model.backward(grad)
            opt.step()

    return run, lambda X: model.predict(X).argmax(axis=1)


def torch_loop(torch):
    def make(X, y):
        torch.manual_seed(0)
        net = torch_model(torch)
        opt, loss_fn = torch.optim.Adam(net.parameters(), lr=LR), torch.nn.CrossEntropyLoss()
        Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
        generator = torch.Generator().manual_seed(0)

        def run():
            order = torch.randperm(len(Xt), generator=generator)
            for start in range(0, len(Xt), BATCH):
                batch = order[start : start + BATCH]
                opt.zero_grad()
                loss_fn(net(Xt[batch]), yt[batch]).backward()
                opt.step()

        def predict(X):
            with torch.inference_mode():
                return net(torch.from_numpy(X)).argmax(dim=1).numpy()

        return run, predict

    return make


def estimator(cls):
    def make(X, y):
        clf = cls(
            hidden_layer_sizes=SIZES[1:-1],
            solver="adam",
            alpha=0.0,
            batch_size=BATCH,
            learning_rate_init=LR,
            random_state=0,
        )
        classes = np.arange(10)
        return lambda: clf.partial_fit(X, y, classes=classes), clf.predict

    return make


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=3, help="epochs per contender (3)")
    parser.add_argument("--threads", type=int, default=1, help="for every library (1)")
    parser.add_argument("--data", metavar="DIR", help="the MNIST directory")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    parser.add_argument("--no-sklearn", action="store_true", help="leave scikit-learn out")
    args = parser.parse_args()
    directory = mnist_dir(args.data)
    from threadpoolctl import threadpool_limits

    makers = {"fastnn fit": fastnn_fit, "fastnn manual loop": fastnn_manual}
    if not args.no_torch:
        try:
            import torch
        except ImportError:
            print("PyTorch is not installed: no PyTorch figures", file=sys.stderr)
        else:
            torch.set_num_threads(args.threads)
            makers["PyTorch loop"] = torch_loop(torch)
    if not args.no_sklearn:
        try:
            from sklearn.neural_network import MLPClassifier
        except ImportError:
            print("scikit-learn is not installed: no MLPClassifier figures", file=sys.stderr)
        else:
            from fastnn.sklearn import MLPClassifier as FastMLP

            makers["scikit-learn MLPClassifier"] = estimator(MLPClassifier)
            makers["fastnn.sklearn MLPClassifier"] = estimator(FastMLP)
    fastnn.set_num_threads(args.threads)

    (X_train, y_train), (X_test, y_test) = fastnn.load_mnist(directory)
    X_train = X_train.reshape(len(X_train), -1).astype(np.float32) / 255
    X_test = X_test.reshape(len(X_test), -1).astype(np.float32) / 255
    with threadpool_limits(limits=args.threads):
        fma = B.FmaLimit()
        B.print_host(fma=fma, threads=args.threads)
        print(
            f"MNIST from {os.path.abspath(directory)}: {len(X_train)} train / {len(X_test)} "
            f"test; {'-'.join(map(str, SIZES))}, Adam lr {LR}, batch {BATCH}, "
            f"{args.epochs} epoch(s), {args.threads} thread(s)",
            flush=True,
        )
        runs, predictors = {}, {}
        for name, make in makers.items():
            runs[name], predictors[name] = make(X_train, y_train)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scikit-learn's convergence chatter
            times = B.interleave(
                runs,
                0.0,
                block=1,
                pause=0.2 if args.threads > 1 else 0.0,
                min_rounds=args.epochs,
                warmup=0,
            )
        fma.probe()
    print(fma.line(args.threads))
    limit = fma.peak * args.threads if fma.peak else None
    flops = B.mlp_flops(SIZES, len(X_train))
    print(
        f"{'contender':<30} {'s/epoch':>8} {'total s':>8} {'GFLOP/s':>8} {'FMA':>5} "
        f"{'time/fit':>9} {'test acc':>9}   (s/epoch: median; time/fit: median of paired "
        "per-epoch ratios)"
    )
    for name in runs:
        t = B.median(times[name])
        accuracy = float(np.mean(predictors[name](X_test) == y_test))
        share = f"{100 * flops / t / 1e9 / limit:4.0f}%" if limit else "  n/a"
        print(
            f"{name:<30} {t:8.2f} {sum(times[name]):8.2f} {flops / t / 1e9:8.1f} {share} "
            f"{B.paired_ratio(times, name, 'fastnn fit'):9.2f} {100 * accuracy:8.2f}%"
        )


if __name__ == "__main__":
    main()
