"""Training callbacks (Keras semantics). Subclass :class:`Callback` and override any hook.

During ``fit``, ``self.model`` is the model being trained and ``self.optimizer`` (also
``self.model.optimizer``) the optimizer stepping it, so a callback may change ``lr``;
``self.params`` holds ``epochs``, ``steps`` (batches per epoch), ``batch_size``, ``samples``
and ``verbose``. Setting ``self.model.stop_training = True`` ends training after the
current batch.

Logs passed to the hooks:

- ``on_batch_end(batch, logs)``: ``batch`` (index in the epoch), ``size`` (rows) and
  ``loss`` (this batch's loss, not a running mean: a non-finite value is seen at once).
- ``on_epoch_end(epoch, logs)``: ``loss`` and metrics averaged over the epoch, ``val_*``
  when there is validation data, ``lr`` (the learning rate the epoch used) and ``time``
  (wall seconds).
"""

import csv
import math
import sys
import warnings

from fastnn.persistence import save
from fastnn.plotting import plot_history

__all__ = [
    "Callback",
    "History",
    "EarlyStopping",
    "ModelCheckpoint",
    "LearningRateScheduler",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
    "CSVLogger",
]

#: monitored quantities where larger is better (after removing a "val_" prefix)
_MAXIMIZED = ("accuracy", "acc", "r2")


class Callback:
    """Base class: every hook does nothing. ``logs`` is a dict of the values so far."""

    model = None
    params = None
    #: whether the callback writes files: when several processes train one model
    #: (:mod:`fastnn.distributed`), ``fit`` runs it on rank 0 only
    writes_files = False

    def set_model(self, model):
        self.model = model

    def set_params(self, params):
        self.params = params

    @property
    def optimizer(self):
        """The optimizer of the running ``fit`` (None outside of it)."""
        return getattr(self.model, "optimizer", None)

    def on_train_begin(self, logs=None):
        pass

    def on_train_end(self, logs=None):
        pass

    def on_epoch_begin(self, epoch, logs=None):
        pass

    def on_epoch_end(self, epoch, logs=None):
        pass

    def on_batch_begin(self, batch, logs=None):
        pass

    def on_batch_end(self, batch, logs=None):
        pass


