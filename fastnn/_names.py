"""Classes looked up by name (command line options, saved files), only among fastnn's own
registered classes: nothing is imported or evaluated from a name."""
from fastnn import optim
from fastnn.layers import Layer, _Activation

__all__ = ["optimizer_class", "activation_class"]


def _key(name):
    return name.replace("_", "").replace("-", "").lower()


def optimizer_class(name):
    """The ``fastnn.optim`` Optimizer subclass called `name`, case-insensitively ("adam",
    "AdamW", "sgd"...)."""
    available = {_key(cls_name): cls for cls_name, cls in vars(optim).items()
                 if isinstance(cls, type) and issubclass(cls, optim.Optimizer)
                 and cls is not optim.Optimizer}
    if not isinstance(name, str) or _key(name) not in available:
        raise ValueError(f"unknown optimizer {name!r}; this fastnn build has "
                         f"{', '.join(sorted(available))}")
    return available[_key(name)]


def activation_class(name):
    """The elementwise activation layer called `name`, case-insensitively ("relu", "tanh",
    "leaky_relu"...)."""
    available = {_key(cls_name): cls for cls_name, cls in Layer.registry.items()
                 if issubclass(cls, _Activation)}
    if not isinstance(name, str) or _key(name) not in available:
        raise ValueError(f"unknown activation {name!r}; expected one of "
                         f"{', '.join(sorted(available))}")
    return available[_key(name)]
