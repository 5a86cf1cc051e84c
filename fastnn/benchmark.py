"""Benchmark plumbing shared by ``fastnn bench`` and the scripts and suites in ``bench/``.

A figure measured on a shared virtual machine means little without the host it came from,
so every tool prints the same host description (:func:`host_info`, :func:`host_lines`): CPU
model, family/model, the ISA flags that matter, the instruction set fastnn chose, the
measured FMA limit, NumPy's BLAS kernel and every thread count. Speeds are then stated
against that host: as ratios to a peer timed in the same run and as fractions of the FMA
limit (:class:`FmaLimit`), next to the targets of PERFORMANCE.md (:data:`TARGETS`).

Contenders are timed in turns (A B A B ..., :func:`interleave`) and compared through the
median of the per-turn ratios (:func:`paired_ratio`), so that clock drift and other tenants
hit all of them alike.

``fastnn bench`` itself (:func:`run`) times GEMMs and the main convolution of each CNN of
issue #16 (forward, batch 64) of fastnn against NumPy. For the full
suites use ``pytest bench/ --benchmark-only`` and the ``bench/compare_*.py`` scripts (see
docs/benchmarks.md)."""

import itertools
import math
import os
import platform
import statistics
import sys
import time
from functools import partial

import numpy as np

from fastnn import kernels

GEMM_SHAPES = [
    (32, 784, 256),
    (128, 784, 256),
    (512, 784, 256),
    (128, 256, 256),
    (256, 128, 784),
    (512, 512, 512),
]

#: The main convolution of each CNN of issue #16 (bench/cnn_models.py) at batch 64:
#: (name, batch, in channels, out channels, kernel, padding, height, width of the input).
CONV_SHAPES = [
    ("LeNet-5 conv2", 64, 6, 16, 5, 0, 14, 14),
    ("conv16-32 conv2", 64, 16, 32, 5, 2, 14, 14),
    ("conv32-64 conv2", 64, 32, 64, 3, 0, 26, 26),
]

#: The targets of PERFORMANCE.md, each stated against the host of the run. Thread counts
#: above two are judged by the two-thread targets.
TARGETS = {
    # GEMM float32: geometric mean of fastnn's speed over NumPy's, and the slowest shape.
    "gemm": {1: {"geomean": 1.05, "worst": 0.95}, 2: {"geomean": 1.0}},
    # MLP 784-256-256-10 step as the Quick start's manual loop writes it, speed-up per batch.
    "step": {
        1: {
            "numpy": {32: 1.3, 128: 1.1, 512: 1.05},
            "torch": {32: 1.8, 128: 1.3, 512: 1.1},
            "floor": {128: 0.80, 512: 0.80},
        },
        2: {"numpy": {32: 1.2, 128: 1.05, 512: 1.0}, "torch": {32: 1.5, 128: 1.2, 512: 1.0}},
    },
    # Inference: batch-1 latency as a fraction of the peer's (at most), batch >= 128 as a
    # fraction of the FMA limit and as a throughput ratio (at least).
    "inference": {
        "latency_vs_numpy": 0.8,
        "latency_vs_torch": 0.45,
        "fma_fraction": 0.85,
        "throughput_vs_torch": 1.1,
    },
    # CNN training step (LeNet-5, conv16-32, conv32-64 of bench/cnn_models.py; the manual
    # loop, SGD momentum) at batch 64 and 256: speed-up over PyTorch per net and thread count,
    # batch-1 inference latency as a fraction of PyTorch's (at most), and conv32-64's one-thread
    # step at batch 64 as a fraction of its FLOP floor.
    "cnn": {
        "torch": {
            1: {"lenet5": 2.0, "conv16-32": 1.5, "conv32-64": 1.5},
            2: {"lenet5": 1.3, "conv16-32": 1.3, "conv32-64": 1.3},
        },
        "latency_vs_torch": 0.5,
        "floor": {"conv32-64": {64: 0.60}},
    },
}

_FLAGS = ("avx2", "fma", "avx512f")
_OWNERS = {
    "numpy": "numpy",
    "scipy": "scipy",
    "torch": "torch",
    "scikit_learn": "sklearn",
    "sklearn": "sklearn",
}
_OPENBLAS_PINS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


# --------------------------------------------------------------------------------------
# The host
# --------------------------------------------------------------------------------------


