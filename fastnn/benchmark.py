"""``fastnn bench``: kernel speed against NumPy on this machine, in one run.

Each case alternates fastnn and NumPy (A B A B ...) and compares medians, so that drifting
clock speeds on a shared host affect both alike. For a full suite use
``pytest bench/ --benchmark-only`` (see README.md)."""
import os
import time

import numpy as np

from fastnn import kernels as K

GEMM_SHAPES = [(32, 784, 256), (128, 784, 256), (512, 784, 256), (128, 256, 256),
               (256, 128, 784), (512, 512, 512)]


def _interleaved(fa, fb, seconds, threads):
    """Median seconds per call of fa and fb, timed alternately. With several threads each
    side sleeps and then runs a block of calls, because a thread pool keeps spinning for a
    while after its last call and would steal the cores from the other library's pool."""
    ta, tb = [], []
    block, pause = (1, 0.0) if threads == 1 else (20, 0.2)
    fa()
    time.sleep(pause)
    fb()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end or len(ta) < 5:
        for f, acc in ((fa, ta), (fb, tb)):
            time.sleep(pause)
            for _ in range(block):
                t0 = time.perf_counter()
                f()
                acc.append(time.perf_counter() - t0)
    return float(np.median(ta)), float(np.median(tb))


def _blas_kernel():
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "unknown (install threadpoolctl)"
    return ", ".join(f"{i.get('internal_api')} {i.get('architecture')}" for i in threadpool_info()) or "none"


def gemm_table(seconds=0.3, threads=1, layouts=("NN", "NT", "TN")):
    """Rows of (shape, layout, fastnn GFLOP/s, NumPy GFLOP/s). The layouts are those of a
    Dense layer's step: x @ W.T forward (NT), dY.T @ x for the weight gradient (TN) and
    dY @ W for the input gradient (NN)."""
    rng = np.random.default_rng(0)
    rows = []
    for m, k, n in GEMM_SHAPES:
        for layout in layouts:
            ta, tb = layout[0] == "T", layout[1] == "T"
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
            out = np.empty((m, n), np.float32)
            opa, opb = (a.T if ta else a), (b.T if tb else b)
            tf, tn = _interleaved(lambda: K.gemm(a, b, trans_a=ta, trans_b=tb, out=out),
                                  lambda: np.matmul(opa, opb, out=out), seconds, threads)
            flop = 2.0 * m * n * k
            rows.append(((m, k, n), layout, flop / tf / 1e9, flop / tn / 1e9))
    return rows


def run(seconds=0.3, threads=1, print_fn=print):
    """Print the table with fastnn and NumPy pinned to `threads` threads; returns the
    geometric mean of the speed ratios."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print_fn("warning: threadpoolctl is not installed (pip install 'fastnn[bench]'): "
                 "NumPy's BLAS threads are not pinned")
        threadpool_limits = None
    saved = K.get_num_threads()
    K.set_num_threads(threads)
    try:
        if threadpool_limits is None:
            return _report(seconds, print_fn)
        with threadpool_limits(limits=threads):
            return _report(seconds, print_fn)
    finally:
        K.set_num_threads(saved)


def _report(seconds, print_fn):
    info = K.info()
    # The probe is short: on a shared host it can land in a slow moment, so it runs before
    # and after the table and the limit is the larger reading.
    peak = K.fma_peak_gflops()
    rows = gemm_table(seconds, info["threads"])
    if peak:
        peak = max(peak, K.fma_peak_gflops())
    pin = os.environ.get("OPENBLAS_CORETYPE")
    print_fn(f"fastnn kernels: isa={info['isa']} threads={info['threads']}; "
             f"NumPy {np.__version__} BLAS: {_blas_kernel()}")
    if pin:
        print_fn(f"warning: OPENBLAS_CORETYPE={pin} pins NumPy to an older kernel; "
                 "unset it for a fair comparison")
    print_fn("FMA limit (one core, measured): " + (f"{peak:.0f} GFLOP/s" if peak else "n/a"))
    header = f"{'gemm m x k x n':>18} {'op':>3} {'fastnn':>9} {'numpy':>9} {'ratio':>6}"
    if peak:
        header += f" {'% FMA limit':>11}"
    print_fn(header + "   (GFLOP/s, medians)")
    ratios = []
    for shape, layout, gf, gn in rows:
        ratios.append(gf / gn)
        line = f"{'x'.join(map(str, shape)):>18} {layout:>3} {gf:9.1f} {gn:9.1f} {gf / gn:6.2f}"
        if peak:
            line += f" {100 * gf / peak / info['threads']:10.0f}%"
        print_fn(line)
    geo = float(np.exp(np.mean(np.log(ratios))))
    print_fn(f"geometric mean ratio fastnn/numpy: {geo:.2f}")
    return geo
