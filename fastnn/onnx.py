"""ONNX export: ``export(model, path)`` writes a :class:`fastnn.Sequential` in inference form
as an ONNX graph (default opset 17) with input ``"input"`` of shape ``(batch, features)``,
the batch dimension dynamic, and output ``"output"``. Needs the ``onnx`` extra.

The graph computes what fastnn computes, special cases included. Each layer becomes standard
operators, with every constant stored in the model's dtype (float32 or float64; ONNX's float
attributes are float32, so no float64 value travels in an attribute):

- Dense -> Gemm (``transB=1``, PyTorch's weight layout).
- ReLU / Sigmoid / Tanh / Identity -> the operators of those names; Softmax -> Softmax
  (``axis=-1``).
- LeakyReLU -> LeakyRelu, or, when the slope is not a float32 number and the model is
  float64, ``Where(Greater(x, 0), x, Mul(x, slope))`` with the slope as a float64 constant.
- BatchNorm1d -> Mul + Add with the scale ``weight / sqrt(running_var + eps)`` and the shift
  ``bias - running_mean * scale`` that fastnn's inference kernel applies, computed the same
  way (so the results are fastnn's to the bit; a BatchNormalization node would hold eps as
  float32 and normalise in another order).
- Dropout -> nothing (inference is the identity, whatever ``p``).
- Maxout -> Gemm, Reshape to ``(batch, units, pieces)`` (weight rows are unit-major), then
  fastnn's selection: the first piece, replaced by each later piece that is strictly greater
  or the first NaN (Gather, Greater, IsNaN, Where), as in fastnn (ReduceMax leaves NaN to
  the runtime).
- Standardize -> Sub + Div, dividing a feature whose std is 0 by 1 (fastnn only centres it).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import numpy as np

from fastnn import layers as L
from fastnn.model import Sequential

if TYPE_CHECKING:
    from onnx import ModelProto

__all__ = ["export", "to_onnx", "DEFAULT_OPSET"]

#: ONNX opset written by default: 17, which onnxruntime >= 1.12 runs.
DEFAULT_OPSET = 17
_MIN_OPSET = 13  # Softmax over one axis (not a flattened 2-D view) needs 13


def _import_onnx():
    try:
        import onnx
    except ImportError as exc:
        raise ImportError(
            "fastnn.onnx needs the onnx package; install it with: pip install 'fastnn[onnx]'"
        ) from exc
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


def _bias_inputs(g: _Graph, layer: L.Dense | L.Maxout, x: str, i: int) -> list[str]:
    inputs = [x, g.const(f"{i}.weight", layer.weight.data)]
    if layer.bias is not None:
        inputs.append(g.const(f"{i}.bias", layer.bias.data))
    return inputs


def _batchnorm_affine(layer: L.BatchNorm1d, dtype: np.dtype) -> tuple[np.ndarray, np.ndarray]:
    """The scale and shift of BatchNorm1d's inference form, rounded as fastnn's kernel
    rounds them: 1/sqrt(running_var + eps) in double, then scale = weight * invstd and
    shift = bias - running_mean * scale in the model's dtype."""
    n = layer.num_features
    invstd = (1.0 / np.sqrt(layer.running_var.astype(np.float64) + layer.eps)).astype(dtype)
    weight, bias = (
        (layer.weight.data.astype(dtype), layer.bias.data.astype(dtype))
        if layer.affine
        else (None, np.zeros(n, dtype))
    )
    scale = invstd if weight is None else weight * invstd
    shift = bias - layer.running_mean.astype(dtype) * scale
    return scale, shift


