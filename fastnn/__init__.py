"""fastnn: small, fast fully-connected neural networks on the CPU.

PyTorch-style layers and optimizers, Keras-style ``fit``, NumPy arrays in and out, and C
kernels underneath (see ``fastnn.kernels.info()`` for the instruction set in use).

Importing fastnn only defines things: it prints nothing, starts no threads and touches no
global state except the kernels' thread count (``FASTNN_NUM_THREADS``, ``set_num_threads``).
Messages go to ``logging.getLogger("fastnn")``, which has only a NullHandler."""

import logging

from fastnn import callbacks, closed_form, init, kernels, ops, optim, schedules
from fastnn._validation import NonFiniteError
from fastnn._version import __version__ as __version__
from fastnn.callbacks import (
    Callback,
    CSVLogger,
    EarlyStopping,
    History,
    LearningRateScheduler,
    ModelCheckpoint,
    ReduceLROnPlateau,
    TerminateOnNaN,
)
from fastnn.closed_form import gaussian_classifier, linear_regression
from fastnn.datasets import load_digits, load_mnist
from fastnn.gradcheck import gradcheck, gradcheck_layer
from fastnn.kernels import get_num_threads, set_num_threads
from fastnn.layers import (
    AvgPool2d,
    BatchNorm1d,
    BatchNorm2d,
    Conv2d,
    Dense,
    Dropout,
    Flatten,
    Identity,
    Layer,
    LeakyReLU,
    Maxout,
    MaxPool2d,
    Parameter,
    ReLU,
    Sigmoid,
    Softmax,
    Standardize,
    Tanh,
)
from fastnn.losses import BCEWithLogits, MSELoss, SoftmaxCrossEntropy
from fastnn.model import Sequential
from fastnn.optim import clip_grad_norm
from fastnn.persistence import Checkpoint, load, load_checkpoint, save
from fastnn.training import lr_sweep

logging.getLogger("fastnn").addHandler(logging.NullHandler())

__all__ = [
    "AvgPool2d",
    "BCEWithLogits",
    "BatchNorm1d",
    "BatchNorm2d",
    "CSVLogger",
    "Callback",
    "Checkpoint",
    "Conv2d",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "Flatten",
    "History",
    "Identity",
    "Layer",
    "LeakyReLU",
    "LearningRateScheduler",
    "MSELoss",
    "MaxPool2d",
    "Maxout",
    "ModelCheckpoint",
    "NonFiniteError",
    "Parameter",
    "ReLU",
    "ReduceLROnPlateau",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Standardize",
    "Tanh",
    "TerminateOnNaN",
    "callbacks",
    "clip_grad_norm",
    "closed_form",
    "gaussian_classifier",
    "get_num_threads",
    "gradcheck",
    "gradcheck_layer",
    "init",
    "kernels",
    "linear_regression",
    "load",
    "load_checkpoint",
    "load_digits",
    "load_mnist",
    "lr_sweep",
    "ops",
    "optim",
    "save",
    "schedules",
    "set_num_threads",
]