def _cpuinfo_fields():
    """The first processor's block of /proc/cpuinfo as a dict ({} where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            first = f.read().split("\n\n")[0]
    except OSError:
        return {}
    fields = {}
    for line in first.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _int(text):
    try:
        return int(text, 0)
    except (TypeError, ValueError):
        return None


def _amd_core(family, model):
    """AMD's core generation from family/model: hypervisors often report the model name
    as plain "AMD EPYC", and which Zen it is decides the FMA width and OpenBLAS's kernel."""
    if family == 23:
        return "Zen 2" if model >= 0x30 else "Zen / Zen+"
    if family == 25:
        zen4 = 0x10 <= model <= 0x1F or 0x60 <= model <= 0x7F or 0xA0 <= model <= 0xAF
        return "Zen 4" if zen4 else "Zen 3"
    if family == 26:
        return "Zen 5"
    return None


def cpu_info():
    """The CPU: ``model_name``, ``vendor``, ``family``, ``model``, ``stepping``, ``core``
    (AMD's Zen generation when family/model tell it), ``flags`` (avx2 / fma / avx512f: True,
    False, or None when unknown), ``hypervisor`` and the CPU counts."""
    fields = _cpuinfo_fields()
    flags_text = fields.get("flags") or fields.get("Features")
    flags = set(flags_text.split()) if flags_text else None
    family, model = _int(fields.get("cpu family")), _int(fields.get("model"))
    vendor = fields.get("vendor_id")
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = None
    return {
        "model_name": fields.get("model name") or platform.processor() or platform.machine(),
        "vendor": vendor,
        "family": family,
        "model": model,
        "stepping": _int(fields.get("stepping")),
        "core": _amd_core(family, model)
        if vendor == "AuthenticAMD" and model is not None
        else None,
        "flags": {name: (None if flags is None else name in flags) for name in _FLAGS},
        "hypervisor": None if flags is None else "hypervisor" in flags,
        "cpus": os.cpu_count(),
        "cpus_usable": usable,
        "machine": platform.machine(),
        "system": platform.system(),
    }


