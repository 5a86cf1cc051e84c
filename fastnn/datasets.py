"""Datasets: the built-in handwritten digits, and MNIST read from a directory the user names.

The built-in digits are the Optical Recognition of Handwritten Digits (UCI), the 1,797-sample
copy distributed with scikit-learn. Creators: E. Alpaydin and C. Kaynak, 1998. Licensed
CC BY 4.0 (see ``fastnn/data/README.md``).

MNIST (Y. LeCun, C. Cortes, C. J. C. Burges; Creative Commons Attribution-Share Alike 3.0)
is too large to ship inside the package: :func:`load_mnist` reads its original IDX files
(and Fashion-MNIST's, which have the same format) from wherever the user keeps them."""

import gzip
import os
import zlib
from importlib import resources

import numpy as np

__all__ = ["load_digits", "load_mnist"]


def load_digits():
    """``(X, y)``: X float32 (1797, 64) with pixel intensities 0..16 of 8x8 images (row-major),
    y int64 labels 0..9."""
    digits = resources.files("fastnn").joinpath("data/digits.csv.gz")
    with digits.open("rb") as raw, gzip.open(raw, "rt") as text:
        data = np.loadtxt(text, delimiter=",", dtype=np.int64)
    return data[:, :64].astype(np.float32), data[:, 64].copy()


# IDX: a big-endian header (magic = 0x08 for unsigned bytes << 8 | number of dimensions,
# then one 32-bit size per dimension), then the items, row-major, one byte per value.
_IMAGES, _LABELS = 2051, 2049
_SIDE = 28
_KIND = {_IMAGES: "images", _LABELS: "labels"}
_CHUNK = 1 << 20


def _find(directory, stem, dims):
    """The file for ``stem`` (e.g. "train-images") in either spelling, raw or gzipped."""
    names = [f"{stem}-idx{dims}-ubyte", f"{stem}.idx{dims}-ubyte"]
    candidates = [n + suffix for n in names for suffix in ("", ".gz")]
    for name in candidates:
        path = os.path.join(directory, name)
        if os.path.isfile(path):
            return path
    raise FileNotFoundError(
        f"load_mnist: no {candidates[0]} in {directory!r} (looked for {', '.join(candidates)})"
    )


def _gzip_size_hint(path):
    """The uncompressed size modulo 2**32 from a gzip file's trailer, or None."""
    try:
        with open(path, "rb") as raw:
            raw.seek(0, os.SEEK_END)
            if raw.tell() < 18:  # shorter than an empty gzip member
                return None
            raw.seek(-4, os.SEEK_END)
            return int.from_bytes(raw.read(4), "little")
    except OSError:
        return None


def _read_exactly(f, n):
    data = b""
    while len(data) < n:
        chunk = f.read(n - len(data))
        if not chunk:
            break
        data += chunk
    return data


def _rest_size(f):
    """Bytes left in f, read in chunks and dropped (never held in memory at once)."""
    total = 0
    while chunk := f.read(_CHUNK):
        total += len(chunk)
    return total


def _read_idx(path, magic):
    """The values of one IDX file as a flat uint8 array, and the header's item count."""
    gz = path.endswith(".gz")
    kind = _KIND[magic]
    opener = gzip.open if gz else open
    try:
        with opener(path, "rb") as f:
            head = _read_exactly(f, 4)
            if len(head) < 4:
                raise ValueError(
                    f"{path}: truncated: {len(head)} bytes, not even an IDX "
                    f"header (expected an MNIST {kind} file)"
                )
            found = int.from_bytes(head, "big")
            if found != magic:
                raise ValueError(_magic_message(path, head, found, magic, gz))
            dims = magic & 0xFF
            head = _read_exactly(f, 4 * dims)
            if len(head) < 4 * dims:
                raise ValueError(
                    f"{path}: truncated: the IDX header needs {4 + 4 * dims} "
                    f"bytes, the file has {4 + len(head)}"
                )
            shape = [int.from_bytes(head[i : i + 4], "big") for i in range(0, 4 * dims, 4)]
            if dims == 3 and shape[1:] != [_SIDE, _SIDE]:
                raise ValueError(
                    f"{path}: images are {shape[1]}x{shape[2]} pixels, expected {_SIDE}x{_SIDE}"
                )
            count, header = shape[0], 4 + 4 * dims
            payload = int(np.prod(shape, dtype=np.int64))
            # Check the size before allocating, so that a damaged header cannot ask for
            # terabytes: a raw file's size is known, a gzip file's trailer holds it modulo
            # 2**32 (if it disagrees, the rest is decompressed and counted, then dropped).
            if not gz:
                available = os.fstat(f.fileno()).st_size - header
            elif _gzip_size_hint(path) == (header + payload) % 2**32:
                available = payload
            else:
                available = _rest_size(f)
            if available != payload:
                raise ValueError(_size_message(path, kind, count, payload, available))
        with opener(path, "rb") as f:
            _read_exactly(f, header)
            values = np.empty(payload, np.uint8)
            view, filled = memoryview(values), 0
            while filled < payload:
                n = f.readinto(view[filled:])
                if not n:
                    break
                filled += n
            extra = _rest_size(f)
        if filled != payload or extra:
            raise ValueError(_size_message(path, kind, count, payload, filled + extra))
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise ValueError(
            f"{path}: damaged or truncated gzip data ({exc}); expected a "
            f"gzip-compressed MNIST {kind} file"
        ) from None
    return values, count


