"""The package's imports form a DAG (docs: ARCHITECTURE.md, "Imports form a DAG").

Every module of the installed package is parsed with ``ast`` (nothing is imported), and
every import statement counts wherever it stands: at the top of the file, inside a
function or a method, under ``try``. ``importlib.import_module("fastnn...")`` and
``__import__`` calls with a literal name count too. Only edges between fastnn's own modules
make the graph: ``from fastnn import x`` is an edge to the submodule ``fastnn.x`` when there
is one, else to the package ``fastnn`` itself (``__init__``); ``import fastnn`` is an edge
to the package.

Not counted, and why:

- imports under ``if TYPE_CHECKING:``: they never run, so they can form neither an import
  cycle nor a run-time dependency; they exist for annotations only.
- the import of a parent package that Python performs before any of its submodules
  (``import fastnn.model`` first runs ``fastnn/__init__.py``): every module would otherwise
  sit in a cycle with ``__init__``, which imports them all to re-export their names.
- the compiled ``_kernels`` extension: a leaf of the graph (its ``.pyx`` imports no fastnn
  Python module and cannot be parsed as Python).

``ALLOWED_UPWARD`` lists the only edges that may close a cycle, each with its reason; the
graph without them must be acyclic, and each must still exist (a stale entry fails)."""

import ast
import importlib.util
import itertools
import os
from pathlib import Path

PACKAGE = "fastnn"

#: (importer, imported) -> why this upward edge is allowed. Each is an import inside a
#: function, made when the function runs, never at import time.
ALLOWED_UPWARD = {
    ("fastnn.model", "fastnn.training"): (
        "Sequential.fit / evaluate / predict are the documented entry points of the one "
        "training loop, which lives a floor above the model (it drives callbacks, "
        "checkpoints and progress, which the model must not know)"
    ),
}


#: what the layer modules (``fastnn.layers`` and ``fastnn.layers.*``) may import besides one
#: another: "Layers import the kernel floor and nothing above them" (ARCHITECTURE.md), plus
#: the argument checks and the initialisers, which import nothing above the kernels either.
LAYER_FLOOR = {"fastnn.kernels", "fastnn._validation", "fastnn.init"}


def package_dir():
    """The directory of the fastnn under test, found without importing it."""
    spec = importlib.util.find_spec(PACKAGE)
    assert spec is not None and spec.submodule_search_locations, f"{PACKAGE} not found"
    return Path(next(iter(spec.submodule_search_locations)))


def _dotted(path, root):
    parts = path.relative_to(root).parts
    return parts[:-1] + (parts[-1].split(".", 1)[0],)


def extension_modules(root):
    """Dotted names of the compiled extensions (a .pyx source or a built .so/.pyd)."""
    found = set()
    for pattern in ("*.pyx", "*.so", "*.pyd"):
        found.update(".".join((PACKAGE,) + _dotted(p, root)) for p in root.rglob(pattern))
    return found


def module_files(root):
    """{dotted module name: path} for every .py file of the package at `root`."""
    modules = {}
    for path in sorted(root.rglob("*.py")):
        parts = _dotted(path, root)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join((PACKAGE,) + parts)] = path
    return modules


def _is_type_checking(test):
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _statements(tree):
    """Every import node and import_module/__import__ call, skipping TYPE_CHECKING blocks
    (their ``else:`` branch runs, so it is kept)."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            stack.extend(node.orelse)
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.Call)):
            yield node
        stack.extend(ast.iter_child_nodes(node))


def _dynamic_name(call):
    func = call.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    if (
        name in ("import_module", "__import__")
        and call.args
        and isinstance(call.args[0], ast.Constant)
        and isinstance(call.args[0].value, str)
    ):
        return call.args[0].value
    return None


def _resolve(name, modules):
    """The deepest module of the package that `name` (dotted) names, or None outside it."""
    if name != PACKAGE and not name.startswith(PACKAGE + "."):
        return None
    while name not in modules and "." in name:
        name = name.rsplit(".", 1)[0]
    return name if name in modules else None


def import_edges(root):
    """{(importer, imported): sorted line numbers} over the package's own modules."""
    sources = module_files(root)
    modules = set(sources) | extension_modules(root)
    edges = {}
    for module, path in sources.items():
        is_package = path.name == "__init__.py"
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in _statements(tree):
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = module.split(".")
                    base = base[: len(base) - node.level + (1 if is_package else 0)]
                    source = ".".join(base + ([node.module] if node.module else []))
                else:
                    source = node.module or ""
                # `from fastnn import model` names the submodule; `from fastnn import save`
                # a name of the package itself.
                targets = [
                    f"{source}.{alias.name}" if f"{source}.{alias.name}" in modules else source
                    for alias in node.names
                ]
            else:
                dynamic = _dynamic_name(node)
                targets = [dynamic] if dynamic else []
            for target in targets:
                imported = _resolve(target, modules)
                if imported is not None and imported != module:
                    edges.setdefault((module, imported), set()).add(node.lineno)
    return {edge: sorted(lines) for edge, lines in edges.items()}