def blas_info():
    """The BLAS and OpenMP libraries loaded in this process, from threadpoolctl (None when it
    is not installed): each with its API, version, kernel (OpenBLAS's ``architecture``), thread
    count and the package that loaded it."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    rows = []
    for lib in threadpool_info():
        folders = (lib.get("filepath") or "").replace("\\", "/").lower().split("/")[:-1]
        owner = next(
            (
                _OWNERS[f.removesuffix(".libs")]
                for f in reversed(folders)
                if f.removesuffix(".libs") in _OWNERS
            ),
            "",
        )
        rows.append(
            {
                "api": lib.get("internal_api"),
                "version": lib.get("version"),
                "kernel": lib.get("architecture"),
                "threads": lib.get("num_threads"),
                "owner": owner,
                "user_api": lib.get("user_api"),
            }
        )
    return rows


class FmaLimit:
    """fastnn's measured single-core float32 FMA limit in GFLOP/s
    (``fastnn.kernels.fma_peak_gflops()``, for the instruction set in use).

    The probe is short, so on a shared host it can land in a slow moment: a tool probes
    when it starts (the constructor) and again when its measurements are done
    (:meth:`probe`), and the limit is the larger reading (:attr:`peak`; None on the
    generic path, which has no FMA limit)."""

    def __init__(self, probe=True):
        self.readings = []
        if probe:
            self.probe()

    def probe(self):
        reading = kernels.fma_peak_gflops()
        if reading is not None:
            self.readings.append(float(reading))
        return self.peak

    @property
    def peak(self):
        return max(self.readings) if self.readings else None

    def line(self, threads):
        """The closing line of a report: the limit the fractions were computed with."""
        if not self.readings:
            return "FMA limit: n/a (generic kernels): no fractions of it"
        probes = ", ".join(f"{r:.1f}" for r in self.readings)
        return (
            f"FMA limit used for the fractions: {self.peak:.1f} GFLOP/s per core x "
            f"{threads} thread(s) = {self.peak * threads:.1f} GFLOP/s (the larger of the "
            f"probes before and after the run: {probes})"
        )


def host_info(fma=None, threads=None):
    """Everything a benchmark figure depends on, as a JSON-friendly dict: ``cpu``
    (:func:`cpu_info`), fastnn's version, chosen and best ISA and thread count,
    ``fma_peak_gflops`` and ``fma_probes`` (GFLOP/s per core, from the caller's
    :class:`FmaLimit`; a new one probes once when none is given), the thread count
    the run asked for (``threads``), NumPy's version and BLAS (:func:`blas_info`), PyTorch's
    version and threads when it is already imported (it is never imported here), any
    OPENBLAS_* pin, the Python version and the load average."""
    import fastnn

    info = kernels.info()
    if fma is None:
        fma = FmaLimit()
    torch = sys.modules.get("torch")
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = None
    return {
        "cpu": cpu_info(),
        "fastnn": fastnn.__version__,
        "isa": info["isa"],
        "cpu_isa": info.get("cpu_isa"),
        "fastnn_threads": info["threads"],
        "threads": threads,
        "fma_peak_gflops": fma.peak,
        "fma_probes": list(fma.readings),
        "numpy": np.__version__,
        "blas": blas_info(),
        "torch": getattr(torch, "__version__", None) if torch else None,
        "torch_threads": torch.get_num_threads() if torch else None,
        "openblas_env": {name: os.environ[name] for name in _OPENBLAS_PINS if name in os.environ},
        "python": platform.python_version(),
        "load_1min": load,
    }


def _yes_no(value):
    return "unknown" if value is None else ("yes" if value else "no")


def host_lines(info):
    """The report header for :func:`host_info`'s dict, one string per line."""
    cpu = info["cpu"]
    ident = [cpu["vendor"] or cpu["machine"]]
    if cpu["family"] is not None:
        ident.append(f"family {cpu['family']} model {cpu['model']} stepping {cpu['stepping']}")
    if cpu["core"]:
        ident.append(f"({cpu['core']} by family/model)")
    counts = f"{cpu['cpus']} CPUs" + (
        f", {cpu['cpus_usable']} usable" if cpu["cpus_usable"] is not None else ""
    )
    virt = {True: ", virtual machine", False: "", None: ""}[cpu["hypervisor"]]
    flags = ", ".join(f"{k} {_yes_no(v)}" for k, v in cpu["flags"].items())
    lines = [
        (
            f"host: {cpu['model_name']}; {' '.join(ident)}; {counts}{virt}; "
            f"{cpu['system']} {cpu['machine']}, Python {info['python']}"
        ),
        (
            f"ISA flags: {flags}; fastnn {info['fastnn']} kernels: isa={info['isa']} "
            f"(best on this CPU: {info['cpu_isa']}), threads={info['fastnn_threads']}"
        ),
    ]
    peak = info["fma_peak_gflops"]
    if peak:
        threads = info["threads"] or info["fastnn_threads"]
        probes = len(info["fma_probes"])
        lines.append(
            f"FMA limit (fastnn.kernels.fma_peak_gflops, float32, {info['isa']}): "
            f"{peak:.1f} GFLOP/s per core, {peak * threads:.1f} for {threads} "
            f"thread(s) ("
            + (
                "first probe; probed again after the run)"
                if probes == 1
                else f"larger of {probes} probes)"
            )
        )
    else:
        lines.append("FMA limit: n/a (generic kernels)")
    blas = info["blas"]
    if blas is None:
        blas_text = "BLAS kernel unknown (pip install threadpoolctl)"
    else:
        blas_text = (
            "; ".join(
                f"{b['api']}"
                + (f" {b['version']}" if b["version"] else "")
                + (f" kernel={b['kernel']}" if b["kernel"] else "")
                + f" threads={b['threads']}"
                + (f" (loaded by {b['owner']})" if b["owner"] else "")
                for b in blas
            )
            or "none found"
        )
    lines.append(f"numpy {info['numpy']}; BLAS and OpenMP libraries (threadpoolctl): {blas_text}")
    if info["torch"]:
        lines.append(f"torch {info['torch']}: threads={info['torch_threads']}")
    line = f"requested threads: {info['threads']}" if info["threads"] else ""
    if info["load_1min"] is not None:
        line += ("; " if line else "") + f"load average (1 min) {info['load_1min']:.2f}"
    if line:
        lines.append(line)
    if cpu["flags"]["avx512f"]:
        lines.append(
            "note: this host has AVX-512: run the per-ISA kernel tests here too "
            "(tests/kernels/), their AVX-512 paths run nowhere else"
        )
    for name, value in info["openblas_env"].items():
        lines.append(
            f"WARNING: {name}={value} pins NumPy's OpenBLAS to a lesser kernel: "
            "rerun with `env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE` "
            "for a fair comparison"
        )
    return lines


