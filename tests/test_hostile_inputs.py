"""Hostile inputs at every public entry point: each probe is (id, call, exception, message
regex). Every probe runs in-process as its own test, and the whole table runs once more in
a child interpreter, so that a segfault is a failed test rather than a dead pytest.

Also: valid-but-unusual layouts (Fortran, strided, negative strides, read-only, memmap,
byte-swapped, misaligned) give exactly the contiguous result, and no call modifies its
caller's input."""

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided

import fastnn
from fastnn import kernels, optim

f32, f64 = np.float32, np.float64
HERE = Path(__file__).resolve().parent

# ---- the kernels' array arguments ------------------------------------------------------
# For each kernel: a function of keyword arrays calling it, and its float array arguments
# with their valid values (m=4 rows, k=3 columns).


def _m(*shape, dtype=f32, value=0.5):
    return np.full(shape, value, dtype)


def _float_dtype_of(x):
    ok = isinstance(x, np.ndarray) and x.dtype.kind == "f" and x.dtype.itemsize in (4, 8)
    return np.dtype(f"f{x.dtype.itemsize}") if ok else f32


def _chain_forward(**a):
    step = kernels.DenseStep(a["steps[0].weight"], a["steps[0].bias"], activation="tanh")
    return kernels.dense_chain_forward(a["x"], [step])


def _chain_backward(**a):
    """m=4 rows, 3 inputs, 5 outputs (sigmoid); returns dx and the weight gradient."""
    step = kernels.DenseStep(
        a["steps[0].weight"], None, np.zeros((5, 3), _float_dtype_of(a["dy"])), activation="sigmoid"
    )
    return kernels.dense_chain_backward(
        a["dy"], [step], a["x"], [a["outputs[0]"]]
    ), step.weight_grad


def _adam_many(**a):
    p = a["params[0]"]
    state = [np.zeros((4, 3), _float_dtype_of(p))]
    total = kernels.adam_step_many(
        [p], [a["grads[0]"]], state, [state[0].copy()], [2], lr=0.01, sum_squares=True
    )
    return p, total


# A CSR matrix of 4 rows and 3 columns (5 entries, an empty row, unsorted and repeated
# columns) for the sparse kernels.
_CSR_INDICES = np.array([2, 0, 1, 1, 2], np.int32)
_CSR_INDPTR = np.array([0, 2, 2, 4, 5], np.int32)


def _csr_t(data, b):
    return kernels.csr_t_matmul(
        data, _CSR_INDICES, _CSR_INDPTR, b, out=np.empty((3, 5), _float_dtype_of(data))
    )


# Keys are the names the messages give (an entry of a list argument: "grads[0]").
KERNEL_ARGS = {
    "gemm": (
        lambda a, b, bias: kernels.gemm(a, b, bias=bias),
        {"a": _m(4, 3), "b": _m(3, 5), "bias": _m(5)},
    ),
    "activation_forward": (lambda x: kernels.activation_forward(x, "tanh"), {"x": _m(4, 3)}),
    "activation_backward": (
        lambda dy, y: kernels.activation_backward(dy, y, "sigmoid"),
        {"dy": _m(4, 3), "y": _m(4, 3)},
    ),
    "add_bias": (lambda x, bias: kernels.add_bias(x, bias), {"x": _m(4, 3), "bias": _m(3)}),
    "column_sum": (lambda x: kernels.column_sum(x), {"x": _m(4, 3)}),
    "softmax": (lambda x: kernels.softmax(x), {"x": _m(4, 3)}),
    "softmax_backward": (
        lambda dy, y: kernels.softmax_backward(dy, y),
        {"dy": _m(4, 3), "y": _m(4, 3)},
    ),
    "softmax_cross_entropy": (
        lambda logits: kernels.softmax_cross_entropy(logits, [0, 1, 2, 0]),
        {"logits": _m(4, 3)},
    ),
    "bce_with_logits": (
        lambda output: kernels.bce_with_logits(output, _m(4, 3)),
        {"output": _m(4, 3)},
    ),
    "mse": (lambda output: kernels.mse(output, _m(4, 3)), {"output": _m(4, 3)}),
    "sgd_step": (
        lambda param, grad: kernels.sgd_step(param, grad, None, lr=0.1),
        {"param": _m(4, 3), "grad": _m(4, 3)},
    ),
    "penalty": (
        lambda weight: kernels.penalty(
            weight, np.zeros((4, 3), _float_dtype_of(weight)), l1=0.1, l2=0.2
        ),
        {"weight": _m(4, 3)},
    ),
    "all_finite": (lambda x: kernels.all_finite(x), {"x": _m(4, 3)}),
    "dense_chain_forward": (
        _chain_forward,
        {"x": _m(4, 3), "steps[0].weight": _m(5, 3), "steps[0].bias": _m(5)},
    ),
    "dense_chain_backward": (
        _chain_backward,
        {
            "dy": _m(4, 5),
            "x": _m(4, 3),
            "steps[0].weight": _m(5, 3),
            "outputs[0]": _m(4, 5, value=0.3),
        },
    ),
    "adam_step_many": (_adam_many, {"params[0]": _m(4, 3), "grads[0]": _m(4, 3)}),
    "csr_matmul": (
        lambda data, b, bias: kernels.csr_matmul(
            data, _CSR_INDICES, _CSR_INDPTR, b, bias=bias, activation="tanh"
        ),
        {"data": _m(5), "b": _m(3, 5), "bias": _m(5)},
    ),
    "csr_t_matmul": (_csr_t, {"data": _m(5), "b": _m(4, 5)}),
    # images (N=2, C=4, 5x6), a (4, 2, 3, 2) weight in 2 groups: a (2, 4, 4, 6) output
    "conv2d_forward": (
        lambda x, weight, bias: kernels.conv2d_forward(
            x, weight, bias, padding=(0, 1, 1, 0), groups=2, activation="tanh"
        ),
        {"x": _m(2, 4, 5, 6), "weight": _m(4, 2, 3, 2), "bias": _m(4)},
    ),
    "conv2d_backward": (
        lambda x, weight, dy, output: kernels.conv2d_backward(
            dy, x, weight, padding=(0, 1, 1, 0), groups=2, activation="sigmoid", output=output
        ),
        {
            "x": _m(2, 4, 5, 6),
            "weight": _m(4, 2, 3, 2),
            "dy": _m(2, 4, 4, 6),
            "output": _m(2, 4, 4, 6, value=0.3),
        },
    ),
}
# Arrays a kernel updates in place: the caller's own, so never a converted copy (probed
# below), and left out of the layout test.
IN_PLACE = {("sgd_step", "param"), ("adam_step_many", "params[0]")}
# Kernels whose GEMMs may take another path (packed or not) for another layout.
GEMM_BASED = {
    "gemm",
    "dense_chain_forward",
    "dense_chain_backward",
    "conv2d_forward",
    "conv2d_backward",
}
# Arguments whose None is refused in another argument's name (the activation that needs the
# output); tests/kernels/test_conv.py checks that message.
OPTIONAL = {("conv2d_backward", "output")}
# Arguments that must have exactly this many dimensions (the others accept any).
NDIM = {
    ("gemm", "a"): 2,
    ("gemm", "b"): 2,
    ("gemm", "bias"): 1,
    ("add_bias", "x"): 2,
    ("add_bias", "bias"): 1,
    ("column_sum", "x"): 2,
    ("softmax", "x"): 2,
    ("softmax_backward", "dy"): 2,
    ("softmax_backward", "y"): 2,
    ("softmax_cross_entropy", "logits"): 2,
    ("dense_chain_forward", "x"): 2,
    ("dense_chain_forward", "steps[0].weight"): 2,
    ("dense_chain_forward", "steps[0].bias"): 1,
    ("dense_chain_backward", "dy"): 2,
    ("dense_chain_backward", "x"): 2,
    ("dense_chain_backward", "steps[0].weight"): 2,
    ("dense_chain_backward", "outputs[0]"): 2,
    ("conv2d_forward", "x"): 4,
    ("conv2d_forward", "weight"): 4,
    ("conv2d_forward", "bias"): 1,
    ("conv2d_backward", "x"): 4,
    ("conv2d_backward", "weight"): 4,
    ("conv2d_backward", "dy"): 4,
    ("conv2d_backward", "output"): 4,
    ("csr_matmul", "data"): 1,
    ("csr_matmul", "b"): 2,
    ("csr_matmul", "bias"): 1,
    ("csr_t_matmul", "data"): 1,
    ("csr_t_matmul", "b"): 2,
}

BAD_DTYPES = [
    np.int32,
    np.int64,
    np.uint8,
    np.bool_,
    np.float16,
    np.longdouble,
    np.complex64,
    np.complex128,
    object,
    "U3",
    "S3",
    "datetime64[s]",
    np.dtype([("a", f32), ("b", f32)]),
]
NOT_ARRAYS = [None, "abc", {"a": 1}, object(), [[1.0, 2.0], [3.0]]]

PROBES = []


def probe(id_, call, exc, match):
    """`match` None: the message is numpy's own (absurd sizes), any text will do."""
    PROBES.append(pytest.param(call, exc, match or None, id=id_))


def _call_with(fn, args, **override):
    kwargs = {k: v.copy() for k, v in args.items()}
    kwargs.update(override)
    return lambda: fn(**kwargs)


for kname, (fn, args) in KERNEL_ARGS.items():
    for arg, good in args.items():
        first = next(iter(args))
        name = re.escape(arg)
        # A wrong dtype on the first array names it and both float types; on a later one
        # the mismatch (or the wrong type) is named.
        for dt in BAD_DTYPES:
            bad = np.zeros(good.shape, dt)
            probe(
                f"{kname}-{arg}-dtype-{np.dtype(dt).name}",
                _call_with(fn, args, **{arg: bad}),
                TypeError,
                rf"{kname}: {name} (must have dtype float32 or float64|has dtype)",
            )
        for obj in NOT_ARRAYS:
            if obj is None and (arg.endswith("bias") or (kname, arg) in OPTIONAL):
                continue  # optional
            probe(
                f"{kname}-{arg}-notarray-{type(obj).__name__}",
                _call_with(fn, args, **{arg: obj}),
                (TypeError, ValueError),
                rf"{kname}: {name}",
            )
        if arg != first:
            probe(
                f"{kname}-{arg}-mixed-precision",
                _call_with(fn, args, **{arg: good.astype(f64)}),
                TypeError,
                rf"{kname}: {name} has dtype float64, expected float32",
            )
        want = NDIM.get((kname, arg))
        if want is not None:
            for nd in (0, want - 1, want + 1):
                if nd < 0 or nd == want:
                    continue
                bad = np.zeros((3,) * nd, f32)
                probe(
                    f"{kname}-{arg}-ndim{nd}",
                    _call_with(fn, args, **{arg: bad}),
                    ValueError,
                    rf"{kname}: {name} must be {want}-D, got shape",
                )