def _layer(g: _Graph, layer: L.Layer, x: str, i: int) -> str:
    hint = f"{i}_{type(layer).__name__.lower()}"
    if isinstance(layer, L.Dense):
        return g.node("Gemm", _bias_inputs(g, layer, x, i), hint, transB=1)
    if isinstance(layer, L.Maxout):
        z = g.node("Gemm", _bias_inputs(g, layer, x, i), f"{hint}_affine", transB=1)
        if layer.pieces == 1:
            return z
        # Unit-major weight rows: unit j's pieces are rows j*pieces .. j*pieces+pieces-1, so
        # the Gemm output reshaped to (batch, units, pieces) holds each unit's pieces together.
        shape = g.const(f"{i}.shape", [0, layer.out_features, layer.pieces], dtype=np.int64)
        z = g.node("Reshape", [z, shape], f"{hint}_pieces")
        best = g.node(
            "Gather", [z, g.const(f"{i}.piece0", 0, dtype=np.int64)], f"{hint}_piece0", axis=2
        )
        for k in range(1, layer.pieces):
            piece = g.node(
                "Gather",
                [z, g.const(f"{i}.piece{k}", k, dtype=np.int64)],
                f"{hint}_piece{k}",
                axis=2,
            )
            greater = g.node("Greater", [piece, best], f"{hint}_greater{k}")
            # A NaN piece replaces a number (and the first NaN stays): Greater is false there.
            best_is_number = g.node(
                "Not", [g.node("IsNaN", [best], f"{hint}_bestnan{k}")], f"{hint}_bestnum{k}"
            )
            first_nan = g.node(
                "And",
                [g.node("IsNaN", [piece], f"{hint}_nan{k}"), best_is_number],
                f"{hint}_firstnan{k}",
            )
            greater = g.node("Or", [greater, first_nan], f"{hint}_takes{k}")
            best = g.node(
                "Where",
                [greater, piece, best],
                hint if k == layer.pieces - 1 else f"{hint}_best{k}",
            )
        return best
    if isinstance(layer, L.BatchNorm1d):
        scale, shift = _batchnorm_affine(layer, g.dtype)
        x = g.node("Mul", [x, g.const(f"{i}.scale", scale)], f"{hint}_scaled")
        return g.node("Add", [x, g.const(f"{i}.shift", shift)], hint)
    if isinstance(layer, L.Standardize):
        if layer.mean is None:
            raise ValueError(
                f"model: layer {i} (Standardize) has no statistics; call adapt(X) before exporting"
            )
        std = layer.std.astype(g.dtype)
        std = np.where(std != 0, std, np.ones_like(std))  # a constant feature is only centred
        x = g.node("Sub", [x, g.const(f"{i}.mean", layer.mean)], f"{hint}_centered")
        return g.node("Div", [x, g.const(f"{i}.std", std)], hint)
    if isinstance(layer, L.Dropout):
        return x
    if isinstance(layer, L.Softmax):
        return g.node("Softmax", [x], hint, axis=-1)
    if isinstance(layer, L.LeakyReLU):
        # fastnn applies the slope in the model's dtype; the LeakyRelu attribute is float32.
        slope = g.dtype.type(layer.negative_slope)
        with np.errstate(over="ignore"):  # a slope beyond float32's range is not one
            exact_in_float32 = float(np.float32(slope)) == float(slope)
        if exact_in_float32:
            return g.node("LeakyRelu", [x], hint, alpha=float(slope))
        positive = g.node("Greater", [x, g.const(f"{i}.zero", 0)], f"{hint}_positive")
        scaled = g.node("Mul", [x, g.const(f"{i}.negative_slope", slope)], f"{hint}_scaled")
        return g.node("Where", [positive, x, scaled], hint)
    simple: dict[type[L.Layer], str] = {
        L.ReLU: "Relu",
        L.Sigmoid: "Sigmoid",
        L.Tanh: "Tanh",
        L.Identity: "Identity",
    }
    if type(layer) in simple:
        return g.node(simple[type(layer)], [x], hint)
    raise TypeError(
        f"model: layer {i} ({type(layer).__name__}) has no ONNX translation; "
        f"supported: Dense, Maxout, BatchNorm1d, Standardize, Dropout, Softmax, "
        f"ReLU, LeakyReLU, Sigmoid, Tanh, Identity"
    )


def to_onnx(
    model: Sequential, *, opset: int = DEFAULT_OPSET, graph_name: str = "fastnn"
) -> ModelProto:
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
    proto = onnx.helper.make_model(
        graph, opset_imports=[onnx.helper.make_opsetid("", opset)], producer_name="fastnn"
    )
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


def export(model: Sequential, path: str | os.PathLike[str], *, opset: int = DEFAULT_OPSET) -> None:
    """Write ``model`` to ``path`` as an ONNX file (inference form, dynamic batch dimension);
    the graph passes ``onnx.checker.check_model`` before it is written."""
    proto = to_onnx(model, opset=opset)
    onnx = _import_onnx()
    onnx.save(proto, os.fspath(path))
