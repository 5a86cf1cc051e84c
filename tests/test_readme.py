"""Every ```python block of README.md runs, in order, in one namespace (each example may
continue the one before it). HTML comments on the lines just above a block say how it runs:

- ``<!-- readme-test: before: CODE -->``: CODE runs first, in the same namespace (it makes
  small stand-ins for inputs the reader brings, e.g. the files a block about large files
  reads); the block itself then runs as written.
- ``<!-- readme-test: slow -->``: the block is marked ``slow`` (deselected by ``-m "not
  slow"``; the README's ``pytest`` and CI run it).
- ``<!-- readme-test: cluster (NAME) -->``: an illustration that needs a NAME cluster, which
  one machine does not have; skipped with the reason "README illustration: needs a NAME
  cluster", a reason tests/conftest.py allows in CI.
- ``<!-- readme-test: skip (why) -->``: not run; CI (``FASTNN_STRICT_SKIPS=1``) fails on it.

A block that needs an optional package that is not installed is skipped (and so are later
blocks that fail only for lack of its names); the ``test`` extra installs them all, and CI
fails on such a skip."""
import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
OPTIONAL = {"sklearn", "scipy", "onnx", "onnxruntime", "torch", "matplotlib", "dask", "ray",
            "joblib", "safetensors", "pandas"}

_MARKER = re.compile(r"<!-- readme-test: (?P<what>.*?) -->")
_BLOCK = re.compile(r"((?:<!-- readme-test: .*? -->\n)*)```python\n(.*?)```", re.S)


def _directives(markers):
    how = {"before": [], "slow": False, "skip": None}
    for m in _MARKER.finditer(markers):
        what = m.group("what")
        if what.startswith("before: "):
            how["before"].append(what[len("before: "):])
        elif what == "slow":
            how["slow"] = True
        elif (c := re.fullmatch(r"cluster \((.+)\)", what)) is not None:
            how["skip"] = f"README illustration: needs a {c.group(1)} cluster"
        elif (s := re.fullmatch(r"skip \((.+)\)", what)) is not None:
            how["skip"] = s.group(1)
        else:
            raise ValueError(f"README.md: unknown readme-test directive {what!r}")
    return how


def _blocks():
    if not README.exists():  # an installed copy of the tests without the source tree
        return []
    return [(m.group(2), _directives(m.group(1))) for m in _BLOCK.finditer(README.read_text())]


BLOCKS = _blocks()
_PARAMS = [pytest.param(i, marks=[pytest.mark.slow] if how["slow"] else [])
           for i, (_, how) in enumerate(BLOCKS)]


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("readme"))
    yield {"__name__": "__readme__", "skipped": False, "tried": set()}
    os.chdir(cwd)


def _run(index, namespace):
    namespace["tried"].add(index)
    code, how = BLOCKS[index]
    for before in how["before"]:
        exec(compile(before, f"README.md block {index}, before", "exec"), namespace)
    exec(compile(code, f"README.md block {index}", "exec"), namespace)


@pytest.mark.skipif(not BLOCKS, reason="README.md not found beside tests/")
@pytest.mark.parametrize("index", _PARAMS)
def test_readme_block(index, namespace):
    if BLOCKS[index][1]["skip"]:
        pytest.skip(BLOCKS[index][1]["skip"])
    try:
        # Blocks continue each other: earlier ones that were deselected (-m slow selects
        # only the slow blocks) run first.
        for earlier in range(index):
            if earlier not in namespace["tried"] and not BLOCKS[earlier][1]["skip"]:
                _run(earlier, namespace)
        _run(index, namespace)
    except ModuleNotFoundError as exc:
        if exc.name and exc.name.split(".")[0] in OPTIONAL:
            namespace["skipped"] = True
            pytest.skip(f"optional package {exc.name} is not installed")
        raise
    except ImportError as exc:
        if "pip install" in str(exc):  # fastnn's message for a missing extra
            namespace["skipped"] = True
            pytest.skip(str(exc))
        raise
    except NameError:
        if namespace["skipped"]:
            pytest.skip("continues an example that was skipped")
        raise
