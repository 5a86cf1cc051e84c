"""fastnn: small, fast fully-connected neural networks on the CPU.

PyTorch-style layers and optimizers, Keras-style ``fit``, NumPy arrays in and out, and C
kernels underneath (see ``fastnn.kernels.info()`` for the instruction set in use)."""
from fastnn import callbacks, init, kernels, ops, optim, schedules
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
from fastnn.datasets import load_digits
from fastnn.kernels import get_num_threads, set_num_threads
from fastnn.layers import (
    Dense,
    Identity,
    Layer,
    LeakyReLU,
    Parameter,
    ReLU,
    Sigmoid,
    Softmax,
    Tanh,
)
from fastnn.losses import BCEWithLogits, MSELoss, SoftmaxCrossEntropy
from fastnn.model import Sequential
from fastnn.persistence import Checkpoint, load, load_checkpoint, save
from fastnn.plotting import lr_sweep

__version__ = "0.1.0"

__all__ = [
    "BCEWithLogits", "CSVLogger", "Callback", "Checkpoint", "Dense", "EarlyStopping", "History",
    "Identity", "Layer", "LeakyReLU", "LearningRateScheduler", "MSELoss", "ModelCheckpoint",
    "Parameter", "ReLU", "ReduceLROnPlateau", "Sequential", "Sigmoid", "Softmax",
    "SoftmaxCrossEntropy", "Tanh", "TerminateOnNaN", "callbacks", "get_num_threads", "init",
    "kernels", "load", "load_checkpoint", "load_digits", "lr_sweep", "ops", "optim", "save",
    "schedules", "set_num_threads",
]
