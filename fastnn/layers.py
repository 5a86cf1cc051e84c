"""Layers. Each owns its parameters and the cache of its last training forward; its
``backward`` sits beside its ``forward``, returns the input gradient and overwrites its
parameters' ``.grad``. Every numeric step is a kernel call (:mod:`fastnn.kernels`)."""
import numpy as np

from fastnn import init as _init
from fastnn import kernels as K
from fastnn._validation import (
    as_array,
    as_float_array,
    check_numeric,
    float_dtype,
    positive_int,
    real,
    rng_from,
)

__all__ = ["Parameter", "Layer", "Dense", "Identity", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
           "Softmax", "Maxout", "Dropout", "BatchNorm1d", "Standardize"]


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


def _replaced():
    global _token
    _token = object()


class Parameter:
    """A trainable array: ``data`` and the gradient ``grad`` of the last backward."""

    __slots__ = ("name", "data", "grad")

    def __setattr__(self, name, value):
        object.__setattr__(self, name, value)
        if name != "name":
            _replaced()

    def __init__(self, name, data):
        self.name = name
        self.data = data
        self.grad = np.zeros_like(data)

    def __repr__(self):
        return f"Parameter(name={self.name!r}, shape={self.data.shape}, dtype={self.data.dtype})"


class Layer:
    """Base class. Subclasses implement ``forward(x, training)`` and ``backward(dy)``.

    ``_params`` maps local names to Parameters and ``_buffers`` lists the names of
    non-trainable state arrays (attributes); both appear in ``state_dict()``."""

    dtype = None  # fixed by layers with parameters; parameter-free layers follow their input
    _buffers: tuple[str, ...] = ()
    #: every Layer subclass by name, so that a saved architecture can be rebuilt
    registry: dict[str, type["Layer"]] = {}

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if not cls.__name__.startswith("_"):
            Layer.registry[cls.__name__] = cls

    def __init__(self):
        self._params = {}

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
        """The width of this layer's output for an input of `in_features` columns."""
        return in_features

    def state_dict(self):
        state = {name: p.data.copy() for name, p in self._params.items()}
        state.update({name: np.array(getattr(self, name)) for name in self._buffers})
        return state

    def load_state_dict(self, state):
        """Every entry is checked before any is loaded: a bad one leaves the layer unchanged."""
        targets = [p.data for p in self._params.values()] + [getattr(self, n) for n in self._buffers]
        names = [*self._params, *self._buffers]
        values = [self._checked(state, name, current) for name, current in zip(names, targets)]
        for current, value in zip(targets, values):
            current[...] = value

    def _checked(self, state, name, current):
        label = f"{type(self).__name__}.{name}"
        if name not in state:
            raise ValueError(f"{type(self).__name__}.load_state_dict: state has no {name!r} "
                             f"(expected {[*self._params, *self._buffers]})")
        value = check_numeric(as_array(state[name], label, f"an array of shape {current.shape}"),
                              label)
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
        """User input as a 2-D array of this layer's dtype (float32 if it has none)."""
        dtype = self.dtype if self.dtype is not None else (
            x.dtype if isinstance(x, np.ndarray) and x.dtype in (np.float32, np.float64)
            else np.float32)
        x = as_float_array(x, dtype, "x", ndim=2)
        if in_features is not None and x.shape[1] != in_features:
            raise ValueError(
                f"x: {type(self).__name__} expects {in_features} features, got shape {x.shape}")
        return x

    def extra_repr(self):
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"


def _init_weight(init, shape, rng, dtype, init_kwargs):
    """A weight from the initialiser named `init`; extra keywords (``std=`` for "normal")
    go to it, and one it does not take is an error that names both."""
    initializer = _init.get(init)
    try:
        return initializer(shape, rng=rng, dtype=dtype, **init_kwargs)
    except TypeError as exc:
        if "unexpected keyword" in str(exc):
            raise TypeError(f"init={init!r} does not take the keyword(s) {sorted(init_kwargs)}; "
                            'only init="normal" takes std=') from None
        raise


