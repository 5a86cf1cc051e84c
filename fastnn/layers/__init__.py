"""Layers, one module per family: :mod:`~fastnn.layers.base` (:class:`Parameter`,
:class:`Layer`, the registry of layer classes by name), :mod:`~fastnn.layers.dense`,
:mod:`~fastnn.layers.activations`, :mod:`~fastnn.layers.maxout`,
:mod:`~fastnn.layers.dropout`, :mod:`~fastnn.layers.normalization`,
:mod:`~fastnn.layers.preprocessing`, :mod:`~fastnn.layers.conv`,
:mod:`~fastnn.layers.pooling` and :mod:`~fastnn.layers.flatten`. Every public name is
re-exported here (and the layers from ``fastnn``).

Each layer owns its parameters and the cache of its last training forward; its
``backward`` sits beside its ``forward``, returns the input gradient and overwrites its
parameters' ``.grad``. Every numeric step is a kernel call (:mod:`fastnn.kernels`)."""

# isort: off
# The import order is the order in which the layer classes register (Layer.registry), which
# is the order an unknown layer name's error lists them in: the reading order of __all__.
from fastnn.layers.base import Layer, Parameter, get, plan_token
from fastnn.layers.dense import Dense
from fastnn.layers.activations import (
    Identity,
    LeakyReLU,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
    # the base of the elementwise activations, which the model fuses into a Dense
    _Activation as _Activation,
)
from fastnn.layers.activations import get as get_activation
from fastnn.layers.maxout import Maxout
from fastnn.layers.dropout import Dropout
from fastnn.layers.normalization import BatchNorm1d, BatchNorm2d
from fastnn.layers.preprocessing import Standardize
from fastnn.layers.conv import Conv2d
from fastnn.layers.pooling import MaxPool2d, AvgPool2d
from fastnn.layers.flatten import Flatten
# isort: on

__all__ = [
    "Parameter",
    "Layer",
    "Dense",
    "Identity",
    "ReLU",
    "LeakyReLU",
    "Sigmoid",
    "Tanh",
    "Softmax",
    "Maxout",
    "Dropout",
    "BatchNorm1d",
    "BatchNorm2d",
    "Standardize",
    "Conv2d",
    "MaxPool2d",
    "AvgPool2d",
    "Flatten",
    "get",
    "get_activation",
    "plan_token",
]
