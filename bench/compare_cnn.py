"""The three CNNs of issue #16 (bench/cnn_models.py: LeNet-5, conv16-32, conv32-64) on
synthetic 28x28 images: fastnn against PyTorch in one run, both pinned to the same thread
count:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/compare_cnn.py \\
        [--seconds S] [--threads N] [--what step|inference|all] [--nets lenet5,...]
        [--rounds R] [--no-torch]

Training step, batch 64 and 256, SGD momentum 0.9: the manual loop as users write it
(model.forward(X, training=True), the loss, model.backward(dY), opt.step()) against
PyTorch's (zero_grad, forward, CrossEntropyLoss, backward, step), both nets starting from
the same weights. Inference: batch-1 latency (fastnn's forward against PyTorch's eval model
under torch.inference_mode).

The contenders run in turns (A B A B ...), each turn a block of about 20 ms of calls (at
least one), for at least --seconds per case and --rounds rounds; with several threads each
turn starts after a pause that lets the other library's spinning thread pool go idle. Prints
the host, then per net and batch: medians in ms, samples/s, GFLOP/s, the fraction of the
FLOP floor (the step's GEMM FLOPs, bench/cnn_models.py, at the host's measured FMA limit
times the threads), the speed-up over PyTorch (median of the per-turn paired ratios), and
PERFORMANCE.md's CNN targets, met or not (never a failing exit). The FLOP count is checked
against fastnn.kernels.gemm_flop_count() over the timed fastnn steps."""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fastnn
from cnn_models import (
    NETS,
    TITLES,
    check_twins,
    data,
    fastnn_infer,
    fastnn_step,
    step_flops,
    torch_infer,
    torch_step,
)
from fastnn import benchmark as B

STEP_BATCHES = (64, 256)
NAMES = {"fastnn": "fastnn manual loop", "torch": "PyTorch"}


