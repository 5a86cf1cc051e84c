"""Saving and loading models: one safetensors file, written and read by the NumPy code below.

Layout (the safetensors format, https://github.com/huggingface/safetensors): 8 bytes of
little-endian header length N, N bytes of JSON header, then the raw little-endian tensor
data. The header maps each tensor name to ``{"dtype", "shape", "data_offsets"}`` (offsets
relative to the data section, tensors back to back, no gaps) and ``__metadata__`` to a
string->string map. fastnn stores:

- tensors: the model's ``state_dict()`` under its own keys (``"0.weight"``...), so the file
  loads into an equivalent ``torch.nn.Sequential`` as is; optimizer state under
  ``"optimizer.*"`` and array-valued layer settings under ``"config.*"``;
- metadata: ``format`` ("fastnn"), ``format_version``, ``fastnn_version``, ``dtype``,
  ``architecture`` (JSON list of ``{"class", "config"}``: a registered Layer class name and
  its ``get_config()``), optionally ``optimizer`` (JSON of its ``state_dict()`` with arrays
  replaced by tensor references) and ``metadata`` (the caller's JSON).

Why this format and not pickle or ``np.savez``: loading must never run code (pickle does;
``.npz`` object arrays do), the file must be checkable before anything is built from it,
and safetensors is a documented format other tools read. Loading validates everything and
builds layers only from registered Layer classes (``fastnn.layers.get``), never by importing
a name."""

import contextlib
import json
import math
import os
import sys
from dataclasses import dataclass, field

import numpy as np

from fastnn import layers, optim
from fastnn._validation import float_dtype
from fastnn._version import __version__
from fastnn.model import Sequential

__all__ = ["save", "load", "load_checkpoint", "Checkpoint", "FORMAT_VERSION"]

FORMAT = "fastnn"
#: bump when a file written now could not be read correctly by an older fastnn
FORMAT_VERSION = 1
#: the safetensors reference implementation's own limit on the header
_MAX_HEADER = 100_000_000

