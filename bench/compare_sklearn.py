"""fastnn.sklearn.MLPClassifier against scikit-learn's MLPClassifier on the built-in digits:
identical hyperparameters and seeds, both timed in this run with the same thread count:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/compare_sklearn.py \\
        [--threads N] [--seeds S] [--repeats R]

Prints the host (fastnn.benchmark's header), then per seed the held-out accuracy and the
median fit time of each library; the two fits of each seed alternate --repeats times
(background load hits both alike). The speed-up is the median of the paired ratios
(scikit-learn's fit time over fastnn's, one pair per seed and repeat); GFLOP/s and the
fraction of the FMA limit count the fit's GEMM FLOPs (forward, weight gradients, input
gradients of all but the first layer, per sample and epoch)."""

import argparse
import statistics
import time
import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP
from threadpoolctl import threadpool_limits

import fastnn
from fastnn import benchmark as B
from fastnn.sklearn import MLPClassifier as FastMLP

PARAMS = dict(
    hidden_layer_sizes=(256, 128),
    solver="adam",
    alpha=1e-4,
    batch_size=64,
    learning_rate_init=1e-3,
    max_iter=60,
    tol=1e-6,
    n_iter_no_change=1000,
)


def run(cls, X_tr, y_tr, X_te, y_te, seed):
    clf = cls(random_state=seed, **PARAMS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        clf.fit(X_tr, y_tr)
        seconds = time.perf_counter() - t0
    return clf.score(X_te, y_te), seconds, clf.n_iter_


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="for both libraries (default 1)")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="fits per seed and library")
    args = parser.parse_args()
    fastnn.set_num_threads(args.threads)

    X, y = fastnn.load_digits()
    X = X / 16
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    sizes = (X.shape[1], *PARAMS["hidden_layer_sizes"], 10)
    libraries = {"scikit-learn": SkMLP, "fastnn": FastMLP}
    accuracy = {name: [] for name in libraries}
    seconds = {name: [] for name in libraries}
    flops = {name: [] for name in libraries}
    with threadpool_limits(limits=args.threads):
        fma = B.FmaLimit()
        B.print_host(fma=fma, threads=args.threads)
        print(
            f"digits: {len(X_tr)} train / {len(X_te)} test, threads={args.threads}, "
            f"float32 inputs, {PARAMS}",
            flush=True,
        )
        for seed in range(args.seeds):
            times = {name: [] for name in libraries}
            epochs = {}
            for _ in range(args.repeats):
                for name, cls in libraries.items():
                    acc, sec, n_iter = run(cls, X_tr, y_tr, X_te, y_te, seed)
                    times[name].append(sec)
                    seconds[name].append(sec)
                    flops[name].append(n_iter * B.mlp_flops(sizes, len(X_tr)))
                    epochs[name] = n_iter
                    if len(times[name]) == 1:  # a seed's fits are deterministic
                        accuracy[name].append(acc)
            for name in libraries:
                print(
                    f"  seed {seed} {name:>12}: accuracy {accuracy[name][-1]:.4f}  fit "
                    f"{statistics.median(times[name]):6.2f} s (median of {args.repeats}, "
                    f"{epochs[name]} epochs)"
                )
    fma.probe()
    print(fma.line(args.threads))
    limit = fma.peak * args.threads if fma.peak else None
    for name in libraries:
        gflops = statistics.median(f / s / 1e9 for f, s in zip(flops[name], seconds[name]))
        share = f", {100 * gflops / limit:.0f}% of the FMA limit" if limit else ""
        print(
            f"{name:>12}: mean accuracy {statistics.mean(accuracy[name]):.4f}  median fit "
            f"{statistics.median(seconds[name]):6.2f} s  ({gflops:.1f} GFLOP/s{share})"
        )
    gap = statistics.mean(accuracy["fastnn"]) - statistics.mean(accuracy["scikit-learn"])
    speedup = B.paired_ratio(seconds, "scikit-learn", "fastnn")
    print(
        f"accuracy difference (fastnn - scikit-learn): {100 * gap:+.2f} points; fit speed-up "
        f"(median of {len(seconds['fastnn'])} paired ratios): {speedup:.2f}x"
    )


if __name__ == "__main__":
    main()
