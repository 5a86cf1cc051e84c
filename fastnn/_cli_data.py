"""The command line's data files (``fastnn train``, ``evaluate``, ``predict``): reading
CSV / .npy / .npz tables, picking the target, and per-column statistics streamed over row
chunks (the model's Standardize layer scales the features with them).

How ``--target`` names the target:

- CSV (header row required): a column name.
- ``.npy`` (a 2-D numeric array): a column index (negative counts from the end). The file is
  memory-mapped; when the target is the first or last column the features are a view, so
  nothing is copied.
- ``.npz``: the name of an array in the archive (the features are the array ``X``, or the
  only other array), or a column index into ``X``.
"""

import csv
import os

import numpy as np

from fastnn.training import PageReleaser

#: rows per chunk when streaming statistics over a (memory-mapped) array
_CHUNK = 8192


class DataError(ValueError):
    """A problem with the user's data file, reported as one line."""


class Data:
    """Features ``X`` (rows x features, possibly a memmap view), optional target ``y`` (raw
    values: strings for CSV), ``feature_names`` (CSV only) and ``target_column`` (.npy)."""

    def __init__(self, X, y=None, feature_names=None, target_column=None):
        self.X, self.y = X, y
        self.feature_names = feature_names
        self.target_column = target_column


def _kind(path):
    if not os.path.isfile(path):
        raise DataError(f"DATA: no such file: {path}")
    ext = os.path.splitext(path)[1].lower()
    if ext not in (".csv", ".npy", ".npz"):
        raise DataError(f"DATA: expected a .csv, .npy or .npz file, got {path}")
    return ext


def read(path, target=None, feature_names=None, n_features=None, target_column=None):
    """The data in `path`. With `target`, also the target; with `feature_names` (CSV) or
    `n_features` (.npy/.npz), the features a saved model expects."""
    ext = _kind(path)
    if ext == ".csv":
        return _read_csv(path, target, feature_names)
    if ext == ".npy":
        try:
            arr = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError) as exc:
            raise DataError(f"DATA: cannot read {path} as .npy: {exc}") from None
        return _split_array(_numeric(arr, path), target, n_features, target_column, path)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except (ValueError, OSError) as exc:
        raise DataError(f"DATA: cannot read {path} as .npz: {exc}") from None
    if target is not None and target in arrays:
        rest = [k for k in arrays if k != target]
        key = "X" if "X" in rest else (rest[0] if len(rest) == 1 else None)
        if key is None:
            raise DataError(f"DATA: {path} holds {sorted(arrays)}; name the features array X")
        X = _numeric(arrays[key], f"{path}[{key}]")
        y = arrays[target]
        if len(y) != len(X):
            raise DataError(f"DATA: {path}: {target} has {len(y)} rows, {key} has {len(X)}")
        return Data(X, y)
    key = "X" if "X" in arrays else (next(iter(arrays)) if len(arrays) == 1 else None)
    if key is None:
        raise DataError(
            f"DATA: {path} holds {sorted(arrays)}; name the features array X"
            + ("" if target is None else " or pass --target as one of them")
        )
    return _split_array(
        _numeric(arrays[key], f"{path}[{key}]"), target, n_features, target_column, path
    )


def _numeric(arr, where):
    if arr.ndim != 2:
        raise DataError(
            f"DATA: {where} must be a 2-D array (rows x columns), got shape {arr.shape}"
        )
    if arr.dtype.kind not in "biuf":
        raise DataError(f"DATA: {where} must be numeric, got dtype {arr.dtype}")
    return arr


def _column_index(target, width, path):
    try:
        j = int(target)
    except ValueError:
        raise DataError(
            f"--target: for {os.path.basename(path)} give a column index, got {target!r}"
        ) from None
    if not -width <= j < width:
        raise DataError(f"--target: column {j} out of range for {width} columns")
    return j % width


def _split_array(arr, target, n_features, target_column, path):
    width = arr.shape[1]
    if target is None:
        if (
            n_features is not None
            and width == n_features + 1
            and target_column is not None
            and target_column < width
        ):
            return Data(_drop_column(arr, target_column))
        return Data(arr)
    j = _column_index(target, width, path)
    return Data(_drop_column(arr, j), _column(arr, j), target_column=j)


def _drop_column(arr, j):
    """The array without column j: a view when j is first or last, else a copy."""
    if j == arr.shape[1] - 1:
        return arr[:, :-1]
    if j == 0:
        return arr[:, 1:]
    return np.delete(arr, j, axis=1)


def _column(arr, j):
    """Column j as an in-memory array, read in chunks so a memmap's pages are released."""
    out = np.empty(len(arr), dtype=arr.dtype)
    pages = PageReleaser(arr)
    for start in range(0, len(arr), _CHUNK):
        out[start : start + _CHUNK] = arr[start : start + _CHUNK, j]
        pages.read(min(_CHUNK, len(arr) - start), contiguous=True)
    pages.release()
    return out


