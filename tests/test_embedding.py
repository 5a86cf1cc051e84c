"""Embedding: importing fastnn only defines things (quiet, fast, no optional dependency, a
NullHandler logger), the type information ships, and the wheel and sdist are complete."""

import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from pathlib import Path

import pytest

import fastnn

ROOT = Path(__file__).resolve().parent.parent
PKG = Path(fastnn.__file__).resolve().parent


def _python(code, **kw):
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        check=True,
        **kw,
    )


def test_import_is_quiet_and_light():
    out = _python("""
        import logging, sys
        import fastnn
        heavy = sorted(m for m in ("sklearn", "scipy", "onnx", "onnxruntime", "torch",
                                   "matplotlib", "pandas", "mpi4py") if m in sys.modules)
        handlers = logging.getLogger("fastnn").handlers
        print(heavy, [type(h).__name__ for h in handlers], logging.getLogger().handlers)
    """)
    assert out.stderr == ""
    assert out.stdout.strip() == "[] ['NullHandler'] []"


def test_import_time_over_numpy():
    """``import fastnn`` adds at most ~50 ms to ``import numpy`` on an idle machine; the bound
    here is generous because test machines are often busy."""
    code = """
        import time
        t0 = time.perf_counter(); import numpy; t1 = time.perf_counter()
        import fastnn; t2 = time.perf_counter()
        print(t2 - t1)
    """
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    runs = [float(_python(code, env=env).stdout) for _ in range(7)]
    median = statistics.median(runs)
    assert median < 0.25, f"import fastnn took {median * 1000:.0f} ms over numpy (median of 7)"


def test_type_information_ships():
    assert (PKG / "py.typed").exists()
    stub = (PKG / "_kernels.pyi").read_text()
    import fastnn._kernels as compiled

    public = {n for n in dir(compiled) if not n.startswith("_") and callable(getattr(compiled, n))}
    declared = {line.split("(")[0][4:] for line in stub.splitlines() if line.startswith("def ")}
    assert public == declared


def _can_get_numpy(where):
    """Whether pip can fetch numpy (from an index or the configured find-links)."""
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(where), "numpy"],
        capture_output=True,
        text=True,
    )
    return probe.returncode == 0


@pytest.mark.slow
def test_wheel_installs_into_a_clean_venv(tmp_path):
    if shutil.which("gcc") is None and shutil.which("cc") is None:
        pytest.skip("no C compiler")
    if not _can_get_numpy(tmp_path / "probe"):
        pytest.skip("offline: pip download numpy failed")
    wheels = tmp_path / "wheels"
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(wheels)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("fastnn-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "fastnn/py.typed" in names and "fastnn/_kernels.pyi" in names
    assert "fastnn/data/digits.csv.gz" in names
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    # The fresh venv must see only what it installed, not the tested fastnn that the session
    # puts on PYTHONPATH (conftest.py).
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run(
        [str(py), "-m", "pip", "install", "-q", "numpy", str(wheel)],
        check=True,
        capture_output=True,
        env=env,
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    out = subprocess.run(
        [
            str(py),
            "-c",
            textwrap.dedent("""
        import sys, numpy as np, fastnn
        assert fastnn.__file__.startswith(sys.prefix), (fastnn.__file__, sys.prefix)
        X, y = fastnn.load_digits()
        m = fastnn.Sequential(fastnn.Dense(64, 16, rng=0), fastnn.ReLU(), fastnn.Dense(16, 10))
        print(m.predict(X[:5]).shape, fastnn.kernels.info()["isa"])
    """),
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("(5, 10)")


def _pypa_build_installed():
    """Whether PyPA's ``build`` is importable: a source tree's build/ directory, left by
    setup.py, also imports as a namespace package called build, but has no __main__."""
    try:
        return importlib.util.find_spec("build.__main__") is not None
    except ImportError:
        return False


@pytest.mark.slow
def test_sdist_is_complete_and_builds(tmp_path):
    # Building from the unpacked sdist needs the build requirements in this environment
    # (pip's isolated builds bring their own; here the test extra brings them).
    pytest.importorskip("Cython")
    pytest.importorskip("setuptools")
    dist = tmp_path / "dist"
    if _pypa_build_installed():
        cmd = [
            sys.executable,
            "-m",
            "build",
            "--sdist",
            "--no-isolation",
            "-o",
            str(dist),
            str(ROOT),
        ]
    else:
        cmd = [sys.executable, "setup.py", "-q", "sdist", "-d", str(dist)]
    made = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    (sdist,) = dist.glob("fastnn-*.tar.gz")
    with tarfile.open(sdist) as tar:
        names = {
            Path(n).relative_to(Path(n).parts[0]).as_posix()
            for n in tar.getnames()
            if len(Path(n).parts) > 1
        }
        tar.extractall(tmp_path / "src", filter="data")
    for path in (ROOT / "csrc").iterdir():
        assert f"csrc/{path.name}" in names, path.name
    for pattern in ("*.pyx", "*.pxd", "*.pyi", "py.typed"):
        for path in PKG.glob(pattern):
            assert f"fastnn/{path.name}" in names, path.name
    (src,) = (tmp_path / "src").iterdir()
    built = subprocess.run(
        [sys.executable, "setup.py", "-q", "build_ext", "--inplace"],
        cwd=src,
        capture_output=True,
        text=True,
    )
    assert built.returncode == 0, built.stderr
    out = subprocess.run(
        [sys.executable, "-c", "import fastnn; print(fastnn.__file__)"],
        cwd=src,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stderr
    assert Path(out.stdout.strip()).resolve().is_relative_to(src.resolve())
