"""Every ```python block of README.md and of every docs/**/*.md runs. The blocks of one file
run in order in one namespace (each example may continue the one before it, in the same
file); each file starts from a fresh namespace and its own scratch working directory. The
test id names the file and the block's index in it: ``README.md[0]``,
``docs/guide/training.md[3]``. Blocks in other languages (``bash``, output, ...) are not run.

HTML comments on the lines just above a block say how it runs:

- ``<!-- readme-test: before: CODE -->``: CODE runs first, in the same namespace (it makes
  small stand-ins for inputs the reader brings, e.g. the files a block about large files
  reads); the block itself then runs as written.
- ``<!-- readme-test: slow -->``: the block is marked ``slow`` (deselected by ``-m "not
  slow"``; the README's ``pytest`` and CI run it).
- ``<!-- readme-test: cluster (NAME) -->``: an illustration that needs a NAME cluster, which
  one machine does not have; skipped with the reason "documentation illustration: needs a NAME
  cluster", a reason tests/conftest.py allows in CI.
- ``<!-- readme-test: skip (why) -->``: not run; CI (``FASTNN_STRICT_SKIPS=1``) fails on it.

A block that needs an optional package that is not installed is skipped (and so are later
blocks of its file that fail only for lack of its names); the ``test`` extra installs them
all, and CI fails on such a skip."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL = {
    "sklearn",
    "scipy",
    "onnx",
    "onnxruntime",
    "torch",
    "matplotlib",
    "dask",
    "ray",
    "joblib",
    "safetensors",
    "pandas",
}

_MARKER = re.compile(r"<!-- readme-test: (?P<what>.*?) -->")
_BLOCK = re.compile(r"((?:<!-- readme-test: .*? -->\n)*)```python\n(.*?)```", re.S)


def _directives(markers, name):
    how = {"before": [], "slow": False, "skip": None}
    for m in _MARKER.finditer(markers):
        what = m.group("what")
        if what.startswith("before: "):
            how["before"].append(what[len("before: ") :])
        elif what == "slow":
            how["slow"] = True
        elif (c := re.fullmatch(r"cluster \((.+)\)", what)) is not None:
            how["skip"] = f"documentation illustration: needs a {c.group(1)} cluster"
        elif (s := re.fullmatch(r"skip \((.+)\)", what)) is not None:
            how["skip"] = s.group(1)
        else:
            raise ValueError(f"{name}: unknown readme-test directive {what!r}")
    return how


def documents(root=ROOT):
    """README.md, then every docs/**/*.md in path order, as paths relative to `root`
    (none in an installed copy of the tests without the source tree)."""
    found = [Path("README.md")] if (root / "README.md").exists() else []
    if (root / "docs").is_dir():
        found += sorted(p.relative_to(root) for p in (root / "docs").rglob("*.md"))
    return [p.as_posix() for p in found]


def blocks(text, name):
    """[(code, directives)] of the ```python blocks of one Markdown text, in order."""
    return [(m.group(2), _directives(m.group(1), name)) for m in _BLOCK.finditer(text)]


BLOCKS = {name: blocks((ROOT / name).read_text(encoding="utf-8"), name) for name in documents()}
_PARAMS = [
    pytest.param(name, i, id=f"{name}[{i}]", marks=[pytest.mark.slow] if how["slow"] else [])
    for name, found in BLOCKS.items()
    for i, (_, how) in enumerate(found)
]


@pytest.fixture(scope="module")
def namespaces(tmp_path_factory):
    """One namespace and one scratch directory per file, made on first use. An example may
    define a Layer subclass of its own (the layers guide does), which registers itself in
    the process-wide ``fastnn.Layer.registry``: the registry is restored afterwards, so that
    other test modules see fastnn's layers only."""
    import fastnn

    registry = dict(fastnn.Layer.registry)
    made = {}

    def get(name):
        if name not in made:
            workdir = tmp_path_factory.mktemp(re.sub(r"\W+", "_", name))
            made[name] = {
                "__name__": "__docs__",
                "skipped": False,
                "tried": set(),
                "workdir": workdir,
            }
        return made[name]

    yield get
    fastnn.Layer.registry.clear()
    fastnn.Layer.registry.update(registry)


def _run(name, index, namespace):
    namespace["tried"].add(index)
    code, how = BLOCKS[name][index]
    for before in how["before"]:
        exec(compile(before, f"{name} block {index}, before", "exec"), namespace)
    exec(compile(code, f"{name} block {index}", "exec"), namespace)


@pytest.mark.skipif(not BLOCKS, reason="README.md and docs/ not found beside tests/")
@pytest.mark.parametrize("name,index", _PARAMS)
def test_docs_block(name, index, namespaces, monkeypatch):
    found = BLOCKS[name]
    if found[index][1]["skip"]:
        pytest.skip(found[index][1]["skip"])
    namespace = namespaces(name)
    monkeypatch.chdir(namespace["workdir"])
    try:
        # Blocks continue each other: earlier ones of the file that were deselected
        # (-m slow selects only the slow blocks) run first.
        for earlier in range(index):
            if earlier not in namespace["tried"] and not found[earlier][1]["skip"]:
                _run(name, earlier, namespace)
        _run(name, index, namespace)
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


def test_every_document_is_found():
    """The collector sees the README and the docs tree, and every block is in a known
    language, so that no Python example hides behind another fence (```py, ```pycon)."""
    names = documents()
    if not names:
        pytest.skip("README.md and docs/ not found beside tests/")
    assert names[0] == "README.md" and any(n.startswith("docs/") for n in names), names
    fence = re.compile(r"^```(\S*)", re.M)
    for name in names:
        text = (ROOT / name).read_text(encoding="utf-8")
        langs = fence.findall(text)[::2]  # opening fences only
        odd = sorted(set(langs) - {"python", "bash", "text", ""})
        assert not odd, f"{name}: code blocks in {odd}; use python (run), bash or text"
