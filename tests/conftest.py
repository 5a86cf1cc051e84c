"""CI's rule for skips, and the fixtures every test module may use: ``isa`` (once per
instruction-set path this CPU has), ``rng``, ``dtype`` (float32 and float64), and the
session's scratch working directory. Plain helpers (tolerances, layouts, gradient checks,
small models) are in helpers.py, imported by name.

Skips in CI. With ``FASTNN_STRICT_SKIPS=1`` (.ci/run sets it) a skipped test, or a skipped
test module, counts as a failure unless its reason is on the short list ``ALLOWED_SKIPS``
below: reasons the machine imposes (an instruction set the CPU lacks, too few or busy CPUs,
the operating system, disk space, a sanitizer build), plus two that no machine changes (a
documentation example that needs a cluster; a scikit-learn check that does not apply to the
estimator). A missing optional package is never allowed: the ``test`` extra brings them all,
the ``torch`` extra PyTorch. Expected failures (xfail) are not skips. Without the variable a
skip stays a skip, so a partial environment still runs what it can."""

import os
import re

import numpy as np
import pytest

from helpers import DTYPES, isas

# scikit-learn's estimator checks test array-API dispatch with NumPy inputs only when SciPy's
# array API support is on; it must be set before SciPy is first imported.
os.environ.setdefault("SCIPY_ARRAY_API", "1")

# The reasons a skip may have in CI (FASTNN_STRICT_SKIPS=1): each pattern is searched in the
# skip's reason; keep the list short and say why each is imposed by the machine.
ALLOWED_SKIPS = {
    # The CPU lacks an instruction set (e.g. AVX-512 kernels on a host without AVX-512).
    r"(?i)\b(cpu|host|machine) (lacks|has no|does not (have|support))\b": "instruction set",
    r"(?i)^needs (an? )?(avx|avx2|avx-?512\w*|fma|neon|sse[\d.]*)\b": "instruction set",
    # Too few CPUs, or the shared machine's other jobs hold them (timing tests).
    r"^needs (two|\d+) CPUs$": "CPU count",
    r"^other jobs hold the CPUs": "CPUs busy with other jobs",
    # What the operating system or the disk offers.
    r"^needs fork$": "operating system",
    r"^needs Linux /proc$": "operating system",
    r"^not enough space in the temporary directory$": "disk space",
    r"^no C compiler$": "toolchain",
    # The run is under AddressSanitizer/UBSan (tools/sanitize.sh sets FASTNN_SANITIZED=1),
    # which makes timings and resident memory meaningless.
    r"under sanitizers or valgrind$": "instrumented build",
    r"^ASan's shadow memory": "instrumented build",
    # documentation examples that need a cluster, which one machine is not (tests/test_docs.py).
    r"^documentation illustration: needs a .+ cluster$": "cluster",
    # A scikit-learn estimator check that does not apply: scikit-learn's own MLPClassifier
    # has no decision_function either.
    r"^\w+ does not have a \w+ method\.$": "check not applicable",
}


def _skip_reason(report):
    longrepr = report.longrepr
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        reason = str(longrepr[2])
    else:
        reason = str(longrepr)
    return reason[len("Skipped: ") :] if reason.startswith("Skipped: ") else reason


def _enforce(report):
    if (
        os.environ.get("FASTNN_STRICT_SKIPS") != "1"
        or not report.skipped
        or hasattr(report, "wasxfail")
    ):
        return
    reason = _skip_reason(report)
    if any(re.search(pattern, reason) for pattern in ALLOWED_SKIPS):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped with FASTNN_STRICT_SKIPS=1 for a reason the machine does not "
        f"impose: {reason!r} (allowed reasons: ALLOWED_SKIPS in "
        f"tests/conftest.py)"
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _enforce(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _enforce(outcome.get_result())


@pytest.fixture(params=isas())
def isa(request):
    """Runs a test once per instruction-set path this CPU has, as FASTNN_ISA would force
    it: the GEMM micro-kernels and packing, and the AVX2 builds of the other kernels."""
    from fastnn import kernels

    before = kernels.info()["isa"]
    kernels.set_isa(request.param)
    yield request.param
    kernels.set_isa(before)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture(params=DTYPES, ids=lambda d: np.dtype(d).name)
def dtype(request):
    return request.param


@pytest.fixture(scope="session", autouse=True)
def _outside_the_source_tree(tmp_path_factory):
    """Child interpreters must import the fastnn under test, not the source tree's fastnn/
    (which has no compiled extension): the session runs from a scratch directory, with the
    tested package first on PYTHONPATH."""
    import fastnn

    cwd, path = os.getcwd(), os.environ.get("PYTHONPATH")
    tested = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
    os.environ["PYTHONPATH"] = os.pathsep.join([tested] + ([path] if path else []))
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(cwd)
    if path is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = path
