"""Optimizers, ordered by complexity. Update formulas are PyTorch's for the same arguments;
each update is one fused kernel pass over a parameter. Invalid hyperparameters are rejected
at construction with a message that names them."""

from typing import NamedTuple

import numpy as np

from fastnn import kernels
from fastnn._validation import elementwise_view, lookup, real

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "clip_grad_norm", "get"]


def _parameter_list(params, name):
    """A list of Parameters from a model or an iterable of them, checked."""
    if hasattr(params, "parameters"):
        params = params.parameters()
    try:
        params = list(params)
    except TypeError:
        raise TypeError(
            f"{name}: params must be a model or an iterable of Parameters, "
            f"got {type(params).__name__}"
        ) from None
    for p in params:
        if not (hasattr(p, "data") and hasattr(p, "grad")):
            raise TypeError(
                f"{name}: params must be Parameters (with .data and .grad), got {type(p).__name__}"
            )
    return params


def clip_grad_norm(parameters, max_norm, error_if_nonfinite=False):
    """Scale the gradients of ``parameters`` (Parameters or a model) in place so that their
    global L2 norm (all gradients as one vector) is at most ``max_norm``; returns the norm
    before clipping. PyTorch's ``clip_grad_norm_``: the scale is
    ``min(1, max_norm / (total_norm + 1e-6))``."""
    params = _parameter_list(parameters, "clip_grad_norm")
    max_norm = real(max_norm, "max_norm", minimum=0.0)
    total = float(np.sqrt(sum(kernels.sum_squares(elementwise_view(p.grad)) for p in params)))
    if error_if_nonfinite and not np.isfinite(total):
        raise RuntimeError(f"clip_grad_norm: the total norm of the gradients is {total}")
    coef = max_norm / (total + 1e-6)
    # A scale of 1 would leave every gradient unchanged: skip the pass. A NaN norm still
    # scales (by NaN), as PyTorch does, so the failure shows in the gradients.
    if not coef >= 1.0:
        for p in params:
            kernels.scale_inplace(elementwise_view(p.grad), coef)
    return total


class _Transposed(NamedTuple):
    """A parameter seen through its transpose (see _kernel_view)."""

    data: np.ndarray
    grad: np.ndarray


def _kernel_view(p, state):
    """p and its state as the update kernels take them, C-contiguous. A weight stored
    F-contiguous (a Dense layer fed sparse input) is updated through its transpose, its
    gradient and state alike, which changes nothing in an elementwise update. State arrays
    allocated before the parameter changed order are copied to its order first."""
    data = p.data
    fortran = elementwise_view(data) is not data
    for name, value in state.items():
        if type(value) is np.ndarray and value.ndim > 1 and fortran == value.flags.c_contiguous:
            state[name] = value.copy(order="F" if fortran else "C")
    if not fortran:
        return p, state
    view = {name: value.T if type(value) is np.ndarray else value for name, value in state.items()}
    return _Transposed(data.T, p.grad.T), view


