"""ONNX export: ``export(model, path)`` writes a :class:`fastnn.Sequential` in inference form
as an ONNX graph (default opset 17) with input ``"input"`` of shape ``(batch, features)``,
the batch dimension dynamic, and output ``"output"``. Needs the ``onnx`` extra.

Each layer becomes standard operators, with weights stored in the model's dtype (float32 or
float64): Dense -> Gemm (``transB=1``, PyTorch's weight layout), activations -> Relu /
LeakyRelu / Sigmoid / Tanh / Identity, Softmax -> Softmax (``axis=-1``), BatchNorm1d ->
BatchNormalization with the running statistics, Dropout -> nothing (inference is the
identity), Maxout -> Gemm + Reshape + ReduceMax, Standardize -> Sub + Div."""
from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from fastnn import layers as L
from fastnn.model import Sequential

if TYPE_CHECKING:
    from onnx import ModelProto

__all__ = ["export", "to_onnx", "DEFAULT_OPSET"]

#: ONNX opset written by default: 17 keeps ReduceMax's ``axes`` an attribute and is run by
#: onnxruntime >= 1.12.
DEFAULT_OPSET = 17
_MIN_OPSET = 13  # Softmax over one axis (not a flattened 2-D view) needs 13


def _import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError("fastnn.onnx needs the onnx package; install it with: "
                          "pip install 'fastnn[onnx]'") from exc
    return onnx


class _Graph:
    """Nodes and initializers under construction, with unique names."""

    def __init__(self, onnx: Any, dtype: np.dtype):
        self.onnx = onnx
        self.dtype = dtype
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def const(self, hint: str, value: Any, dtype: Any = None) -> str:
        name = self.name(hint)
        arr = np.asarray(value, dtype=self.dtype if dtype is None else dtype)
        self.initializers.append(self.onnx.numpy_helper.from_array(arr, name))
        return name

    def node(self, op: str, inputs: list[str], hint: str, **attrs: Any) -> str:
        out = self.name(hint)
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [out], name=out, **attrs))
        return out


def _layer(g: _Graph, layer: L.Layer, x: str, i: int) -> str:
    hint = f"{i}_{type(layer).__name__.lower()}"
    if isinstance(layer, L.Dense):
        inputs = [x, g.const(f"{i}.weight", layer.weight.data)]
        if layer.bias is not None:
            inputs.append(g.const(f"{i}.bias", layer.bias.data))
        return g.node("Gemm", inputs, hint, transB=1)
    if isinstance(layer, L.Maxout):
        # Unit-major weight rows: unit j's pieces are rows j*pieces .. j*pieces+pieces-1, so
        # the Gemm output reshaped to (batch, units, pieces) holds each unit's pieces together.
        inputs = [x, g.const(f"{i}.weight", layer.weight.data)]
        if layer.bias is not None:
            inputs.append(g.const(f"{i}.bias", layer.bias.data))
        z = g.node("Gemm", inputs, f"{hint}_affine", transB=1)
        shape = g.const(f"{i}.shape", [0, layer.out_features, layer.pieces], dtype=np.int64)
        z = g.node("Reshape", [z, shape], f"{hint}_pieces")
        return g.node("ReduceMax", [z], hint, axes=[2], keepdims=0)
    if isinstance(layer, L.BatchNorm1d):
        n = layer.num_features
        weight, bias = ((layer.weight.data, layer.bias.data) if layer.affine
                        else (np.ones(n), np.zeros(n)))
        inputs = [x, g.const(f"{i}.weight", weight), g.const(f"{i}.bias", bias),
                  g.const(f"{i}.running_mean", layer.running_mean),
                  g.const(f"{i}.running_var", layer.running_var)]
        return g.node("BatchNormalization", inputs, hint, epsilon=float(layer.eps))
    if isinstance(layer, L.Standardize):
        if layer.mean is None:
            raise ValueError(f"model: layer {i} (Standardize) has no statistics; call adapt(X) "
                             "before exporting")
        x = g.node("Sub", [x, g.const(f"{i}.mean", layer.mean)], f"{hint}_centered")
        return g.node("Div", [x, g.const(f"{i}.std", layer.std)], hint)
    if isinstance(layer, L.Dropout):
        return x
    if isinstance(layer, L.Softmax):
        return g.node("Softmax", [x], hint, axis=-1)
    if isinstance(layer, L.LeakyReLU):
        return g.node("LeakyRelu", [x], hint, alpha=float(layer.negative_slope))
    simple: dict[type[L.Layer], str] = {L.ReLU: "Relu", L.Sigmoid: "Sigmoid", L.Tanh: "Tanh",
                                        L.Identity: "Identity"}
    if type(layer) in simple:
        return g.node(simple[type(layer)], [x], hint)
    raise TypeError(f"model: layer {i} ({type(layer).__name__}) has no ONNX translation; "
                    f"supported: Dense, Maxout, BatchNorm1d, Standardize, Dropout, Softmax, "
                    f"ReLU, LeakyReLU, Sigmoid, Tanh, Identity")


def to_onnx(model: Sequential, *, opset: int = DEFAULT_OPSET,
            graph_name: str = "fastnn") -> ModelProto:
    """The ONNX ``ModelProto`` of ``model`` in inference form (see the module docstring)."""
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a fastnn.Sequential, got {type(model).__name__}")
    if isinstance(opset, bool) or not isinstance(opset, int) or opset < _MIN_OPSET:
        raise ValueError(f"opset must be an integer >= {_MIN_OPSET}, got {opset!r}")
    onnx = _import_onnx()
    dtype = np.dtype(model.dtype)
    g = _Graph(onnx, dtype)
    x = "input"
    for i, layer in enumerate(model.layers):
        x = _layer(g, layer, x, i)
    g.nodes.append(onnx.helper.make_node("Identity", [x], ["output"], name="output"))

    elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    width = _width(model)
    inp = onnx.helper.make_tensor_value_info("input", elem, ["batch", width or "features"])
    out = onnx.helper.make_tensor_value_info("output", elem, ["batch", None])
    graph = onnx.helper.make_graph(g.nodes, graph_name, [inp], [out], g.initializers)
    proto = onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", opset)],
                                   producer_name="fastnn")
    proto.ir_version = min(proto.ir_version, _IR_FOR_OPSET.get(opset, proto.ir_version))
    onnx.checker.check_model(proto)
    return proto


# The newest IR version each opset shipped with, so that older onnxruntime builds load the
# file (onnx.helper stamps its own, possibly newer, IR version).
_IR_FOR_OPSET = {13: 7, 14: 7, 15: 8, 16: 8, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}


def _width(model: Sequential) -> int | None:
    for layer in model.layers:
        width = getattr(layer, "in_features", None) or getattr(layer, "num_features", None)
        if width:
            return int(width)
    return None


def export(model: Sequential, path: str | os.PathLike[str], *,
           opset: int = DEFAULT_OPSET) -> None:
    """Write ``model`` to ``path`` as an ONNX file (inference form, dynamic batch dimension);
    the graph passes ``onnx.checker.check_model`` before it is written."""
    proto = to_onnx(model, opset=opset)
    onnx = _import_onnx()
    onnx.save(proto, os.fspath(path))