def print_host(print_fn=print, **kwargs):
    """Print :func:`host_lines` of ``host_info(**kwargs)``; returns the dict."""
    info = host_info(**kwargs)
    for line in host_lines(info):
        print_fn(line)
    return info


# --------------------------------------------------------------------------------------
# Work and timing
# --------------------------------------------------------------------------------------


def mlp_flops(sizes, batch, training=True):
    """GEMM FLOPs of an MLP with layer widths ``sizes`` for one batch: the forward, and for
    a training step also the weight gradients and the input gradients of all but the first
    layer (its FLOP floor; 155 MFLOP for 784-256-256-10 at batch 128)."""
    pairs = list(itertools.pairwise(sizes))
    forward = sum(2 * batch * a * b for a, b in pairs)
    if not training:
        return forward
    return 3 * forward - 2 * batch * pairs[0][0] * pairs[0][1]


def interleave(contenders, seconds, *, block=1, pause=0.0, min_rounds=5, warmup=2):
    """Time the callables of the dict ``contenders`` in turns (A B C A B C ...) for about
    ``seconds`` and at least ``min_rounds`` rounds. Each turn runs ``block`` calls back to
    back (so a contender runs with its own data warm in cache, as in a loop) and records
    their median; ``pause`` seconds of sleep before each turn let the previous contender's
    spinning thread pool go idle. ``warmup`` untimed calls of each come first;
    ``block="auto"`` picks a block of about 20 ms of the fastest contender. Returns
    ``{name: [seconds per call, one entry per round]}``."""
    names = list(contenders)
    first = {}
    for name in names:
        for _ in range(max(warmup, block == "auto")):
            t0 = time.perf_counter()
            contenders[name]()
            first[name] = time.perf_counter() - t0
    if block == "auto":
        block = int(min(1000, max(3, 0.02 / max(min(first.values()), 1e-7))))
    times = {name: [] for name in names}
    end = time.perf_counter() + seconds
    while len(times[names[0]]) < min_rounds or time.perf_counter() < end:
        for name in names:
            if pause:
                time.sleep(pause)
            f, turn = contenders[name], []
            for _ in range(block):
                t0 = time.perf_counter()
                f()
                turn.append(time.perf_counter() - t0)
            times[name].append(statistics.median(turn))
    return times


def median(values):
    return float(statistics.median(values))


def paired_ratio(times, numerator, denominator):
    """Median over rounds of ``times[numerator][i] / times[denominator][i]``."""
    return median(np.asarray(times[numerator]) / np.asarray(times[denominator]))


def check(value, target, at_most=False):
    """``"met"`` or ``"NOT met"``: ``value >= target`` (``value <= target`` with at_most)."""
    ok = value <= target if at_most else value >= target
    return "met" if ok else "NOT met"


class Targets:
    """Collects target verdicts for a final tally; ``line`` formats one verdict."""

    def __init__(self):
        self.met = self.total = 0

    def line(self, what, value, target, unit="x", at_most=False):
        verdict = check(value, target, at_most)
        self.total += 1
        self.met += verdict == "met"
        sign = "<=" if at_most else ">="
        # Rounded towards the verdict, so that a miss never prints as the target itself.
        scale = 1000 if unit == "%" else 100
        shown = (math.ceil if at_most else math.floor)(
            value * scale + 1e-9 * (-1 if at_most else 1)
        ) / scale
        if unit == "%":
            return f"{what} {100 * shown:.1f}% {sign} {100 * target:.0f}%: {verdict}"
        return f"{what} {shown:.2f}{unit} {sign} {target:.2f}{unit}: {verdict}"

    def summary(self):
        return (
            f"targets (PERFORMANCE.md) met: {self.met} of {self.total} (a report, never a failure)"
        )


def step_targets(threads):
    return TARGETS["step"][min(threads, 2)]


# --------------------------------------------------------------------------------------
# fastnn bench: GEMMs and the CNNs' main convolutions against NumPy
# --------------------------------------------------------------------------------------