# ---- shapes ----------------------------------------------------------------------------
probe(
    "gemm-inner", lambda: kernels.gemm(_m(2, 3), _m(4, 3)), ValueError, r"inner dimensions differ"
)
probe(
    "gemm-inner-trans",
    lambda: kernels.gemm(_m(2, 3), _m(4, 3), trans_a=True),
    ValueError,
    r"op\(a\) has shape \(3, 2\), op\(b\) has shape \(4, 3\)",
)
probe(
    "gemm-bias-shape",
    lambda: kernels.gemm(_m(2, 3), _m(3, 4), bias=_m(3)),
    ValueError,
    r"bias must have shape \(4,\), got \(3,\)",
)
probe(
    "act-bwd-shape",
    lambda: kernels.activation_backward(_m(2, 3), _m(3, 2), "relu"),
    ValueError,
    r"y has shape \(3, 2\), expected the shape of dy \(2, 3\)",
)
probe(
    "act-bwd-biasgrad-1d",
    lambda: kernels.activation_backward(_m(3), _m(3), "relu", bias_grad_out=_m(3)),
    ValueError,
    r"bias_grad_out needs a 2-D dy",
)
probe(
    "act-bwd-biasgrad-shape",
    lambda: kernels.activation_backward(_m(2, 3), _m(2, 3), "relu", bias_grad_out=_m(2)),
    ValueError,
    r"out has shape \(2,\), expected \(3,\)",
)
probe(
    "add-bias-shape",
    lambda: kernels.add_bias(_m(2, 3), _m(2)),
    ValueError,
    r"bias must have shape \(3,\)",
)
probe(
    "softmax-bwd-shape",
    lambda: kernels.softmax_backward(_m(2, 3), _m(2, 4)),
    ValueError,
    "y has shape",
)
probe(
    "sce-probs-shape",
    lambda: kernels.softmax_cross_entropy(_m(2, 3), _m(2, 4)),
    ValueError,
    r"target probabilities must have shape \(2, 3\), got \(2, 4\)",
)
probe(
    "sce-probs-dtype",
    lambda: kernels.softmax_cross_entropy(_m(2, 3), _m(2, 3, dtype=f64)),
    TypeError,
    "target has dtype float64, expected float32",
)
probe(
    "sce-no-columns",
    lambda: kernels.softmax_cross_entropy(_m(2, 0), [0, 0]),
    ValueError,
    r"at least one column, got shape \(2, 0\)",
)
probe(
    "sce-mean-empty",
    lambda: kernels.softmax_cross_entropy(_m(0, 3), []),
    ValueError,
    "'mean' needs at least one row",
)
probe(
    "bce-mean-empty",
    lambda: kernels.bce_with_logits(_m(0, 3), _m(0, 3)),
    ValueError,
    "'mean' needs at least one element",
)
probe(
    "mse-mean-empty",
    lambda: kernels.mse(_m(0), _m(0)),
    ValueError,
    "'mean' needs at least one element",
)
for kname in ("bce_with_logits", "mse"):
    kfn = getattr(kernels, kname)
    probe(
        f"{kname}-target-shape",
        lambda kfn=kfn: kfn(_m(2, 3), _m(3, 2)),
        ValueError,
        r"target has shape \(3, 2\), expected the output's shape \(2, 3\)",
    )
    for dt in (np.complex128, object, "U3", "datetime64[s]"):
        probe(
            f"{kname}-target-{np.dtype(dt).name}",
            lambda kfn=kfn, dt=dt: kfn(_m(2, 3), np.zeros((2, 3), dt)),
            TypeError,
            r"target must be numeric \(bool, int or float\), got dtype",
        )
    probe(
        f"{kname}-target-strings-that-parse",
        lambda kfn=kfn: kfn(_m(1, 2), [["1.5", "2"]]),
        TypeError,
        "target must be numeric",
    )
    probe(
        f"{kname}-reduction",
        lambda kfn=kfn: kfn(_m(2), _m(2), reduction="avg"),
        ValueError,
        "reduction must be one of",
    )
probe(
    "sgd-grad-shape",
    lambda: kernels.sgd_step(_m(3), _m(4), None, lr=0.1),
    ValueError,
    r"grad has shape \(4,\), expected the param's \(3,\)",
)
probe(
    "sgd-param-list",
    lambda: kernels.sgd_step([1.0, 2.0], _m(2), None, lr=0.1),
    TypeError,
    "param must be a numpy.ndarray",
)
probe(
    "sgd-param-readonly",
    lambda: kernels.sgd_step(np.broadcast_to(_m(1), (3,)), _m(3), None, lr=0.1),
    ValueError,
    "param must be C-contiguous, writable",
)
probe(
    "sgd-param-strided",
    lambda: kernels.sgd_step(_m(6)[::2], _m(3), None, lr=0.1),
    ValueError,
    "param must be C-contiguous",
)
probe(
    "sgd-buffer-none",
    lambda: kernels.sgd_step(_m(3), _m(3), None, lr=0.1, momentum=0.9),
    TypeError,
    "momentum_buffer must be a numpy.ndarray, got NoneType",
)
probe(
    "sgd-buffer-dtype",
    lambda: kernels.sgd_step(_m(3), _m(3), _m(3, dtype=f64), lr=0.1, momentum=0.9),
    ValueError,
    r"momentum_buffer must be float32 with shape \(3,\), got float64",
)
probe(
    "penalty-grad-shape",
    lambda: kernels.penalty(_m(3), _m(4)),
    ValueError,
    r"grad must be float32 with shape \(3,\)",
)

# ---- scalar arguments -----------------------------------------------------------------------
for value in (None, "0.1", [0.1], True, 1j):
    r = repr(value).replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")
    probe(
        f"gemm-slope-{value!r}",
        lambda v=value: kernels.gemm(_m(2, 2), _m(2, 2), negative_slope=v),
        TypeError,
        rf"gemm: negative_slope must be a real number, got {r}",
    )
    probe(
        f"act-slope-{value!r}",
        lambda v=value: kernels.activation_forward(_m(2), "leaky_relu", negative_slope=v),
        TypeError,
        "activation_forward: negative_slope must be a real number",
    )
    for name in ("lr", "momentum", "dampening", "weight_decay"):
        kw = {"lr": 0.1, name: value}
        probe(
            f"sgd-{name}-{value!r}",
            lambda kw=kw: kernels.sgd_step(_m(2), _m(2), None, **kw),
            TypeError,
            rf"sgd_step: {name} must be a real number",
        )
    probe(
        f"penalty-l2-{value!r}",
        lambda v=value: kernels.penalty(_m(2), _m(2), l2=v),
        TypeError,
        "penalty: l2 must be a real number",
    )
for value in ("gelu", None, 3, ["relu"], "RELU"):
    probe(
        f"gemm-activation-{value!r}",
        lambda v=value: kernels.gemm(_m(2, 2), _m(2, 2), activation=v),
        ValueError,
        "gemm: activation must be one of",
    )
    probe(
        f"actfwd-activation-{value!r}",
        lambda v=value: kernels.activation_forward(_m(2), v),
        ValueError,
        "activation_forward: activation must be one of",
    )
for value in (0, -1, 2.0, "2", True, None):
    probe(
        f"set_num_threads-{value!r}",
        lambda v=value: kernels.set_num_threads(v),
        ValueError,
        "n must be an integer >= 1",
    )
probe("set_isa", lambda: kernels.set_isa("sse9"), ValueError, "isa must be one of")

# ---- class labels ----------------------------------------------------------------------
LABEL_PROBES = [
    ("too-big", [0, 3], ValueError, r"in \[0, 3\), got 3"),
    ("negative", [0, -1], ValueError, "got -1"),
    ("fraction", [0, 1.5], ValueError, "whole numbers"),
    ("nan", [0, np.nan], ValueError, "whole numbers"),
    ("inf", [0, np.inf], ValueError, "whole numbers"),
    ("huge-float", [0, 1e300], ValueError, r"in \[0, 3\)"),
    ("huge-uint64", np.array([0, 2**64 - 1], np.uint64), ValueError, r"in \[0, 3\)"),
    ("huge-int", [0, 2**70], TypeError, "must be integers"),
    ("strings", ["a", "b"], TypeError, "must be integers"),
    ("bool", [True, False], TypeError, "must be integers, got dtype bool"),
    ("complex", [0j, 1j], TypeError, "must be integers"),
    ("none", [0, None], TypeError, "must be integers"),
    ("short", [0], ValueError, r"must have shape \(2,\), got \(1,\)"),
    ("scalar", 0, ValueError, r"must have shape \(2,\), got \(\)"),
    ("3d", np.zeros((2, 1, 1), int), ValueError, "must have shape"),
]
for name, labels, exc, match in LABEL_PROBES:
    probe(
        f"sce-labels-{name}",
        lambda t=labels: kernels.softmax_cross_entropy(_m(2, 3), t),
        exc,
        match,
    )

# ---- out= misuse -------------------------------------------------------------------------
OUT_KERNELS = {  # kernel -> (call with out, valid out, needs C-contiguous out)
    "gemm": (lambda out: kernels.gemm(_m(4, 3), _m(3, 5), out=out), _m(4, 5), False),
    "activation_forward": (
        lambda out: kernels.activation_forward(_m(4, 3), "relu", out=out),
        _m(4, 3),
        True,
    ),
    "activation_backward": (
        lambda out: kernels.activation_backward(_m(4, 3), _m(4, 3), "relu", out=out),
        _m(4, 3),
        True,
    ),
    "add_bias": (lambda out: kernels.add_bias(_m(4, 3), _m(3), out=out), _m(4, 3), True),
    "column_sum": (lambda out: kernels.column_sum(_m(4, 3), out=out), _m(3), True),
    "softmax": (lambda out: kernels.softmax(_m(4, 3), out=out), _m(4, 3), True),
    "softmax_backward": (
        lambda out: kernels.softmax_backward(_m(4, 3), _m(4, 3), out=out),
        _m(4, 3),
        True,
    ),
    "softmax_cross_entropy": (
        lambda out: kernels.softmax_cross_entropy(_m(4, 3), [0, 1, 2, 0], out=out),
        _m(4, 3),
        True,
    ),
    "bce_with_logits": (
        lambda out: kernels.bce_with_logits(_m(4, 3), _m(4, 3), out=out),
        _m(4, 3),
        True,
    ),
    "mse": (lambda out: kernels.mse(_m(4, 3), _m(4, 3), out=out), _m(4, 3), True),
    "csr_matmul": (
        lambda out: kernels.csr_matmul(_m(5), _CSR_INDICES, _CSR_INDPTR, _m(3, 2), out=out),
        _m(4, 2),
        True,
    ),
    "csr_t_matmul": (
        lambda out: kernels.csr_t_matmul(_m(5), _CSR_INDICES, _CSR_INDPTR, _m(4, 2), out=out),
        _m(3, 2),
        True,
    ),
}


def _misaligned(like):
    buf = np.zeros(like.nbytes + 1, np.uint8)
    return np.frombuffer(buf.data, like.dtype, like.size, offset=1).reshape(like.shape)


def _readonly(like):
    r = like.copy()
    r.flags.writeable = False
    return r


for kname, (call, good, contiguous) in OUT_KERNELS.items():
    p = f"{kname}-out"
    probe(
        f"{p}-dtype",
        lambda c=call, g=good: c(g.astype(f64)),
        TypeError,
        rf"{kname}: out has dtype float64, expected float32",
    )
    probe(
        f"{p}-int-dtype",
        lambda c=call, g=good: c(g.astype(np.int32)),
        TypeError,
        "out has dtype int32",
    )
    probe(
        f"{p}-shape",
        lambda c=call, g=good: c(np.zeros(g.shape + (1,), f32)),
        ValueError,
        rf"{kname}: out has shape",
    )
    probe(
        f"{p}-shape-too-small",
        lambda c=call, g=good: c(np.zeros(g.size - 1, f32)),
        ValueError,
        "out has shape",
    )
    probe(
        f"{p}-list", lambda c=call, g=good: c(g.tolist()), TypeError, "out must be a numpy.ndarray"
    )
    probe(f"{p}-readonly", lambda c=call, g=good: c(_readonly(g)), ValueError, "out is read-only")
    probe(
        f"{p}-broadcast",
        lambda c=call, g=good: c(np.broadcast_to(g.ravel()[:1], g.shape)),
        ValueError,
        "read-only",
    )
    probe(
        f"{p}-byteswapped",
        lambda c=call, g=good: c(g.astype(g.dtype.newbyteorder(">"))),
        (TypeError, ValueError),
        "out",
    )
    probe(
        f"{p}-misaligned",
        lambda c=call, g=good: c(_misaligned(g)),
        ValueError,
        "out must be aligned",
    )
    if contiguous:
        probe(
            f"{p}-strided",
            lambda c=call, g=good: c(np.repeat(g, 2, axis=-1)[..., ::2]),
            ValueError,
            "out must be C-contiguous",
        )
        if good.ndim == 2:
            probe(
                f"{p}-fortran",
                lambda c=call, g=good: c(np.asfortranarray(g)),
                ValueError,
                "out must be C-contiguous",
            )
    else:
        probe(
            f"{p}-self-overlap",
            lambda c=call, g=good: c(as_strided(np.zeros(64, f32), g.shape, (4, 4))),
            ValueError,
            "its elements overlap",
        )
        probe(
            f"{p}-zero-stride-writable",
            lambda c=call, g=good: c(as_strided(np.zeros(64, f32), g.shape, (0, 4))),
            ValueError,
            "its elements overlap",
        )
        probe(
            f"{p}-partial-element-stride",
            lambda c=call, g=good: c(as_strided(np.zeros(64, f32), g.shape, (22, 4))),
            ValueError,
            "(not whole elements|aligned)",
        )