class Dense(Layer):
    """Fully connected: ``y = x @ weight.T + bias`` with weight ``(out_features, in_features)``
    (PyTorch's ``nn.Linear`` layout). ``l1``/``l2`` add ``l1 sum|W| + l2 sum W^2`` to the loss
    (weights only) and their gradient to ``weight.grad``."""

    def __init__(self, in_features, out_features, *, bias=True, init="he_uniform", l1=0.0,
                 l2=0.0, dtype=np.float32, rng=None, **init_kwargs):
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.l1, self.l2 = l1, l2
        self.dtype = float_dtype(dtype)
        self.init = init
        w = _init_weight(init, (self.out_features, self.in_features), rng, self.dtype, init_kwargs)
        self.weight = Parameter("weight", w)
        self._params["weight"] = self.weight
        self.bias = Parameter("bias", np.zeros(self.out_features, self.dtype)) if bias else None
        if bias:
            self._params["bias"] = self.bias
        self._x = None

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "bias": self.bias is not None, "l1": self.l1, "l2": self.l2,
                "dtype": self.dtype.name}

    def output_features(self, in_features):
        if in_features != self.in_features:
            raise ValueError(f"Dense expects {self.in_features} input features, got {in_features}")
        return self.out_features

    @property
    def l1(self):
        return self._l1

    @l1.setter
    def l1(self, value):
        self._l1 = real(value, "l1", minimum=0.0)
        _replaced()

    @property
    def l2(self):
        return self._l2

    @l2.setter
    def l2(self, value):
        self._l2 = real(value, "l2", minimum=0.0)
        _replaced()

    def chain_step(self, activation=None):
        """This layer, with the elementwise `activation` layer after it fused in (or None),
        as one step of the compiled Dense chain: a :class:`fastnn.kernels.DenseStep` of
        its own arrays (not copies), which the chain's backward writes the gradients into."""
        bias = self.bias
        return K.DenseStep(self.weight.data, None if bias is None else bias.data,
                           self.weight.grad, None if bias is None else bias.grad,
                           "identity" if activation is None else activation.kernel_name,
                           0.0 if activation is None else activation.negative_slope,
                           self._l1, self._l2)

    def forward(self, x, training=False):
        x = self._input(x, self.in_features)
        y = K.dense_chain_forward(x, (self.chain_step(),))
        if training:
            self._x = x
        return y

    def backward(self, dy):
        """dW = dy^T x and db = column sums of dy (overwriting the gradients; the l1/l2
        terms added), and returns dx = dy W."""
        if self._x is None:
            raise RuntimeError("Dense.backward called before a forward with training=True")
        return K.dense_chain_backward(dy, (self.chain_step(),), self._x, (None,))

    def regularization_loss(self):
        if not (self.l1 or self.l2):
            return 0.0
        w = self.weight.data
        return K.penalty(w, np.zeros_like(w), l1=self.l1, l2=self.l2)

    def extra_repr(self):
        extra = f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
        if self.l1:
            extra += f", l1={self.l1}"
        if self.l2:
            extra += f", l2={self.l2}"
        return extra


class _Activation(Layer):
    """An elementwise activation; ``kernel_name`` is its name in the kernels."""

    kernel_name = "identity"
    negative_slope = 0.0

    def __init__(self):
        super().__init__()
        self._y = None

    @property
    def fusable(self):
        """Whether its backward can run from its output alone (then Sequential fuses it
        into the preceding Dense)."""
        return True

    def forward(self, x, training=False):
        x = self._input(x)
        y = K.activation_forward(x, self.kernel_name, negative_slope=self.negative_slope)
        if training:
            self._y = y if self.fusable else x
        return y

    def backward(self, dy, bias_grad_out=None, out=None):
        if self._y is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before a forward with training=True")
        return K.activation_backward(dy, self._y, self.kernel_name,
                                     negative_slope=self.negative_slope,
                                     bias_grad_out=bias_grad_out, out=out)


class Identity(_Activation):
    kernel_name = "identity"


class ReLU(_Activation):
    """max(x, 0)."""

    kernel_name = "relu"


class LeakyReLU(_Activation):
    """x if x > 0 else negative_slope * x."""

    kernel_name = "leaky_relu"

    def __init__(self, negative_slope=0.01):
        super().__init__()
        self.negative_slope = negative_slope

    @property
    def negative_slope(self):
        return self._negative_slope

    @negative_slope.setter
    def negative_slope(self, value):
        self._negative_slope = real(value, "negative_slope")
        _replaced()

    def get_config(self):
        return {"negative_slope": self.negative_slope}

    @property
    def fusable(self):
        # The derivative's test "x > 0" can be read off the output only when the slope is
        # not negative; otherwise the layer keeps its input.
        return self.negative_slope >= 0

    def extra_repr(self):
        return f"negative_slope={self.negative_slope}"


class Sigmoid(_Activation):
    """1 / (1 + exp(-x)); derivative y (1 - y)."""

    kernel_name = "sigmoid"


class Tanh(_Activation):
    """tanh(x); derivative 1 - y^2."""

    kernel_name = "tanh"


class Softmax(Layer):
    """Softmax over the last axis, for inference outputs (train on logits with
    SoftmaxCrossEntropy, whose fused gradient is exact and stable)."""

    def __init__(self):
        super().__init__()
        self._y = None

    def forward(self, x, training=False):
        y = K.softmax(self._input(x))
        if training:
            self._y = y
        return y

    def backward(self, dy):
        if self._y is None:
            raise RuntimeError("Softmax.backward called before a forward with training=True")
        return K.softmax_backward(dy, self._y)


