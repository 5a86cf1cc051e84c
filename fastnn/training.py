"""The training loop behind ``Sequential.fit`` and ``Sequential.evaluate``.

Mini-batches are gathered row by row from any array-like (``np.memmap`` included), so the
dataset is never copied whole: memory stays flat however large X is."""
import math
import sys
import time

import numpy as np

from fastnn import kernels as K
from fastnn import metrics as M
from fastnn._validation import NonFiniteError, positive_int, real
from fastnn.callbacks import Callback, History
from fastnn.losses import SoftmaxCrossEntropy

__all__ = ["fit", "evaluate"]


def _as_rows(data, name):
    """An indexable array whose first axis is samples (lists become arrays; arrays and
    memmaps are used as they are, without a copy)."""
    if isinstance(data, np.ndarray):
        arr = data
    else:
        try:
            arr = np.asarray(data)
        except Exception as exc:
            raise TypeError(f"{name} must be array-like, got {type(data).__name__}") from exc
    if arr.ndim == 0:
        raise ValueError(f"{name} must have a samples axis, got a scalar")
    return arr


def _check_pair(X, y, xname="X", yname="y"):
    X, y = _as_rows(X, xname), _as_rows(y, yname)
    if X.ndim != 2:
        raise ValueError(f"{xname} must be 2-D (n_samples, n_features), got shape {X.shape}")
    if len(y) != len(X):
        raise ValueError(f"{yname} has {len(y)} samples, {xname} has {len(X)}")
    return X, y


def _target(yb, output, loss):
    """A target batch in the loss's form: labels stay 1-D, regression targets of a
    one-column output become a column."""
    if isinstance(loss, SoftmaxCrossEntropy) and yb.ndim == 1:
        return yb
    if yb.dtype.kind == "f" and yb.dtype != output.dtype:
        # Probability rows or regression targets follow the model's dtype, as X does.
        return yb.astype(output.dtype)
    if yb.ndim == 1 and output.ndim == 2 and output.shape[1] == 1:
        return yb.reshape(-1, 1)
    return yb


def _metric_objects(names, loss):
    if isinstance(names, str):
        names = (names,)
    return {name: M.get(name, loss) for name in names}


def evaluate(model, X, y, *, loss, metrics=(), batch_size=1024):
    """Loss (plus l1/l2 penalties, as in training) and metrics over (X, y), in batches."""
    X, y = _check_pair(X, y)
    batch_size = positive_int(batch_size, "batch_size")
    n = len(X)
    if n == 0:
        raise ValueError("X: evaluate needs at least one sample")
    mets = _metric_objects(metrics, loss)
    weighted = getattr(loss, "reduction", "mean") == "mean"
    total = 0.0
    for start in range(0, n, batch_size):
        xb, yb = X[start:start + batch_size], y[start:start + batch_size]
        out = model.forward(xb)
        tb = _target(np.asarray(yb), out, loss)
        value, _ = loss(out, tb)
        total += value * len(xb) / n if weighted else value
        for m in mets.values():
            m.update(out, tb)
    logs = {"loss": total + model.regularization_loss()}
    logs.update({name: m.result() for name, m in mets.items()})
    return logs


