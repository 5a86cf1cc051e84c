"""Layers. Each owns its parameters and the cache of its last training forward; its
``backward`` sits beside its ``forward``, returns the input gradient and overwrites its
parameters' ``.grad``. Every numeric step is a kernel call (:mod:`fastnn.kernels`)."""
import numpy as np

from fastnn import init as _init
from fastnn import kernels as K
from fastnn._validation import as_float_array, float_dtype, positive_int, real

__all__ = ["Parameter", "Layer", "Dense", "Identity", "ReLU", "LeakyReLU", "Sigmoid", "Tanh",
           "Softmax"]


class Parameter:
    """A trainable array: ``data`` and the gradient ``grad`` of the last backward."""

    __slots__ = ("name", "data", "grad")

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
    _buffers = ()
    #: every Layer subclass by name, so that a saved architecture can be rebuilt
    registry = {}

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
        for name, p in self._params.items():
            p.data[...] = self._checked(state, name, p.data)
        for name in self._buffers:
            getattr(self, name)[...] = self._checked(state, name, getattr(self, name))

    def _checked(self, state, name, current):
        value = np.asarray(state[name])
        if value.shape != current.shape:
            raise ValueError(
                f"{type(self).__name__}.{name}: expected shape {current.shape}, got {value.shape}")
        if value.dtype.kind not in "biuf":
            raise TypeError(f"{type(self).__name__}.{name}: expected numbers, got dtype {value.dtype}")
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


class Dense(Layer):
    """Fully connected: ``y = x @ weight.T + bias`` with weight ``(out_features, in_features)``
    (PyTorch's ``nn.Linear`` layout). ``l1``/``l2`` add ``l1 sum|W| + l2 sum W^2`` to the loss
    (weights only) and their gradient to ``weight.grad``."""

    def __init__(self, in_features, out_features, *, bias=True, init="he_uniform", l1=0.0,
                 l2=0.0, dtype=np.float32, rng=None, **init_kwargs):
        super().__init__()
        self.in_features = positive_int(in_features, "in_features")
        self.out_features = positive_int(out_features, "out_features")
        self.l1 = real(l1, "l1", minimum=0.0)
        self.l2 = real(l2, "l2", minimum=0.0)
        self.dtype = float_dtype(dtype)
        self.init = init
        w = _init.get(init)((self.out_features, self.in_features), rng=rng, dtype=self.dtype,
                            **init_kwargs)
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

    def forward(self, x, training=False):
        return self.forward_fused(self._input(x, self.in_features), training)

    def forward_fused(self, x, training, activation="identity", negative_slope=0.0, out=None):
        """The forward with an activation applied in the GEMM's store phase (Sequential),
        optionally into a reused buffer."""
        if training:
            self._x = x
        return K.gemm(x, self.weight.data, trans_b=True,
                      bias=None if self.bias is None else self.bias.data,
                      activation=activation, negative_slope=negative_slope, out=out)

    def backward(self, dy, bias_grad_done=False, input_grad=True, out=None):
        """dW = dy^T x, db = column sums of dy (unless the fused activation backward already
        wrote them), and dx = dy W unless the caller has no use for it (a first layer)."""
        if self._x is None:
            raise RuntimeError("Dense.backward called before a forward with training=True")
        K.gemm(dy, self._x, trans_a=True, out=self.weight.grad)
        if self.bias is not None and not bias_grad_done:
            K.column_sum(dy, out=self.bias.grad)
        if self.l1 or self.l2:
            K.penalty(self.weight.data, self.weight.grad, l1=self.l1, l2=self.l2)
        return K.gemm(dy, self.weight.data, out=out) if input_grad else None

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
        self.negative_slope = real(negative_slope, "negative_slope")

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