class Maxout(Layer):
    """Maxout (Goodfellow et al. 2013): each output unit is the max of ``pieces`` affine maps
    of the input, ``y_j = max_k (x @ weight[j*pieces + k] + bias[j*pieces + k])``.

    ``weight`` has shape ``(out_features * pieces, in_features)`` and is unit-major: rows
    ``j*pieces .. j*pieces + pieces - 1`` are unit ``j``'s pieces (likewise ``bias``). The
    gradient flows only through each unit's winning piece (the first one on ties)."""

    def __init__(self, in_features, out_features, pieces, *, bias=True, init="he_uniform",
                 dtype=np.float32, rng=None, **init_kwargs):
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.pieces = positive_int(pieces, "pieces")
        self.dtype = float_dtype(dtype)
        self.init = init
        rows = self.out_features * self.pieces
        self.weight = Parameter("weight", _init_weight(init, (rows, self.in_features), rng,
                                                       self.dtype, init_kwargs))
        self._params["weight"] = self.weight
        self.bias = Parameter("bias", np.zeros(rows, self.dtype)) if bias else None
        if bias:
            self._params["bias"] = self.bias
        self._x = self._argmax = None

    def get_config(self):
        return {"in_features": self.in_features, "out_features": self.out_features,
                "pieces": self.pieces, "bias": self.bias is not None, "dtype": self.dtype.name}

    def output_features(self, in_features):
        if in_features != self.in_features:
            raise ValueError(f"Maxout expects {self.in_features} input features, got {in_features}")
        return self.out_features

    def forward(self, x, training=False):
        x = self._input(x, self.in_features)
        z = K.gemm(x, self.weight.data, trans_b=True,
                   bias=None if self.bias is None else self.bias.data)
        y, argmax = K.maxout_forward(z, self.pieces)
        if training:
            self._x, self._argmax = x, argmax
        return y

    def backward(self, dy):
        """dz routes dy to the winning pieces; then as Dense: dW = dz^T x, db = column sums
        of dz, dx = dz W."""
        if self._x is None:
            raise RuntimeError("Maxout.backward called before a forward with training=True")
        dz = K.maxout_backward(dy, self._argmax, self.pieces)
        K.gemm(dz, self._x, trans_a=True, out=self.weight.grad)
        if self.bias is not None:
            K.column_sum(dz, out=self.bias.grad)
        return K.gemm(dz, self.weight.data)

    def extra_repr(self):
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"pieces={self.pieces}, bias={self.bias is not None}")


class Dropout(Layer):
    """Inverted dropout: when training, zeroes each element with probability ``p`` and
    scales the kept ones by ``1 / (1 - p)`` so the expected output equals the input; the
    identity otherwise. ``p = 1`` zeroes everything (PyTorch). The mask is drawn from
    ``rng`` (None, a seed or a ``numpy.random.Generator``) and reused by the backward."""

    def __init__(self, p=0.5, *, rng=None):
        super().__init__()
        self.p = real(p, "p", minimum=0.0, maximum=1.0)
        self.rng = rng_from(rng)
        self._mask = None
        self._scale = 1.0

    def get_config(self):
        return {"p": self.p}

    def forward(self, x, training=False):
        x = self._input(x)
        if not training or self.p == 0.0:
            self._mask = None
            return x
        # Keep with probability 1 - p: uniform draws in [0, 1) at or above p.
        self._mask = self.rng.random(x.shape) >= self.p
        self._scale = 0.0 if self.p == 1.0 else 1.0 / (1.0 - self.p)
        return K.mask_scale(x, self._mask, self._scale)

    def backward(self, dy):
        if self._mask is None:
            return dy
        return K.mask_scale(dy, self._mask, self._scale)

    def extra_repr(self):
        return f"p={self.p}"