_DTYPES = {
    "BOOL": np.dtype("bool"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "F16": np.dtype("<f2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F64": np.dtype("<f8"),
}
_CODES = {(dt.kind, dt.itemsize): code for code, dt in _DTYPES.items()}
_TENSOR_REF = "__tensor__"


# ---- encoding arbitrary state (configs, optimizer state) as JSON plus tensors -----------------


def _encode(obj, name, tensors, where):
    """`obj` as JSON-compatible data; arrays go to `tensors` under `name` and are replaced by
    ``{"__tensor__": name}``."""
    if isinstance(obj, np.ndarray):
        tensors[name] = obj
        return {_TENSOR_REF: name}
    if isinstance(obj, (bool, np.bool_)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        if not math.isfinite(obj):
            raise ValueError(f"save: {where} holds a non-finite number {obj!r}")
        return float(obj)
    if obj is None or isinstance(obj, str):
        return obj
    if isinstance(obj, np.dtype):
        return obj.name
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise TypeError(f"save: {where} has a non-string key {k!r}")
            out[k] = _encode(v, f"{name}.{k}", tensors, where)
        return out
    if isinstance(obj, (list, tuple)):
        return [_encode(v, f"{name}.{i}", tensors, where) for i, v in enumerate(obj)]
    raise TypeError(
        f"save: {where} holds a {type(obj).__name__}, which the file format "
        "cannot store (expected numbers, strings, lists, dicts or arrays)"
    )


def _decode(obj, tensors, used):
    if isinstance(obj, dict):
        if set(obj) == {_TENSOR_REF}:
            name = obj[_TENSOR_REF]
            if not isinstance(name, str) or name not in tensors:
                raise ValueError(f"refers to a tensor {name!r} that the file does not hold")
            used.add(name)
            return tensors[name]
        return {k: _decode(v, tensors, used) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, tensors, used) for v in obj]
    return obj


# ---- writing ----------------------------------------------------------------------------------


def save(model, path, optimizer=None, metadata=None):
    """Write `model` (architecture, weights and buffers, dtype) to `path` as one safetensors
    file, optionally with `optimizer`'s state (to resume training) and `metadata` (a dict of
    JSON-compatible values, returned by :func:`load_checkpoint`).

    The write is atomic: the data go to a temporary file in the same directory, which is
    flushed to disk and then renamed over `path`; if anything fails, `path` is untouched."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a fastnn.Sequential, got {type(model).__name__}")
    path = os.fspath(path)
    tensors = {}
    architecture = []
    for i, layer in enumerate(model.layers):
        name = type(layer).__name__
        try:
            registered = layers.get(name)
        except ValueError:
            registered = None
        if registered is not type(layer):
            raise TypeError(
                f"save: layer {i} is a {name}, which is not a registered "
                "fastnn Layer (its class name must not start with '_')"
            )
        architecture.append(
            {
                "class": name,
                "config": _encode(
                    layer.get_config(), f"config.{i}", tensors, f"layer {i} ({name}) get_config()"
                ),
            }
        )
    for key, value in model.state_dict().items():
        tensors[key] = np.asarray(value)
    meta = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "fastnn_version": __version__,
        "dtype": model.dtype.name,
        "architecture": json.dumps(architecture),
    }
    if optimizer is not None:
        if not hasattr(optimizer, "state_dict"):
            raise TypeError(f"optimizer must be a fastnn optimizer, got {type(optimizer).__name__}")
        meta["optimizer"] = json.dumps(
            _encode(optimizer.state_dict(), "optimizer", tensors, "optimizer.state_dict()")
        )
    if metadata is not None:
        if not isinstance(metadata, dict):
            raise TypeError(f"metadata must be a dict, got {type(metadata).__name__}")
        meta["metadata"] = json.dumps(_encode(metadata, "metadata", tensors, "metadata"))
    _write_atomic(path, _serialize(tensors, meta))


def _serialize(tensors, meta):
    """(header bytes, [contiguous little-endian arrays]) in file order."""
    header = {"__metadata__": meta}
    arrays = []
    offset = 0
    # Wider dtypes first keeps every tensor aligned to its item size in the file, as the
    # reference writer does.
    order = sorted(tensors, key=lambda k: -np.asarray(tensors[k]).dtype.itemsize)
    for name in order:
        arr = np.asarray(tensors[name])
        code = _CODES.get((arr.dtype.kind, arr.dtype.itemsize))
        if code is None:
            raise TypeError(
                f"save: tensor {name!r} has dtype {arr.dtype}, which safetensors cannot store"
            )
        arr = np.ascontiguousarray(arr, dtype=_DTYPES[code]).reshape(-1)
        header[name] = {
            "dtype": code,
            "shape": list(np.shape(tensors[name])),
            "data_offsets": [offset, offset + arr.nbytes],
        }
        offset += arr.nbytes
        arrays.append(arr)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-(len(text) + 8) % 8)  # the data section starts 8-byte aligned
    return text, arrays


def _write_atomic(path, payload):
    import tempfile

    header, arrays = payload
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"cannot save {path}: no directory {directory}")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(len(header).to_bytes(8, "little"))
            f.write(header)
            for arr in arrays:
                f.write(arr.data)
            f.flush()
            os.fsync(f.fileno())
        # mkstemp creates the file 0600; give it the mode an ordinary open() would have.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory):
    """Make the rename itself durable (POSIX; other systems have no directory handles)."""
    if sys.platform == "win32":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# ---- reading ----------------------------------------------------------------------------------


@dataclass
class Checkpoint:
    """Everything :func:`load_checkpoint` read from a file."""

    model: object
    #: the optimizer's ``state_dict()`` as saved, or None
    optimizer_state: dict | None = None
    #: the ``metadata`` passed to :func:`save` ({} when none)
    metadata: dict = field(default_factory=dict)
    format_version: int = FORMAT_VERSION

    def make_optimizer(self):
        """A new optimizer of the saved type over ``self.model``'s parameters, carrying the
        saved state (momentum buffers, step count, lr), ready to resume training."""
        if self.optimizer_state is None:
            raise ValueError("make_optimizer: the file holds no optimizer state")
        state = self.optimizer_state
        cls = optim.get(state.get("type"))
        try:
            opt = cls(self.model, lr=state["lr"], **state.get("hyper", {}))
        except TypeError as exc:
            raise ValueError(
                f"make_optimizer: cannot rebuild {cls.__name__} from the saved "
                f"hyperparameters: {exc}"
            ) from None
        opt.load_state_dict(state)
        return opt


def load(path):
    """The :class:`fastnn.Sequential` saved in `path` by :func:`save`, with its weights,
    buffers and dtype. A damaged, truncated, foreign or newer-version file raises
    ``ValueError``; nothing in the file can run code."""
    return load_checkpoint(path).model


def load_checkpoint(path):
    """A :class:`Checkpoint`: the model, the optimizer state (if saved; rebuild it with
    ``ckpt.make_optimizer()`` or pass it to ``opt.load_state_dict``) and the metadata."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        return _parse(data)
    except ValueError as exc:
        raise ValueError(f"{path}: {exc}") from None


def _fail(message):
    raise ValueError(message)


def _no_duplicates(pairs):
    keys = [k for k, _ in pairs]
    if len(keys) != len(set(keys)):
        _fail("bad header: duplicate keys")
    return dict(pairs)


def _read_header(data):
    """(tensor entries, metadata) after checking the safetensors framing."""
    if len(data) < 8:
        _fail(
            f"not a fastnn model file: {len(data)} bytes, too short for a header (truncated file?)"
        )
    n = int.from_bytes(data[:8], "little")
    if n < 2 or n > _MAX_HEADER:
        _fail(f"not a fastnn model file: header length {n} is out of range")
    if n > len(data) - 8:
        _fail(f"header length {n} exceeds the {len(data) - 8} bytes after it (truncated file?)")
    raw = data[8 : 8 + n]
    if raw[:1] != b"{":
        _fail("not a fastnn model file: the header is not a JSON object")
    try:
        header = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        _fail(f"bad header: not valid JSON ({exc})")
    except RecursionError:  # a few KB of "[[[[..." exhaust the decoder's stack
        _fail("bad header: JSON nested too deeply")
    meta = header.pop("__metadata__", None)
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        _fail("not a fastnn model file: a safetensors file without fastnn metadata")
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        _fail("bad header: __metadata__ must map strings to strings")
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        _fail(f"bad header: format_version {meta.get('format_version')!r} is not an integer")
    if version > FORMAT_VERSION:
        _fail(
            f"written in format version {version} by fastnn {meta.get('fastnn_version', '?')}; "
            f"this fastnn ({__version__}) reads up to version {FORMAT_VERSION}: upgrade fastnn"
        )
    if version < 1:
        _fail(f"bad header: format_version {version}")
    return header, meta, version, data[8 + n :]


def _read_tensors(entries, body):
    spans = []
    for name, entry in entries.items():
        if not isinstance(entry, dict) or set(entry) != {"dtype", "shape", "data_offsets"}:
            _fail(f"bad header: tensor {name!r} must have exactly dtype, shape and data_offsets")
        dtype = _DTYPES.get(entry["dtype"]) if isinstance(entry["dtype"], str) else None
        if dtype is None:
            _fail(f"bad header: tensor {name!r} has unknown dtype {entry['dtype']!r}")
        shape, offsets = entry["shape"], entry["data_offsets"]
        if not isinstance(shape, list) or not all(type(d) is int and d >= 0 for d in shape):
            _fail(f"bad header: tensor {name!r} has invalid shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(type(o) is int and o >= 0 for o in offsets)
            or offsets[0] > offsets[1]
        ):
            _fail(f"bad header: tensor {name!r} has invalid data_offsets {offsets!r}")
        size = math.prod(shape) * dtype.itemsize
        if offsets[1] - offsets[0] != size:
            _fail(
                f"bad header: tensor {name!r} of dtype {entry['dtype']} and shape {shape} "
                f"needs {size} bytes, its data_offsets span {offsets[1] - offsets[0]}"
            )
        spans.append((offsets[0], offsets[1], name, dtype, shape))
    spans.sort(key=lambda s: (s[0], s[1]))
    end = 0
    for begin, stop, name, _, _ in spans:
        if begin != end:
            _fail(
                f"bad header: tensor {name!r} starts at byte {begin} of the data, expected "
                f"{end} (tensors overlap or leave a gap)"
            )
        end = stop
    if end != len(body):
        what = "truncated file?" if end > len(body) else "trailing bytes"
        _fail(
            f"the header describes {end} bytes of tensor data, the file holds {len(body)} ({what})"
        )
    return {
        name: np.frombuffer(body, dtype=dtype, count=math.prod(shape), offset=begin)
        .reshape(shape)
        .astype(dtype.newbyteorder("="), copy=True)
        for begin, _, name, dtype, shape in spans
    }


def _json_field(meta, key, what):
    try:
        return json.loads(meta[key])
    except KeyError:
        _fail(f"bad header: no {what} ({key!r} metadata)")
    except json.JSONDecodeError as exc:
        _fail(f"bad header: {what} is not valid JSON ({exc})")
    except RecursionError:
        _fail(f"bad header: {what} is JSON nested too deeply")


def _build_model(meta, tensors, used):
    architecture = _json_field(meta, "architecture", "architecture")
    if not isinstance(architecture, list):
        _fail("bad header: architecture must be a list of layers")
    built = []
    for i, spec in enumerate(architecture):
        if (
            not isinstance(spec, dict)
            or set(spec) != {"class", "config"}
            or not isinstance(spec["class"], str)
            or not isinstance(spec["config"], dict)
        ):
            _fail(f"bad header: layer {i} must be {{'class': name, 'config': {{...}}}}")
        try:
            cls = layers.get(spec["class"])
        except ValueError as exc:
            _fail(f"layer {i}: {exc}")
        try:
            config = _decode(spec["config"], tensors, used)
            built.append(cls(**config))
        except (TypeError, ValueError, OverflowError, MemoryError) as exc:
            _fail(f"layer {i} ({spec['class']}): cannot rebuild from its config: {exc}")
    try:
        model = Sequential(*built, dtype=float_dtype(meta.get("dtype"), "dtype metadata"))
    except (TypeError, ValueError) as exc:
        _fail(f"bad architecture: {exc}")
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    if missing:
        _fail(f"the file lacks the model's tensors {missing}")
    state = {}
    for key, current in expected.items():
        value = tensors[key]
        if value.dtype != current.dtype or value.shape != current.shape:
            _fail(
                f"tensor {key!r} is {value.dtype} {value.shape}; the architecture needs "
                f"{current.dtype} {current.shape}"
            )
        state[key] = value
        used.add(key)
    model.load_state_dict(state)
    return model


def _parse(data):
    entries, meta, version, body = _read_header(data)
    tensors = _read_tensors(entries, body)
    used = set()
    model = _build_model(meta, tensors, used)
    optimizer_state = None
    if "optimizer" in meta:
        try:
            optimizer_state = _decode(
                _json_field(meta, "optimizer", "optimizer state"), tensors, used
            )
        except ValueError as exc:
            _fail(f"optimizer state: {exc}")
        if not isinstance(optimizer_state, dict) or not isinstance(
            optimizer_state.get("type"), str
        ):
            _fail("bad header: optimizer state must be a dict with a 'type'")
    metadata = {}
    if "metadata" in meta:
        try:
            metadata = _decode(_json_field(meta, "metadata", "metadata"), tensors, used)
        except ValueError as exc:
            _fail(f"metadata: {exc}")
        if not isinstance(metadata, dict):
            _fail("bad header: metadata must be a JSON object")
    unused = sorted(set(tensors) - used)
    if unused:
        _fail(f"the file holds tensors no part of the model uses: {unused[:5]}")
    return Checkpoint(
        model=model, optimizer_state=optimizer_state, metadata=metadata, format_version=version
    )
