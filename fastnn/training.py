"""The training loop behind ``Sequential.fit``, ``evaluate`` and ``predict``.

Mini-batches are gathered from any array-like (``np.memmap`` and duck arrays such as h5py
datasets included), so the dataset is never copied whole, and resident memory stays flat
however large a memory-mapped X is: shuffled batches of a file-backed memmap are read from
the file with ``pread`` (through the page cache, which is not this process's memory), and
pages that sequential passes touched are handed back to the kernel as they go.

Batches are batch-first arrays of any rank from 2 up: ``(n_samples, n_features)``, or
images ``(n_samples, channels, height, width)``; the model's first layer that declares a
rank fixes it (:func:`input_ndim`). Rows are gathered whatever their shape.

Public helpers for other modules that feed data to a model: :func:`check_pair` (the
``(X, y)`` checks of ``fit``), :func:`input_ndim` (the rank of the batches a model
takes), :func:`loss_target` (a target batch in the form the loss takes) and
:class:`PageReleaser` (bounded resident memory over a memory-mapped array).
:func:`lr_sweep` runs ``fit`` once per learning rate.

Several processes training one model on shards of the data (:mod:`fastnn.distributed`)
need nothing else from the caller: ``fit`` learns of them from the optimizer's ``group``
(a :class:`fastnn.distributed.ProcessGroup`: ``rank``, ``size``, ``allgather(values)``).
Then every rank takes the same number of steps per epoch, the least that any rank's shard
allows (the rows beyond it wait for another epoch's shuffle), since each step is a
collective; the epoch's loss and metrics, and the validation ones, are the means over the
ranks weighted by their sample counts (exactly the whole data's for the loss, accuracy,
mse, mae and log_loss; R2 is the weighted mean of the ranks' R2); a stop that a callback
decides at the end of an epoch on any rank stops every rank; the progress bar and the
callbacks that write files (``writes_files``: checkpoints, CSV logs) run on rank 0 only.
Logs of a batch (``on_batch_end``) are the rank's own."""

import math
import mmap
import os
import time

import numpy as np

from fastnn import metrics as M
from fastnn import optim
from fastnn._progress import ProgressBar
from fastnn._validation import (
    FLOAT_DTYPES,
    NonFiniteError,
    SparseRows,
    as_array,
    as_sparse_rows,
    check_rank,
    is_sparse,
    positive_int,
    real,
)
from fastnn.callbacks import Callback, History
from fastnn.losses import SoftmaxCrossEntropy
from fastnn.plotting import plot_lr_sweep

__all__ = [
    "fit",
    "evaluate",
    "predict",
    "lr_sweep",
    "check_pair",
    "input_ndim",
    "loss_target",
    "PageReleaser",
]

#: read volume after which a memmap's pages are dropped from the resident set
_RELEASE_BYTES = 64 << 20
#: what one scattered row read maps: Linux maps up to 64 KiB of cached pages around a fault
_FAULT_AROUND = 64 << 10


def _as_rows(data, name):
    """An indexable array whose first axis is samples. Arrays and memmaps are used as they
    are, without a copy, and so are duck arrays (``shape``, ``ndim``, ``dtype`` and row
    indexing, like h5py datasets); lists and pandas objects become arrays. SciPy sparse
    matrices become SparseRows (CSR's arrays as they are; other formats converted once)."""
    if is_sparse(data):
        dtype = data.dtype if data.dtype in FLOAT_DTYPES else np.dtype(np.float64)
        return as_sparse_rows(data, dtype, name)
    if isinstance(data, np.ndarray) or (
        all(hasattr(data, a) for a in ("shape", "ndim", "dtype", "__getitem__", "__len__"))
        and not hasattr(data, "iloc")
    ):
        arr = data
    else:
        arr = as_array(data, name)  # names None and ragged lists
    if arr.ndim == 0:
        raise ValueError(f"{name} must have a samples axis, got a scalar")
    return arr


