"""fastnn: small, fast fully-connected neural networks on the CPU.

PyTorch-style layers and optimizers, Keras-style ``fit``, NumPy arrays in and out, and C
kernels underneath (see ``fastnn.kernels.info()`` for the instruction set in use)."""
from fastnn import callbacks, init, kernels, ops, optim
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

__version__ = "0.1.0"

__all__ = [
    "BCEWithLogits", "Dense", "Identity", "Layer", "LeakyReLU", "MSELoss", "Parameter", "ReLU",
    "Sequential", "Sigmoid", "Softmax", "SoftmaxCrossEntropy", "Tanh", "callbacks",
    "get_num_threads", "init", "kernels", "load_digits", "ops", "optim", "set_num_threads",
]