class BatchNorm1d(Layer):
    """Batch normalisation over the features of ``(n, num_features)`` inputs (Ioffe &
    Szegedy 2015), with PyTorch's semantics: when training, each feature is normalised with
    the batch mean and biased variance, and ``running_mean``/``running_var`` move towards the
    batch mean and the unbiased variance by ``momentum`` (``momentum=None``: a cumulative
    average); otherwise the running statistics are used. ``y = xhat * weight + bias`` with
    learnable ``weight`` (ones) and ``bias`` (zeros) when ``affine``. ``num_batches_tracked``
    counts training batches, so PyTorch state_dicts round-trip."""

    _buffers = ("running_mean", "running_var", "num_batches_tracked")

    def __init__(self, num_features, eps=1e-5, momentum=0.1, affine=True, dtype=np.float32):
        super().__init__()
        self.num_features = positive_int(num_features, "num_features")
        self.eps = real(eps, "eps", minimum=0.0)
        self.momentum = None if momentum is None else real(momentum, "momentum", minimum=0.0,
                                                            maximum=1.0)
        self.affine = bool(affine)
        self.dtype = float_dtype(dtype)
        n = self.num_features
        self.weight = self.bias = None
        if self.affine:
            self.weight = Parameter("weight", np.ones(n, self.dtype))
            self.bias = Parameter("bias", np.zeros(n, self.dtype))
            self._params.update(weight=self.weight, bias=self.bias)
        self.running_mean = np.zeros(n, self.dtype)
        self.running_var = np.ones(n, self.dtype)
        self.num_batches_tracked = np.zeros((), np.int64)
        self._cache = None

    @property
    def in_features(self):
        return self.num_features

    def get_config(self):
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "affine": self.affine, "dtype": self.dtype.name}

    def output_features(self, in_features):
        if in_features != self.num_features:
            raise ValueError(f"BatchNorm1d expects {self.num_features} features, got {in_features}")
        return in_features

    def _set_dtype(self, dtype):
        count = self.num_batches_tracked
        super()._set_dtype(dtype)
        self.num_batches_tracked = count  # a count, whatever the model's float dtype

    def _affine(self):
        return (None, None) if not self.affine else (self.weight.data, self.bias.data)

    def forward(self, x, training=False):
        x = self._input(x, self.num_features)
        weight, bias = self._affine()
        if not training:
            return K.batchnorm_eval(x, weight, bias, self.running_mean, self.running_var,
                                    eps=self.eps)
        self.num_batches_tracked += 1
        factor = (1.0 / int(self.num_batches_tracked) if self.momentum is None
                  else self.momentum)
        y, mean, invstd = K.batchnorm_train(x, weight, bias, self.running_mean,
                                            self.running_var, momentum=factor, eps=self.eps)
        self._cache = (x, mean, invstd)
        return y

    def backward(self, dy):
        """Through the batch statistics: dx = weight invstd (dy - mean(dy) - xhat
        mean(dy xhat)); dweight = sum dy xhat; dbias = sum dy."""
        if self._cache is None:
            raise RuntimeError("BatchNorm1d.backward called before a forward with training=True")
        x, mean, invstd = self._cache
        dx, _, _ = K.batchnorm_backward(
            dy, x, mean, invstd, self.weight.data if self.affine else None,
            weight_grad_out=self.weight.grad if self.affine else None,
            bias_grad_out=self.bias.grad if self.affine else None)
        return dx

    def extra_repr(self):
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}")


class Standardize(Layer):
    """Feature scaling as a layer: ``y = (x - mean) / std`` per feature (z-score), so the
    scaling is saved and loaded with the model. ``adapt(X)`` sets ``mean`` and ``std`` (the
    population standard deviation) from data; a feature with ``std == 0`` is only centred.
    ``mean``/``std`` are buffers (not trained). Until adapted or given, the layer does not
    know its width; ``num_features`` may declare it (the statistics then start as 0 and 1).
    With ``dtype=None`` it adopts the model's dtype, or its input's when used alone."""

    _buffers = ("mean", "std")

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
            raise ValueError(f"mean, std and num_features disagree on the number of features: "
                             f"{sorted(widths)}")
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
            raise ValueError(f"X: Standardize has {self.num_features} features, got shape {x.shape}")
        mean, var = K.column_moments(x)
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
                raise ValueError(f"Standardize.std: expected shape {mean.shape} (that of mean), "
                                 f"got {std.shape}")
            self._store(mean, std)
            return
        super().load_state_dict(state)

    def _set_dtype(self, dtype):
        self.dtype = float_dtype(dtype)
        if self.mean is not None:
            self._store(self.mean, self.std)

    def _stats(self, dtype):
        if self.mean is None:
            raise RuntimeError("Standardize has no statistics: call adapt(X) first "
                               "(or pass mean= and std=)")
        return self.mean.astype(dtype, copy=False), self.std.astype(dtype, copy=False)

    def forward(self, x, training=False):
        x = self._input(x, self.num_features)
        mean, std = self._stats(x.dtype)
        if training:
            self._std_in = std
        return K.standardize(x, mean, std)

    def backward(self, dy):
        if self._std_in is None:
            raise RuntimeError("Standardize.backward called before a forward with training=True")
        return K.standardize(dy, None, self._std_in)

    def extra_repr(self):
        return "" if self.num_features is None else f"num_features={self.num_features}"
