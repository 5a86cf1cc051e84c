"""Griffe extension for the API reference (mkdocs.yml loads it; not part of the site).

- ``fastnn._kernels`` is compiled. When the source tree has no built extension (CI builds
  the docs from a fresh copy, with fastnn installed in the venv), griffe reads the stub
  ``fastnn/_kernels.pyi``, which carries no docstrings: they are taken from the compiled
  module that Python imports (the installed one, else the tree's in-place build). The
  signature line Cython embeds at the top of each docstring is dropped, since the page
  shows the signature already, and so is the docstring a constant inherits from its type
  (``ACTIVATIONS`` is a tuple).
  When griffe reads the stub, the defaults it shows (``...``) are replaced by the compiled
  functions' own.
- Docstrings are written in reStructuredText prose and rendered as Markdown: a Sphinx role
  (``:func:`name```) becomes the code span ``name``, and an asterisk outside code (``2*m*n``,
  ``slope * x``) stays an asterisk instead of starting emphasis."""

import importlib
import inspect
import re
import sys
from pathlib import Path

import griffe

_ROLE = re.compile(r":(?:mod|func|class|meth|attr|data|exc|obj):`~?([^`]+)`")
_COMPILED = "fastnn._kernels"
_CODE_SPAN = re.compile(r"(``.+?``|`[^`\n]+`)", re.S)
_PARAGRAPHS = re.compile(r"(\n[ \t]*\n)")


def _import_compiled(package_dir):
    """The compiled module, from wherever Python finds fastnn, else from the tree that
    griffe reads (an in-place build)."""
    try:
        return importlib.import_module(_COMPILED)
    except ImportError:
        for name in [m for m in sys.modules if m == "fastnn" or m.startswith("fastnn.")]:
            del sys.modules[name]
    sys.path.insert(0, str(package_dir.parent))
    try:
        return importlib.import_module(_COMPILED)
    except ImportError as exc:
        raise ImportError(
            f"the API reference needs the compiled {_COMPILED}: install fastnn into this "
            f'environment (pip install ".[docs]") or build it in place'
        ) from exc
    finally:
        sys.path.remove(str(package_dir.parent))


def _objects(obj):
    yield obj
    for member in obj.members.values():
        if not member.is_alias:
            yield from _objects(member)


def _strip_signature(name, text):
    lines = text.splitlines()
    if lines and lines[0].startswith(f"{name}("):
        lines = lines[1:]
        while lines and not lines[0].strip():
            lines = lines[1:]
    return "\n".join(lines)


def _defaults(function, live):
    """The compiled function's defaults in place of the stub's ``...``."""
    try:
        parameters = inspect.signature(live).parameters
    except (TypeError, ValueError):
        return
    for parameter in function.parameters:
        given = parameters.get(parameter.name)
        if (
            given is not None
            and given.default is not inspect.Parameter.empty
            and str(parameter.default) == "..."
        ):
            parameter.default = repr(given.default)


def _markdown(text):
    """reST prose as Markdown: roles to code spans, literal asterisks outside code (spans,
    and paragraphs indented as code blocks)."""
    text = _ROLE.sub(r"`\1`", text)
    out = []
    for paragraph in _PARAGRAPHS.split(text):
        lines = [line for line in paragraph.splitlines() if line.strip()]
        if lines and all(line.startswith("    ") for line in lines):
            out.append(paragraph)
            continue
        parts = _CODE_SPAN.split(paragraph)
        out.append(
            "".join(part if i % 2 else part.replace("*", r"\*") for i, part in enumerate(parts))
        )
    return "".join(out)


class FastnnDocs(griffe.Extension):
    def on_package(self, *, pkg, **kwargs):
        if pkg.path != "fastnn":
            return
        compiled = pkg.get_member("_kernels")
        live = _import_compiled(Path(pkg.filepath).parent)
        for name, member in compiled.members.items():
            if member.is_alias:
                continue
            value = getattr(live, name, None)
            doc = getattr(value, "__doc__", None)
            if member.is_attribute or doc is None or doc == type(value).__doc__:
                member.docstring = None
                continue
            member.docstring = griffe.Docstring(_strip_signature(name, doc), parent=member)
            member.labels.discard("method descriptor")
            if member.is_function:
                _defaults(member, value)
        for obj in _objects(pkg):
            if obj.docstring is not None:
                obj.docstring.value = _markdown(obj.docstring.value)