class History(Callback):
    """Per-epoch values: ``history["loss"]``, ``history["val_accuracy"]``, ``history["lr"]``...;
    ``epoch`` lists the epoch indices and ``epoch_times`` their wall times in seconds."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.epoch_times = []

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        self.epoch.append(epoch)
        self.epoch_times.append(logs.pop("time", float("nan")))
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def plot(self, path, *, title=None):
        """Write a PNG of the loss and metric curves, training and validation (needs
        matplotlib: ``pip install 'fastnn[plot]'``), with :func:`fastnn.plotting.plot_history`.
        Returns ``path``."""
        return plot_history(self, path, title=title)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"


def _mode(monitor, mode, owner):
    if mode not in ("auto", "min", "max"):
        raise ValueError(f"{owner}: mode must be 'auto', 'min' or 'max', got {mode!r}")
    if mode != "auto":
        return mode
    name = monitor[4:] if monitor.startswith("val_") else monitor
    return "max" if name in _MAXIMIZED or name.endswith("accuracy") else "min"


def _nonneg(value, name, owner):
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not value >= 0
        or math.isinf(value)
    ):
        raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}")
    return value


class _Monitor(Callback):
    """Shared by the callbacks that watch one logged quantity for improvement."""

    def __init__(self, monitor, mode, min_delta):
        if not isinstance(monitor, str) or not monitor:
            raise TypeError(
                f"{type(self).__name__}: monitor must be a log name such as "
                f"'val_loss', got {monitor!r}"
            )
        self.monitor = monitor
        self.mode = _mode(monitor, mode, type(self).__name__)
        self.min_delta = abs(_nonneg(min_delta, "min_delta", type(self).__name__))
        self.best = None

    def _improved(self, current):
        """Whether `current` beats the best so far by more than min_delta (NaN never does)."""
        if current is None or not math.isfinite(current):
            return False
        if self.best is None:
            return True
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def _value(self, logs):
        value = (logs or {}).get(self.monitor)
        if value is None:
            warnings.warn(
                f"{type(self).__name__}: monitored quantity {self.monitor!r} is not in the logs "
                f"(available: {sorted(logs or {})}); pass validation data or change monitor",
                RuntimeWarning,
                stacklevel=3,
            )
        return value


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for ``patience``
    epochs in a row. ``mode="auto"`` minimises losses and maximises accuracy and r2. With
    ``restore_best_weights`` the model gets the weights (and buffers) of its best epoch back
    when training ends. ``baseline``: training also stops unless the value beats it.
    ``stopped_epoch`` and ``best_epoch`` are set for inspection."""

    def __init__(
        self,
        monitor="val_loss",
        patience=0,
        min_delta=0.0,
        restore_best_weights=False,
        *,
        mode="auto",
        baseline=None,
        verbose=0,
    ):
        super().__init__(monitor, mode, min_delta)
        if isinstance(patience, bool) or not isinstance(patience, int) or patience < 0:
            raise ValueError(f"EarlyStopping: patience must be an integer >= 0, got {patience!r}")
        self.patience = patience
        self.restore_best_weights = bool(restore_best_weights)
        self.baseline = baseline
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        self.wait = 0
        self.best = None
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None

    def on_epoch_end(self, epoch, logs=None):
        current = self._value(logs)
        if current is None:
            return
        self.wait += 1
        if self._improved(current):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self.model.state_dict()
            if self.baseline is None or self._beats_baseline(current):
                self.wait = 0
                return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def _beats_baseline(self, current):
        return current < self.baseline if self.mode == "min" else current > self.baseline

    def on_train_end(self, logs=None):
        if self.stopped_epoch is not None and self.verbose:
            print(
                f"EarlyStopping: stopped after epoch {self.stopped_epoch + 1}; best "
                f"{self.monitor}={self.best:.6g} at epoch {self.best_epoch + 1}",
                file=sys.stderr,
            )
        if self.restore_best_weights and self.best_weights is not None:
            self.model.load_state_dict(self.best_weights)


class ModelCheckpoint(_Monitor):
    """Save the model with :func:`fastnn.save` at the end of epochs: every epoch, or with
    ``save_best_only`` only when ``monitor`` improved. ``path`` may hold ``str.format``
    fields filled from the epoch's logs, e.g. ``"ckpt-{epoch:03d}-{val_loss:.3f}.safetensors"``
    (``epoch`` counts from 1). ``include_optimizer`` stores the optimizer state as well, so
    training can resume (see :func:`fastnn.load_checkpoint`)."""

    writes_files = True

    def __init__(
        self,
        path,
        monitor="val_loss",
        save_best_only=True,
        *,
        mode="auto",
        min_delta=0.0,
        include_optimizer=True,
        verbose=0,
    ):
        super().__init__(monitor, mode, min_delta)
        if not isinstance(path, str) or not path:
            raise TypeError(f"ModelCheckpoint: path must be a non-empty str, got {path!r}")
        self.path = path
        self.save_best_only = bool(save_best_only)
        self.include_optimizer = bool(include_optimizer)
        self.verbose = verbose
        self.saved = []

    def on_train_begin(self, logs=None):
        self.best = None

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            current = self._value(logs)
            if not self._improved(current):
                return
            self.best = current
        try:
            path = self.path.format(epoch=epoch + 1, **logs)
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(
                f"ModelCheckpoint: cannot fill path {self.path!r} from the logs "
                f"{sorted(logs)}: {exc}"
            ) from None
        save(
            self.model,
            path,
            optimizer=self.optimizer if self.include_optimizer else None,
            metadata={"epoch": epoch + 1, "logs": {k: float(v) for k, v in logs.items()}},
        )
        self.saved.append(path)
        if self.verbose:
            print(f"ModelCheckpoint: epoch {epoch + 1}: saved {path}", file=sys.stderr)


def _set_lr(callback, lr, where):
    opt = callback.optimizer
    if opt is None:
        raise RuntimeError(f"{type(callback).__name__} needs the optimizer; use it inside fit")
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr < 0:
        raise ValueError(
            f"{type(callback).__name__}: {where} must give a finite lr >= 0, got {lr!r}"
        )
    opt.lr = float(lr)