# overlap with an input: out may alias x exactly for in-place kernels, never partially
_buf = np.zeros(40, f32)
probe(
    "gemm-out-is-a",
    lambda: (lambda a: kernels.gemm(a, a, out=a))(_m(3, 3)),
    ValueError,
    "out overlaps an input",
)
probe(
    "gemm-out-overlaps-bias",
    lambda: (lambda buf: kernels.gemm(_m(2, 2), _m(2, 2), bias=buf[:2], out=buf[:4].reshape(2, 2)))(
        np.zeros(8, f32)
    ),
    ValueError,
    "out overlaps an input",
)
probe(
    "act-out-shifted",
    lambda: (
        lambda buf: kernels.activation_forward(
            buf[:16].reshape(4, 4), "relu", out=buf[2:18].reshape(4, 4)
        )
    )(np.zeros(20, f32)),
    ValueError,
    "out overlaps an input",
)
probe(
    "softmax-bwd-out-is-y",
    lambda: (lambda y: kernels.softmax_backward(_m(2, 2), y, out=y))(_m(2, 2)),
    ValueError,
    "out overlaps an input",
)
probe(
    "bce-out-is-target",
    lambda: (lambda t: kernels.bce_with_logits(_m(2, 2), t, out=t))(_m(2, 2)),
    ValueError,
    "out overlaps an input",
)
# The kernel reads label i after writing gradient rows < i: an out over the labels would turn
# gradient bits into an index and write out of bounds, so the overlap must be refused.
probe(
    "sce-out-overlaps-labels-view",
    lambda: (
        lambda buf: (
            buf.__setitem__(slice(4, 68), 0.0),
            kernels.softmax_cross_entropy(
                np.random.default_rng(0).random((64, 4)),
                buf[4:68].view(np.int64),
                out=buf[:256].reshape(64, 4),
            ),
        )
    )(np.zeros(264)),
    ValueError,
    "out overlaps an input",
)
probe(
    "act-bwd-biasgrad-overlaps-dy",
    lambda: (lambda dy: kernels.activation_backward(dy, _m(2, 3), "relu", bias_grad_out=dy[0]))(
        _m(2, 3)
    ),
    ValueError,
    "out overlaps an input",
)
probe(
    "sgd-buffer-is-param",
    lambda: (lambda p: kernels.sgd_step(p, _m(3), p, lr=0.1, momentum=0.9))(_m(3)),
    ValueError,
    "momentum_buffer overlaps param or grad",
)
probe(
    "sgd-grad-is-param",
    lambda: (lambda p: kernels.sgd_step(p, p, None, lr=0.1))(_m(3)),
    ValueError,
    "grad overlaps param",
)
probe(
    "penalty-grad-is-weight",
    lambda: (lambda w: kernels.penalty(w, w, l2=0.1))(_m(3)),
    ValueError,
    "grad overlaps weight",
)

# ---- the sparse kernels' index arrays ----------------------------------------------------
# Every index the rows use is checked before the kernel reads one: a bad one would be a read
# (csr_matmul) or a write (csr_t_matmul) out of bounds.


def _csr_call(kname, data=None, indices=_CSR_INDICES, indptr=_CSR_INDPTR, b=None, out=None):
    data = _m(5) if data is None else data
    if kname == "csr_matmul":
        return lambda: kernels.csr_matmul(data, indices, indptr, _m(3, 2) if b is None else b)
    if out is None:
        out = _m(3, 2)
    return lambda: kernels.csr_t_matmul(
        data, indices, indptr, _m(4, 2) if b is None else b, out=out
    )


_I32, _I64 = np.int32, np.int64
_CSR_PROBES = [
    # id, arguments, exception, message
    ("index-too-big", {"indices": np.array([2, 0, 3, 1, 2], _I32)}, ValueError,
     r"indices must be in \[0, 3\) \(the rows of (b|out)\), got 3 at indices\[2\]"),
    ("index-negative", {"indices": np.array([2, 0, 1, 1, -1], _I32)}, ValueError,
     r"indices must be in .*got -1 at indices\[4\]"),
    ("index-int32-min", {"indices": np.array([2, -(2**31), 1, 1, 2], _I32)}, ValueError,
     r"indices must be in .*got -2147483648 at indices\[1\]"),
    ("index-huge-int64",
     {"indices": np.array([2, 0, 2**40, 1, 2], _I64), "indptr": _CSR_INDPTR.astype(_I64)},
     ValueError, r"indices must be in .*got 1099511627776 at indices\[2\]"),
    ("index-int64-min",
     {"indices": np.array([2, 0, 1, 1, -(2**63)], _I64), "indptr": _CSR_INDPTR.astype(_I64)},
     ValueError, r"indices must be in .*at indices\[4\]"),
    ("indptr-decreasing", {"indptr": np.array([0, 2, 1, 4, 5], _I32)}, ValueError,
     r"indptr must be non-decreasing, got indptr\[2\] = 1 after indptr\[1\] = 2"),
    ("indptr-negative-start", {"indptr": np.array([-1, 2, 2, 4, 5], _I32)}, ValueError,
     r"indptr\[0\] must be >= 0, got -1"),
    ("indptr-past-data", {"indptr": np.array([0, 2, 2, 4, 6], _I32)}, ValueError,
     r"indptr\[-1\] must be <= len\(data\) = 5, got 6"),
    ("indptr-huge", {"indptr": np.array([0, 2, 2, 4, 2**62], _I64),
                     "indices": _CSR_INDICES.astype(_I64)}, ValueError,
     r"indptr\[-1\] must be <= len\(data\) = 5"),
    ("indptr-empty", {"indptr": np.zeros(0, _I32)}, ValueError,
     r"indptr must have at least 1 entry"),
    ("indptr-2d", {"indptr": _CSR_INDPTR.reshape(1, 5)}, ValueError,
     r"indptr must be 1-D, got shape \(1, 5\)"),
    ("indices-2d", {"indices": _CSR_INDICES.reshape(5, 1)}, ValueError,
     r"indices must be 1-D, got shape \(5, 1\)"),
    ("indices-short", {"indices": _CSR_INDICES[:4]}, ValueError,
     r"indices must have the length of data, 5, got 4"),
    ("data-long", {"data": _m(6)}, ValueError, r"indices must have the length of data, 6, got 5"),
    ("index-dtypes-differ", {"indptr": _CSR_INDPTR.astype(_I64)}, TypeError,
     r"indices and indptr must have the same dtype .* got int32 and int64"),
    ("indices-float", {"indices": _CSR_INDICES.astype(f32)}, TypeError,
     r"indices must have dtype int32 or int64, got float32"),
    ("indices-uint32", {"indices": _CSR_INDICES.astype(np.uint32)}, TypeError,
     r"indices must have dtype int32 or int64, got uint32"),
    ("indices-int16", {"indices": _CSR_INDICES.astype(np.int16)}, TypeError,
     r"indices must have dtype int32 or int64, got int16"),
    ("indptr-bool", {"indptr": np.ones(5, bool)}, TypeError,
     r"indptr must have dtype int32 or int64, got bool"),
    ("indptr-object", {"indptr": np.array([0, 2, 2, 4, None], object)}, TypeError,
     r"indptr must have dtype int32 or int64, got object"),
    ("indices-none", {"indices": None}, TypeError, r"indices must have dtype int32 or int64"),
    ("indptr-string", {"indptr": "abc"}, TypeError, r"indptr must have dtype int32 or int64"),
    ("indices-ragged", {"indices": [[1, 2], [3]]}, TypeError,
     r"indices must be an array of int32 or int64, got list"),
]  # fmt: skip
for kname in ("csr_matmul", "csr_t_matmul"):
    for id_, kw, exc, match in _CSR_PROBES:
        probe(f"{kname}-{id_}", _csr_call(kname, **kw), exc, rf"{kname}: {match}")
probe(
    "csr_matmul-b-rows",
    _csr_call("csr_matmul", b=_m(2, 2)),
    ValueError,
    r"csr_matmul: indices must be in \[0, 2\) \(the rows of b\), got 2 at indices\[0\]",
)
probe(
    "csr_matmul-bias-shape",
    lambda: kernels.csr_matmul(_m(5), _CSR_INDICES, _CSR_INDPTR, _m(3, 2), bias=_m(3)),
    ValueError,
    r"csr_matmul: bias must have shape \(2,\), got \(3,\)",
)
probe(
    "csr_matmul-activation",
    lambda: kernels.csr_matmul(_m(5), _CSR_INDICES, _CSR_INDPTR, _m(3, 2), activation="gelu"),
    ValueError,
    "csr_matmul: activation must be one of",
)
probe(
    "csr_matmul-slope",
    lambda: kernels.csr_matmul(_m(5), _CSR_INDICES, _CSR_INDPTR, _m(3, 2), negative_slope="x"),
    TypeError,
    "csr_matmul: negative_slope must be a real number",
)
probe(
    "csr_t_matmul-b-rows",
    _csr_call("csr_t_matmul", b=_m(5, 2)),
    ValueError,
    r"csr_t_matmul: b must have len\(indptr\) - 1 = 4 rows, got shape \(5, 2\)",
)
probe(
    "csr_t_matmul-out-rows",
    _csr_call("csr_t_matmul", out=_m(2, 2)),
    ValueError,
    r"csr_t_matmul: indices must be in \[0, 2\) \(the rows of out\), got 2 at indices\[0\]",
)
probe(
    "csr_t_matmul-out-none",
    lambda: kernels.csr_t_matmul(_m(5), _CSR_INDICES, _CSR_INDPTR, _m(4, 2), out=None),
    TypeError,
    r"csr_t_matmul: out must be a numpy.ndarray of shape \(n_cols, 2\), got NoneType",
)
probe(
    "csr_t_matmul-out-missing",
    lambda: kernels.csr_t_matmul(_m(5), _CSR_INDICES, _CSR_INDPTR, _m(4, 2)),
    TypeError,
    "out",
)
# out may not overlap any input: it is written while they are read.
probe(
    "csr_matmul-out-overlaps-b",
    lambda: (
        lambda buf: kernels.csr_matmul(
            _m(5), _CSR_INDICES, _CSR_INDPTR, buf[:6].reshape(3, 2), out=buf[2:10].reshape(4, 2)
        )
    )(np.zeros(12, f32)),
    ValueError,
    "csr_matmul: out overlaps an input",
)
probe(
    "csr_matmul-out-overlaps-data",
    lambda: (
        lambda buf: kernels.csr_matmul(
            buf[:5], _CSR_INDICES, _CSR_INDPTR, _m(3, 2), out=buf[:8].reshape(4, 2)
        )
    )(np.zeros(8, f32)),
    ValueError,
    "csr_matmul: out overlaps an input",
)
probe(
    "csr_t_matmul-out-overlaps-indices",
    lambda: (
        lambda buf: kernels.csr_t_matmul(
            _m(5), buf.view(_I32)[:5], _CSR_INDPTR, _m(4, 2), out=buf.reshape(3, 2)
        )
    )(np.zeros(6, f32)),
    ValueError,
    "csr_t_matmul: out overlaps an input",
)
probe(
    "csr_t_matmul-out-is-b",
    lambda: (
        lambda g: kernels.csr_t_matmul(
            _m(4), _CSR_INDICES[:4], np.array([0, 1, 2, 3, 4], _I32), g, out=g
        )
    )(_m(4, 2)),
    ValueError,
    "csr_t_matmul: out overlaps an input",
)
probe(
    "csr_matmul-out-overlaps-indptr",
    lambda: (
        lambda buf: kernels.csr_matmul(
            _m(5), _CSR_INDICES, buf.view(_I32)[:5], _m(3, 2), out=buf.reshape(4, 2)
        )
    )(np.zeros(8, f32)),
    ValueError,
    "csr_matmul: out overlaps an input",
)

# ---- the multi-array entry points: Dense chains and Adam over many parameters ---------------


def _step(n=2, k=3, dtype=f32, bias=True, **kw):
    """A valid DenseStep of n outputs and k inputs with its own arrays."""
    return kernels.DenseStep(
        _m(n, k, dtype=dtype),
        _m(n, dtype=dtype) if bias else None,
        np.zeros((n, k), dtype),
        np.zeros(n, dtype) if bias else None,
        **kw,
    )