class Optimizer:
    """Base class: holds the parameters, the hyperparameters and per-parameter state.

    ``params`` is an iterable of :class:`fastnn.layers.Parameter` or a model (anything with
    ``.parameters()``). ``lr`` may be changed between steps."""

    #: names of the per-parameter state arrays, allocated lazily on the first step
    state_names: tuple[str, ...] = ()
    #: whether each parameter keeps its own update count, ``state["step"]`` (the bias
    #: corrections and decays count a parameter's own updates, as PyTorch does)
    counts_steps = False

    def __init__(self, params, lr, **hyper):
        name = type(self).__name__
        self.params = _parameter_list(params, name)
        if not self.params:
            raise ValueError(f"{name}: params is empty")
        self.lr = lr
        self.hyper = hyper
        self.steps = 0
        self.state = [{} for _ in self.params]

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = real(value, "lr", minimum=0.0)

    def step(self):
        for p, state in zip(self.params, self.state):
            first = not state
            if first:
                self._allocate(p, state)
            if self.counts_steps:
                state["step"] += 1
            self._update(*_kernel_view(p, state), first)
        self.steps += 1

    def _count_step(self):
        """The bookkeeping of step() for optimizers that update all parameters in one call."""
        for p, state in zip(self.params, self.state):
            if not state:
                self._allocate(p, state)
            state["step"] += 1
        self.steps += 1

    def _allocate(self, p, state):
        for name in self.state_names:
            state[name] = self._initial_state(name, p.data)
        if self.counts_steps:
            state["step"] = 0

    def _initial_state(self, name, data):
        return np.zeros_like(data)

    def _update(self, p, state, first):
        raise NotImplementedError

    def state_dict(self):
        """Hyperparameters, step count and per-parameter state (copies), enough to resume
        bit-exactly."""
        return {
            "type": type(self).__name__,
            "lr": self.lr,
            "hyper": dict(self.hyper),
            "steps": self.steps,
            "state": [
                {k: v if k == "step" else v.copy() for k, v in s.items()} for s in self.state
            ],
        }

    def load_state_dict(self, state_dict):
        if state_dict.get("type") != type(self).__name__:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: state is for {state_dict.get('type')!r}"
            )
        if len(state_dict["state"]) != len(self.params):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: state has {len(state_dict['state'])} "
                f"parameters, this optimizer has {len(self.params)}"
            )
        new_state = []
        for p, s in zip(self.params, state_dict["state"]):
            entry = {}
            for name, value in s.items():
                if name == "step" and self.counts_steps:
                    entry[name] = int(value)
                    continue
                value = np.asarray(value)
                if name not in self.state_names or value.shape != p.data.shape:
                    raise ValueError(
                        f"{type(self).__name__}.load_state_dict: bad state {name!r} "
                        f"with shape {value.shape} for a parameter of shape {p.data.shape}"
                    )
                entry[name] = value.astype(p.data.dtype, copy=True)
            new_state.append(entry)
        self.lr = state_dict["lr"]
        self.hyper = dict(state_dict["hyper"])
        self.steps = int(state_dict["steps"])
        self.state = new_state

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.hyper.items())
        return f"{type(self).__name__}(lr={self.lr!r}, {args})"


class SGD(Optimizer):
    """Stochastic gradient descent with optional (Nesterov) momentum, as PyTorch:
    ``d = g + weight_decay p``; ``buf = momentum buf + (1 - dampening) d`` (``buf = d`` on
    the first step); ``d = d + momentum buf`` if nesterov else ``buf``; ``p -= lr d``."""

    def __init__(self, params, lr, momentum=0.0, dampening=0.0, nesterov=False, weight_decay=0.0):
        momentum = real(momentum, "momentum", minimum=0.0)
        dampening = real(dampening, "dampening")
        weight_decay = real(weight_decay, "weight_decay", minimum=0.0)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("nesterov momentum requires momentum > 0 and dampening = 0")
        super().__init__(
            params,
            lr,
            momentum=momentum,
            dampening=dampening,
            nesterov=bool(nesterov),
            weight_decay=weight_decay,
        )

    @property
    def state_names(self):
        return ("momentum_buffer",) if self.hyper["momentum"] else ()

    def _update(self, p, state, first):
        h = self.hyper
        kernels.sgd_step(
            p.data,
            p.grad,
            state.get("momentum_buffer"),
            lr=self._lr,
            momentum=h["momentum"],
            dampening=h["dampening"],
            nesterov=h["nesterov"],
            weight_decay=h["weight_decay"],
            first_step=first,
        )


def _beta(value, name):
    value = real(value, name, minimum=0.0)
    if value >= 1.0:
        raise ValueError(f"{name} must be in [0, 1), got {value!r}")
    return value


def _betas(betas):
    try:
        beta1, beta2 = betas
    except (TypeError, ValueError):
        raise ValueError(f"betas must be a pair (beta1, beta2), got {betas!r}") from None
    return _beta(beta1, "betas[0]"), _beta(beta2, "betas[1]")


class Adagrad(Optimizer):
    """Adagrad, as PyTorch: ``d = g + weight_decay p``; ``sum += d^2``;
    ``p -= clr d / (sqrt(sum) + eps)`` with ``clr = lr / (1 + (step - 1) lr_decay)`` and
    ``step`` the parameter's own update count. The accumulator starts at
    ``initial_accumulator_value`` and is allocated here, as PyTorch does at construction."""

    state_names = ("sum",)
    counts_steps = True

    def __init__(
        self,
        params,
        lr=0.01,
        lr_decay=0.0,
        weight_decay=0.0,
        initial_accumulator_value=0.0,
        eps=1e-10,
    ):
        super().__init__(
            params,
            lr,
            lr_decay=real(lr_decay, "lr_decay", minimum=0.0),
            weight_decay=real(weight_decay, "weight_decay", minimum=0.0),
            initial_accumulator_value=real(
                initial_accumulator_value, "initial_accumulator_value", minimum=0.0
            ),
            eps=real(eps, "eps", minimum=0.0),
        )
        for p, state in zip(self.params, self.state):
            self._allocate(p, state)

    def _initial_state(self, name, data):
        return np.full_like(data, self.hyper["initial_accumulator_value"])

    def _update(self, p, state, first):
        h = self.hyper
        kernels.adagrad_step(
            p.data,
            p.grad,
            state["sum"],
            lr=self._lr,
            lr_decay=h["lr_decay"],
            weight_decay=h["weight_decay"],
            eps=h["eps"],
            step=state["step"],
        )


