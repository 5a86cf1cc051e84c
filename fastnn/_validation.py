"""Checks at the public boundary of the Python floor (constructor arguments, user data)."""

import numbers

import numpy as np

FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class NonFiniteError(ValueError, FloatingPointError):
    """A NaN or infinity where the computation cannot go on: a diverged training loss, or
    inference with non-finite weights. Both a ValueError (bad values) and a
    FloatingPointError (what numpy raises for the same condition under errstate)."""


def float_dtype(dtype, name="dtype"):
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{name} must be float32 or float64, got {dtype!r}") from None
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{name} must be float32 or float64, got {dt.name}")
    return dt


class RaggedInputError(ValueError, TypeError):
    """A nested sequence whose rows differ in length (NumPy's "inhomogeneous shape"): a
    ValueError, as NumPy raises for it, and a TypeError (not an array-like), so that either
    ``except`` clause catches it."""


def _nested_shape(x, path, depth=0):
    """``(shape, None)`` for a rectangular nest of lists, tuples and arrays, else
    ``(None, where)`` describing the first place, in reading order, where it is ragged."""
    shape = getattr(x, "shape", None)
    if isinstance(x, np.ndarray) or (shape is not None and hasattr(x, "__array__")):
        return tuple(shape), None  # an array (or a tensor) is rectangular
    if not isinstance(x, (list, tuple)) or depth >= 64:
        return (), None
    first = None
    for i, item in enumerate(x):
        item_shape, where = _nested_shape(item, f"{path}[{i}]", depth + 1)
        if where is not None:
            return None, where
        if first is None:
            first = item_shape
        elif item_shape != first:
            return (
                None,
                f"{path}[0] {_shape_words(first)} but {path}[{i}] {_shape_words(item_shape)}",
            )
    return (len(x),) + (first or ()), None


def _shape_words(shape):
    if shape == ():
        return "is a scalar"
    if len(shape) == 1:
        return f"has {shape[0]} element{'' if shape[0] == 1 else 's'}"
    return f"has shape {shape}"


def _first_non_number(arr):
    """ " (value at index i)" naming the first element of an object or string array that is
    not a number (for strings: that does not even read as one; else the first string), or ""."""
    if arr.dtype.kind not in "OUS" or arr.size == 0:
        return ""
    found = None
    for index, value in np.ndenumerate(arr):
        if arr.dtype.kind == "O":
            if not isinstance(value, numbers.Real):
                found = index, value
                break
            continue
        value = value.item()  # 'a', not np.str_('a')
        if found is None:
            found = index, value
        try:
            float(value)
        except ValueError:
            found = index, value
            break
    if found is None:
        return ""
    index, value = found
    return f" ({value!r} at index {index[0] if len(index) == 1 else index})"


def as_array(x, name, expected="an array-like of numbers", prefix=""):
    """``np.asarray(x)`` whose failures name the argument as the caller knows it (`name`,
    after `prefix`): None, ragged nested lists (which cell differs) and non-array-likes."""
    if isinstance(x, np.ndarray):
        return x
    if x is None:
        raise TypeError(f"{prefix}{name} must be {expected}, got None")
    try:
        return np.asarray(x)
    except Exception as exc:
        where = _nested_shape(x, name)[1] if isinstance(x, (list, tuple)) else None
        if where is not None:
            raise RaggedInputError(
                f"{prefix}{name} is ragged (inhomogeneous): {where}; every row must have "
                "the same length"
            ) from None
        raise TypeError(f"{prefix}{name} must be {expected}, got {type(x).__name__}") from exc


def check_numeric(arr, name, prefix=""):
    """Refuse arrays that are not bool, int or float, naming the first bad element."""
    if arr.dtype.kind not in "biuf":
        raise TypeError(
            f"{prefix}{name} must be numeric (bool, int or float), got dtype "
            f"{arr.dtype}{_first_non_number(arr)}"
        )
    return arr


_AXES = {2: "(n_samples, n_features)", 4: "(n_samples, channels, height, width)"}


def check_rank(X, ndim, name):
    """That the batch X has the rank a model takes (``ndim``; None: any rank from 2 up),
    with the model's axes in the message: the one rank check of the model and of fit."""
    if ndim is None:
        if X.ndim < 2:
            raise ValueError(
                f"{name} must have a samples axis and at least one more, such as "
                f"{_AXES[2]} or {_AXES[4]}, got shape {X.shape}"
            )
    elif X.ndim != ndim:
        axes = _AXES.get(ndim, "(n_samples, ...)")
        raise ValueError(f"{name} must be {ndim}-D {axes} for this model, got shape {X.shape}")


def as_float_array(x, dtype, name, ndim=None, prefix=""):
    """x (any array-like) as an array of `dtype`; never a view the caller could see modified
    (kernels only read their inputs), copied only when the dtype differs."""
    arr = check_numeric(as_array(x, name, prefix=prefix), name, prefix)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{prefix}{name} must be {ndim}-D, got shape {arr.shape}")
    return arr.astype(dtype, copy=False)


def positive_int(value, name, minimum=1):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def real(value, name, minimum=None, maximum=None, min_inclusive=True):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and (value < minimum or (not min_inclusive and value == minimum)):
        bound = ">=" if min_inclusive else ">"
        raise ValueError(f"{name} must be {bound} {minimum}, got {value!r}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value!r}")
    return float(value)


