"""Optimizers, ordered by complexity. Update formulas are PyTorch's for the same arguments;
each update is one fused kernel pass over a parameter. Invalid hyperparameters are rejected
at construction with a message that names them."""
import numpy as np

from fastnn import kernels as K
from fastnn._validation import real

__all__ = ["Optimizer", "SGD"]


class Optimizer:
    """Base class: holds the parameters, the hyperparameters and per-parameter state.

    ``params`` is an iterable of :class:`fastnn.layers.Parameter` or a model (anything with
    ``.parameters()``). ``lr`` may be changed between steps."""

    #: names of the per-parameter state arrays, allocated lazily on the first step
    state_names = ()

    def __init__(self, params, lr, **hyper):
        name = type(self).__name__
        if hasattr(params, "parameters"):
            params = params.parameters()
        try:
            self.params = list(params)
        except TypeError:
            raise TypeError(f"{name}: params must be a model or an iterable of Parameters, "
                            f"got {type(params).__name__}") from None
        if not self.params:
            raise ValueError(f"{name}: params is empty")
        for p in self.params:
            if not (hasattr(p, "data") and hasattr(p, "grad")):
                raise TypeError(f"{name}: params must be Parameters (with .data and .grad), "
                                f"got {type(p).__name__}")
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
                for name in self.state_names:
                    state[name] = np.zeros_like(p.data)
            self._update(p, state, first)
        self.steps += 1

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
            "state": [{k: v.copy() for k, v in s.items()} for s in self.state],
        }

    def load_state_dict(self, state_dict):
        if state_dict.get("type") != type(self).__name__:
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: state is for {state_dict.get('type')!r}")
        if len(state_dict["state"]) != len(self.params):
            raise ValueError(
                f"{type(self).__name__}.load_state_dict: state has {len(state_dict['state'])} "
                f"parameters, this optimizer has {len(self.params)}")
        new_state = []
        for p, s in zip(self.params, state_dict["state"]):
            entry = {}
            for name, value in s.items():
                value = np.asarray(value)
                if name not in self.state_names or value.shape != p.data.shape:
                    raise ValueError(
                        f"{type(self).__name__}.load_state_dict: bad state {name!r} "
                        f"with shape {value.shape} for a parameter of shape {p.data.shape}")
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
        super().__init__(params, lr, momentum=momentum, dampening=dampening,
                         nesterov=bool(nesterov), weight_decay=weight_decay)

    @property
    def state_names(self):
        return ("momentum_buffer",) if self.hyper["momentum"] else ()

    def _update(self, p, state, first):
        h = self.hyper
        K.sgd_step(p.data, p.grad, state.get("momentum_buffer"), lr=self._lr,
                   momentum=h["momentum"], dampening=h["dampening"], nesterov=h["nesterov"],
                   weight_decay=h["weight_decay"], first_step=first)