class PageReleaser:
    """Tells the kernel to drop the pages of a memory-mapped array from this process once
    about _RELEASE_BYTES have been read through it: call :meth:`read` after each chunk of
    rows and :meth:`release` at the end of a pass (for any other array both do nothing).
    Without this, every page a pass touches stays mapped and counts as resident, so one
    epoch over a 2 GB memmap would grow the process by 2 GB. Only shared mappings qualify:
    MADV_DONTNEED would discard the private changes of a copy-on-write (mode "c") map."""

    def __init__(self, arr):
        self.mm = None
        # Views, and duck arrays wrapping an array, lead to the memmap through .base.
        base = arr
        while base is not None and not isinstance(base, np.memmap):
            base = getattr(base, "base", None)
        mm = getattr(base, "_mmap", None)
        if mm is not None and base.mode in ("r", "r+", "w+") and hasattr(mmap, "MADV_DONTNEED"):
            self.mm = mm
            self.row_bytes = max(int(np.prod(arr.shape[1:], dtype=np.int64)) * base.itemsize, 1)
        self.pending = 0

    def read(self, n_rows, contiguous):
        """Account for `n_rows` rows just read, consecutive ones when `contiguous` (a
        scattered row maps a whole fault-around window)."""
        if self.mm is None:
            return
        self.pending += n_rows * (
            self.row_bytes if contiguous else max(self.row_bytes, _FAULT_AROUND)
        )
        if self.pending >= _RELEASE_BYTES:
            self.release()

    def release(self):
        """Drop the pages read so far from this process's resident set."""
        if self.mm is not None and not self.mm.closed:
            self.mm.madvise(mmap.MADV_DONTNEED)
        self.pending = 0


class _FileRows:
    """Rows of a file-backed np.memmap (or a view of one whose rows are contiguous) read
    with pread into a fresh array. Touching a 2 GB memmap at random rows through the
    mapping maps a 64 KiB window per row, so either resident memory grows by the file size
    or, dropping pages often, every row costs a page fault, which is far slower than one
    read per run of adjacent rows."""

    def __init__(self, arr, fd, position, row_bytes):
        self.arr, self.fd, self.position, self.row_bytes = arr, fd, position, row_bytes
        self.stride = arr.strides[0]

    @classmethod
    def open(cls, arr):
        if not isinstance(arr, np.ndarray) or arr.ndim == 0:
            return None
        origin = arr
        while isinstance(origin, np.ndarray) and not isinstance(origin.base, mmap.mmap):
            origin = origin.base
        if (
            not isinstance(origin, np.memmap)
            or not origin.filename
            or origin.mode not in ("r", "r+", "w+")
        ):
            return None  # a copy-on-write map's changes are not in the file
        row_shape = arr.shape[1:]
        row_bytes = arr.itemsize * int(np.prod(row_shape, dtype=np.int64))
        if (
            arr.strides[1:] != np.empty((1,) + row_shape, arr.dtype).strides[1:]
            or arr.strides[0] < row_bytes
            or row_bytes == 0
        ):
            return None
        offset = arr.__array_interface__["data"][0] - origin.__array_interface__["data"][0]
        try:
            fd = os.open(origin.filename, os.O_RDONLY)
        except OSError:
            return None
        return cls(arr, fd, origin.offset + offset, row_bytes)

    def take(self, idx):
        """Rows idx (sorted, distinct), consecutive rows in one read where they are adjacent
        in the file."""
        out = np.empty((len(idx),) + self.arr.shape[1:], dtype=self.arr.dtype)
        buf = memoryview(out.reshape(-1).view(np.uint8))
        if self.stride == self.row_bytes:
            starts = np.flatnonzero(np.diff(idx) != 1) + 1
            bounds = zip(
                np.concatenate(([0], starts)).tolist(),
                np.concatenate((starts, [len(idx)])).tolist(),
            )
        else:
            bounds = ((k, k + 1) for k in range(len(idx)))
        for a, b in bounds:
            self._read(buf[a * self.row_bytes : b * self.row_bytes], int(idx[a]))
        return out

    def _read(self, view, row):
        position = self.position + row * self.stride
        while len(view):
            got = os.preadv(self.fd, [view], position)
            if got == 0:
                raise OSError(f"{self.arr.filename}: file ends before row {row} (truncated?)")
            view, position = view[got:], position + got

    def close(self):
        os.close(self.fd)


def check_pair(X, y, xname="X", yname="y", *, model=None):
    """``(X, y)`` as row-indexable arrays, checked as ``fit`` checks them: arrays, memmaps
    and duck arrays (h5py datasets) as they are, without a copy, lists and pandas objects
    converted; X batch-first, of the rank `model` takes (see :func:`input_ndim`), or of
    any rank from 2 up without a model or when no layer fixes one; as many samples in y
    as in X. Errors name `xname` and `yname`."""
    X, y = _as_rows(X, xname), _as_rows(y, yname)
    check_rank(X, None if model is None else input_ndim(model), xname)
    if len(y) != len(X):
        raise ValueError(f"{yname} has {len(y)} samples, {xname} has {len(X)}")
    return X, y


