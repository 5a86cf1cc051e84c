"""fastnn.sklearn.MLPClassifier against scikit-learn's MLPClassifier on the built-in digits:
identical hyperparameters and seeds, both timed in this run with the same thread count.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/compare_sklearn.py [--threads N]

Prints held-out accuracy and fit time per seed, their means, and the speed-up."""
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
    args = parser.parse_args()
    fastnn.set_num_threads(args.threads)

    X, y = fastnn.load_digits()
    X = X / 16
    X_tr, X_te, y_tr, y_te = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)
    print(f"digits: {len(X_tr)} train / {len(X_te)} test, threads={args.threads}, "
          f"float32 inputs, {PARAMS}")
    results = {"scikit-learn": [], "fastnn": []}
    with threadpool_limits(limits=args.threads):
        for seed in range(args.seeds):
            for name, cls in (("scikit-learn", SkMLP), ("fastnn", FastMLP)):
                acc, sec, n_iter = run(cls, X_tr, y_tr, X_te, y_te, seed)
                results[name].append((acc, sec))
                print(f"  seed {seed} {name:>12}: accuracy {acc:.4f}  fit {sec:6.2f} s "
                      f"({n_iter} epochs)")
    means = {name: (statistics.mean(a for a, _ in r), statistics.mean(s for _, s in r))
             for name, r in results.items()}
    for name, (acc, sec) in means.items():
        print(f"mean {name:>12}: accuracy {acc:.4f}  fit {sec:6.2f} s")
    (acc_sk, sec_sk), (acc_fn, sec_fn) = means["scikit-learn"], means["fastnn"]
    print(f"accuracy difference (fastnn - scikit-learn): {100 * (acc_fn - acc_sk):+.2f} points; "
          f"fit speed-up: {sec_sk / sec_fn:.2f}x")


if __name__ == "__main__":
    main()
