"""The 784-256-256-10 MLP training step and inference: fastnn against the clean NumPy step
(bench/mlp_numpy.py) and PyTorch, in one run, every library pinned to the same thread count:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python3 bench/compare_step.py \\
        [--seconds S] [--threads N] [--what step|inference|all] [--no-torch]

Training step, SGD momentum and Adam, batch 32 / 128 / 512: the README's manual loop as users
write it (forward(training=True), loss_fn(out, y), model.backward(grad), opt.step()), the
same step through train_on_batch, the NumPy step and a PyTorch loop (zero_grad, loss,
backward, step). Inference: batch-1 latency and batch 128 / 1024 throughput.

The contenders run in turns (A B C D A B C D ...), each turn a block of about 20 ms of steps
so that every library runs with its own weights warm in cache, as in training; with several
threads each turn starts after a pause that lets the previous library's spinning thread pool
go idle. Prints the host, then per batch: medians in us, the speed ratios to NumPy and
PyTorch (medians of the per-turn paired ratios), each figure's fraction of the FLOP floor
(the step's GEMM FLOPs at the host's measured FMA limit) or of the FMA limit, the manual
loop against train_on_batch, and PERFORMANCE.md's targets (met or not; never a failing
exit)."""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import fastnn
from fastnn import benchmark as B
from mlp_models import (
    OPTIMIZERS,
    SIZES,
    data,
    fastnn_infer,
    fastnn_manual_step,
    fastnn_tob_step,
    numpy_infer,
    numpy_step,
    torch_infer,
    torch_step,
)

STEP_BATCHES = (32, 128, 512)
INFER_BATCHES = (1, 128, 1024)
NAMES = {
    "manual": "fastnn manual loop",
    "tob": "fastnn train_on_batch",
    "fastnn": "fastnn",
    "numpy": "NumPy",
    "torch": "PyTorch",
}


def time_steps(opt_name, batch, seconds, threads, torch):
    X, y = data(batch)
    contenders = {
        "manual": fastnn_manual_step(X, y, opt_name),
        "tob": fastnn_tob_step(X, y, opt_name),
        "numpy": numpy_step(X, y, opt_name),
    }
    if torch is not None:
        contenders["torch"] = torch_step(torch, X, y, opt_name)
    return B.interleave(
        contenders, seconds, block="auto", pause=0.2 if threads > 1 else 0.0, warmup=3
    )


def time_inference(batch, seconds, threads, torch):
    X, _ = data(batch)
    contenders = {"fastnn": fastnn_infer(X), "numpy": numpy_infer(X)}
    if torch is not None:
        contenders["torch"] = torch_infer(torch, X)
    return B.interleave(
        contenders, seconds, block="auto", pause=0.2 if threads > 1 else 0.0, warmup=3
    )


def _pct(flops, t, limit):
    return f"{100 * flops / t / 1e9 / limit:4.0f}%" if limit else "  n/a"


def report_steps(results, peak, threads, verdicts):
    goals = B.step_targets(threads)
    limit = peak * threads if peak else None
    for opt_name in OPTIMIZERS:
        cases = [(batch, times) for (o, batch), times in results.items() if o == opt_name]
        if not cases:
            continue
        peers = [name for name in ("numpy", "torch") if name in cases[0][1]]
        print(
            f"\ntraining step {'-'.join(map(str, SIZES))}, {OPTIMIZERS[opt_name]}, "
            f"{threads} thread(s). us: median per step; floor: fraction of the FLOP floor; "
            "speed-up: the manual loop against the peer (median of paired ratios, > 1: "
            "fastnn faster); manual/tob: time of the manual loop over train_on_batch's"
        )
        print(
            f"{'':>5} | {'fastnn manual loop':^24} | {'fastnn train_on_batch':^24} | "
            + " | ".join(f"{NAMES[name]:^23}" for name in peers)
        )
        print(
            f"{'batch':>5} | {'us':>7} {'floor':>5} {'samples/s':>10} | {'us':>7} {'floor':>5} "
            f"{'manual/tob':>10} | "
            + " | ".join(f"{'us':>7} {'floor':>5} {'speed-up':>9}" for _ in peers)
        )
        for batch, times in cases:
            flops = B.mlp_flops(SIZES, batch)
            manual, tob = B.median(times["manual"]), B.median(times["tob"])
            cells = [
                f"{manual * 1e6:7.0f} {_pct(flops, manual, limit)} {batch / manual:10,.0f}",
                f"{tob * 1e6:7.0f} {_pct(flops, tob, limit)} "
                f"{B.paired_ratio(times, 'manual', 'tob'):10.2f}",
            ]
            for name in peers:
                t = B.median(times[name])
                cells.append(
                    f"{t * 1e6:7.0f} {_pct(flops, t, limit)} "
                    f"{B.paired_ratio(times, name, 'manual'):8.2f}x"
                )
            print(f"{batch:>5} | " + " | ".join(cells))
        for batch, times in cases:
            flops, manual = B.mlp_flops(SIZES, batch), B.median(times["manual"])
            checks = [
                verdicts.line(
                    f"x{NAMES[name]}", B.paired_ratio(times, name, "manual"), goals[name][batch]
                )
                for name in peers
                if batch in goals[name]
            ]
            if limit and batch in goals.get("floor", {}):
                checks.append(
                    verdicts.line(
                        "FLOP floor", flops / manual / 1e9 / limit, goals["floor"][batch], unit="%"
                    )
                )
            print(
                f"  batch {batch:>3}, {min(threads, 2)}-thread targets of the manual loop "
                f"({flops / 1e6:.0f} MFLOP, {len(times['manual'])} rounds): " + "; ".join(checks)
            )