class LearningRateScheduler(Callback):
    """Set the optimizer's ``lr`` to ``schedule(epoch)`` (epoch counts from 0) at the start
    of every epoch; :mod:`fastnn.schedules` has ready-made schedules."""

    def __init__(self, schedule, verbose=0):
        if not callable(schedule):
            raise TypeError(
                f"LearningRateScheduler: schedule must be callable epoch -> lr, got {schedule!r}"
            )
        self.schedule = schedule
        self.verbose = verbose

    def on_epoch_begin(self, epoch, logs=None):
        _set_lr(self, self.schedule(epoch), f"schedule({epoch})")
        if self.verbose:
            print(
                f"LearningRateScheduler: epoch {epoch + 1}: lr={self.optimizer.lr:.6g}",
                file=sys.stderr,
            )


class ReduceLROnPlateau(_Monitor):
    """Multiply ``lr`` by ``factor`` when ``monitor`` has not improved by more than
    ``min_delta`` for ``patience`` epochs, then wait ``cooldown`` epochs before counting
    again; ``lr`` never goes below ``min_lr``."""

    def __init__(
        self,
        monitor="val_loss",
        factor=0.1,
        patience=10,
        *,
        mode="auto",
        min_delta=1e-4,
        cooldown=0,
        min_lr=0.0,
        verbose=0,
    ):
        super().__init__(monitor, mode, min_delta)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not 0 < factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in (0, 1), got {factor!r}")
        for name, value in (("patience", patience), ("cooldown", cooldown)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(
                    f"ReduceLROnPlateau: {name} must be an integer >= 0, got {value!r}"
                )
        self.factor = float(factor)
        self.patience = patience
        self.cooldown = cooldown
        self.min_lr = float(_nonneg(min_lr, "min_lr", "ReduceLROnPlateau"))
        self.verbose = verbose

    def on_train_begin(self, logs=None):
        self.best = None
        self.wait = 0
        self.cooldown_counter = 0

    def on_epoch_end(self, epoch, logs=None):
        current = self._value(logs)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self._improved(current):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter == 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = self.optimizer.lr
                if old > self.min_lr:
                    _set_lr(self, max(old * self.factor, self.min_lr), "factor * lr")
                    if self.verbose:
                        print(
                            f"ReduceLROnPlateau: epoch {epoch + 1}: lr {old:.6g} -> "
                            f"{self.optimizer.lr:.6g}",
                            file=sys.stderr,
                        )
                self.cooldown_counter = self.cooldown
                self.wait = 0


class TerminateOnNaN(Callback):
    """Stop training at the first batch whose loss is NaN or infinite, with a
    ``RuntimeWarning`` naming the epoch and batch (also kept in ``message``)."""

    def __init__(self):
        self.epoch = 0
        self.message = None

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(loss):
            self.message = (
                f"TerminateOnNaN: loss is {loss} at epoch {self.epoch + 1}, "
                f"batch {batch + 1}; training stopped"
            )
            warnings.warn(self.message, RuntimeWarning, stacklevel=2)
            self.model.stop_training = True


class CSVLogger(Callback):
    """Write one CSV row per epoch (``epoch`` counting from 0, then the logs' keys in sorted
    order) to ``path``, flushed after every row; ``append=True`` continues an existing file."""

    writes_files = True

    def __init__(self, path, separator=",", append=False):
        self.path = path
        self.separator = separator
        self.append = bool(append)
        self._file = None

    def on_train_begin(self, logs=None):
        self._keys = None
        # Open for the whole fit: on_train_end closes it.
        self._file = open(self.path, "a" if self.append else "w", newline="")  # noqa: SIM115
        self._writer = csv.writer(self._file, delimiter=self.separator)

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self._keys is None:
            self._keys = sorted(logs)
            if not (self.append and self._file.tell() > 0):
                self._writer.writerow(["epoch"] + self._keys)
        self._writer.writerow([epoch] + [logs.get(k, "") for k in self._keys])
        self._file.flush()

    def on_train_end(self, logs=None):
        if self._file is not None:
            self._file.close()
            self._file = None