def input_ndim(model):
    """The rank of the batches `model` takes (``Sequential.input_ndim``; a model-like object
    without one is asked its layers): 2 for (n_samples, n_features), 4 for images, None when
    every layer takes any rank."""
    if hasattr(model, "input_ndim"):
        return model.input_ndim
    return next((layer.input_ndim for layer in model.layers if layer.input_ndim is not None), None)


def loss_target(yb, loss, dtype, width):
    """The target batch `yb` (an array) in the form `loss` takes for outputs of `dtype` with
    `width` columns, as ``fit`` hands it over: class labels stay 1-D, numeric targets take
    the model's dtype (as X does), and regression targets of a one-column output become a
    column."""
    if isinstance(loss, SoftmaxCrossEntropy) and yb.ndim == 1:
        return yb
    if yb.dtype.kind in "biuf" and yb.dtype != dtype:  # one-hot ints too
        yb = yb.astype(dtype)
    return yb.reshape(-1, 1) if yb.ndim == 1 and width == 1 else yb


def _output_width(model):
    """The width of the model's output, from the layers' declared widths."""
    width = model.in_features
    for layer in model.layers:
        width = (
            layer.output_features(width)
            if width is not None
            else getattr(layer, "out_features", None)
        )
    return width


def _metric_objects(names, loss):
    if isinstance(names, str):
        names = (names,)
    return {name: M.get(name, loss) for name in names}


def _slices(n, batch_size, releasers):
    """Consecutive (start, stop) batches, releasing memmap pages as they are read."""
    for start in range(0, n, batch_size):
        stop = min(n, start + batch_size)
        yield start, stop
        for r in releasers:
            r.read(stop - start, contiguous=True)
    for r in releasers:
        r.release()


def evaluate(model, X, y, *, loss, metrics=(), batch_size=1024):
    """Loss (plus l1/l2 penalties, as in training) and metrics over (X, y), in batches."""
    X, y = check_pair(X, y, model=model)
    batch_size = positive_int(batch_size, "batch_size")
    n = len(X)
    if n == 0:
        raise ValueError("X: evaluate needs at least one sample")
    mets = _metric_objects(metrics, loss)
    weighted = getattr(loss, "reduction", "mean") == "mean"
    total = 0.0
    for start, stop in _slices(n, batch_size, (PageReleaser(X), PageReleaser(y))):
        xb, yb = X[start:stop], y[start:stop]
        out = model.forward(xb)
        tb = loss_target(np.asarray(yb), loss, out.dtype, out.shape[1])
        value, _ = loss(out, tb)
        total += value * (stop - start) / n if weighted else value
        for m in mets.values():
            m.update(out, tb)
    logs = {"loss": total + model.regularization_loss()}
    logs.update({name: m.result() for name, m in mets.items()})
    return logs


def predict(model, X, batch_size=4096):
    """Inference outputs for X, computed in batches so memory stays bounded for large X."""
    X = _as_rows(X, "X")
    check_rank(X, input_ndim(model), "X")
    batch_size = positive_int(batch_size, "batch_size")
    n = len(X)
    if n <= batch_size:
        return model.forward(X[:n])
    out = None
    for start, stop in _slices(n, batch_size, (PageReleaser(X),)):
        yb = model.forward(X[start:stop])
        if out is None:
            out = np.empty((n,) + yb.shape[1:], dtype=yb.dtype)
        out[start:stop] = yb
    return out


