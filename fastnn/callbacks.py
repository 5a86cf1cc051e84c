"""Training callbacks (Keras semantics). Subclass :class:`Callback` and override any hook;
``self.model`` is the model being trained, and setting ``self.model.stop_training = True``
ends training after the current epoch."""

__all__ = ["Callback", "History"]


class Callback:
    """Base class: every hook does nothing. ``logs`` is a dict of the values so far:
    ``loss`` and metrics (and ``val_*`` at epoch end)."""

    model = None

    def set_model(self, model):
        self.model = model

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
    """Per-epoch values: ``history["loss"]``, ``history["val_accuracy"]``...; ``epoch`` lists
    the epoch indices and ``epoch_times`` their wall times in seconds."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.epoch_times = []

    def on_train_begin(self, logs=None):
        # Continue an existing history when fit is called again with the same object.
        pass

    def on_epoch_end(self, epoch, logs=None):
        logs = dict(logs or {})
        self.epoch.append(epoch)
        self.epoch_times.append(logs.pop("time", float("nan")))
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={sorted(self.history)})"
