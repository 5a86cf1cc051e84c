"""The 784-256-256-10 training step of fastnn against the clean NumPy step (bench/mlp_numpy.py),
in one run, the same thread count for both (fastnn's and NumPy's BLAS), one by default:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/compare_step.py \
        [--seconds S] [--threads N]

The two alternate in blocks of steps (A A A ... B B B ...), so that clock drift on a shared
host hits both alike while each block runs with its own weights warm in cache, as training
does (alternating single steps would make every step start from the other's cache). Prints
medians per step, the speed ratio and fastnn's GFLOP/s against the FMA limit of the cores
used."""
import argparse
import os
import sys
import time

import numpy as np

import fastnn
from fastnn import kernels as K

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from mlp_numpy import NumpyMLP  # noqa: E402
from test_bench_mlp import SIZES, data, fastnn_model, fastnn_optimizer  # noqa: E402


def step_flops(batch):
    """Forward and backward GEMMs (no input gradient for the first layer)."""
    pairs = list(zip(SIZES[:-1], SIZES[1:]))
    fwd = sum(2 * batch * a * b for a, b in pairs)
    return 3 * fwd - 2 * batch * pairs[0][0] * pairs[0][1]


def compare(opt_name, batch, seconds, threads=1):
    X, y = data(batch)
    model = fastnn_model()
    opt = fastnn_optimizer(model, opt_name)
    loss = fastnn.SoftmaxCrossEntropy()
    net = NumpyMLP(SIZES, optimizer=opt_name)
    steps = [lambda: model.train_on_batch(X, y, loss=loss, optimizer=opt), lambda: net.step(X, y)]
    times = [[], []]
    block = max(3, 2000 // batch)
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for step, acc in zip(steps, times):
            if threads > 1:
                # The other library's idle threads spin for a while (PERFORMANCE.md): let
                # them stop before timing this one on the same cores.
                time.sleep(0.2)
            for _ in range(block):
                t0 = time.perf_counter()
                step()
                acc.append(time.perf_counter() - t0)
    return [float(np.median(t)) for t in times]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per case (default 6)")
    parser.add_argument("--threads", type=int, default=1, help="for both (default 1)")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    fastnn.set_num_threads(args.threads)
    # The FMA probe is short and can land in a slow moment of a shared host: it runs before
    # and after the cases and the larger reading is the limit.
    peak = K.fma_peak_gflops()
    rows = []
    with threadpool_limits(limits=args.threads):
        for opt_name in ("sgd", "adam"):
            for batch in (32, 128, 512):
                rows.append((opt_name, batch) + tuple(compare(opt_name, batch, args.seconds,
                                                              args.threads)))
    peak = max(peak, K.fma_peak_gflops()) * args.threads
    print(f"{args.threads} thread(s); FMA limit {peak:.0f} GFLOP/s; medians per step")
    for opt_name, batch, tf, tn in rows:
        gflops = step_flops(batch) / tf / 1e9
        print(f"{opt_name:>4} batch {batch:>3}: fastnn {tf * 1e6:7.0f} us  NumPy "
              f"{tn * 1e6:7.0f} us  {tn / tf:.2f}x  ({gflops:.0f} GFLOP/s, "
              f"{100 * gflops / peak:.0f}% of the FMA limit)")


if __name__ == "__main__":
    main()
