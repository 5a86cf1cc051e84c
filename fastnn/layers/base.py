"""The base of every layer: :class:`Parameter`, :class:`Layer` and its registry of
subclasses by name (how saved files name their layers, :func:`get`), and the token by
which the model knows that a plan of layer arrays is stale (:func:`plan_token`)."""

from typing import ClassVar

import numpy as np

# `init` is the name of the layers' initialiser argument; the module goes by another one.
from fastnn import init as initializers
from fastnn._validation import as_array, as_float_array, check_numeric, lookup

__all__ = ["Parameter", "Layer", "get", "plan_token"]


# Plans of arrays (Sequential's steps for the compiled Dense chain) hold the arrays and
# scalars of layers. Assigning one of those (a Parameter's data or grad, a Dense's l1 or
# l2, a LeakyReLU's negative_slope) replaces this token, so that a plan built under an
# older one is known to be stale; writes into the arrays (optimizers, load_state_dict)
# keep both the arrays and the token.
_token = object()


def plan_token():
    """The current token: a plan of arrays built while ``plan_token()`` returned ``t`` is
    current as long as ``plan_token() is t``."""
    return _token


def mark_replaced():
    """Record that an array or scalar a plan may hold was replaced: plans built before
    are stale. Every setter of such an attribute calls it."""
    global _token
    _token = object()


class Parameter:
    """A trainable array: ``data`` and the gradient ``grad`` of the last backward."""

    __slots__ = ("name", "data", "grad")

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        if name != "name":
            mark_replaced()

    def __init__(self, name, data):
        self.name = name
        self.data = data
        self.grad = np.zeros_like(data)

    # A pickle (how Dask and Ray ship a model to their workers) carries the weights, not the
    # gradient of the last backward, as PyTorch's does; the gradient comes back as zeros.
    def __getstate__(self):
        return {"name": self.name, "data": self.data}

    def __setstate__(self, state):
        self.__init__(state["name"], state["data"])

    def __repr__(self):
        return f"Parameter(name={self.name!r}, shape={self.data.shape}, dtype={self.data.dtype})"


class Layer:
    """Base class. Subclasses implement ``forward(x, training)`` and ``backward(dy)``.

    ``_params`` maps local names to Parameters and ``_buffers`` lists the names of
    non-trainable state arrays (attributes); both appear in ``state_dict()``. ``_transient``
    lists the attributes that hold what a training forward keeps for its backward, or
    scratch reused between calls: a pickle leaves them out (they are None after loading)."""

    dtype = None  # fixed by layers with parameters; parameter-free layers follow their input
    #: the rank of the batches the layer takes: 2 for (n, features), 4 for images
    #: (n, channels, height, width), None for any rank (elementwise layers)
    input_ndim: int | None = 2
    _buffers: tuple[str, ...] = ()
    _transient: tuple[str, ...] = ()
    #: every Layer subclass by name, so that a saved architecture can be rebuilt
    registry: ClassVar[dict[str, type["Layer"]]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            Layer.registry[cls.__name__] = cls

    def __init__(self):
        self._params = {}

    def __getstate__(self):
        return {**self.__dict__, **dict.fromkeys(self._transient)}

    def get_config(self):
        """Constructor arguments that rebuild this layer (weights come from state_dict)."""
        return {}

    def forward(self, x, training=False):
        raise NotImplementedError

    def backward(self, dy):
        raise NotImplementedError

    def __call__(self, x, training=False):
        return self.forward(x, training=training)

    def parameters(self):
        return list(self._params.values())

    def output_features(self, in_features):
        """The width of this layer's output for an input of `in_features` columns (of
        `in_features` channels for image layers); None when it depends on the input's
        other dimensions (Flatten)."""
        return in_features

    def state_dict(self):
        state = {name: p.data.copy() for name, p in self._params.items()}
        state.update({name: np.array(getattr(self, name)) for name in self._buffers})
        return state

    def load_state_dict(self, state):
        """Every entry is checked before any is loaded: a bad one leaves the layer unchanged."""
        targets = [p.data for p in self._params.values()] + [
            getattr(self, n) for n in self._buffers
        ]
        names = [*self._params, *self._buffers]
        values = [self._checked(state, name, current) for name, current in zip(names, targets)]
        for current, value in zip(targets, values):
            current[...] = value

    def _checked(self, state, name, current):
        label = f"{type(self).__name__}.{name}"
        if name not in state:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: state has no {name!r} "
                f"(expected {[*self._params, *self._buffers]})"
            )
        value = check_numeric(
            as_array(state[name], label, f"an array of shape {current.shape}"), label
        )
        if value.shape != current.shape:
            raise ValueError(f"{label}: expected shape {current.shape}, got {value.shape}")
        return value

    def _set_dtype(self, dtype):
        """Adopt the model's dtype (Sequential calls this on construction)."""
        dtype = np.dtype(dtype)
        for p in self._params.values():
            p.data = p.data.astype(dtype)
            p.grad = np.zeros_like(p.data)
        for name in self._buffers:
            setattr(self, name, getattr(self, name).astype(dtype))
        self.dtype = dtype

    def _input(self, x, in_features=None):
        """User input as an array of this layer's dtype (float32 if it has none) and of its
        ``input_ndim`` (any rank but 0 when that is None); `in_features`: the size its axis 1
        must have (the features, or the channels of images)."""
        dtype = (
            self.dtype
            if self.dtype is not None
            else (
                x.dtype
                if isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64)
                else np.float32
            )
        )
        ndim = self.input_ndim
        if ndim == 4:
            x = as_float_array(x, dtype, "x")
            if x.ndim != 4:
                raise ValueError(
                    f"x: {type(self).__name__} expects images of shape (N, C, H, W), "
                    f"got shape {x.shape}"
                )
        elif ndim is None:
            x = as_float_array(x, dtype, "x")
            if x.ndim == 0:
                raise ValueError(
                    f"x: {type(self).__name__} expects an array with at least one axis "
                    f"(batch first: (n, features), (N, C, H, W), ...), got shape {x.shape}"
                )
        else:
            x = as_float_array(x, dtype, "x", ndim=ndim)
        if in_features is not None and x.shape[1] != in_features:
            what = "channels" if ndim == 4 else "features"
            raise ValueError(
                f"x: {type(self).__name__} expects {in_features} {what}, got shape {x.shape}"
            )
        return x

    def extra_repr(self):
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


def get(name):
    """The registered Layer class called `name`, its exact class name (``"Dense"``,
    ``"BatchNorm1d"``): how :func:`fastnn.load` rebuilds a saved architecture. The registry
    is ``Layer.registry``: every subclass whose name does not start with ``_``."""
    return lookup(Layer.registry, name, "layer class")


def initial_weight(init, shape, rng, dtype, init_kwargs):
    """A weight from the initialiser named `init`; extra keywords (``std=`` for "normal")
    go to it, and one it does not take is an error that names both."""
    initializer = initializers.get(init)
    try:
        return initializer(shape, rng=rng, dtype=dtype, **init_kwargs)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise TypeError(
                f"init={init!r} does not take the keyword(s) {sorted(init_kwargs)}; "
                'only init="normal" takes std='
            ) from None
        raise