def _fwd(*steps, x=None, outs=None):
    return kernels.dense_chain_forward(_m(4, 3) if x is None else x, list(steps), outs)


def _bwd(*steps, dy=None, x=None, outputs=None, **kw):
    """The backward of a chain of 3 -> 2 (-> 2 ...) steps at m=4, with its own outputs."""
    x = _m(4, 3) if x is None else x
    outputs = [_m(4, s.weight.shape[0]) for s in steps] if outputs is None else outputs
    dy = _m(4, 2) if dy is None else dy
    return kernels.dense_chain_backward(dy, list(steps), x, outputs, **kw)


fwd = "dense_chain_forward"
probe(
    "chain-steps-array",
    lambda: kernels.dense_chain_forward(_m(4, 3), _m(2, 3)),
    TypeError,
    f"{fwd}: steps must be a list or tuple of DenseStep, got ndarray",
)
probe("chain-steps-empty", lambda: _fwd(), ValueError, f"{fwd}: steps is empty")
probe(
    "chain-step-layer",
    lambda: kernels.dense_chain_forward(_m(4, 3), [(fastnn.Dense(3, 2), None)]),
    TypeError,
    r"steps\[0\] must be a DenseStep \(weight, bias, weight_grad",
)
probe(
    "chain-step-short",
    lambda: kernels.dense_chain_forward(_m(4, 3), [(_m(2, 3), None)]),
    TypeError,
    r"steps\[0\] must be a DenseStep",
)
probe(
    "chain-activation",
    lambda: _fwd(_step(activation="gelu")),
    ValueError,
    r"steps\[0\].activation must be one of \('identity', 'relu'",
)
probe(
    "chain-activation-none",
    lambda: _fwd(_step(activation=None)),
    ValueError,
    r"steps\[0\].activation must be one of",
)
probe(
    "chain-slope-str",
    lambda: _fwd(_step(negative_slope="0.1")),
    TypeError,
    r"steps\[0\].negative_slope must be a real number, got '0.1'",
)
probe(
    "chain-weight-width",
    lambda: _fwd(_step(), _step(2, 4)),
    ValueError,
    r"steps\[1\].weight has shape \(2, 4\), but the step's input has 2 columns",
)
probe(
    "chain-bias-shape",
    lambda: _fwd(_step()._replace(bias=_m(3))),
    ValueError,
    r"steps\[0\].bias has shape \(3,\), expected \(2,\)",
)
probe(
    "chain-bias-mixed",
    lambda: _fwd(_step()._replace(bias=_m(2, dtype=f64))),
    TypeError,
    r"steps\[0\].bias has dtype float64, expected float32",
)
probe("chain-x-1d", lambda: _fwd(_step(), x=_m(3)), ValueError, f"{fwd}: x must be 2-D")
probe(
    "chain-outs-length",
    lambda: _fwd(_step(), _step(2, 2), outs=[None]),
    ValueError,
    r"outs must have one entry per step \(2\), got 1",
)
probe(
    "chain-outs-array",
    lambda: _fwd(_step(), outs=_m(1, 4, 2)),
    TypeError,
    "outs must be a list or tuple of arrays, got ndarray",
)
probe(
    "chain-outs-shape",
    lambda: _fwd(_step(), outs=[_m(4, 3)]),
    ValueError,
    r"outs\[0\] has shape \(4, 3\), expected \(4, 2\)",
)
probe(
    "chain-outs-dtype",
    lambda: _fwd(_step(), outs=[_m(4, 2, dtype=f64)]),
    TypeError,
    r"outs\[0\] has dtype float64, expected float32",
)
probe(
    "chain-outs-readonly",
    lambda: _fwd(_step(), outs=[_readonly(_m(4, 2))]),
    ValueError,
    r"outs\[0\] is read-only",
)
probe(
    "chain-outs-fortran",
    lambda: _fwd(_step(), outs=[np.asfortranarray(_m(4, 2))]),
    ValueError,
    r"outs\[0\] must be C-contiguous",
)
probe(
    "chain-outs-is-x",
    lambda: (lambda x: _fwd(_step(3, 3), x=x, outs=[x]))(_m(4, 3)),
    ValueError,
    r"outs\[0\] overlaps x",
)
probe(
    "chain-outs-overlap-later-x",
    lambda: (lambda x: _fwd(_step(3, 3), _step(3, 3), x=x, outs=[None, x]))(_m(4, 3)),
    ValueError,
    r"outs\[1\] overlaps x",
)
probe(
    "chain-outs-is-weight",
    lambda: (lambda s: _fwd(_step(4, 3), s, outs=[None, s.weight]))(_step(4, 4)),
    ValueError,
    r"outs\[1\] overlaps steps\[1\].weight",
)
probe(
    "chain-outs-shared",
    lambda: (lambda o: _fwd(_step(3, 3), _step(3, 3), _step(3, 3), outs=[o, None, o]))(_m(4, 3)),
    ValueError,
    r"outs\[0\] overlaps outs\[2\]",
)
probe(
    "chain-bwd-outputs-length",
    lambda: _bwd(_step(), outputs=[]),
    ValueError,
    r"outputs must have one entry per step \(1\), got 0",
)
probe(
    "chain-bwd-outputs-none",
    lambda: _bwd(_step(activation="relu"), outputs=[None]),
    TypeError,
    r"outputs\[0\] is None, but the backward reads it",
)
probe(
    "chain-bwd-outputs-shape",
    lambda: _bwd(_step(activation="relu"), outputs=[_m(3, 2)]),
    ValueError,
    r"outputs\[0\] has shape \(3, 2\), expected \(4, 2\)",
)
probe(
    "chain-bwd-dy-shape",
    lambda: _bwd(_step(), dy=_m(4, 3)),
    ValueError,
    r"dy has shape \(4, 3\), expected \(4, 2\)",
)
probe(
    "chain-bwd-x-rows",
    lambda: _bwd(_step(), x=_m(5, 3)),
    ValueError,
    r"x has shape \(5, 3\), but dy has 4 rows",
)
probe(
    "chain-bwd-weight-grad-none",
    lambda: _bwd(_step()._replace(weight_grad=None)),
    TypeError,
    r"steps\[0\].weight_grad must be a numpy.ndarray, got NoneType",
)
probe(
    "chain-bwd-weight-grad-shape",
    lambda: _bwd(_step()._replace(weight_grad=_m(3, 2))),
    ValueError,
    r"steps\[0\].weight_grad must be float32 with shape \(2, 3\), got float32 \(3, 2\)",
)
probe(
    "chain-bwd-weight-grad-f64",
    lambda: _bwd(_step()._replace(weight_grad=_m(2, 3, dtype=f64))),
    ValueError,
    r"steps\[0\].weight_grad must be float32",
)
probe(
    "chain-bwd-weight-grad-readonly",
    lambda: _bwd(_step()._replace(weight_grad=_readonly(_m(2, 3)))),
    ValueError,
    r"steps\[0\].weight_grad must be C-contiguous, writable",
)
probe(
    "chain-bwd-weight-grad-fortran",
    lambda: _bwd(_step()._replace(weight_grad=np.asfortranarray(_m(2, 3)))),
    ValueError,
    r"steps\[0\].weight_grad must be C-contiguous",
)
probe(
    "chain-bwd-weight-grad-misaligned",
    lambda: _bwd(_step()._replace(weight_grad=_misaligned(_m(2, 3)))),
    ValueError,
    r"steps\[0\].weight_grad must be C-contiguous, writable, aligned",
)
probe(
    "chain-bwd-bias-grad-none",
    lambda: _bwd(_step()._replace(bias_grad=None)),
    TypeError,
    r"steps\[0\].bias_grad must be a numpy.ndarray, got NoneType",
)
probe(
    "chain-bwd-bias-grad-without-bias",
    lambda: _bwd(_step(bias=False)._replace(bias_grad=_m(2))),
    ValueError,
    r"steps\[0\].bias_grad must be None for a step without bias",
)
probe(
    "chain-bwd-negative-slope",
    lambda: _bwd(_step(activation="leaky_relu", negative_slope=-0.1)),
    ValueError,
    r"steps\[0\].negative_slope is -0.1: with a negative slope",
)
probe(
    "chain-bwd-l2-str",
    lambda: _bwd(_step(l2="0.1")),
    TypeError,
    r"steps\[0\].l2 must be a real number",
)
probe(
    "chain-bwd-dx-outs-shape",
    lambda: _bwd(_step(), _step(2, 2), dx_outs=[None, _m(4, 3)]),
    ValueError,
    r"dx_outs\[1\] has shape \(4, 3\), expected \(4, 2\)",
)
probe(
    "chain-bwd-grad-is-x",
    lambda: (lambda x: _bwd(_step(4, 3)._replace(weight_grad=x[:4]), x=x, dy=_m(4, 4)))(
        np.zeros((4, 3), f32)
    ),
    ValueError,
    r"steps\[0\].weight_grad overlaps x",
)
probe(
    "chain-bwd-dx-outs-is-output",
    lambda: (lambda o: _bwd(_step(), _step(2, 2), outputs=[o, _m(4, 2)], dx_outs=[None, o]))(
        _m(4, 2)
    ),
    ValueError,
    r"dx_outs\[1\] overlaps outputs\[0\]",
)
probe(
    "chain-bwd-grad-is-weight",
    lambda: (lambda s: _bwd(s._replace(weight_grad=s.weight)))(_step()),
    ValueError,
    r"steps\[0\].weight_grad overlaps steps\[0\].weight",
)
probe(
    "chain-bwd-tied-grads",
    lambda: (lambda s: _bwd(_step(2, 3), s, s))(_step(2, 2)),
    ValueError,
    r"steps\[1\].(weight|bias)_grad overlaps steps\[2\].(weight|bias)_grad",
)
probe(
    "chain-bwd-outputs-clobbered",
    lambda: (lambda o: _bwd(_step(2, 3), _step(2, 2), _step(2, 2), outputs=[o, o, _m(4, 2)]))(
        _m(4, 2)
    ),
    ValueError,
    r"outputs\[0\] overlaps outputs\[1\]: the forward wrote one over the other",
)
probe(
    "chain-bwd-dy-overwritten-is-output",
    lambda: (lambda o: _bwd(_step(activation="relu"), dy=o, outputs=[o], overwrite_dy=True))(
        _m(4, 2)
    ),
    ValueError,
    r"dy overlaps outputs\[0\]",
)
probe(
    "chain-bwd-input-grad-ambiguous",
    lambda: _bwd(_step(), input_grad=np.ones(2)),
    ValueError,
    "truth value",
)

many = "adam_step_many"


def _adam(n=2, **over):
    args = dict(
        params=[_m(3) for _ in range(n)],
        grads=[_m(3) for _ in range(n)],
        exp_avgs=[_m(3) for _ in range(n)],
        exp_avg_sqs=[_m(3) for _ in range(n)],
        steps=[1] * n,
    )
    args.update(over)
    lr = args.pop("lr", 0.01)
    return lambda: kernels.adam_step_many(**args, lr=lr)


for name in ("grads", "exp_avgs", "exp_avg_sqs", "steps"):
    probe(
        f"adam-many-{name}-length",
        _adam(**{name: [1] if name == "steps" else [_m(3)]}),
        ValueError,
        rf"{many}: 1 {name} for 2 params",
    )
probe(
    "adam-many-params-array",
    _adam(params=_m(2, 3)),
    TypeError,
    f"{many}: params must be a list or tuple of arrays, got ndarray",
)
probe(
    "adam-many-steps-int",
    _adam(steps=1),
    TypeError,
    f"{many}: steps must be a list or tuple of integers, got int",
)
for bad in (0, -1, True, 1.0, None, "1"):
    probe(
        f"adam-many-step-{bad!r}",
        _adam(steps=[1, bad]),
        ValueError,
        rf"{many}: steps\[1\] must be an integer >= 1, got {re.escape(repr(bad))}",
    )