def rng_from(rng):
    """A numpy Generator from None, a seed or a Generator."""
    if rng is None or isinstance(rng, (numbers.Integral, np.random.SeedSequence)):
        return np.random.default_rng(rng)
    if isinstance(rng, np.random.Generator):
        return rng
    raise TypeError(f"rng must be None, an int seed or a numpy.random.Generator, got {rng!r}")


def _loose_key(name):
    return name.replace("_", "").replace("-", "").lower()


def lookup(table, name, what, *, loose=False):
    """``table[name]``: how fastnn looks every name up (initialisers, metrics, optimizers,
    activations, layer classes), only among the entries of `table`, so that nothing is
    imported or evaluated from a name. With `loose`, case, ``_`` and ``-`` do not count
    ("leaky_relu" finds "LeakyReLU"). An unknown name is a ValueError naming `what`, the
    name and every valid one."""
    if isinstance(name, str):
        if name in table:
            return table[name]
        if loose:
            for key, value in table.items():
                if _loose_key(key) == _loose_key(name):
                    return value
    raise ValueError(f"unknown {what} {name!r}; expected one of {', '.join(table)}")


class SparseRows:
    """Rows of a CSR matrix as the sparse kernels take them: ``data``, ``indices`` (int32 or
    int64, in any order within a row, duplicates summed) and ``indptr``, whose entries are
    absolute positions into data and indices, so rows s..e of a matrix are its data, its
    indices and ``indptr[s:e + 1]``, without a copy. ``shape`` is (rows, columns)."""

    __slots__ = ("data", "indices", "indptr", "shape")
    ndim = 2

    def __init__(self, data, indices, indptr, shape):
        self.data, self.indices, self.indptr, self.shape = data, indices, indptr, shape

    def __len__(self):
        return self.shape[0]

    @property
    def dtype(self):
        return self.data.dtype

    def __getitem__(self, key):
        """Rows ``start:stop`` (step 1) as a view, or the rows an integer array names, in its
        order, as new arrays of O(their entries)."""
        if isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step != 1:
                raise ValueError("SparseRows: only row slices with step 1 are views")
            stop = max(start, stop)
            return SparseRows(
                self.data,
                self.indices,
                self.indptr[start : stop + 1],
                (stop - start, self.shape[1]),
            )
        idx = np.asarray(key)
        if idx.ndim != 1 or idx.dtype.kind not in "iu":
            raise TypeError(f"SparseRows: rows must be a slice or a 1-D integer array, got {key!r}")
        if idx.size and (idx.min() < 0 or idx.max() >= self.shape[0]):
            raise IndexError(f"SparseRows: row indices must be in [0, {self.shape[0]})")
        starts = self.indptr[idx]
        lengths = self.indptr[idx + 1] - starts
        indptr = np.zeros(len(idx) + 1, self.indptr.dtype)
        np.cumsum(lengths, out=indptr[1:])
        pos = np.repeat(starts - indptr[:-1], lengths)
        pos += np.arange(indptr[-1], dtype=pos.dtype)
        return SparseRows(self.data[pos], self.indices[pos], indptr, (len(idx), self.shape[1]))

    def __repr__(self):
        return (
            f"SparseRows(shape={self.shape}, nnz={int(self.indptr[-1] - self.indptr[0])}, "
            f"dtype={self.data.dtype})"
        )


def is_sparse(x):
    """Whether x is a SciPy sparse matrix or array (any format), or SparseRows; SciPy is
    recognised by its attributes, so it is never imported here."""
    return isinstance(x, SparseRows) or (hasattr(x, "tocsr") and hasattr(x, "nnz"))


def as_sparse_rows(x, dtype, name):
    """A SciPy sparse matrix or array, or SparseRows, as SparseRows of float `dtype` for the
    kernels. CSR is used as it is (its data copied only to change the dtype); CSC and the other
    formats are converted to CSR once, in O(entries). Indices are never sorted, and the
    caller's matrix is never modified."""
    if not isinstance(x, SparseRows):
        if len(x.shape) != 2:
            raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {x.shape}")
        csr = x if x.format == "csr" else x.tocsr()
        x = SparseRows(csr.data, csr.indices, csr.indptr, tuple(csr.shape))
    data, indices, indptr = np.asarray(x.data), np.asarray(x.indices), np.asarray(x.indptr)
    check_numeric(data, f"{name}.data")
    if indices.dtype not in (np.int32, np.int64) or indptr.dtype != indices.dtype:
        kind = np.int64 if np.int64 in (indices.dtype, indptr.dtype) else np.int32
        indices, indptr = indices.astype(kind), indptr.astype(kind)
    if data is x.data and indices is x.indices and data.dtype == dtype:
        return x
    return SparseRows(data.astype(dtype, copy=False), indices, indptr, x.shape)


def elementwise_view(a):
    """`a`, or its transpose when only that is C-contiguous (an F-contiguous weight): what
    an elementwise kernel or a reduction over every element may take in its place."""
    return a.T if not a.flags.c_contiguous and a.flags.f_contiguous else a
