"""Data-parallel scaling of fit over MPI (fastnn.distributed) on this machine: time per epoch
of the 784-256-256-10 MLP (float32, MNIST's 60000 samples of random data: the values do not
change the time) with 1 and 2 ranks at the same global batch, so both take the same steps;
the parallel efficiency; the gradient bytes per step; the time of one gradient average
(the fixed-order reduction) beside MPI's own Allreduce of the same buffer, in the same run;
and the average's time over buffer sizes, from which a latency and a bandwidth are fitted
(the inputs of the cost model in docs/guide/distributed.md). A control run trains 2 ranks
that do not communicate (each its own optimizer on its shard): its epoch time is what the
machine gives two processes at that moment (on a shared host, other tenants take their
share), so the gradient average's own cost is the 2-rank time over the control's:

    python bench/scale_mpi.py [--samples 60000] [--epochs 3] [--batches 64,256]

Each rank runs one kernel thread (FASTNN_NUM_THREADS=1), so 2 ranks use 2 cores where 1 rank
uses 1. Needs mpi4py and an mpiexec (the ``mpi`` extra and the ``mpich`` wheel)."""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

from mlp_models import SIZES, fastnn_model

#: buffer lengths (float32 elements) of the latency/bandwidth fit
SWEEP = tuple(2**k for k in range(8, 22, 2))


def _median_time(fn, repeats, warmup=3):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def worker(args):
    import fastnn
    from fastnn import distributed as dist
    from fastnn import optim

    group = dist.init()
    r, n = dist.rank(), dist.size()
    rng = np.random.default_rng(r)
    rows = args.samples // n
    X = rng.standard_normal((rows, SIZES[0]), dtype=np.float32)
    y = rng.integers(0, SIZES[-1], rows)
    result = {"ranks": n, "epochs": {}}
    for global_batch in args.batches:
        model = fastnn_model()
        dist.broadcast_parameters(model)
        opt = optim.SGD(model, lr=0.01, momentum=0.9)
        if not args.independent:
            opt = dist.DistributedOptimizer(opt)
        history = model.fit(
            X,
            y,
            loss=fastnn.SoftmaxCrossEntropy(),
            optimizer=opt,
            epochs=args.epochs,
            batch_size=global_batch // n,
            seed=0,
        )
        times = group.allgather(history.epoch_times).max(axis=0)  # the slowest rank's
        result["epochs"][global_batch] = {
            "epoch_s": statistics.median(times.tolist()),
            "steps": -(-rows // (global_batch // n)),
        }
    if args.independent:
        if r == 0:
            print(json.dumps(result))
        return
    model = fastnn_model()
    opt = dist.DistributedOptimizer(optim.SGD(model, lr=0.01))
    params = sum(p.data.size for p in model.parameters())
    result["params"] = params
    result["grad_bytes"] = params * 4
    result["average_s"] = _median_time(lambda: opt.synchronize(0.0), args.repeats)
    from mpi4py import MPI

    flat = np.zeros(params, np.float32)
    result["mpi_allreduce_s"] = _median_time(
        lambda: group.comm.Allreduce(MPI.IN_PLACE, flat, op=MPI.SUM), args.repeats
    )
    sweep = {}
    for length in SWEEP:
        buf = np.zeros(length, np.float32)
        scratch = np.empty(length + length // n, np.float32)
        sweep[length * 4] = _median_time(
            lambda buf=buf, scratch=scratch: group.average_(buf, scratch), args.repeats
        )
    result["sweep"] = sweep
    if r == 0:
        print(json.dumps(result))


def _mpiexec():
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    found = beside if os.path.exists(beside) else shutil.which("mpiexec")
    if found is None:
        sys.exit("scale_mpi: no mpiexec (pip install mpich, or an MPI's own)")
    return found


def _launch(ranks, argv, independent=False):
    env = {**os.environ, "FASTNN_NUM_THREADS": "1"}
    cmd = [_mpiexec(), "-n", str(ranks), sys.executable, os.path.abspath(__file__), "--worker"]
    done = subprocess.run(
        cmd + argv + (["--independent"] if independent else []),
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    if done.returncode != 0:
        sys.exit(f"scale_mpi: {ranks} ranks failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def fit_latency_bandwidth(sweep, ranks):
    """Least squares of t = 2 (N-1) latency + 2 (N-1)/N bytes / bandwidth over the sweep."""
    nbytes = np.array([float(k) for k in sweep])
    t = np.array(list(sweep.values()))
    design = np.stack([np.full_like(nbytes, 2 * (ranks - 1)), 2 * (ranks - 1) / ranks * nbytes], 1)
    (latency, inverse_bw), *_ = np.linalg.lstsq(design, t, rcond=None)
    return latency, 1.0 / inverse_bw


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=60000)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batches", default="64,256", help="global batch sizes, comma-separated")
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--independent", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.batches = [int(b) for b in str(args.batches).split(",")]
    if args.worker:
        return worker(args)
    from fastnn import benchmark as B

    B.print_host()
    forward = list(argv if argv is not None else sys.argv[1:])
    one, two = _launch(1, forward), _launch(2, forward)
    control = _launch(2, forward, independent=True)
    print(f"\n784-256-256-10 MLP, float32, {args.samples} samples, SGD momentum, 1 thread per rank")
    print(
        f"{'global batch':>12} {'1 rank s/epoch':>15} {'2 ranks s/epoch':>16} "
        f"{'efficiency':>11} {'control s/epoch':>16} {'2 ranks / control':>18}"
    )
    for b in args.batches:
        t1, t2 = one["epochs"][str(b)]["epoch_s"], two["epochs"][str(b)]["epoch_s"]
        tc = control["epochs"][str(b)]["epoch_s"]
        print(
            f"{b:>12} {t1:>15.3f} {t2:>16.3f} {t1 / (2 * t2):>10.0%} {tc:>16.3f} {t2 / tc:>18.2f}"
        )
    print(f"\ngradient per step: {two['params']} parameters, {two['grad_bytes'] / 1e6:.2f} MB")
    avg, mpi = two["average_s"] * 1e6, two["mpi_allreduce_s"] * 1e6
    print(f"2 ranks: gradient average (fixed order) {avg:.0f} us, MPI Allreduce {mpi:.0f} us")
    latency, bandwidth = fit_latency_bandwidth(two["sweep"], 2)
    print(f"fitted: latency {latency * 1e6:.1f} us, bandwidth {bandwidth / 1e9:.2f} GB/s")
    for b in args.batches:
        steps = two["epochs"][str(b)]["steps"]
        per_step = one["epochs"][str(b)]["epoch_s"] / one["epochs"][str(b)]["steps"]
        shared = control["epochs"][str(b)]["epoch_s"]
        predicted = shared + steps * two["average_s"]
        print(
            f"batch {b}: 1-rank step {per_step * 1e3:.2f} ms; predicted 2-rank epoch "
            f"{predicted:.3f} s (the control's + one average per step), measured "
            f"{two['epochs'][str(b)]['epoch_s']:.3f} s"
        )
    return None


if __name__ == "__main__":
    main()