probe("adam-many-lr-nan", _adam(lr=float("nan")), ValueError, f"{many}: lr must be finite")
probe(
    "adam-many-param-readonly",
    _adam(params=[_m(3), _readonly(_m(3))]),
    ValueError,
    rf"{many}: params\[1\] must be C-contiguous, writable",
)
probe(
    "adam-many-param-strided",
    _adam(params=[_m(3), _m(6)[::2]]),
    ValueError,
    rf"{many}: params\[1\] must be C-contiguous",
)
probe(
    "adam-many-param-byteswapped",
    _adam(params=[_m(3), _m(3).astype(">f4")]),
    ValueError,
    rf"{many}: params\[1\] must be C-contiguous, writable, aligned and native-endian",
)
probe(
    "adam-many-param-misaligned",
    _adam(params=[_m(3), _misaligned(_m(3))]),
    ValueError,
    rf"{many}: params\[1\] must be C-contiguous, writable, aligned",
)
probe(
    "adam-many-param-f64",
    _adam(params=[_m(3), _m(3, dtype=f64)]),
    TypeError,
    rf"{many}: grads\[1\] has dtype float32, expected float64",
)
probe(
    "adam-many-state-f64",
    _adam(exp_avgs=[_m(3), _m(3, dtype=f64)]),
    ValueError,
    rf"{many}: exp_avgs\[1\] must be float32 with shape \(3,\), got float64",
)
probe(
    "adam-many-grad-shape",
    _adam(grads=[_m(3), _m(4)]),
    ValueError,
    rf"{many}: grads\[1\] has shape \(4,\), expected the param's \(3,\)",
)
probe(
    "adam-many-state-shape",
    _adam(exp_avg_sqs=[_m(3), _m(2)]),
    ValueError,
    rf"{many}: exp_avg_sqs\[1\] must be float32 with shape \(3,\), got float32 \(2,\)",
)
probe(
    "adam-many-state-none",
    _adam(exp_avgs=[_m(3), None]),
    TypeError,
    rf"{many}: exp_avgs\[1\] must be a numpy.ndarray, got NoneType",
)
probe(
    "adam-many-state-shared",
    (lambda m: _adam(exp_avgs=[m, m]))(_m(3)),
    ValueError,
    rf"{many}: exp_avgs\[0\] overlaps exp_avgs\[1\]",
)
probe(
    "adam-many-param-twice",
    (lambda p: _adam(params=[p, p]))(_m(3)),
    ValueError,
    rf"{many}: params\[0\] overlaps params\[1\]",
)
probe(
    "adam-many-grad-is-param",
    (lambda p: _adam(params=[_m(3), p], grads=[p, _m(3)]))(_m(3)),
    ValueError,
    rf"{many}: params\[1\] overlaps grads\[0\]",
)
probe(
    "adam-many-state-in-param",
    (lambda buf: _adam(params=[buf[:3], _m(3)], exp_avg_sqs=[_m(3), buf[2:5]]))(_m(6)),
    ValueError,
    rf"{many}: params\[0\] overlaps exp_avg_sqs\[1\]",
)
# The single-parameter kernels update the caller's array, never a converted copy of it.
probe(
    "adam-param-byteswapped",
    lambda: kernels.adam_step(_m(3).astype(">f4"), _m(3), _m(3), _m(3), lr=0.1),
    ValueError,
    "adam_step: param must be C-contiguous, writable, aligned and native-endian",
)
probe(
    "adagrad-param-misaligned",
    lambda: kernels.adagrad_step(_misaligned(_m(3)), _m(3), _m(3), lr=0.1),
    ValueError,
    "adagrad_step: param must be C-contiguous, writable, aligned",
)
probe(
    "sgd-buffer-misaligned",
    lambda: kernels.sgd_step(_m(3), _m(3), _misaligned(_m(3)), lr=0.1, momentum=0.9),
    ValueError,
    "sgd_step: momentum_buffer must be C-contiguous, writable, aligned",
)

# ---- absurd sizes: MemoryError or ValueError, never a crash or an attempt -------------------
# 2**60 elements and no memory behind them; a copy would need more than any address space.
HUGE = np.broadcast_to(np.float32(1), (2**30, 2**30))
probe("column-sum-huge-broadcast", lambda: kernels.column_sum(HUGE), (MemoryError, ValueError), "")
probe("softmax-huge-broadcast", lambda: kernels.softmax(HUGE), (MemoryError, ValueError), "")
probe("dense-huge", lambda: fastnn.Dense(2**40, 2**40), (MemoryError, ValueError), "")
probe(
    "dense-negative",
    lambda: fastnn.Dense(-1, 3),
    ValueError,
    "in_features must be an integer >= 1, got -1",
)
probe(
    "dense-zero-out",
    lambda: fastnn.Dense(3, 0),
    ValueError,
    "out_features must be an integer >= 1, got 0",
)
probe("dense-float-size", lambda: fastnn.Dense(3.0, 2), ValueError, "in_features")
probe("dense-bool-size", lambda: fastnn.Dense(True, 2), ValueError, "in_features")
probe(
    "dense-dtype-f16",
    lambda: fastnn.Dense(3, 2, dtype=np.float16),
    TypeError,
    "dtype must be float32 or float64, got float16",
)
probe(
    "dense-dtype-junk",
    lambda: fastnn.Dense(3, 2, dtype="junk"),
    TypeError,
    "dtype must be float32 or float64",
)
probe(
    "dense-init",
    lambda: fastnn.Dense(3, 2, init="magic"),
    ValueError,
    "unknown init 'magic'; expected one of normal",
)
probe(
    "dense-l1-nan",
    lambda: fastnn.Dense(3, 2, l1=float("nan")),
    ValueError,
    "l1 must be a finite number",
)
probe(
    "dense-rng", lambda: fastnn.Dense(3, 2, rng="seed"), TypeError, "rng must be None, an int seed"
)
probe("leaky-slope", lambda: fastnn.LeakyReLU(None), ValueError, "negative_slope")
for cls in (fastnn.SoftmaxCrossEntropy, fastnn.BCEWithLogits, fastnn.MSELoss):
    probe(
        f"{cls.__name__}-reduction",
        lambda cls=cls: cls("avg"),
        ValueError,
        "reduction must be one of",
    )

# ---- model level -----------------------------------------------------------------------------


def _model(dtype=f32):
    return fastnn.Sequential(
        fastnn.Dense(4, 5, rng=0), fastnn.ReLU(), fastnn.Dense(5, 3, rng=1), dtype=dtype
    )


def _fit(**kw):
    model = _model()
    args = dict(
        X=np.ones((6, 4)),
        y=[0, 1, 2, 0, 1, 2],
        loss=fastnn.SoftmaxCrossEntropy(),
        optimizer=optim.SGD(model, lr=0.1),
    )
    args.update(kw)
    X, y = args.pop("X"), args.pop("y")
    return lambda: model.fit(X, y, **args)


for name, X, exc, match in [
    (
        "features",
        np.ones((2, 5)),
        ValueError,
        r"X: the model expects 4 features, got shape \(2, 5\)",
    ),
    (
        "1d",
        np.ones(4),
        ValueError,
        r"X must be 2-D \(n_samples, n_features\) for this model, got shape \(4,\)",
    ),
    ("3d", np.ones((2, 4, 1)), ValueError, "X must be 2-D"),
    ("scalar", 1.0, ValueError, "X must be 2-D"),
    ("strings", np.full((2, 4), "a"), TypeError, "X must be numeric"),
    ("complex", np.ones((2, 4), complex), TypeError, "X must be numeric.*complex128"),
    ("object", np.ones((2, 4), object), TypeError, "X must be numeric.*object"),
    ("datetime", np.zeros((2, 4), "datetime64[s]"), TypeError, "X must be numeric"),
    (
        "ragged",
        [[1, 2, 3, 4], [1]],
        TypeError,
        r"X is ragged \(inhomogeneous\): X\[0\] has 4 elements but X\[1\] has 1 element",
    ),
    ("none", None, TypeError, "X must be an array-like of numbers, got None"),
]:
    probe(f"forward-{name}", lambda X=X: _model().forward(X), exc, match)
    probe(f"predict-{name}", lambda X=X: _model().predict(X), (ValueError, TypeError), "X")
probe(
    "backward-before-forward",
    lambda: _model().backward(np.ones((2, 3))),
    RuntimeError,
    "before a forward",
)


def _backward_wrong_shape():
    model = _model()
    model.forward(np.ones((2, 4)), training=True)
    model.backward(np.ones((3, 3)))


probe(
    "backward-dY-shape",
    _backward_wrong_shape,
    ValueError,
    r"dY must have the shape of the last training output \(2, 3\), got \(3, 3\)",
)


def _with_weight(value):
    model = _model()
    model[2].weight.data[1, 1] = value
    return model


probe(
    "predict-nan-weight",
    lambda: _with_weight(np.nan).predict(np.ones((2, 4))),
    FloatingPointError,
    r"model weight '2.weight' contains NaN or infinity",
)
probe(
    "forward-inf-weight",
    lambda: _with_weight(np.inf).forward(np.ones((1, 4))),
    ValueError,
    r"'2.weight' contains NaN or infinity",
)
probe(
    "evaluate-nan-weight",
    lambda: _with_weight(np.nan).evaluate(
        np.ones((3, 4)), [0, 1, 2], loss=fastnn.SoftmaxCrossEntropy()
    ),
    FloatingPointError,
    "2.weight",
)
probe(
    "predict-nan-running-var",
    lambda: (lambda m: (m[1].running_var.__setitem__(0, np.nan), m.predict(np.ones((2, 3)))))(
        fastnn.Sequential(fastnn.Dense(3, 4), fastnn.BatchNorm1d(4), fastnn.Dense(4, 2))
    ),
    FloatingPointError,
    "'1.running_var' contains NaN",
)
probe(
    "predict-standardize-not-adapted",
    lambda: fastnn.Sequential(fastnn.Standardize(), fastnn.Dense(3, 2)).predict(np.ones((2, 3))),
    (RuntimeError, ValueError),
    "Standardize",
)
probe(
    "load-nan-then-predict",
    lambda: (
        lambda m: (
            m.load_state_dict({**m.state_dict(), "0.bias": np.full(5, np.nan)}),
            m.predict(np.ones((1, 4))),
        )
    )(_model()),
    FloatingPointError,
    "'0.bias'",
)

for name, kw, exc, match in [
    ("y-length", dict(y=[0, 1]), ValueError, "y has 2 samples, X has 6"),
    ("y-label-range", dict(y=[0, 1, 2, 0, 1, 9]), ValueError, r"target labels must be in \[0, 3\)"),
    ("y-label-negative", dict(y=[0, 1, 2, 0, 1, -1]), ValueError, "got -1"),
    ("y-label-fraction", dict(y=[0, 1, 2, 0, 1, 0.5]), ValueError, "whole numbers"),
    ("y-strings", dict(y=list("abcdef")), TypeError, "must be integers"),
    (
        "X-nan",
        dict(X=np.where(np.eye(6, 4) > 0, np.nan, 1.0)),
        FloatingPointError,
        "epoch 1, batch 1 of 1: this batch of X contains NaN",
    ),
    (
        "X-inf-one-row",
        dict(X=np.vstack([np.ones((5, 4)), [[np.inf, 0, 0, 0]]]), shuffle=False, batch_size=2),
        ValueError,
        "epoch 1, batch 3 of 3: this batch of X",
    ),
    ("y-nan-probs", dict(y=np.full((6, 3), np.nan)), ValueError, "this batch of y contains NaN"),
    (
        "overflow",
        dict(X=np.full((6, 4), 1e30), loss=fastnn.MSELoss(), y=np.full((6, 3), 1e30)),
        FloatingPointError,
        "epoch 1, batch 1 of 1: the outputs overflowed",
    ),
    ("X-empty", dict(X=np.ones((0, 4)), y=[]), ValueError, "at least one sample"),
    ("X-1d", dict(X=np.ones(6)), ValueError, "X must be 2-D"),
    ("batch_size-0", dict(batch_size=0), ValueError, "batch_size must be an integer >= 1, got 0"),
    ("batch_size-float", dict(batch_size=2.5), ValueError, "batch_size"),
    ("epochs-negative", dict(epochs=-1), ValueError, "epochs must be an integer >= 0"),
    ("epochs-bool", dict(epochs=True), ValueError, "epochs"),
    ("validation_split-1", dict(validation_split=1.0), ValueError, "leaves no training"),
    ("validation_split-nan", dict(validation_split=float("nan")), ValueError, "validation_split"),
    ("validation_split-str", dict(validation_split="0.1"), ValueError, "validation_split"),
    (
        "validation_data-triple",
        dict(validation_data=(1, 2, 3)),
        ValueError,
        "validation_data must be a pair",
    ),
    (
        "validation_data-length",
        dict(validation_data=(np.ones((3, 4)), [0, 1])),
        ValueError,
        r"validation_data\[1\] has 2 samples",
    ),
    ("loss-none", dict(loss=None), TypeError, "loss must be a loss object"),
    ("optimizer-str", dict(optimizer="sgd"), TypeError, "optimizer must be an optimizer"),
    ("callbacks-junk", dict(callbacks=[print]), TypeError, "callbacks must be Callback instances"),
    ("metric-unknown", dict(metrics=["precision"]), ValueError, "unknown metric 'precision'"),
]:
    probe(f"fit-{name}", _fit(**kw), exc, match)