def _magic_message(path, head, found, magic, gz):
    kind = _KIND[magic]
    text = (
        f"{path}: not an MNIST {kind} file: magic number {found} (0x{found:08x}), "
        f"expected {magic} (0x{magic:08x})"
    )
    if found in _KIND:
        text += f"; this is an IDX {_KIND[found]} file"
    elif not gz and head[:2] == b"\x1f\x8b":
        text += "; the file is gzip-compressed: give it a .gz suffix"
    return text


def _size_message(path, kind, count, payload, available):
    if available < payload:
        return (
            f"{path}: truncated: the header declares {count} {kind} ({payload} bytes "
            f"after the header), the file has {available}"
        )
    return (
        f"{path}: {available - payload} bytes more than the {count} {kind} its header "
        f"declares ({payload} bytes after the header): damaged, or not an MNIST file"
    )


def load_mnist(directory):
    """Read MNIST (or Fashion-MNIST) from the IDX files in ``directory``.

    Returns ``((X_train, y_train), (X_test, y_test))`` as ``keras.datasets.mnist.load_data()``
    does: ``X`` uint8 of shape ``(n, 28, 28)`` (grey levels 0..255), ``y`` int64 of shape
    ``(n,)``; 60,000 training and 10,000 test images for MNIST. Scale and flatten for a
    Dense network yourself, e.g. ``X_train.reshape(len(X_train), -1) / 255``.

    ``directory`` holds the four files ``train-images-idx3-ubyte``,
    ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte`` and ``t10k-labels-idx1-ubyte``,
    each raw or gzip-compressed (``.gz``), also spelled ``train-images.idx3-ubyte`` and so on.
    When both a raw and a ``.gz`` copy exist, the raw one is read.

    Every file is checked: the magic number (2051 for images, 2049 for labels), 28x28 images,
    a size that matches the header (a truncated file, or one with extra bytes, is refused),
    and as many labels as images. A missing directory or file raises FileNotFoundError; a
    damaged, truncated or foreign file raises ValueError naming the file and what was
    expected against what was found. The data is read straight into its arrays (gzip
    decompressed in one pass), never through Python lists.

    MNIST: Y. LeCun, C. Cortes and C. J. C. Burges, under the Creative Commons
    Attribution-Share Alike 3.0 licence; keep that attribution wherever you ship the files.
    """
    directory = os.fspath(directory)
    if not os.path.exists(directory):
        raise FileNotFoundError(f"load_mnist: no directory {directory!r}")
    if not os.path.isdir(directory):
        raise NotADirectoryError(f"load_mnist: {directory!r} is not a directory")
    splits = []
    for prefix in ("train", "t10k"):
        images_path = _find(directory, f"{prefix}-images", 3)
        labels_path = _find(directory, f"{prefix}-labels", 1)
        images, n_images = _read_idx(images_path, _IMAGES)
        labels, n_labels = _read_idx(labels_path, _LABELS)
        if n_images != n_labels:
            raise ValueError(
                f"load_mnist: {images_path} holds {n_images} images but "
                f"{labels_path} holds {n_labels} labels"
            )
        splits.append((images.reshape(n_images, _SIDE, _SIDE), labels.astype(np.int64)))
    return tuple(splits)