def fit(model, X, y, *, loss, optimizer, epochs=1, batch_size=32, metrics=(),
        validation_data=None, validation_split=0.0, shuffle=True, callbacks=(), seed=None,
        verbose=0):
    X, y = _check_pair(X, y)
    epochs = positive_int(epochs, "epochs", minimum=0)
    batch_size = positive_int(batch_size, "batch_size")
    validation_split = real(validation_split, "validation_split", minimum=0.0, maximum=1.0)
    if not callable(loss):
        raise TypeError(f"loss must be a loss object such as SoftmaxCrossEntropy(), got {loss!r}")
    if not hasattr(optimizer, "step"):
        raise TypeError(f"optimizer must be an optimizer such as optim.SGD(...), got {optimizer!r}")
    callbacks = list(callbacks)
    for cb in callbacks:
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks must be Callback instances, got {type(cb).__name__}")

    if validation_data is not None:
        if len(validation_data) != 2:
            raise ValueError("validation_data must be a pair (X_val, y_val)")
        X_val, y_val = _check_pair(*validation_data, "validation_data[0]", "validation_data[1]")
    elif validation_split > 0:
        # Keras's rule: the last fraction of the samples, taken before any shuffling.
        split = int(len(X) * (1 - validation_split))
        if split <= 0 or split >= len(X):
            raise ValueError(
                f"validation_split={validation_split} leaves no training or no validation samples "
                f"out of {len(X)}")
        X, X_val, y, y_val = X[:split], X[split:], y[:split], y[split:]
    else:
        X_val = y_val = None

    n = len(X)
    if n == 0:
        raise ValueError("X: fit needs at least one sample")
    rng = np.random.default_rng(seed)
    history = History()
    callbacks = [history] + callbacks
    for cb in callbacks:
        cb.set_model(model)
    model.stop_training = False
    mets = _metric_objects(metrics, loss)
    n_batches = (n + batch_size - 1) // batch_size

    for cb in callbacks:
        cb.on_train_begin({})
    for epoch in range(epochs):
        t0 = time.perf_counter()
        for cb in callbacks:
            cb.on_epoch_begin(epoch, {})
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
                xb, yb = X[idx], y[idx]
            for cb in callbacks:
                cb.on_batch_begin(b, {})
            out = model.forward(xb, training=True)
            tb = _target(np.asarray(yb), out, loss)
            value, grad = loss(out, tb)
            finite = math.isfinite(value)
            if finite:
                model.backward(grad)
                # A ReLU can hide a NaN from the loss but not from the gradients; one pass
                # over them (O(parameters)) keeps the weights finite whatever happens.
                finite = all(K.all_finite(p.grad) for p in model.parameters())
                if finite:
                    optimizer.step()
                else:
                    value = math.nan
            loss_sum += value * (stop - start)
            seen += stop - start
            for m in mets.values():
                m.update(out, tb)
            batch_logs = {"loss": value}
            for cb in callbacks:
                cb.on_batch_end(b, batch_logs)
            if not finite and not model.stop_training:  # no callback (TerminateOnNaN) took it
                raise NonFiniteError(_divergence_message(model, value, epoch, b, n_batches, xb, yb))
            if model.stop_training:
                break
        logs = {"loss": loss_sum / max(seen, 1) + model.regularization_loss()}
        logs.update({name: m.result() for name, m in mets.items()})
        if X_val is not None and model.nonfinite_state() is not None:
            # A callback stopped a diverged run: inference would refuse the weights.
            val = dict.fromkeys(("loss", *mets), math.nan)
        elif X_val is not None:
            val = evaluate(model, X_val, y_val, loss=loss, metrics=tuple(mets))
            logs.update({f"val_{k}": v for k, v in val.items()})
        logs["time"] = time.perf_counter() - t0
        if verbose:
            _print_epoch(epoch, epochs, logs)
        for cb in callbacks:
            cb.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    for cb in callbacks:
        cb.on_train_end({})
    return history


def _print_epoch(epoch, epochs, logs):
    parts = [f"{k}={v:.4f}" for k, v in logs.items() if k != "time"]
    print(f"epoch {epoch + 1}/{epochs} [{logs['time']:.2f}s] " + " ".join(parts), file=sys.stdout)


def _divergence_message(model, value, epoch, batch, n_batches, xb, yb):
    """Why the loss of a batch is not finite, as far as a cheap look can tell."""
    where = (f"fit: the loss or its gradient is not finite at epoch {epoch + 1}, batch "
             f"{batch + 1} of {n_batches}")
    bad = model.nonfinite_state()
    if _has_nonfinite(xb):
        cause = "this batch of X contains NaN or infinity"
    elif _has_nonfinite(yb):
        cause = "this batch of y contains NaN or infinity"
    elif bad is not None:
        cause = f"weight {bad!r} is no longer finite: training diverged; lower the learning rate"
    else:
        cause = ("the outputs overflowed: training is diverging; lower the learning rate or "
                 "scale the inputs")
    return (f"{where}: {cause}. The weights are those before this batch. Pass "
            "callbacks.TerminateOnNaN() to stop training instead of raising")


def _has_nonfinite(batch):
    batch = np.asarray(batch)
    return batch.dtype.kind in "fc" and not np.isfinite(batch).all()