probe(
    "evaluate-empty",
    lambda: _model().evaluate(np.ones((0, 4)), [], loss=fastnn.MSELoss()),
    ValueError,
    "at least one sample",
)
probe(
    "evaluate-length",
    lambda: _model().evaluate(np.ones((3, 4)), [0], loss=fastnn.MSELoss()),
    ValueError,
    "y has 1 samples, X has 3",
)
probe(
    "evaluate-batch_size",
    lambda: _model().evaluate(
        np.ones((3, 4)), [0, 1, 2], loss=fastnn.SoftmaxCrossEntropy(), batch_size=-5
    ),
    ValueError,
    "batch_size",
)

for name, mapping, exc, match in [
    (
        "shape",
        {"0.weight": np.ones((4, 5))},
        ValueError,
        r"load_state_dict: '0\.weight' \(Dense\.weight\): expected shape \(5, 4\), got \(4, 5\)",
    ),
    (
        "shape-later-layer",
        {"2.bias": np.ones(4)},
        ValueError,
        r"'2\.bias' \(Dense\.bias\): expected shape \(3,\), got \(4,\)",
    ),
    (
        "none-value",
        {"0.bias": None},
        TypeError,
        r"load_state_dict: '0\.bias' must be an array of shape \(5,\), got None",
    ),
    ("missing", {}, ValueError, r"missing keys \['0.bias', '0.weight'"),
    ("unexpected", {"9.weight": 1}, ValueError, r"unexpected keys \['9.weight'\]"),
    (
        "strings",
        {"0.bias": np.array(["a"] * 5)},
        TypeError,
        r"'0\.bias' must be numeric \(bool, int or float\), got dtype <U1 \('a' at index 0\)",
    ),
    (
        "object",
        {"0.bias": [1.0, 2.0, None, 4.0, 5.0]},
        TypeError,
        r"'0\.bias' must be numeric .*got dtype object \(None at index 2\)",
    ),
    ("complex", {"0.bias": np.ones(5, complex)}, TypeError, r"'0\.bias' must be numeric"),
    ("not-mapping", 5, TypeError, "mapping must be a dict of name -> array, got int"),
    ("pairs-junk", [1, 2], TypeError, "mapping must be a dict"),
    ("int-key", {0: np.ones(3)}, TypeError, "keys must be strings"),
    (
        "ragged",
        {"0.bias": [[1], [1, 2]]},
        (TypeError, ValueError),
        r"'0\.bias' is ragged \(inhomogeneous\): "
        r"'0\.bias'\[0\] has 1 element but '0\.bias'\[1\] has 2",
    ),
]:

    def _load(mapping=mapping):
        model = _model()
        full = model.state_dict()
        if (
            isinstance(mapping, dict)
            and mapping
            and all(isinstance(k, str) for k in mapping)
            and not any(k.startswith("9") for k in mapping)
        ):
            full.update(mapping)
            mapping = full
        model.load_state_dict(mapping)

    probe(f"load_state_dict-{name}", _load, exc, match)

# layers called directly
probe(
    "dense-forward-features",
    lambda: fastnn.Dense(4, 2).forward(np.ones((2, 3))),
    ValueError,
    r"x: Dense expects 4 features, got shape \(2, 3\)",
)
probe(
    "relu-forward-0d",
    lambda: fastnn.ReLU().forward(np.float32(3)),
    ValueError,
    r"x: ReLU expects an array with at least one axis .*got shape \(\)",
)
probe(
    "softmax-backward-first",
    lambda: fastnn.Softmax().backward(np.ones((2, 2))),
    RuntimeError,
    "before a forward",
)
probe(
    "dense-backward-first",
    lambda: fastnn.Dense(2, 2).backward(np.ones((2, 2))),
    RuntimeError,
    "before a forward",
)
probe(
    "sequential-not-layer",
    lambda: fastnn.Sequential(fastnn.Dense(2, 2), "relu"),
    TypeError,
    "layer 1",
)
probe(
    "sequential-widths",
    lambda: fastnn.Sequential(fastnn.Dense(2, 3), fastnn.Dense(4, 1)),
    ValueError,
    "layer 1",
)
probe(
    "sequential-mixed-dtypes",
    lambda: fastnn.Sequential(fastnn.Dense(2, 3), fastnn.Dense(3, 1, dtype=f64)),
    TypeError,
    "pass dtype= to Sequential",
)
# losses at the Python floor
probe(
    "loss-strings", lambda: fastnn.MSELoss()([["a"]], [[1.0]]), TypeError, "output must be numeric"
)
probe(
    "loss-complex",
    lambda: fastnn.BCEWithLogits()(np.ones(2, complex), [0, 1]),
    TypeError,
    "output must be numeric",
)

# ---- messages that name the bad value, its position, the key, the argument -------------------
_SCE = fastnn.SoftmaxCrossEntropy
for name, labels, exc, match in [
    (
        "fraction",
        [0, 1, 1.5],
        ValueError,
        r"target labels must be whole numbers, got 1\.5 at index 2",
    ),
    ("nan", np.array([0.0, np.nan, 1.0]), ValueError, r"whole numbers, got nan at index 1"),
    ("inf-f32", np.array([0, 1, -np.inf], f32), ValueError, r"whole numbers, got -inf at index 2"),
    ("range-list", [0, 7, 1], ValueError, r"target labels must be in \[0, 4\), got 7 at index 1"),
    ("range-int32", np.array([0, 1, -2], np.int32), ValueError, r"in \[0, 4\), got -2 at index 2"),
    ("range-float", [0.0, 1.0, 4.0], ValueError, r"in \[0, 4\), got 4\.0 at index 2"),
    ("bool", [True, False, True], TypeError, "target labels must be integers, got dtype bool"),
    ("object", [0, None, 1], TypeError, r"must be integers.*got dtype object \(None at index 1\)"),
    (
        "none",
        None,
        TypeError,
        (
            r"SoftmaxCrossEntropy: target must be class labels of shape \(3,\) "
            r"or probabilities of shape \(3, 4\), got None"
        ),
    ),
    ("scalar", 2, ValueError, r"target must be class labels of shape \(3,\) .*got shape \(\)"),
    (
        "ragged",
        [[1, 0, 0, 0], [1]],
        TypeError,
        r"target is ragged \(inhomogeneous\): target\[0\] has 4 elements but target\[1\] has 1",
    ),
    (
        "column",
        np.array([[0], [1], [2]]),
        ValueError,
        r"probabilities must have shape \(3, 4\), got \(3, 1\) \(class labels are 1-D",
    ),
]:
    probe(f"SoftmaxCrossEntropy-target-{name}", lambda t=labels: _SCE()(_m(3, 4), t), exc, match)
probe(
    "SoftmaxCrossEntropy-output-none",
    lambda: _SCE()(None, [0, 1]),
    TypeError,
    "SoftmaxCrossEntropy: output must be an array-like of numbers, got None",
)
probe(
    "SoftmaxCrossEntropy-output-1d",
    lambda: _SCE()(_m(3), [0, 1, 2]),
    ValueError,
    r"SoftmaxCrossEntropy: output must be 2-D logits \(n_samples, n_classes\), got shape \(3,\)",
)
for cls in (fastnn.BCEWithLogits, fastnn.MSELoss):
    n = cls.__name__
    probe(
        f"{n}-target-none",
        lambda cls=cls: cls()(_m(2, 3), None),
        TypeError,
        rf"{n}: target must be an array-like of numbers with the output's shape \(2, 3\), got None",
    )
    probe(
        f"{n}-output-none",
        lambda cls=cls: cls()(None, _m(2, 3)),
        TypeError,
        rf"{n}: output must be an array-like of numbers, got None",
    )
    probe(
        f"{n}-target-ragged",
        lambda cls=cls: cls()(_m(2, 2), [[1, 0], [1]]),
        TypeError,
        rf"{n}: target is ragged \(inhomogeneous\): "
        r"target\[0\] has 2 elements but target\[1\] has 1",
    )
    probe(
        f"{n}-output-ragged",
        lambda cls=cls: cls()([[1.0], [1.0, 2.0]], _m(2, 2)),
        TypeError,
        rf"{n}: output is ragged \(inhomogeneous\): "
        r"output\[0\] has 1 element but output\[1\] has 2",
    )
    probe(
        f"{n}-target-object",
        lambda cls=cls: cls()(_m(1, 3), [[0.5, "a", 1]]),
        TypeError,
        rf"{n}: target must be numeric .*\('a' at index \(0, 1\)\)",
    )
# ragged and None inputs, named as the caller knows them, at every entry point
_RAGGED = [[1, 2, 3, 4], [1, 2, 3]]
_RAGGED_MSG = r"{} is ragged \(inhomogeneous\): {}\[0\] has 4 elements but {}\[1\] has 3"
probe(
    "predict-ragged-named",
    lambda: _model().predict(_RAGGED),
    TypeError,
    _RAGGED_MSG.format("X", "X", "X"),
)
probe("fit-X-ragged", _fit(X=_RAGGED, y=[0, 1]), TypeError, _RAGGED_MSG.format("X", "X", "X"))
probe(
    "fit-y-ragged",
    _fit(X=np.ones((2, 4)), y=[[0, 1, 0, 0], [1, 0, 0]]),
    TypeError,
    r"y is ragged \(inhomogeneous\): y\[0\] has 4 elements but y\[1\] has 3",
)
probe(
    "fit-validation-ragged",
    _fit(validation_data=(_RAGGED, [0, 1])),
    TypeError,
    _RAGGED_MSG.format(*[r"validation_data\[0\]"] * 3),
)
probe(
    "evaluate-y-ragged",
    lambda: _model().evaluate(np.ones((2, 4)), [[0.0, 1.0], [1.0]], loss=fastnn.MSELoss()),
    TypeError,
    r"y is ragged \(inhomogeneous\): y\[0\] has 2 elements but y\[1\] has 1",
)
probe(
    "train_on_batch-ragged",
    lambda: _model().train_on_batch(
        _RAGGED, [0, 1], loss=_SCE(), optimizer=optim.SGD(_model(), lr=0.1)
    ),
    TypeError,
    _RAGGED_MSG.format("X", "X", "X"),
)
probe(
    "backward-ragged",
    lambda: (
        lambda m: (m.forward(np.ones((2, 4)), training=True), m.backward([[1.0, 2.0, 3.0], [1.0]]))
    )(_model()),
    TypeError,
    r"dY is ragged \(inhomogeneous\): dY\[0\] has 3 elements but dY\[1\] has 1",
)
probe(
    "dense-forward-ragged",
    lambda: fastnn.Dense(4, 2).forward(_RAGGED),
    TypeError,
    _RAGGED_MSG.format("x", "x", "x"),
)
probe(
    "ragged-deeper",
    lambda: _model().forward([[1, 2, 3, [4, 5]], [1, 2, 3, 4]]),
    TypeError,
    r"X is ragged \(inhomogeneous\): X\[0\]\[0\] is a scalar but X\[0\]\[3\] has 2 elements",
)
probe(
    "ragged-scalar-row",
    lambda: _model().forward([[1, 2, 3, 4], 5]),
    TypeError,
    r"X\[0\] has 4 elements but X\[1\] is a scalar",
)
probe("ragged-is-also-a-ValueError", lambda: _model().forward(_RAGGED), ValueError, "ragged")
probe(
    "forward-object-none",
    lambda: _model().forward([[1, 2, 3, 4], [1, None, 3, 4]]),
    TypeError,
    r"X must be numeric \(bool, int or float\), got dtype object \(None at index \(1, 1\)\)",
)
probe(
    "forward-strings-value",
    lambda: _model().forward([["1", "2", "3", "x"]]),
    TypeError,
    r"X must be numeric .*got dtype <U1 \('x' at index \(0, 3\)\)",
)
probe(
    "forward-strings-that-parse",
    lambda: _model().forward([["1", "2", "3", "4"]]),
    TypeError,
    r"X must be numeric .*got dtype <U1 \('1' at index \(0, 0\)\)",
)
probe(
    "predict-none-named",
    lambda: _model().predict(None),
    TypeError,
    "X must be an array-like of numbers, got None",
)
probe("fit-y-none", _fit(y=None), TypeError, "y must be an array-like of numbers, got None")
probe("fit-X-none", _fit(X=None), TypeError, "X must be an array-like of numbers, got None")
probe(
    "backward-none",
    lambda: (lambda m: (m.forward(np.ones((2, 4)), training=True), m.backward(None)))(_model()),
    TypeError,
    "dY must be an array-like of numbers, got None",
)
# load_state_dict on a layer: a missing entry is named (not a bare KeyError)
probe(
    "dense-load-missing",
    lambda: fastnn.Dense(4, 2).load_state_dict({"weight": np.ones((2, 4))}),
    ValueError,
    r"Dense\.load_state_dict: state has no 'bias'",
)
probe(
    "standardize-load-mismatch",
    lambda: fastnn.Standardize().load_state_dict({"mean": np.zeros(3), "std": np.ones(4)}),
    ValueError,
    r"Standardize\.std: expected shape \(3,\) \(that of mean\), got \(4,\)",
)
probe(
    "standardize-load-none",
    lambda: fastnn.Standardize().load_state_dict({"mean": None, "std": [1]}),
    TypeError,
    "Standardize.mean must be an array-like of numbers, got None",
)

