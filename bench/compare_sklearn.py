"""fastnn.sklearn.MLPClassifier against scikit-learn's MLPClassifier on the built-in digits:
identical hyperparameters and seeds, both timed in this run with the same thread count.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/compare_sklearn.py [--threads N]

Each seed's two fits alternate --repeats times (background load hits both alike); prints
held-out accuracy and the median fit time per seed, the mean accuracy, and the speed-up as
the ratio of the medians over all fits."""
import argparse
import statistics
import time
import warnings

from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.neural_network import MLPClassifier as SkMLP
from threadpoolctl import threadpool_limits

import fastnn
from fastnn.sklearn import MLPClassifier as FastMLP

PARAMS = dict(hidden_layer_sizes=(256, 128), solver="adam", alpha=1e-4, batch_size=64,
              learning_rate_init=1e-3, max_iter=60, tol=1e-6, n_iter_no_change=1000)


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
    parser.add_argument("--threads", type=int, default=fastnn.get_num_threads())
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="fits per seed and library")
    args = parser.parse_args()
    fastnn.set_num_threads(args.threads)

    X, y = fastnn.load_digits()
    X = X / 16
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    print(f"digits: {len(X_tr)} train / {len(X_te)} test, threads={args.threads}, "
          f"float32 inputs, {PARAMS}")
    libraries = {"scikit-learn": SkMLP, "fastnn": FastMLP}
    accuracy = {name: [] for name in libraries}
    seconds = {name: [] for name in libraries}
    with threadpool_limits(limits=args.threads):
        for seed in range(args.seeds):
            times = {name: [] for name in libraries}
            for _ in range(args.repeats):
                for name, cls in libraries.items():
                    acc, sec, n_iter = run(cls, X_tr, y_tr, X_te, y_te, seed)
                    times[name].append(sec)
                    seconds[name].append(sec)
                    if len(times[name]) == 1:  # a seed's fits are deterministic
                        accuracy[name].append(acc)
            for name in libraries:
                print(f"  seed {seed} {name:>12}: accuracy {accuracy[name][-1]:.4f}  fit "
                      f"{statistics.median(times[name]):6.2f} s (median of {args.repeats}, "
                      f"{n_iter} epochs)")
    medians = {name: statistics.median(s) for name, s in seconds.items()}
    for name in libraries:
        print(f"{name:>12}: mean accuracy {statistics.mean(accuracy[name]):.4f}  median fit "
              f"{medians[name]:6.2f} s")
    gap = statistics.mean(accuracy["fastnn"]) - statistics.mean(accuracy["scikit-learn"])
    print(f"accuracy difference (fastnn - scikit-learn): {100 * gap:+.2f} points; "
          f"fit speed-up (ratio of medians): {medians['scikit-learn'] / medians['fastnn']:.2f}x")


if __name__ == "__main__":
    main()