def fit(
    model,
    X,
    y,
    *,
    loss,
    optimizer,
    epochs=1,
    batch_size=32,
    metrics=(),
    validation_data=None,
    validation_split=0.0,
    shuffle=True,
    callbacks=(),
    seed=None,
    verbose=0,
):
    X, y = check_pair(X, y, model=model)
    epochs = positive_int(epochs, "epochs", minimum=0)
    batch_size = positive_int(batch_size, "batch_size")
    validation_split = real(validation_split, "validation_split", minimum=0.0, maximum=1.0)
    if verbose not in (0, 1, 2):
        raise ValueError(f"verbose must be 0, 1 or 2, got {verbose!r}")
    if not callable(loss):
        raise TypeError(f"loss must be a loss object such as SoftmaxCrossEntropy(), got {loss!r}")
    if not hasattr(optimizer, "step"):
        raise TypeError(f"optimizer must be an optimizer such as optim.SGD(...), got {optimizer!r}")
    if isinstance(callbacks, Callback):
        raise TypeError(
            "callbacks must be a list of Callback instances, got a single "
            f"{type(callbacks).__name__}; wrap it in a list"
        )
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be Callback instances, got {type(cb).__name__}")

    # The processes that train this model together, each on its shard (fastnn.distributed).
    group = getattr(optimizer, "group", None)
    if group is not None and group.rank != 0:
        verbose = 0
        callbacks = [cb for cb in callbacks if not cb.writes_files]

    if validation_data is not None:
        if len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        X_val, y_val = check_pair(
            *validation_data, "validation_data[0]", "validation_data[1]", model=model
        )
    elif validation_split > 0:
        # Keras's rule: the last fraction of the samples, taken before any shuffling.
        split = int(len(X) * (1 - validation_split))
        if split <= 0 or split >= len(X):
            raise ValueError(
                f"validation_split={validation_split} leaves no training or no validation samples "
                f"out of {len(X)}"
            )
        X, X_val, y, y_val = X[:split], X[split:], y[:split], y[split:]
    else:
        X_val = y_val = None

    n = len(X)
    if n == 0:
        raise ValueError("X: fit needs at least one sample")
    rng = np.random.default_rng(seed)
    history = History()
    # Progress first so its line precedes what other callbacks print; History last so it
    # records what callbacks added to the logs.
    callbacks = ([ProgressBar(verbose)] if verbose else []) + callbacks + [history]
    n_batches = (n + batch_size - 1) // batch_size
    if group is not None:
        n_batches = int(group.allgather([n_batches]).min())
    params = {
        "epochs": epochs,
        "steps": n_batches,
        "batch_size": batch_size,
        "samples": n,
        "verbose": verbose,
    }
    model.optimizer = optimizer
    model.history = history
    for cb in callbacks:
        cb.set_model(model)
        cb.set_params(params)
    model.stop_training = False
    mets = _metric_objects(metrics, loss)
    files = (_FileRows.open(X), _FileRows.open(y)) if shuffle else (None, None)
    releasers = tuple(PageReleaser(a if f is None else None) for a, f in zip((X, y), files))
    try:
        _train(
            model,
            X,
            y,
            X_val,
            y_val,
            loss,
            optimizer,
            epochs,
            batch_size,
            n_batches,
            shuffle,
            rng,
            callbacks,
            mets,
            releasers,
            files,
            group,
        )
    finally:
        for f in files:
            if f is not None:
                f.close()
    return history


def _train(
    model,
    X,
    y,
    X_val,
    y_val,
    loss,
    optimizer,
    epochs,
    batch_size,
    n_batches,
    shuffle,
    rng,
    callbacks,
    mets,
    releasers,
    files,
    group,
):
    n = len(X)
    out_width = _output_width(model)

    for cb in callbacks:
        cb.on_train_begin({})
    for epoch in range(epochs):
        t0 = time.perf_counter()
        for cb in callbacks:
            cb.on_epoch_begin(epoch, {})
        lr = getattr(optimizer, "lr", None)
        order = rng.permutation(n) if shuffle else None
        for m in mets.values():
            m.reset()
        seen, loss_sum = 0, 0.0
        for b in range(n_batches):
            start, stop = b * batch_size, min(n, (b + 1) * batch_size)
            if order is None:
                xb, yb = X[start:stop], y[start:stop]
            else:
                # Sorted rows read a memmap sequentially; the batch's gradient is the same set.
                idx = np.sort(order[start:stop])
                xb, yb = (
                    X[idx] if files[0] is None else files[0].take(idx),
                    y[idx] if files[1] is None else files[1].take(idx),
                )
            for r in releasers:
                r.read(stop - start, contiguous=order is None)
            for cb in callbacks:
                cb.on_batch_begin(b, {"batch": b, "size": stop - start})
            tb = loss_target(np.asarray(yb), loss, model.dtype, out_width)
            value, out = model.train_on_batch(xb, tb, loss=loss, optimizer=optimizer)
            finite = math.isfinite(value)
            loss_sum += value * (stop - start)
            seen += stop - start
            for m in mets.values():
                m.update(out, tb)
            batch_logs = {"batch": b, "size": stop - start, "loss": value}
            for cb in callbacks:
                cb.on_batch_end(b, batch_logs)
            if not finite and not model.stop_training:  # no callback (TerminateOnNaN) took it
                raise NonFiniteError(_divergence_message(model, epoch, b, n_batches, xb, yb))
            if model.stop_training:
                break
        for r in releasers:
            r.release()
        logs = {"loss": loss_sum / max(seen, 1) + model.regularization_loss()}
        logs.update({name: m.result() for name, m in mets.items()})
        if group is not None:
            logs = _rank_mean(group, logs, seen)
        if X_val is not None:
            if model.nonfinite_state() is None:
                val = evaluate(model, X_val, y_val, loss=loss, metrics=tuple(mets))
            else:  # a callback stopped a diverged run: inference would refuse the weights
                val = dict.fromkeys(("loss", *mets), math.nan)
            if group is not None:
                val = _rank_mean(group, val, len(X_val))
            logs.update({f"val_{k}": v for k, v in val.items()})
        if lr is not None:
            logs["lr"] = lr
        logs["time"] = time.perf_counter() - t0
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if group is not None:
            model.stop_training = bool(group.allgather([model.stop_training]).max())
        if model.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end({})