# optimizers
_params = lambda: _model().parameters()  # noqa: E731
for name, make, exc, match in [
    ("lr-negative", lambda: optim.SGD(_params(), lr=-0.1), ValueError, "lr must be >= 0"),
    (
        "lr-nan",
        lambda: optim.SGD(_params(), lr=float("nan")),
        ValueError,
        "lr must be a finite number",
    ),
    ("lr-str", lambda: optim.SGD(_params(), lr="0.1"), ValueError, "lr must be a finite number"),
    (
        "momentum-negative",
        lambda: optim.SGD(_params(), lr=0.1, momentum=-1),
        ValueError,
        "momentum",
    ),
    ("nesterov", lambda: optim.SGD(_params(), lr=0.1, nesterov=True), ValueError, "nesterov"),
    ("empty", lambda: optim.SGD([], lr=0.1), ValueError, "params is empty"),
    ("not-iterable", lambda: optim.SGD(5, lr=0.1), TypeError, "params must be"),
    ("not-parameters", lambda: optim.SGD([np.ones(3)], lr=0.1), TypeError, "params must be"),
    (
        "lr-set-inf",
        lambda: setattr(optim.SGD(_params(), lr=0.1), "lr", float("inf")),
        ValueError,
        "lr",
    ),
]:
    probe(f"SGD-{name}", make, exc, match)
# the toolbox (optimizers, BatchNorm1d, Dropout, Maxout, Standardize, clip_grad_norm)
for name, make, match in [
    (
        "Adam-beta1",
        lambda: optim.Adam(_params(), betas=(1.0, 0.9)),
        r"betas\[0\] must be in \[0, 1\)",
    ),
    ("Adam-betas-scalar", lambda: optim.Adam(_params(), betas=0.9), "betas must be a pair"),
    ("Adam-eps", lambda: optim.Adam(_params(), eps=-1), "eps must be >= 0"),
    ("AdamW-wd", lambda: optim.AdamW(_params(), weight_decay=-1), "weight_decay must be >= 0"),
    ("RMSprop-momentum", lambda: optim.RMSprop(_params(), momentum=-1), "momentum must be >= 0"),
    ("Adagrad-lr_decay", lambda: optim.Adagrad(_params(), lr_decay=-1), "lr_decay must be >= 0"),
    (
        "Adagrad-init",
        lambda: optim.Adagrad(_params(), initial_accumulator_value=-1),
        "initial_accumulator_value",
    ),
    ("Adam-params", lambda: optim.Adam([1, 2]), "params must be Parameters"),
    ("BatchNorm1d-0", lambda: fastnn.BatchNorm1d(0), "num_features must be an integer >= 1, got 0"),
    ("BatchNorm1d-momentum", lambda: fastnn.BatchNorm1d(3, momentum=2), "momentum must be <= 1"),
    ("Dropout-p-big", lambda: fastnn.Dropout(1.5), "p must be <= 1"),
    ("Dropout-p-negative", lambda: fastnn.Dropout(-0.1), "p must be >= 0"),
    ("Dropout-p-str", lambda: fastnn.Dropout("a"), "p must be a finite number"),
    ("Maxout-pieces-0", lambda: fastnn.Maxout(3, 2, 0), "pieces must be an integer >= 1"),
    ("Maxout-pieces-float", lambda: fastnn.Maxout(3, 2, 2.5), "pieces"),
    ("Standardize-shapes", lambda: fastnn.Standardize(mean=[0, 0], std=[1, 1, 1]), "disagree"),
    (
        "Standardize-negative-std",
        lambda: fastnn.Standardize(mean=[0, 0], std=[-1, 1]),
        "std must be >= 0",
    ),
    ("Standardize-adapt-1d", lambda: fastnn.Standardize().adapt(np.ones(3)), "X must be 2-D"),
    (
        "Standardize-adapt-empty",
        lambda: fastnn.Standardize().adapt(np.ones((0, 3))),
        "at least one row",
    ),
    (
        "clip_grad_norm-negative",
        lambda: fastnn.clip_grad_norm(_params(), -1),
        "max_norm must be >= 0",
    ),
    ("clip_grad_norm-str", lambda: fastnn.clip_grad_norm(_params(), "x"), "max_norm"),
    (
        "BatchNorm-one-row",
        lambda: fastnn.Sequential(fastnn.Dense(3, 4), fastnn.BatchNorm1d(4)).forward(
            np.ones((1, 3)), training=True
        ),
        "at least 2 rows",
    ),
    (
        "BatchNorm-width",
        lambda: fastnn.Sequential(fastnn.Dense(3, 4), fastnn.BatchNorm1d(5)),
        "BatchNorm1d expects 5 features, got 4",
    ),
    (
        "Maxout-width",
        lambda: fastnn.Sequential(fastnn.Maxout(3, 2, 2), fastnn.Dense(3, 1)),
        "Dense expects 3 input features, got 2",
    ),
]:
    probe(f"toolbox-{name}", make, (ValueError, TypeError), match)
probe(
    "SGD-load-state-wrong",
    lambda: optim.SGD(_params(), lr=0.1).load_state_dict({"type": "Adam"}),
    ValueError,
    "state is for 'Adam'",
)


# ---- image layers: Conv2d, MaxPool2d, AvgPool2d, BatchNorm2d, Flatten -----------------------
_NAN, _INF = float("nan"), float("inf")
# Values no size, stride, dilation or group count may take; the message names the argument.
_BAD_SIZES = [
    ("nan", _NAN),
    ("inf", _INF),
    ("str", "3"),
    ("none", None),
    ("bool", True),
    ("negative", -2),
    ("zero", 0),
    ("float", 2.0),
    ("pair-nan", (2, _NAN)),
    ("triple", (2, 2, 2)),
    ("empty", ()),
    ("array", np.array([2, 2])[:1]),
]
_CONV_ARGS = dict(in_channels=4, out_channels=6, kernel_size=3)
for arg in ("in_channels", "out_channels", "kernel_size", "stride", "dilation", "groups"):
    for label, value in _BAD_SIZES:
        if arg in ("in_channels", "out_channels", "groups") and label in (
            "pair-nan",
            "triple",
            "empty",
            "array",
        ):
            continue
        probe(
            f"Conv2d-{arg}-{label}",
            lambda arg=arg, value=value: fastnn.Conv2d(**{**_CONV_ARGS, arg: value}),
            ValueError,
            rf"{arg} must be an integer >= 1",
        )
for label, value in [
    ("nan", _NAN),
    ("inf", _INF),
    ("negative", -1),
    ("bool", False),
    ("none", None),
    ("str", "full"),
    ("float", 1.0),
    ("four", (1, 1, 1, 1)),
]:
    probe(
        f"Conv2d-padding-{label}",
        lambda value=value: fastnn.Conv2d(4, 6, 3, padding=value),
        ValueError,
        "padding must be",
    )
for label, make in [
    ("huge-channels", lambda: fastnn.Conv2d(2**40, 2**40, 3)),
    ("huge-kernel", lambda: fastnn.Conv2d(3, 4, 2**40)),
]:
    probe(f"Conv2d-{label}", make, (MemoryError, ValueError), None)
probe("Conv2d-groups", lambda: fastnn.Conv2d(4, 6, 3, groups=4), ValueError, "groups=4 must divide")
probe("Conv2d-same-stride", lambda: fastnn.Conv2d(4, 6, 3, 2, "same"), ValueError, "stride 1")
probe("Conv2d-dtype", lambda: fastnn.Conv2d(4, 6, 3, dtype=np.int8), TypeError, "dtype")
# Huge but valid geometry: a clear error when the window does not fit the image, or when the
# padded output could not be indexed; never an overflow.
_CONV_X = np.ones((2, 4, 5, 6), f32)
for label, make, match in [
    ("kernel", lambda: fastnn.Conv2d(4, 2, (1, 2**20)), "width of at least"),
    (
        "dilation",
        lambda: fastnn.Conv2d(4, 2, 2, dilation=2**40),
        "dilation must be an integer >= 1 and below",
    ),
    ("stride", lambda: fastnn.Conv2d(4, 2, 2, stride=2**40), "stride"),
    ("padding", lambda: fastnn.Conv2d(4, 2, 1, padding=2**40), "padding|too large"),
]:
    probe(
        f"Conv2d-forward-huge-{label}", lambda make=make: make().forward(_CONV_X), ValueError, match
    )
for label, x, exc, match in [
    ("rank3", np.ones((4, 5, 6)), ValueError, r"Conv2d expects images of shape \(N, C, H, W\)"),
    ("rank2", np.ones((2, 4)), ValueError, "images of shape"),
    ("rank0", np.float32(1), ValueError, "images of shape"),
    ("channels", np.ones((2, 3, 5, 6)), ValueError, "Conv2d expects 4 channels"),
    ("too-small", np.ones((2, 4, 2, 6)), ValueError, "Conv2d needs a height of at least 3"),
    ("empty-height", np.ones((2, 4, 0, 6)), ValueError, "height"),
    ("strings", np.full((2, 4, 5, 6), "a"), TypeError, "x must be numeric"),
    ("none", None, TypeError, "x"),
    ("ragged", [[[[1.0]]], [[[1.0, 2.0]]]], (TypeError, ValueError), "x"),
    ("complex", np.ones((2, 4, 5, 6), complex), TypeError, "x must be numeric"),
]:
    probe(
        f"Conv2d-forward-{label}",
        lambda x=x: fastnn.Conv2d(4, 6, 3).forward(x),
        exc,
        match,
    )
for cls in (fastnn.MaxPool2d, fastnn.AvgPool2d):
    name = cls.__name__
    for arg in ("kernel_size", "stride"):
        for label, value in _BAD_SIZES:
            if arg == "stride" and label == "none":
                continue  # stride=None: the kernel size (PyTorch's default)
            probe(
                f"{name}-{arg}-{label}",
                lambda cls=cls, arg=arg, value=value: cls(**{"kernel_size": 2, arg: value}),
                ValueError,
                rf"{arg} must be an integer >= 1",
            )
    for label, value in [
        ("nan", _NAN),
        ("negative", -1),
        ("bool", True),
        ("str", "same"),
        ("too-big", 2),
    ]:
        probe(
            f"{name}-padding-{label}",
            lambda cls=cls, value=value: cls(3, padding=value),
            ValueError,
            "padding must be",
        )
    for label, call, match in [
        ("rank3", lambda cls=cls: cls(2).forward(np.ones((4, 5, 6))), "images of shape"),
        (
            "too-small",
            lambda cls=cls: cls(2).forward(np.ones((2, 4, 1, 6))),
            "height of at least 2",
        ),
        (
            "huge-kernel",
            lambda cls=cls: cls(2**40),
            "kernel_size must be an integer >= 1 and below",
        ),
        ("huge-stride", lambda cls=cls: cls(2, stride=2**70), "stride must be an integer >= 1 and"),
    ]:
        probe(f"{name}-forward-{label}", call, ValueError, match)
