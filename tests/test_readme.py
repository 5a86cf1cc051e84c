"""Every ```python block of README.md runs, in order, in one namespace (each example may
continue the one before it). Blocks preceded by ``<!-- readme-test: skip (why) -->`` are
illustrations that need outside resources; blocks needing an optional package that is not
installed are skipped, and so are later blocks that fail only for lack of their names."""
import os
import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
OPTIONAL = {"sklearn", "scipy", "onnx", "onnxruntime", "torch", "matplotlib", "dask", "ray",
            "joblib", "safetensors"}

_BLOCK = re.compile(r"(<!-- readme-test: skip \((?P<why>[^)]*)\) -->\n)?```python\n(?P<code>.*?)```",
                    re.S)


def _blocks():
    if not README.exists():  # an installed copy of the tests without the source tree
        return []
    return [(m.group("code"), m.group("why")) for m in _BLOCK.finditer(README.read_text())]


BLOCKS = _blocks()


@pytest.fixture(scope="module")
def namespace(tmp_path_factory):
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("readme"))
    yield {"__name__": "__readme__", "skipped": False}
    os.chdir(cwd)


@pytest.mark.skipif(not BLOCKS, reason="README.md not found beside tests/")
@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_block(index, namespace):
    code, why = BLOCKS[index]
    if why:
        pytest.skip(why)
    try:
        exec(compile(code, f"README.md block {index}", "exec"), namespace)
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