def _read_csv(path, target, feature_names):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    if not rows:
        raise DataError(f"DATA: {path} is empty")
    header = [h.strip() for h in rows[0]]
    body = [r for r in rows[1:] if r]
    if not body:
        raise DataError(f"DATA: {path} has a header row but no data rows")
    for i, r in enumerate(body):
        if len(r) != len(header):
            raise DataError(
                f"DATA: {path} row {i + 2} has {len(r)} fields, the header has {len(header)}"
            )
    if target is not None and target not in header:
        shown = ", ".join(header[:12]) + (
            f", ... ({len(header)} columns)" if len(header) > 12 else ""
        )
        raise DataError(f"--target: unknown column {target!r}; the columns are {shown}")
    if feature_names is None:
        feature_names = [h for h in header if h != target]
    else:
        missing = [h for h in feature_names if h not in header]
        if missing:
            raise DataError(f"DATA: {path} lacks the model's feature columns {missing[:5]}")
    cells = np.array(body, dtype=str)
    columns = [header.index(h) for h in feature_names]
    try:
        X = cells[:, columns].astype(np.float64)
    except ValueError:
        raise DataError(_first_bad_cell(cells, columns, header, path)) from None
    y = None if target is None else np.char.strip(cells[:, header.index(target)])
    return Data(X, y, feature_names=feature_names)


def _first_bad_cell(cells, columns, header, path):
    for j in columns:
        for i, value in enumerate(cells[:, j]):
            try:
                float(value)
            except ValueError:
                return (
                    f"DATA: {path} column {header[j]!r}, row {i + 2}: non-numeric value "
                    f"{str(value)!r}"
                )
    return f"DATA: {path} has non-numeric values"


# ---- targets ------------------------------------------------------------------------------


def numeric_values(y):
    """y as float64 if every value is a number, else None."""
    try:
        return np.asarray(y, dtype=np.float64)
    except ValueError:
        return None


def infer_task(y):
    """'classification' for text labels or a few distinct whole numbers, else 'regression'."""
    values = numeric_values(y)
    if values is None:
        return "classification"
    if values.ndim == 1 and np.all(values == np.round(values)) and len(np.unique(values)) <= 50:
        return "classification"
    return "regression"


def class_values(y):
    """The sorted distinct labels as JSON-friendly Python values (ints where whole)."""
    if np.asarray(y).ndim != 1:
        raise DataError(
            f"--target: classification needs one label per row, got shape {np.shape(y)}"
        )
    values = numeric_values(y)
    if values is None:
        return [str(v) for v in np.unique(np.asarray(y, dtype=str))]
    if not np.all(np.isfinite(values)):
        raise DataError("--target: labels must be finite numbers or text")
    uniq = np.unique(values)
    return [int(v) if v == int(v) else float(v) for v in uniq]


def encode_labels(y, classes):
    """Class indices 0..k-1 of the labels y, given the class list of a trained model."""
    numeric = not any(isinstance(c, str) for c in classes)
    values = numeric_values(y) if numeric else np.asarray(y, dtype=str)
    if values is None:
        raise DataError("--target: the model was trained on numeric labels, the data has text")
    keys = np.asarray(classes, dtype=np.float64 if numeric else str)
    idx = np.searchsorted(keys, values)
    idx = np.clip(idx, 0, len(keys) - 1)
    unknown = keys[idx] != values
    if np.any(unknown):
        raise DataError(
            f"--target: labels the model does not know: "
            f"{sorted(set(np.asarray(values)[unknown].tolist()))[:5]}"
        )
    return idx.astype(np.int64)


# ---- features -----------------------------------------------------------------------------


def mean_std(X):
    """Per-column mean and standard deviation in float64, streamed over row chunks (a
    constant column gets std 1, so scaling leaves it at 0 rather than dividing by 0)."""
    n = len(X)
    total = np.zeros(X.shape[1])
    squares = np.zeros(X.shape[1])
    pages = PageReleaser(X)
    shift = np.asarray(X[0], dtype=np.float64)  # shifted sums keep the variance accurate
    for start in range(0, n, _CHUNK):
        chunk = np.asarray(X[start : start + _CHUNK], dtype=np.float64) - shift
        total += chunk.sum(axis=0)
        squares += (chunk * chunk).sum(axis=0)
        pages.read(len(chunk), contiguous=True)
    pages.release()
    mean = total / n
    std = np.sqrt(np.maximum(squares / n - mean * mean, 0.0))
    std[std == 0] = 1.0
    return mean + shift, std