def report_inference(results, peak, threads, verdicts):
    goals = B.TARGETS["inference"]
    limit = peak * threads if peak else None
    peers = [name for name in ("numpy", "torch") if name in next(iter(results.values()))]
    print(
        f"\ninference {'-'.join(map(str, SIZES))} (forward only), {threads} thread(s). "
        "us: median per call; FMA: fraction of the FMA limit; speed-up: fastnn against the "
        "peer (median of paired ratios, > 1: fastnn faster)"
    )
    print(f"{'':>5} | {'fastnn':^34} | " + " | ".join(f"{NAMES[name]:^24}" for name in peers))
    print(
        f"{'batch':>5} | {'us':>8} {'samples/s':>10} {'GFLOP/s':>8} {'FMA':>5} | "
        + " | ".join(f"{'us':>8} {'FMA':>5} {'speed-up':>9}" for _ in peers)
    )
    for batch, times in results.items():
        flops = B.mlp_flops(SIZES, batch, training=False)
        t = B.median(times["fastnn"])
        cells = [
            f"{t * 1e6:8.1f} {batch / t:10,.0f} {flops / t / 1e9:8.1f} {_pct(flops, t, limit)}"
        ]
        for name in peers:
            tp = B.median(times[name])
            cells.append(
                f"{tp * 1e6:8.1f} {_pct(flops, tp, limit)} "
                f"{B.paired_ratio(times, name, 'fastnn'):8.2f}x"
            )
        print(f"{batch:>5} | " + " | ".join(cells))
    for batch, times in results.items():
        flops = B.mlp_flops(SIZES, batch, training=False)
        checks = []
        if batch == 1:
            for name, key in (("numpy", "latency_vs_numpy"), ("torch", "latency_vs_torch")):
                if name in times:
                    checks.append(
                        verdicts.line(
                            f"latency / {NAMES[name]}'s",
                            B.paired_ratio(times, "fastnn", name),
                            goals[key],
                            at_most=True,
                        )
                    )
        elif batch >= 128:
            if limit:
                checks.append(
                    verdicts.line(
                        "FMA limit",
                        flops / B.median(times["fastnn"]) / 1e9 / limit,
                        goals["fma_fraction"],
                        unit="%",
                    )
                )
            if "torch" in times:
                checks.append(
                    verdicts.line(
                        "throughput xPyTorch",
                        B.paired_ratio(times, "torch", "fastnn"),
                        goals["throughput_vs_torch"],
                    )
                )
        if checks:
            print(
                f"  batch {batch:>4} targets ({len(times['fastnn'])} rounds): " + "; ".join(checks)
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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=6.0, help="per case (default 6)")
    parser.add_argument("--threads", type=int, default=1, help="for every library (default 1)")
    parser.add_argument("--what", choices=("all", "step", "inference"), default="all")
    parser.add_argument("--no-torch", action="store_true", help="leave PyTorch out")
    args = parser.parse_args()
    from threadpoolctl import threadpool_limits

    torch = import_torch(not args.no_torch)
    fastnn.set_num_threads(args.threads)
    if torch is not None:
        torch.set_num_threads(args.threads)
    steps, inference = {}, {}
    with threadpool_limits(limits=args.threads):
        fma = B.FmaLimit()
        B.print_host(fma=fma, threads=args.threads)
        sys.stdout.flush()
        if args.what in ("all", "step"):
            for opt_name in OPTIMIZERS:
                for batch in STEP_BATCHES:
                    steps[opt_name, batch] = time_steps(
                        opt_name, batch, args.seconds, args.threads, torch
                    )
        if args.what in ("all", "inference"):
            for batch in INFER_BATCHES:
                inference[batch] = time_inference(batch, args.seconds, args.threads, torch)
    fma.probe()
    print(fma.line(args.threads))
    verdicts = B.Targets()
    if steps:
        report_steps(steps, fma.peak, args.threads, verdicts)
    if inference:
        report_inference(inference, fma.peak, args.threads, verdicts)
    print("\n" + verdicts.summary())


if __name__ == "__main__":
    main()