# Sizes past 2**31 would overflow the kernels' index products (a window's area once came out
# as inf): the floor refuses them before C sees them.
_img = np.ones((1, 1, 4, 4))
for label, call, match in [
    ("max-stride", lambda: kernels.maxpool2d_forward(_img, 2, 2**70, 0), "stride must be an"),
    ("max-kernel", lambda: kernels.maxpool2d_forward(_img, 2**31, 1, 0), "kernel_size must be an"),
    ("avg-area", lambda: kernels.avgpool2d_forward(_img, 2**62, 1, 2**61), "kernel_size must be"),
    ("avg-padding", lambda: kernels.avgpool2d_forward(_img, 2, 1, 2**40), "padding must be an"),
]:
    probe(f"pool-kernel-{label}", call, ValueError, match)
for label, make, match in [
    ("nan", lambda: fastnn.BatchNorm2d(_NAN), "num_features must be an integer >= 1"),
    ("zero", lambda: fastnn.BatchNorm2d(0), "num_features must be an integer >= 1, got 0"),
    ("bool", lambda: fastnn.BatchNorm2d(True), "num_features"),
    ("str", lambda: fastnn.BatchNorm2d("3"), "num_features"),
    ("none", lambda: fastnn.BatchNorm2d(None), "num_features"),
    ("eps-nan", lambda: fastnn.BatchNorm2d(3, eps=_NAN), "eps must be a finite number"),
    ("momentum-inf", lambda: fastnn.BatchNorm2d(3, momentum=_INF), "momentum"),
    ("momentum-big", lambda: fastnn.BatchNorm2d(3, momentum=2), "momentum must be <= 1"),
    ("rank2", lambda: fastnn.BatchNorm2d(3).forward(np.ones((2, 3))), "images of shape"),
    ("channels", lambda: fastnn.BatchNorm2d(3).forward(np.ones((2, 4, 2, 2))), "3 channels"),
    (
        "one-value",
        lambda: fastnn.BatchNorm2d(3).forward(np.ones((1, 3, 1, 1)), training=True),
        "at least 2 values per channel",
    ),
    (
        "empty-batch-training",
        lambda: fastnn.BatchNorm2d(3).forward(np.ones((0, 3, 2, 2)), training=True),
        "at least 2 values per channel",
    ),
]:
    probe(f"BatchNorm2d-{label}", make, ValueError, match)
for label, x, exc, match in [
    ("rank1", np.ones(3), ValueError, "Flatten expects a batch"),
    ("rank0", np.float64(1), ValueError, "Flatten expects"),
    ("strings", np.full((2, 3), "a"), TypeError, "x must be numeric"),
    ("none", None, TypeError, "x"),
]:
    probe(f"Flatten-{label}", lambda x=x: fastnn.Flatten().forward(x), exc, match)
probe(
    "Flatten-backward-first",
    lambda: fastnn.Flatten().backward(np.ones((2, 3))),
    RuntimeError,
    "before a forward with training=True",
)


# ---- running them ------------------------------------------------------------------------


def check_probe(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


@pytest.mark.parametrize("call,exc,match", PROBES)
def test_probe(call, exc, match):
    check_probe(call, exc, match)


def test_probe_count():
    # The table is the audit: shrinking it should be a visible decision.
    assert len(PROBES) >= 500, len(PROBES)


def run_all():
    """Every probe, in this process; prints the count. A crash kills only this process."""
    for p in PROBES:
        check_probe(*p.values)
    print(f"{len(PROBES)} probes raised as expected")


def test_whole_table_in_a_subprocess():
    code = (
        f"import sys; sys.path.insert(0, {str(HERE)!r}); "
        "import test_hostile_inputs as t; t.run_all()"
    )
    env = dict(os.environ, FASTNN_NUM_THREADS="2")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=600
    )
    assert proc.returncode == 0, (
        f"rc={proc.returncode}\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )
    assert f"{len(PROBES)} probes raised as expected" in proc.stdout


# ---- valid but unusual inputs give the contiguous result --------------------------------


def _variants(a, tmp_path):
    """a in other layouts, each equal in value."""
    yield "fortran", np.asfortranarray(a)
    big = np.zeros(tuple(2 * s + 1 for s in a.shape), a.dtype)
    view = big[tuple(slice(1, None, 2) for _ in a.shape)]
    view[...] = a
    yield "strided", view
    flipped = a[tuple(slice(None, None, -1) for _ in a.shape)].copy()
    yield "negative", flipped[tuple(slice(None, None, -1) for _ in a.shape)]
    yield "readonly", _readonly(a)
    yield "byteswapped", a.astype(a.dtype.newbyteorder("S"))
    mis = _misaligned(a)
    mis[...] = a
    yield "misaligned", mis
    path = tmp_path / f"m{a.ndim}{a.dtype.char}.npy"
    mm = np.lib.format.open_memmap(path, mode="w+", dtype=a.dtype, shape=a.shape)
    mm[...] = a
    mm.flush()
    yield "memmap", np.load(path, mmap_mode="r")


@pytest.mark.parametrize("kname", sorted(KERNEL_ARGS))
@pytest.mark.parametrize("dtype", [f32, f64])
def test_unusual_layouts_equal_contiguous(kname, dtype, tmp_path):
    fn, args = KERNEL_ARGS[kname]
    rng = np.random.default_rng(0)
    base = {k: rng.uniform(0.1, 0.9, v.shape).astype(dtype) for k, v in args.items()}
    want = fn(**{k: v.copy() for k, v in base.items()})
    for arg in base:
        for label, variant in _variants(base[arg], tmp_path):
            if (kname, arg) in IN_PLACE:
                continue  # updated in place: must be a writable contiguous array (probed above)
            before = np.array(variant, copy=True)
            kwargs = {k: v.copy() for k, v in base.items()}
            kwargs[arg] = variant
            got = fn(**kwargs)
            for g, w in zip(
                got if isinstance(got, tuple) else (got,),
                want if isinstance(want, tuple) else (want,),
            ):
                if kname in GEMM_BASED:
                    # A layout may select another kernel path (packed or not), whose sums
                    # run in another order: equal up to rounding, not bit for bit.
                    np.testing.assert_allclose(
                        g, w, rtol=8 * np.finfo(dtype).eps, err_msg=f"{kname}({arg}={label})"
                    )
                else:
                    np.testing.assert_array_equal(g, w, err_msg=f"{kname}({arg}={label})")
            np.testing.assert_array_equal(variant, before, err_msg=f"{kname} modified {arg}")


def test_empty_arrays_are_valid_where_meaningful():
    assert kernels.gemm(_m(0, 3), _m(3, 4)).shape == (0, 4)
    np.testing.assert_array_equal(
        kernels.gemm(_m(2, 0), _m(0, 3), bias=_m(3)), np.full((2, 3), 0.5, f32)
    )
    assert kernels.activation_forward(_m(0, 3), "relu").shape == (0, 3)
    np.testing.assert_array_equal(kernels.column_sum(_m(0, 3)), np.zeros(3, f32))
    assert kernels.softmax(_m(0, 3)).shape == (0, 3)
    assert kernels.softmax_cross_entropy(_m(0, 3), [], reduction="sum")[0] == 0.0
    assert kernels.mse(_m(0), _m(0), reduction="sum")[0] == 0.0
    assert kernels.all_finite(_m(0))
    assert _model().forward(np.ones((0, 4))).shape == (0, 3)
    assert _model().predict(np.ones((0, 4))).shape == (0, 3)


def test_model_accepts_numeric_inputs_of_any_dtype():
    model = _model()
    X = np.arange(8).reshape(2, 4)
    want = model.forward(X.astype(f32))
    for variant in (X, X.astype(np.uint8), X > 3, X.astype(np.float16), X.astype(f64), X.tolist()):
        got = model.forward(variant)
        assert got.dtype == f32
        np.testing.assert_array_equal(got, model.forward(np.asarray(variant).astype(f32)))
    np.testing.assert_array_equal(model.forward(X), want)


def test_model_never_modifies_inputs(tmp_path):
    model = _model(f64)
    X = np.random.default_rng(0).standard_normal((8, 4))
    y = np.array([0, 1, 2, 0, 1, 2, 0, 1])
    X0, y0 = X.copy(), y.copy()
    model.fit(
        X,
        y,
        loss=fastnn.SoftmaxCrossEntropy(),
        optimizer=optim.SGD(model, lr=0.1),
        epochs=2,
        batch_size=3,
    )
    model.evaluate(X, y, loss=fastnn.SoftmaxCrossEntropy())
    model.predict(X)
    out = model.forward(X, training=True)
    dY = np.ones_like(out)
    dY0 = dY.copy()
    model.backward(dY)
    np.testing.assert_array_equal(X, X0)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(dY, dY0)


# ---- command line: one clear line on stderr and a non-zero exit, never a traceback --------


def _csv(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    "case",
    [
        "missing-file",
        "unknown-column",
        "non-numeric",
        "empty",
        "header-only",
        "nan-data",
        "inf-target",
        "bad-model",
        "model-is-csv",
        "bad-hidden",
        "negative-epochs",
        "nan-lr",
        "predict-wrong-width",
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, case):
    from fastnn import cli

    good = _csv(
        tmp_path, "good.csv", "a,b,y\n" + "\n".join(f"{i % 3},{i % 5},{i % 2}" for i in range(30))
    )
    model = str(tmp_path / "m.fnn")
    assert (
        cli.main(
            ["train", good, "--target", "y", "--out", model, "--epochs", "1", "--hidden", "4", "-q"]
        )
        == 0
    )
    capsys.readouterr()
    argv = {
        "missing-file": ["train", str(tmp_path / "nope.csv"), "--target", "y", "--out", model],
        "unknown-column": ["train", good, "--target", "zzz", "--out", model],
        "non-numeric": [
            "train",
            _csv(tmp_path, "s.csv", "a,y\nx,1\ny,0\n"),
            "--target",
            "y",
            "--out",
            model,
        ],
        "empty": ["train", _csv(tmp_path, "e.csv", ""), "--target", "y", "--out", model],
        "header-only": ["train", _csv(tmp_path, "h.csv", "a,y\n"), "--target", "y", "--out", model],
        "nan-data": [
            "train",
            _csv(tmp_path, "n.csv", "a,y\n1,1\nnan,0\n2,1\n3,0\n"),
            "--target",
            "y",
            "--out",
            model,
            "--task",
            "regression",
            "--epochs",
            "1",
            "-q",
        ],
        "inf-target": [
            "train",
            _csv(tmp_path, "i.csv", "a,y\n1,inf\n2,0\n"),
            "--target",
            "y",
            "--out",
            model,
            "--task",
            "regression",
            "--epochs",
            "1",
            "-q",
        ],
        "bad-model": [
            "predict",
            _csv(tmp_path, "junk.fnn", "junk"),
            good,
            "--out",
            str(tmp_path / "p.csv"),
        ],
        "model-is-csv": ["evaluate", good, good, "--target", "y"],
        "bad-hidden": ["train", good, "--target", "y", "--out", model, "--hidden", "abc"],
        "negative-epochs": ["train", good, "--target", "y", "--out", model, "--epochs", "-1"],
        "nan-lr": ["train", good, "--target", "y", "--out", model, "--lr", "nan"],
        "predict-wrong-width": [
            "predict",
            model,
            _csv(tmp_path, "w.csv", "a\n1\n2\n"),
            "--out",
            str(tmp_path / "p.csv"),
        ],
    }[case]
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    err = capsys.readouterr().err.strip()
    assert code not in (0, None), err
    assert "Traceback" not in err
    assert "error" in err.splitlines()[-1], err