def gemm_table(seconds=0.3, threads=1, layouts=("NN", "NT", "TN")):
    """Rows of (shape, layout, fastnn GFLOP/s, NumPy GFLOP/s, paired speed ratio). The
    layouts are those of a Dense layer's step: x @ W.T forward (NT), dY.T @ x for the weight
    gradient (TN) and dY @ W for the input gradient (NN). With several threads each side
    sleeps and then runs a block of calls, because a thread pool keeps spinning for a while
    after its last call and would steal the cores from the other library's pool."""
    rng = np.random.default_rng(0)
    block, pause = (1, 0.0) if threads == 1 else (20, 0.2)
    rows = []
    for m, k, n in GEMM_SHAPES:
        for layout in layouts:
            ta, tb = layout[0] == "T", layout[1] == "T"
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(np.float32)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(np.float32)
            out = np.empty((m, n), np.float32)
            opa, opb = (a.T if ta else a), (b.T if tb else b)
            times = interleave(
                {
                    "fastnn": partial(kernels.gemm, a, b, trans_a=ta, trans_b=tb, out=out),
                    "numpy": partial(np.matmul, opa, opb, out=out),
                },
                seconds,
                block=block,
                pause=pause,
                warmup=1,
            )
            flop = 2.0 * m * n * k
            rows.append(
                (
                    (m, k, n),
                    layout,
                    flop / median(times["fastnn"]) / 1e9,
                    flop / median(times["numpy"]) / 1e9,
                    paired_ratio(times, "numpy", "fastnn"),
                )
            )
    return rows


def conv_flops(n, c, o, k, p, h, w):
    """GEMM FLOPs of a stride-1 convolution's forward: 2 * N * O * OH * OW * C * k * k."""
    oh, ow = h + 2 * p - k + 1, w + 2 * p - k + 1
    return 2 * n * o * oh * ow * c * k * k


def numpy_conv_relu(x, weight, bias, padding, out):
    """NumPy's twin of ``kernels.conv2d_forward(x, weight, bias, padding=(p,) * 4,
    activation="relu", out=out)`` (stride 1, square kernel), as NumPy code written for speed
    does it: the patches of the whole batch into one im2col buffer (made once), one matmul
    (the widest product, which the BLAS blocks and threads best), the bias and the ReLU in
    place, and the (O, N, ...) result copied into `out`'s (N, O, ...) layout. Returns a
    callable that runs it and returns `out`."""
    from numpy.lib.stride_tricks import sliding_window_view

    n, c, h, w = x.shape
    o, _, k, _ = weight.shape
    p = padding
    padded = np.zeros((n, c, h + 2 * p, w + 2 * p), x.dtype) if p else x
    oh, ow = h + 2 * p - k + 1, w + 2 * p - k + 1
    # (n, c, oh, ow, kh, kw) windows -> (c, kh, kw, n, oh, ow): one row per weight tap, one
    # column per output pixel of the batch.
    patches = sliding_window_view(padded, (k, k), axis=(2, 3)).transpose(1, 4, 5, 0, 2, 3)
    cols = np.empty((c, k, k, n, oh, ow), x.dtype)
    cols_mat = cols.reshape(c * k * k, n * oh * ow)
    w_mat = weight.reshape(o, c * k * k)
    product = np.empty((o, n * oh * ow), x.dtype)
    product_nchw = product.reshape(o, n, oh, ow).transpose(1, 0, 2, 3)
    b = bias[:, None]

    def conv():
        if p:
            padded[:, :, p : p + h, p : p + w] = x
        np.copyto(cols, patches)
        np.matmul(w_mat, cols_mat, out=product)
        np.add(product, b, out=product)
        np.maximum(product, 0, out=product)
        np.copyto(out, product_nchw)
        return out

    return conv


