"""ONNX export: ``export(model, path)`` writes a :class:`fastnn.Sequential` in inference form
as an ONNX graph (default opset 17) with input ``"input"`` of shape ``(batch, features)``,
or ``(batch, channels, height, width)`` for a model of images, and output ``"output"``. The
batch dimension is dynamic, and so are an image's height and width (the graph's operators
take any size; a Dense after a Flatten then decides which sizes it accepts). Needs the
``onnx`` extra.

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
- Conv2d -> Conv (``pads`` in ONNX's [top, left, bottom, right] order, so "same" padding's
  uneven pads of an even kernel stay at the bottom and right; strides, dilations, group;
  the bias when there is one).
- MaxPool2d -> Pad with -inf (onnxruntime's float32 MaxPool pads with the lowest finite
  number, which a window of -inf would return) and MaxPool (floor rounding, ``ceil_mode``
  0); a window holding a NaN gives NaN, as in fastnn (onnxruntime's float32 MaxPool skips
  NaN): the NaN positions are pooled too (IsNaN, Cast, MaxPool) and put back with Where.
- AvgPool2d -> AveragePool (``count_include_pad`` as the layer's).
- BatchNorm2d -> Mul + Add per channel, as BatchNorm1d (bit for bit).
- Flatten -> Flatten (``axis=1``). The activations, Softmax (last axis) and Dropout take
  the 4-D tensors of an image model as they are.

onnxruntime implements Conv and AveragePool for float32 only, so a float64 model gets them
in other operators that it runs in float64: Conv as im2col (Pad, a strided Slice per kernel
tap, Concat, Transpose, one batched MatMul, Add), AveragePool as the sum of the taps divided
by the window's size or by the same sum over a plane of ones (``count_include_pad=False``).
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
        self.rank = 2  # of the tensor the next layer takes

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


def _batchnorm_affine(
    layer: L.BatchNorm1d | L.BatchNorm2d, dtype: np.dtype
) -> tuple[np.ndarray, np.ndarray]:
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


_INT64_MAX = np.iinfo(np.int64).max


def _onnx_pads(top: int, bottom: int, left: int, right: int) -> list[int]:
    """fastnn's (top, bottom, left, right) as ONNX's [top, left, bottom, right]."""
    return [top, left, bottom, right]


def _native_windows(g: _Graph) -> bool:
    """Whether Conv and AveragePool are written as those operators: onnxruntime implements
    them for float32 only, so a float64 model gets them as window taps (see _taps)."""
    return g.dtype == np.float32


def _taps(
    g: _Graph, x: str, kernel: tuple, stride: tuple, pads: tuple, dilation: tuple, hint: str
) -> list[str]:
    """The kernel's taps as strided views of the zero-padded input: for tap (a, b), the
    (N, C, OH, OW) tensor of the input values that tap multiplies, row-major over the
    kernel. Pad, then one Slice per tap whose end counts from the padded size, so the
    height and width stay dynamic."""
    top, bottom, left, right = pads
    if any(pads):
        pad = g.const(f"{hint}.pads", [0, 0, top, left, 0, 0, bottom, right], dtype=np.int64)
        x = g.node("Pad", [x, pad], f"{hint}_padded")
    axes = g.const(f"{hint}.axes", [2, 3], dtype=np.int64)
    steps = g.const(f"{hint}.steps", list(stride), dtype=np.int64)
    spans = [d * (k - 1) for d, k in zip(dilation, kernel)]
    taps = []
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            offsets = (a * dilation[0], b * dilation[1])
            ends = [o - span if o < span else _INT64_MAX for o, span in zip(offsets, spans)]
            taps.append(
                g.node(
                    "Slice",
                    [
                        x,
                        g.const(f"{hint}.starts", list(offsets), dtype=np.int64),
                        g.const(f"{hint}.ends", ends, dtype=np.int64),
                        axes,
                        steps,
                    ],
                    f"{hint}_tap{a}_{b}",
                )
            )
    return taps


def _conv(g: _Graph, layer: L.Conv2d, x: str, i: int, hint: str) -> str:
    g.rank = 4
    pads = layer.pads()
    weight = layer.weight.data.astype(g.dtype)
    if _native_windows(g):
        inputs = [x, g.const(f"{i}.weight", weight)]
        if layer.bias is not None:
            inputs.append(g.const(f"{i}.bias", layer.bias.data))
        return g.node(
            "Conv",
            inputs,
            hint,
            kernel_shape=list(layer.kernel_size),
            strides=list(layer.stride),
            dilations=list(layer.dilation),
            pads=_onnx_pads(*pads),
            group=layer.groups,
        )
    # im2col: the taps stacked last, (N, C, OH, OW, kh*kw), transposed to (N, OH, OW, C,
    # kh*kw), are per position and group the C/groups * kh*kw patch vector in the weight's
    # (C/groups, kh, kw) order; one batched MatMul with the (groups, C/groups * kh*kw,
    # O/groups) transposed weight. Every Reshape copies the leading sizes (0) and spells
    # out the rest, so the batch, height and width stay dynamic (an empty batch included).
    taps = _taps(g, x, layer.kernel_size, layer.stride, pads, layer.dilation, hint)
    axis = g.const(f"{i}.tap_axis", [4], dtype=np.int64)
    stacked = g.node(
        "Concat",
        [g.node("Unsqueeze", [t, axis], f"{hint}_col") for t in taps],
        f"{hint}_cols",
        axis=4,
    )
    stacked = g.node("Transpose", [stacked], f"{hint}_nhwc", perm=[0, 2, 3, 1, 4])
    groups, out = layer.groups, layer.out_channels
    k = weight[0].size
    cols = g.node(
        "Reshape",
        [stacked, g.const(f"{i}.cols_shape", [0, 0, 0, groups, 1, k], dtype=np.int64)],
        f"{hint}_patches",
    )
    w = weight.reshape(groups, out // groups, k).transpose(0, 2, 1)
    y = g.node("MatMul", [cols, g.const(f"{i}.weight", w)], f"{hint}_products")
    y = g.node("Reshape", [y, g.const(f"{i}.nhwc", [0, 0, 0, out], dtype=np.int64)], f"{hint}_nhwo")
    if layer.bias is not None:
        y = g.node("Add", [y, g.const(f"{i}.bias", layer.bias.data)], f"{hint}_biased")
    return g.node("Transpose", [y], hint, perm=[0, 3, 1, 2])


def _maxpool(g: _Graph, layer: L.MaxPool2d, x: str, i: int, hint: str) -> str:
    """MaxPool (floor rounding: ceil_mode 0) of the input padded with -inf by a Pad node
    (onnxruntime's float32 MaxPool pads with the lowest finite number, which a window of
    -inf would return), and a window holding a NaN gives NaN, as in fastnn: onnxruntime's
    float32 MaxPool skips NaN, so the NaN positions are pooled too (IsNaN as 0/1, MaxPool)
    and put back with Where."""
    g.rank = 4
    ph, pw = layer.padding
    attrs = {"kernel_shape": list(layer.kernel_size), "strides": list(layer.stride)}
    padded = x
    if ph or pw:
        pads = g.const(f"{i}.pads", [0, 0, ph, pw, 0, 0, ph, pw], dtype=np.int64)
        padded = g.node("Pad", [x, pads, g.const(f"{i}.neginf", -np.inf)], f"{hint}_padded")
    y = g.node("MaxPool", [padded], f"{hint}_max", ceil_mode=0, **attrs)
    nan = g.node("Cast", [g.node("IsNaN", [x], f"{hint}_isnan")], f"{hint}_nan01", to=_elem(g))
    nan = g.node("MaxPool", [nan], f"{hint}_nanwindow", pads=[ph, pw, ph, pw], **attrs)
    nan = g.node("Greater", [nan, g.const(f"{i}.zero", 0)], f"{hint}_hasnan")
    return g.node("Where", [nan, g.const(f"{i}.nan", np.nan), y], hint)


def _avgpool(g: _Graph, layer: L.AvgPool2d, x: str, i: int, hint: str) -> str:
    g.rank = 4
    ph, pw = layer.padding
    if _native_windows(g):
        return g.node(
            "AveragePool",
            [x],
            hint,
            kernel_shape=list(layer.kernel_size),
            strides=list(layer.stride),
            pads=[ph, pw, ph, pw],
            count_include_pad=int(layer.count_include_pad),
            ceil_mode=0,
        )
    # The sum of the taps, divided by the window's size, or by the number of image
    # positions in each window (the same sum over a plane of ones).
    pads = (ph, ph, pw, pw)
    window = (layer.kernel_size, layer.stride, pads, (1, 1))
    total = _sum(g, _taps(g, x, *window, f"{hint}_sum"), f"{hint}_sum")
    if layer.count_include_pad:
        size = layer.kernel_size[0] * layer.kernel_size[1]
        return g.node("Div", [total, g.const(f"{i}.size", size)], hint)
    hw = g.node(
        "Slice",
        [
            g.node("Shape", [x], f"{hint}_shape"),
            g.const(f"{i}.hw_start", [2], dtype=np.int64),
            g.const(f"{i}.hw_end", [4], dtype=np.int64),
        ],
        f"{hint}_hw",
    )
    plane = g.node(
        "Concat", [g.const(f"{i}.ones_nc", [1, 1], dtype=np.int64), hw], f"{hint}_plane", axis=0
    )
    one = g.onnx.numpy_helper.from_array(np.ones(1, g.dtype))
    ones = g.node("ConstantOfShape", [plane], f"{hint}_ones", value=one)
    count = _sum(g, _taps(g, ones, *window, f"{hint}_count"), f"{hint}_count")
    return g.node("Div", [total, count], hint)


def _sum(g: _Graph, terms: list[str], hint: str) -> str:
    total = terms[0]
    for k, term in enumerate(terms[1:]):
        total = g.node("Add", [total, term], f"{hint}{k}")
    return total


def _elem(g: _Graph) -> int:
    return g.onnx.helper.np_dtype_to_tensor_dtype(g.dtype)


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
    if isinstance(layer, (L.BatchNorm1d, L.BatchNorm2d)):
        scale, shift = _batchnorm_affine(layer, g.dtype)
        if isinstance(layer, L.BatchNorm2d):  # per channel, broadcast over the planes
            scale, shift = scale.reshape(-1, 1, 1), shift.reshape(-1, 1, 1)
        x = g.node("Mul", [x, g.const(f"{i}.scale", scale)], f"{hint}_scaled")
        return g.node("Add", [x, g.const(f"{i}.shift", shift)], hint)
    if isinstance(layer, L.Conv2d):
        return _conv(g, layer, x, i, hint)
    if isinstance(layer, L.MaxPool2d):
        return _maxpool(g, layer, x, i, hint)
    if isinstance(layer, L.AvgPool2d):
        return _avgpool(g, layer, x, i, hint)
    if isinstance(layer, L.Flatten):
        g.rank = 2
        return g.node("Flatten", [x], hint, axis=1)
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
        f"ReLU, LeakyReLU, Sigmoid, Tanh, Identity, Conv2d, MaxPool2d, AvgPool2d, "
        f"BatchNorm2d, Flatten"
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
    g.rank = model.input_ndim or 2
    for i, layer in enumerate(model.layers):
        x = _layer(g, layer, x, i)
    g.nodes.append(onnx.helper.make_node("Identity", [x], ["output"], name="output"))

    elem = onnx.helper.np_dtype_to_tensor_dtype(dtype)
    width = _width(model)
    if model.input_ndim == 4:
        dims = ["batch", width or "channels", "height", "width"]
    else:
        dims = ["batch", width or "features"]
    inp = onnx.helper.make_tensor_value_info("input", elem, dims)
    out = onnx.helper.make_tensor_value_info("output", elem, ["batch"] + [None] * (g.rank - 1))
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
    """The size of the input's axis 1 (features or channels), if a layer before any Flatten
    fixes it."""
    for layer in model.layers:
        if isinstance(layer, L.Flatten):
            return None
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