def _graph(edges):
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
        graph.setdefault(b, set())
    return graph


def cyclic_components(edges):
    """The strongly connected components of more than one module (Tarjan), each sorted:
    the sets of modules that import each other, directly or not."""
    graph = _graph(edges)
    index, low, on_stack, stack, components = {}, {}, set(), [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return components


def shortest_cycle(start, component, edges):
    """The shortest closed walk from `start` through `component` and back (breadth first)."""
    graph = _graph(edges)
    members = set(component)
    parents = {start: None}
    frontier = [start]
    while frontier:
        nxt = []
        for v in frontier:
            for w in sorted(graph[v] & members):
                if w == start:
                    path = [v]
                    while parents[path[-1]] is not None:
                        path.append(parents[path[-1]])
                    return path[::-1] + [start]
                if w not in parents:
                    parents[w] = v
                    nxt.append(w)
        frontier = nxt
    raise AssertionError(f"no cycle through {start}")


def find_cycles(edges):
    """For each cyclic component, the shortest cycle through each of its modules (a cycle
    found from several of its modules is listed once, from its first module)."""
    found = []
    for component in cyclic_components(edges):
        cycles = []
        for start in component:
            cycle = shortest_cycle(start, component, edges)
            first = cycle.index(min(cycle[:-1]))
            canonical = cycle[first:-1] + cycle[:first] + [cycle[first]]
            if canonical not in cycles:
                cycles.append(canonical)
        found.append((component, cycles))
    return found


def describe(cycle, edges, root):
    """One line per edge of `cycle`: where the import stands."""
    modules = module_files(root)
    lines = []
    for a, b in itertools.pairwise(cycle):
        where = ", ".join(f"{os.path.relpath(modules[a], root.parent)}:{n}" for n in edges[(a, b)])
        lines.append(f"  {a} -> {b}  ({where})")
    return "\n".join(lines)


def test_import_graph_is_acyclic_but_for_the_documented_exceptions():
    root = package_dir()
    edges = import_edges(root)
    stale = sorted(set(ALLOWED_UPWARD) - set(edges))
    assert not stale, f"ALLOWED_UPWARD lists edges that no longer exist: {stale}; remove them"
    checked = {edge: lines for edge, lines in edges.items() if edge not in ALLOWED_UPWARD}
    found = find_cycles(checked)
    report = []
    for component, cycles in found:
        report.append(f"{len(component)} modules import each other: {', '.join(component)}")
        report.extend(" -> ".join(c) + "\n" + describe(c, checked, root) for c in cycles)
    assert not found, "import cycles among fastnn's modules:\n" + "\n".join(report)


def _is_layer_module(name):
    return name == f"{PACKAGE}.layers" or name.startswith(f"{PACKAGE}.layers.")


def test_layers_import_only_the_kernel_floor():
    root = package_dir()
    edges = import_edges(root)
    layer_modules = {m for m in module_files(root) if _is_layer_module(m)}
    assert len(layer_modules) > 1, f"expected the fastnn.layers package, found {layer_modules}"
    upward = sorted(
        f"{a} -> {b} (line {', '.join(map(str, lines))})"
        for (a, b), lines in edges.items()
        if _is_layer_module(a) and not _is_layer_module(b) and b not in LAYER_FLOOR
    )
    assert not upward, "layer modules importing above the kernel floor:\n" + "\n".join(upward)


def test_the_graph_sees_every_kind_of_import(tmp_path):
    """The parser itself: top-level, function-level, relative, package-level and dynamic
    imports are edges; TYPE_CHECKING-only ones and outside packages are not."""
    root = tmp_path / PACKAGE
    root.mkdir()
    (root / "__init__.py").write_text("from fastnn.a import A\n__version__ = '0'\n")
    (root / "a.py").write_text(
        "import numpy\nfrom typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from fastnn import d\nelse:\n    from fastnn import e\n"
        "class A:\n    def f(self):\n        from .b import g\n        return g\n"
    )
    (root / "b.py").write_text("def g():\n    from fastnn import __version__\n")
    (root / "c.py").write_text("import importlib\nimportlib.import_module('fastnn.a')\n")
    (root / "d.py").write_text("")
    (root / "e.py").write_text("import fastnn.d\n")
    edges = import_edges(root)
    assert set(edges) == {
        ("fastnn", "fastnn.a"),
        ("fastnn.a", "fastnn.e"),
        ("fastnn.a", "fastnn.b"),
        ("fastnn.b", "fastnn"),
        ("fastnn.c", "fastnn.a"),
        ("fastnn.e", "fastnn.d"),
    }
    assert cyclic_components(edges) == [["fastnn", "fastnn.a", "fastnn.b"]]
    assert find_cycles(edges) == [
        (["fastnn", "fastnn.a", "fastnn.b"], [["fastnn", "fastnn.a", "fastnn.b", "fastnn"]])
    ]