def conv_table(seconds=0.3, threads=1, shapes=None, min_rounds=5):
    """Rows of (name, (N, C, O, k, p, H, W), fastnn GFLOP/s, NumPy GFLOP/s, paired speed
    ratio) for the convolution forward (bias and ReLU fused) of :data:`CONV_SHAPES`: fastnn's
    kernel against NumPy's im2col and matmul (:func:`numpy_conv_relu`), timed alternately."""
    rng = np.random.default_rng(0)
    block, pause = (1, 0.0) if threads == 1 else (5, 0.2)
    rows = []
    for name, n, c, o, k, p, h, w in shapes or CONV_SHAPES:
        x = rng.standard_normal((n, c, h, w)).astype(np.float32)
        weight = (rng.standard_normal((o, c, k, k)) / np.sqrt(c * k * k)).astype(np.float32)
        bias = (0.1 * rng.standard_normal(o)).astype(np.float32)
        oh, ow = h + 2 * p - k + 1, w + 2 * p - k + 1
        out, out_np = (np.empty((n, o, oh, ow), np.float32) for _ in range(2))
        times = interleave(
            {
                "fastnn": partial(
                    kernels.conv2d_forward,
                    x,
                    weight,
                    bias,
                    padding=(p, p, p, p),
                    activation="relu",
                    out=out,
                ),
                "numpy": numpy_conv_relu(x, weight, bias, p, out_np),
            },
            seconds,
            block=block,
            pause=pause,
            min_rounds=min_rounds,
            warmup=1,
        )
        flop = conv_flops(n, c, o, k, p, h, w)
        rows.append(
            (
                name,
                (n, c, o, k, p, h, w),
                flop / median(times["fastnn"]) / 1e9,
                flop / median(times["numpy"]) / 1e9,
                paired_ratio(times, "numpy", "fastnn"),
            )
        )
    return rows


def run(seconds=0.3, threads=1, print_fn=print):
    """Print the host, the GEMM table and the convolution rows with fastnn and NumPy pinned
    to `threads` threads; returns the geometric mean of the GEMM speed ratios."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        print_fn(
            "warning: threadpoolctl is not installed (pip install 'fastnn[bench]'): "
            "NumPy's BLAS threads are not pinned"
        )
        threadpool_limits = None
    saved = kernels.get_num_threads()
    kernels.set_num_threads(threads)
    try:
        if threadpool_limits is None:
            return _report(seconds, threads, print_fn)
        with threadpool_limits(limits=threads):
            return _report(seconds, threads, print_fn)
    finally:
        kernels.set_num_threads(saved)


def _report(seconds, threads, print_fn):
    fma = FmaLimit()
    print_host(print_fn, fma=fma, threads=threads)
    rows = gemm_table(seconds, threads)
    convs = conv_table(seconds, threads)
    peak = fma.probe()
    print_fn(fma.line(threads))
    header = f"{'gemm m x k x n':>18} {'op':>3} {'fastnn':>9} {'numpy':>9} {'ratio':>6}"
    if peak:
        header += f" {'fastnn % FMA':>12} {'numpy % FMA':>11}"
    print_fn(header + "   (GFLOP/s: medians; ratio: median of paired ratios)")
    ratios = []
    for shape, layout, gf, gn, ratio in rows:
        ratios.append(ratio)
        line = f"{'x'.join(map(str, shape)):>18} {layout:>3} {gf:9.1f} {gn:9.1f} {ratio:6.2f}"
        if peak:
            line += f" {100 * gf / peak / threads:11.0f}% {100 * gn / peak / threads:10.0f}%"
        print_fn(line)
    geo = float(np.exp(np.mean(np.log(ratios))))
    print_fn(f"geometric mean ratio fastnn/numpy: {geo:.2f}; slowest case {min(ratios):.2f}")
    goals = TARGETS["gemm"][min(threads, 2)]
    verdicts = Targets()
    print_fn(
        f"targets ({min(threads, 2)}-thread, over these cases): "
        + verdicts.line("geometric mean", geo, goals["geomean"])
        + (
            "; " + verdicts.line("slowest case", min(ratios), goals["worst"])
            if "worst" in goals
            else ""
        )
    )
    _report_convs(convs, peak, threads, print_fn)
    print_fn(verdicts.summary())
    return geo


def _report_convs(rows, peak, threads, print_fn):
    header = f"{'conv forward, batch 64':>36} {'fastnn':>9} {'numpy':>9} {'ratio':>6}"
    if peak:
        header += f" {'fastnn % FMA':>12} {'numpy % FMA':>11}"
    print_fn(
        header + "   (GFLOP/s; + bias + ReLU; NumPy: im2col and matmul; no target, "
        "compare_cnn.py judges the CNN steps)"
    )
    for name, (_n, c, o, k, p, h, w), gf, gn, ratio in rows:
        shape = f"{name} {c}->{o} {k}x{k} p{p} {h}x{w}"
        line = f"{shape:>36} {gf:9.1f} {gn:9.1f} {ratio:6.2f}"
        if peak:
            line += f" {100 * gf / peak / threads:11.0f}% {100 * gn / peak / threads:10.0f}%"
        print_fn(line)