class RMSprop(Optimizer):
    """RMSprop, as PyTorch: ``d = g + weight_decay p``; ``sq = alpha sq + (1 - alpha) d^2``;
    centered: ``ga = alpha ga + (1 - alpha) d`` and the denominator uses ``sq - ga^2``;
    ``s = d / (sqrt(.) + eps)``; with momentum ``buf = momentum buf + s``, ``p -= lr buf``,
    else ``p -= lr s``."""

    def __init__(
        self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False
    ):
        super().__init__(
            params,
            lr,
            alpha=real(alpha, "alpha", minimum=0.0),
            eps=real(eps, "eps", minimum=0.0),
            weight_decay=real(weight_decay, "weight_decay", minimum=0.0),
            momentum=real(momentum, "momentum", minimum=0.0),
            centered=bool(centered),
        )

    @property
    def state_names(self):
        h = self.hyper
        return (
            ("square_avg",)
            + (("momentum_buffer",) if h["momentum"] > 0 else ())
            + (("grad_avg",) if h["centered"] else ())
        )

    def _update(self, p, state, first):
        h = self.hyper
        kernels.rmsprop_step(
            p.data,
            p.grad,
            state["square_avg"],
            state.get("grad_avg"),
            state.get("momentum_buffer"),
            lr=self._lr,
            alpha=h["alpha"],
            eps=h["eps"],
            weight_decay=h["weight_decay"],
            momentum=h["momentum"],
            centered=h["centered"],
        )


class Adam(Optimizer):
    """Adam, as PyTorch: ``d = g + weight_decay p`` (L2 penalty through the gradient);
    ``m = beta1 m + (1 - beta1) d``; ``v = beta2 v + (1 - beta2) d^2``;
    ``p -= lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)``, ``t`` the
    parameter's own update count."""

    state_names = ("exp_avg", "exp_avg_sq")
    counts_steps = True
    _decoupled = False

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(
            params,
            lr,
            betas=_betas(betas),
            eps=real(eps, "eps", minimum=0.0),
            weight_decay=real(weight_decay, "weight_decay", minimum=0.0),
        )

    def step(self, sum_squares=False):
        """Update every parameter. With ``sum_squares=True``, returns the sum of ``p**2``
        over all the parameters before this update, read in the update's own pass over
        them: the value of an L2 penalty (``weight_decay / 2`` times it) whose gradient
        ``weight_decay`` applies, for a caller that reports the penalised loss
        (:mod:`fastnn.sklearn` does) without a second pass over the weights. Otherwise
        returns None."""
        # One call for every parameter: the per-parameter Python dispatch is a visible part
        # of a small network's step.
        self._count_step()
        h = self.hyper
        beta1, beta2 = h["betas"]
        params, state = zip(*(_kernel_view(p, s) for p, s in zip(self.params, self.state)))
        total = kernels.adam_step_many(
            [p.data for p in params],
            [p.grad for p in params],
            [s["exp_avg"] for s in state],
            [s["exp_avg_sq"] for s in state],
            [s["step"] for s in state],
            lr=self._lr,
            beta1=beta1,
            beta2=beta2,
            eps=h["eps"],
            weight_decay=h["weight_decay"],
            decoupled=self._decoupled,
            sum_squares=bool(sum_squares),
        )
        return total if sum_squares else None


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as PyTorch: first
    ``p *= 1 - lr weight_decay``, then Adam's update with the plain gradient."""

    _decoupled = True

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas=betas, eps=eps, weight_decay=weight_decay)


#: every optimizer of this module by class name, so that a new one needs no other change
#: (the base class is not an optimizer to train with)
_BY_NAME = {
    name: obj
    for name, obj in list(globals().items())
    if isinstance(obj, type) and issubclass(obj, Optimizer) and obj is not Optimizer
}


def get(name):
    """The optimizer class called `name`, ignoring case, ``_`` and ``-`` (``"adam"``,
    ``"AdamW"``, ``"sgd"``): what the command line's ``--optimizer`` and a checkpoint's
    saved optimizer type name."""
    return lookup(_BY_NAME, name, "optimizer", loose=True)
