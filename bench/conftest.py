"""Benchmark set-up: pin every library's threads, state the host, and sum the run up.

Run as ``pytest bench/ --benchmark-only --benchmark-group-by=group``. Threads come from
``BENCH_THREADS`` (default 1): fastnn, NumPy's BLAS (threadpoolctl) and PyTorch are pinned to
it for the whole session. NumPy must run unhandicapped: unset OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE (pins to a lesser kernel) before starting, as the commands in
docs/benchmarks.md do.

The header is fastnn.benchmark's host description (CPU, ISA flags, fastnn's ISA, the
measured FMA limit, NumPy's BLAS kernel, threads), also written into the JSON's
``machine_info["fastnn_host"]`` (``--benchmark-json``, ``--benchmark-autosave``). After
pytest-benchmark's tables a summary gives, per group, each contender's median, its ratio to
fastnn's and its fraction of the FMA limit (GEMMs, steps, inference), then PERFORMANCE.md's
targets, met or not (never a failure). pytest-benchmark runs one case after the other, so
these are ratios of medians; bench/compare_step.py interleaves the contenders instead."""

import math
import os
import re
import time

import pytest

import fastnn
from fastnn import benchmark as B

THREADS = int(os.environ.get("BENCH_THREADS", "1"))
_state = {}


def pytest_configure(config):
    fastnn.set_num_threads(THREADS)
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        pass
    else:
        _state["limits"] = threadpool_limits(limits=THREADS)
    _state["fma"] = B.FmaLimit()


def pytest_unconfigure(config):
    limits = _state.pop("limits", None)
    if limits is not None:
        limits.restore_original_limits()


def pytest_report_header(config):
    return [f"bench threads={THREADS} (BENCH_THREADS)"] + B.host_lines(
        B.host_info(fma=_state["fma"], threads=THREADS)
    )


def _fma_after_the_run():
    """The limit after the second probe, taken once, when the benchmarks are done."""
    if not _state.get("probed_after"):
        _state["probed_after"] = True
        _state["fma"].probe()
    return _state["fma"]


def pytest_benchmark_update_machine_info(config, machine_info):
    # Called when the results are saved, after the last benchmark.
    machine_info["fastnn_host"] = B.host_info(fma=_fma_after_the_run(), threads=THREADS)


@pytest.fixture
def fma_limit():
    """The FMA limit of the run's threads in GFLOP/s (the probe before the run; None on the
    generic kernels), for the GFLOP/s and FMA-limit fractions a case stores in extra_info."""
    peak = _state["fma"].peak
    return peak * THREADS if peak else None


@pytest.fixture(autouse=True)
def idle_thread_pools():
    """With several threads, the previous case's library may still be spinning its thread
    pool (for about 0.1 s after its last call) on the cores this case needs: wait first."""
    if THREADS > 1:
        time.sleep(0.3)


def _natural(text):
    """Sort key: 'batch 128' after 'batch 32'."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", text)]


def _groups(session):
    groups = {}
    for bench in getattr(session, "benchmarks", []):
        if not bench or bench.has_error:
            continue
        info = dict(bench.extra_info)
        info.setdefault("lib", (bench.params or {}).get("lib"))
        groups.setdefault(bench.group, {})[info["lib"]] = (bench.stats.median, info)
    return groups


@pytest.hookimpl(trylast=True)
def pytest_terminal_summary(terminalreporter, config):
    session = getattr(config, "_benchmarksession", None)
    groups = _groups(session) if session is not None else {}
    if not groups:
        return
    fma = _fma_after_the_run()
    limit = fma.peak * THREADS if fma.peak else None
    write = terminalreporter.write_line
    terminalreporter.section("fastnn against its peers, on this host")
    for line in B.host_lines(B.host_info(fma=fma, threads=THREADS)):
        write(line)
    write(fma.line(THREADS))
    write(
        "per group: median; x = the peer's median over fastnn's (> 1: fastnn faster); "
        "% of the FMA limit where the work is GEMM FLOPs (for a step: of its FLOP floor)"
    )
    for group in sorted(groups, key=_natural):
        entries = groups[group]
        ref = entries.get("fastnn", (None,))[0]
        cells = []
        for lib, (t, info) in sorted(entries.items(), key=lambda kv: kv[0] != "fastnn"):
            cell = f"{lib} {t * 1e6:.1f} us"
            if ref and lib == "fastnn_tob":
                cell += f" (manual loop / train_on_batch {ref / t:.2f})"
            elif ref and lib != "fastnn":
                cell += f" x{t / ref:.2f}"
            if limit and "gflop" in info:
                cell += f" {100 * info['gflop'] / t / limit:.0f}%"
            cells.append(cell)
        write(f"{group}: " + "; ".join(cells))
    verdicts = B.Targets()
    for line in _targets(groups, limit, verdicts):
        write(line)
    write(verdicts.summary())


def _targets(groups, limit, verdicts):
    """PERFORMANCE.md's targets, for the groups this run has."""
    gemm = [
        e["numpy"][0] / e["fastnn"][0]
        for e in groups.values()
        if "fastnn" in e and "numpy" in e and e["fastnn"][1].get("kind") == "gemm"
    ]
    if gemm:
        goals = B.TARGETS["gemm"][min(THREADS, 2)]
        geo = math.exp(sum(map(math.log, gemm)) / len(gemm))
        text = verdicts.line(f"GEMM geometric mean over {len(gemm)} cases", geo, goals["geomean"])
        if "worst" in goals:
            text += "; " + verdicts.line("slowest case", min(gemm), goals["worst"])
        yield f"targets: {text}"
    steps = B.step_targets(THREADS)
    inference = B.TARGETS["inference"]
    for group, entries in sorted(groups.items(), key=lambda kv: _natural(kv[0])):
        if "fastnn" not in entries:
            continue
        t, info = entries["fastnn"]
        kind, batch = info.get("kind"), info.get("batch")
        checks = []
        if kind == "step":
            for peer in ("numpy", "torch"):
                if peer in entries and batch in steps[peer]:
                    checks.append(
                        verdicts.line(f"x{peer}", entries[peer][0] / t, steps[peer][batch])
                    )
            if limit and batch in steps.get("floor", {}):
                checks.append(
                    verdicts.line(
                        "FLOP floor", info["gflop"] / t / limit, steps["floor"][batch], unit="%"
                    )
                )
        elif kind == "inference" and batch == 1:
            for peer in ("numpy", "torch"):
                if peer in entries:
                    checks.append(
                        verdicts.line(
                            f"latency / {peer}'s",
                            t / entries[peer][0],
                            inference[f"latency_vs_{peer}"],
                            at_most=True,
                        )
                    )
        elif kind == "inference" and batch >= 128:
            if limit:
                checks.append(
                    verdicts.line(
                        "FMA limit", info["gflop"] / t / limit, inference["fma_fraction"], unit="%"
                    )
                )
            if "torch" in entries:
                checks.append(
                    verdicts.line(
                        "throughput x torch",
                        entries["torch"][0] / t,
                        inference["throughput_vs_torch"],
                    )
                )
        if checks:
            yield f"targets, {group}: " + "; ".join(checks)