def _rank_mean(group, logs, weight):
    """The mean of each value of `logs` over the ranks of `group`, weighted by each rank's
    `weight`, added in rank order (so every rank gets the same bits)."""
    keys = list(logs)
    rows = group.allgather([weight] + [logs[k] for k in keys])
    weights = rows[:, 0]
    means = (rows[:, 1:] * weights[:, None]).sum(axis=0) / weights.sum()
    return dict(zip(keys, means.tolist()))


def _divergence_message(model, epoch, batch, n_batches, xb, yb):
    """Why the loss of a batch is not finite, as far as a cheap look can tell."""
    where = (
        f"fit: the loss or its gradient is not finite at epoch {epoch + 1}, batch "
        f"{batch + 1} of {n_batches}"
    )
    bad = model.nonfinite_state()
    if _has_nonfinite(xb):
        cause = "this batch of X contains NaN or infinity"
    elif _has_nonfinite(yb):
        cause = "this batch of y contains NaN or infinity"
    elif bad is not None:
        cause = f"weight {bad!r} is no longer finite: training diverged; lower the learning rate"
    else:
        cause = (
            "the outputs overflowed: training is diverging; lower the learning rate or "
            "scale the inputs"
        )
    return (
        f"{where}: {cause}. The weights are those before this batch. Pass "
        "callbacks.TerminateOnNaN() to stop training instead of raising"
    )


def _has_nonfinite(batch):
    if isinstance(batch, SparseRows):
        batch = batch.data[batch.indptr[0] : batch.indptr[-1]]
    batch = np.asarray(batch)
    return batch.dtype.kind in "fc" and not np.isfinite(batch).all()


def lr_sweep(
    build_model,
    X,
    y,
    *,
    loss,
    lrs,
    optimizer_factory=None,
    epochs=1,
    steps=None,
    batch_size=32,
    seed=0,
    path=None,
):
    """Train the same architecture from the same initial weights once per learning rate and
    record the training loss after every update: the curves to look at when choosing a
    learning rate (too low crawls, too high is noisy or diverges).

    ``build_model()`` returns a fresh model (it is called once per rate; every run starts
    from the first call's weights). ``optimizer_factory(model, lr)`` makes the optimizer
    (default SGD). Each run lasts ``epochs`` epochs or ``steps`` updates, whichever ends
    first, and stops early if the loss stops being finite. Returns ``{lr: array of per-update
    losses}``; with ``path``, also writes a PNG of loss against update count, all rates on
    one figure (:func:`fastnn.plotting.plot_lr_sweep`, needs matplotlib)."""
    if not callable(build_model):
        raise TypeError(f"build_model must be a callable returning a model, got {build_model!r}")
    try:
        lrs = [float(lr) for lr in lrs]
    except (TypeError, ValueError):
        raise TypeError(f"lrs must be a sequence of numbers, got {lrs!r}") from None
    if not lrs or not all(math.isfinite(lr) and lr > 0 for lr in lrs):
        raise ValueError(f"lrs must be a non-empty sequence of numbers > 0, got {lrs!r}")
    if steps is not None:
        steps = positive_int(steps, "steps")
    if optimizer_factory is None:

        def optimizer_factory(model, lr):
            return optim.SGD(model, lr=lr)

    class _Recorder(Callback):
        def __init__(self):
            self.losses = []

        def on_batch_end(self, batch, logs=None):
            self.losses.append(logs["loss"])
            # A diverged run is an expected outcome of a sweep, not an error to warn about.
            if (steps is not None and len(self.losses) >= steps) or not math.isfinite(logs["loss"]):
                self.model.stop_training = True

    initial = build_model().state_dict()
    curves = {}
    for lr in lrs:
        model = build_model()
        model.load_state_dict(initial)
        recorder = _Recorder()
        fit(
            model,
            X,
            y,
            loss=loss,
            optimizer=optimizer_factory(model, lr),
            epochs=epochs,
            batch_size=batch_size,
            seed=seed,
            callbacks=[recorder],
            verbose=0,
        )
        curves[lr] = np.asarray(recorder.losses, dtype=np.float64)
    if path is not None:
        plot_lr_sweep(curves, path)
    return curves