class Counted:
    """A fastnn callable that counts its calls, for the GEMM FLOPs per call."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self):
        self.calls += 1
        return self.fn()


def time_turns(contenders, seconds, threads, rounds):
    """B.interleave with a block of about 20 ms of the fastest contender (at least one call:
    a conv32-64 step at batch 256 takes far longer)."""
    fastest = None
    for f in contenders.values():
        for _ in range(2):  # warm-up; the second call's time
            t0 = time.perf_counter()
            f()
            t = time.perf_counter() - t0
        fastest = t if fastest is None else min(fastest, t)
    block = int(min(1000, max(1, 0.02 / max(fastest, 1e-7))))
    return B.interleave(
        contenders,
        seconds,
        block=block,
        pause=0.2 if threads > 1 else 0.0,
        min_rounds=rounds,
        warmup=0,
    )


def time_step(name, batch, args, torch):
    X, y = data(batch)
    mine = Counted(fastnn_step(name, X, y))
    contenders = {"fastnn": mine}
    if torch is not None:
        contenders["torch"] = torch_step(torch, name, X, y)
    before = fastnn.kernels.gemm_flop_count()
    times = time_turns(contenders, args.seconds, args.threads, args.rounds)
    counted = (fastnn.kernels.gemm_flop_count() - before) / mine.calls
    return times, counted


def time_latency(name, args, torch):
    X, _ = data(1)
    contenders = {"fastnn": fastnn_infer(name, X)}
    if torch is not None:
        contenders["torch"] = torch_infer(torch, name, X)
    return time_turns(contenders, args.seconds, args.threads, args.rounds)


def _pct(flops, t, limit):
    return f"{100 * flops / t / 1e9 / limit:5.1f}%" if limit else "   n/a"


def report_steps(results, peak, threads, verdicts):
    goals = B.TARGETS["cnn"]
    limit = peak * threads if peak else None
    print(
        f"\ntraining step, SGD momentum 0.9, {threads} thread(s). ms: median per step; "
        "GFLOP/s: the step's GEMM FLOPs (the FLOP floor's work) over it; floor: fraction of "
        "the FLOP floor (those FLOPs at the FMA limit x threads); speed-up: the fastnn manual "
        "loop against PyTorch (median of paired ratios, > 1: fastnn faster)"
    )
    peers = any("torch" in times for times, _ in results.values())
    head = f"{'net':>10} {'batch':>5} {'MFLOP':>8} | {NAMES['fastnn']:^33} |"
    cols = f"{'':>10} {'':>5} {'':>8} | {'ms':>8} {'samples/s':>9} {'GFLOP/s':>7} {'floor':>6} |"
    if peers:
        head += f" {NAMES['torch']:^32}"
        cols += f" {'ms':>8} {'GFLOP/s':>7} {'floor':>6} {'speed-up':>8}"
    print(head)
    print(cols)
    for (name, batch), (times, _) in results.items():
        flops = step_flops(name, batch)
        t = B.median(times["fastnn"])
        line = (
            f"{name:>10} {batch:>5} {flops / 1e6:8.1f} | {t * 1e3:8.2f} {batch / t:9,.0f} "
            f"{flops / t / 1e9:7.1f} {_pct(flops, t, limit)} |"
        )
        if "torch" in times:
            tp = B.median(times["torch"])
            line += (
                f" {tp * 1e3:8.2f} {flops / tp / 1e9:7.1f} {_pct(flops, tp, limit)} "
                f"{B.paired_ratio(times, 'torch', 'fastnn'):7.2f}x"
            )
        print(line)
    tier = min(threads, 2)
    for (name, batch), (times, counted) in results.items():
        flops = step_flops(name, batch)
        check = "matches" if counted == flops else f"DIFFERS: {counted:,.0f} counted"
        checks = []
        if "torch" in times:
            checks.append(
                verdicts.line(
                    "xPyTorch", B.paired_ratio(times, "torch", "fastnn"), goals["torch"][tier][name]
                )
            )
        floor = goals["floor"].get(name, {}).get(batch)
        if threads == 1 and limit and floor:
            checks.append(
                verdicts.line(
                    "FLOP floor", flops / B.median(times["fastnn"]) / 1e9 / limit, floor, unit="%"
                )
            )
        print(
            f"  {TITLES[name]}, batch {batch}, {tier}-thread targets (rounds: "
            f"{len(times['fastnn'])}; FLOP floor {flops:,} FLOPs, gemm_flop_count per fastnn "
            f"step {check}): " + ("; ".join(checks) or "none without PyTorch")
        )


def report_latency(results, threads, verdicts):
    goal = B.TARGETS["cnn"]["latency_vs_torch"]
    print(
        f"\ninference latency, batch 1, {threads} thread(s): median us per forward "
        "(PyTorch: eval model under torch.inference_mode); latency ratio: fastnn's time over "
        "PyTorch's (median of paired ratios, < 1: fastnn faster)"
    )
    print(f"{'net':>10} | {'fastnn us':>10} {'MFLOP':>7} | {'PyTorch us':>10} {'ratio':>6}")
    for name, times in results.items():
        t = B.median(times["fastnn"])
        line = f"{name:>10} | {t * 1e6:10.1f} {step_flops(name, 1, training=False) / 1e6:7.2f} |"
        if "torch" in times:
            line += (
                f" {B.median(times['torch']) * 1e6:10.1f} "
                f"{B.paired_ratio(times, 'fastnn', 'torch'):6.2f}"
            )
        print(line)
    for name, times in results.items():
        if "torch" in times:
            print(
                f"  {TITLES[name]}, batch 1, target (rounds: {len(times['fastnn'])}): "
                + verdicts.line(
                    "latency / PyTorch's",
                    B.paired_ratio(times, "fastnn", "torch"),
                    goal,
                    at_most=True,
                )
            )


def import_torch(wanted):
    if not wanted:
        return None
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: no PyTorch figures", file=sys.stderr)
        return None
    return torch


def _nets(text):
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in NETS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"nets must be among {', '.join(NETS)}, got {text!r}")
    return names


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per case (default 6)")
    parser.add_argument("--threads", type=int, default=1, help="for every library (default 1)")
    parser.add_argument("--what", choices=("all", "step", "inference"), default="all")
    parser.add_argument(
        "--nets", type=_nets, default=list(NETS), help=f"comma-separated (default {','.join(NETS)})"
    )
    parser.add_argument(
        "--rounds", type=int, default=5, help="at least this many turns per case (default 5)"
    )
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    torch = import_torch(not args.no_torch)
    fastnn.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
        for name in args.nets:  # the twins compute the same step before anything is timed
            check_twins(torch, name)
    steps, latency = {}, {}
    with threadpool_limits(limits=args.threads):
        fma = B.FmaLimit()
        B.print_host(fma=fma, threads=args.threads)
        print(
            "nets: "
            + "; ".join(f"{name} = {TITLES[name]}" for name in args.nets)
            + "; 28x28 single-channel synthetic images, 10 classes"
        )
        sys.stdout.flush()
        for name in args.nets:
            if args.what in ("all", "step"):
                for batch in STEP_BATCHES:
                    steps[name, batch] = time_step(name, batch, args, torch)
            if args.what in ("all", "inference"):
                latency[name] = time_latency(name, args, torch)
    fma.probe()
    print(fma.line(args.threads))
    verdicts = B.Targets()
    if steps:
        report_steps(steps, fma.peak, args.threads, verdicts)
    if latency:
        report_latency(latency, args.threads, verdicts)
    print("\n" + verdicts.summary())


if __name__ == "__main__":
    main()
