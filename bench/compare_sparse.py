"""fastnn.sklearn.MLPClassifier against scikit-learn's MLPClassifier on TF-IDF-like sparse
features (SciPy CSR, float32), identical hyperparameters and seeds, both timed in this run
with the same thread count:

    python3 bench/compare_sparse.py [--threads N] [--repeats R] [--train N] [--vocab V]

The documents are generated here, offline: each class draws its words from a Zipfian
distribution over the vocabulary, a share of them through a class-specific permutation of
it (its topic) and the rest through one shared by all classes; the counts go through
scikit-learn's TfidfTransformer (l2-normalised rows). Prints the host (fastnn.benchmark's
header), the data, then per library the held-out accuracy and the median fit time; the two
libraries' fits alternate --repeats times (background load hits both alike), and the
speed-up is the median of the paired ratios (scikit-learn's fit time over fastnn's)."""

import argparse
import statistics
import time
import warnings

import numpy as np
import scipy.sparse as sp
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfTransformer
from sklearn.neural_network import MLPClassifier as SkMLP
from threadpoolctl import threadpool_limits

import fastnn
from fastnn import benchmark as B
from fastnn.sklearn import MLPClassifier as FastMLP

PARAMS = dict(
    hidden_layer_sizes=(128,),
    solver="adam",
    alpha=1e-4,
    batch_size=200,
    learning_rate_init=1e-3,
    max_iter=4,
    tol=1e-6,
    n_iter_no_change=1000,
)


def tfidf_documents(n, vocab, classes, seed, topical=0.05, zipf=1.1, length=(40, 160)):
    """(X, y): n TF-IDF rows (CSR float32) over `vocab` words, labels in [0, classes)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, n)
    lengths = rng.integers(length[0], length[1], n)
    ranks = np.arange(1, vocab + 1, dtype=np.float64) ** -zipf
    cdf = np.cumsum(ranks / ranks.sum())
    shared = rng.permutation(vocab)
    topics = np.stack([rng.permutation(vocab) for _ in range(classes)])
    doc = np.repeat(np.arange(n), lengths)
    rank = np.minimum(np.searchsorted(cdf, rng.random(doc.size)), vocab - 1)
    words = np.where(rng.random(doc.size) < topical, topics[y[doc], rank], shared[rank])
    counts = sp.csr_matrix((np.ones(doc.size, np.float32), (doc, words)), shape=(n, vocab))
    counts.sum_duplicates()
    return counts, y


def run(cls, X_tr, y_tr, X_te, y_te, seed):
    clf = cls(random_state=seed, **PARAMS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t0 = time.perf_counter()
        clf.fit(X_tr, y_tr)
        seconds = time.perf_counter() - t0
    return clf.score(X_te, y_te), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1, help="for both libraries (default 1)")
    parser.add_argument("--repeats", type=int, default=3, help="fits per library")
    parser.add_argument("--train", type=int, default=20000, help="training documents")
    parser.add_argument("--test", type=int, default=5000, help="held-out documents")
    parser.add_argument("--vocab", type=int, default=50000, help="vocabulary (features)")
    parser.add_argument("--classes", type=int, default=20)
    args = parser.parse_args()
    fastnn.set_num_threads(args.threads)

    counts, y = tfidf_documents(args.train + args.test, args.vocab, args.classes, seed=0)
    X = TfidfTransformer().fit_transform(counts[: args.train])
    X = sp.vstack([X, TfidfTransformer().fit(counts[: args.train]).transform(counts[args.train :])])
    X = X.tocsr().astype(np.float32)
    X_tr, X_te, y_tr, y_te = X[: args.train], X[args.train :], y[: args.train], y[args.train :]
    libraries = {"scikit-learn": SkMLP, "fastnn": FastMLP}
    accuracy, seconds = {}, {name: [] for name in libraries}
    with threadpool_limits(limits=args.threads):
        B.print_host(threads=args.threads)
        print(
            f"TF-IDF-like CSR: {X_tr.shape[0]} train / {X_te.shape[0]} test documents, "
            f"{args.vocab} features, {X_tr.nnz / X_tr.shape[0]:.0f} nonzeros per row, "
            f"{args.classes} classes, float32, threads={args.threads}, {PARAMS}",
            flush=True,
        )
        for _ in range(args.repeats):
            for name, cls in libraries.items():
                acc, sec = run(cls, X_tr, y_tr, X_te, y_te, seed=0)
                seconds[name].append(sec)
                accuracy[name] = acc  # the fits are deterministic
    for name in libraries:
        print(
            f"{name:>12}: accuracy {accuracy[name]:.4f}  median fit "
            f"{statistics.median(seconds[name]):6.2f} s (of {args.repeats}: "
            f"{', '.join(f'{s:.2f}' for s in seconds[name])})"
        )
    gap = accuracy["fastnn"] - accuracy["scikit-learn"]
    speedup = B.paired_ratio(seconds, "scikit-learn", "fastnn")
    print(
        f"accuracy difference (fastnn - scikit-learn): {100 * gap:+.2f} points; fit speed-up "
        f"(median of {args.repeats} paired ratios): {speedup:.2f}x"
    )


if __name__ == "__main__":
    main()
