"""Preprocessing as layers, so that it is saved and loaded with the model."""

import numpy as np

from fastnn import kernels
from fastnn._validation import as_float_array, float_dtype, positive_int
from fastnn.layers.base import Layer

__all__ = ["Standardize"]


class Standardize(Layer):
    """Feature scaling as a layer: ``y = (x - mean) / std`` per feature (z-score), so the
    scaling is saved and loaded with the model. ``adapt(X)`` sets ``mean`` and ``std`` (the
    population standard deviation) from data; a feature with ``std == 0`` is only centred.
    ``mean``/``std`` are buffers (not trained). Until adapted or given, the layer does not
    know its width; ``num_features`` may declare it (the statistics then start as 0 and 1).
    With ``dtype=None`` it adopts the model's dtype, or its input's when used alone."""

    _buffers = ("mean", "std")
    _transient = ("_std_in",)

    def __init__(self, mean=None, std=None, *, num_features=None, dtype=None):
        super().__init__()
        self.dtype = None if dtype is None else float_dtype(dtype)
        stats = {}
        for name, value in (("mean", mean), ("std", std)):
            if value is not None:
                stats[name] = as_float_array(value, np.float64, name, ndim=1).copy()
        widths = {v.shape[0] for v in stats.values()}
        if num_features is not None:
            widths.add(positive_int(num_features, "num_features"))
        if len(widths) > 1:
            raise ValueError(
                f"mean, std and num_features disagree on the number of features: {sorted(widths)}"
            )
        if "std" in stats and np.any(stats["std"] < 0):
            raise ValueError("std must be >= 0 everywhere")
        self.mean = self.std = None
        if widths:
            n = widths.pop()
            self._store(stats.get("mean", np.zeros(n)), stats.get("std", np.ones(n)))
        self._std_in = None

    def _store(self, mean, std):
        dtype = self.dtype if self.dtype is not None else np.float64
        self.mean, self.std = mean.astype(dtype), std.astype(dtype)

    @property
    def num_features(self):
        return None if self.mean is None else self.mean.shape[0]

    @property
    def in_features(self):
        return self.num_features

    def adapt(self, X):
        """Set mean and std from the rows of X (computed in float64); returns self."""
        x = as_float_array(X, np.float64, "X", ndim=2)
        if self.num_features is not None and x.shape[1] != self.num_features:
            raise ValueError(
                f"X: Standardize has {self.num_features} features, got shape {x.shape}"
            )
        mean, var = kernels.column_moments(x)
        self._store(mean, np.sqrt(var))
        return self

    def get_config(self):
        return {} if self.num_features is None else {"num_features": self.num_features}

    def output_features(self, in_features):
        if self.num_features is not None and in_features != self.num_features:
            raise ValueError(f"Standardize has {self.num_features} features, got {in_features}")
        return in_features

    def state_dict(self):
        return {} if self.mean is None else super().state_dict()

    def load_state_dict(self, state):
        if self.mean is None and "mean" in state:
            mean = as_float_array(state["mean"], np.float64, "Standardize.mean", ndim=1)
            if "std" not in state:
                raise ValueError("Standardize.load_state_dict: state has 'mean' but no 'std'")
            std = as_float_array(state["std"], np.float64, "Standardize.std")
            if std.shape != mean.shape:
                raise ValueError(
                    f"Standardize.std: expected shape {mean.shape} (that of mean), got {std.shape}"
                )
            self._store(mean, std)
            return
        super().load_state_dict(state)

    def _set_dtype(self, dtype):
        self.dtype = float_dtype(dtype)
        if self.mean is not None:
            self._store(self.mean, self.std)

    def _stats(self, dtype):
        if self.mean is None:
            raise RuntimeError(
                "Standardize has no statistics: call adapt(X) first (or pass mean= and std=)"
            )
        return self.mean.astype(dtype, copy=False), self.std.astype(dtype, copy=False)

    def forward(self, x, training=False):
        x = self._input(x, self.num_features)
        mean, std = self._stats(x.dtype)
        if training:
            self._std_in = std
        return kernels.standardize(x, mean, std)

    def backward(self, dy):
        if self._std_in is None:
            raise RuntimeError("Standardize.backward called before a forward with training=True")
        return kernels.standardize(dy, None, self._std_in)

    def extra_repr(self):
        return "" if self.num_features is None else f"num_features={self.num_features}"
