"""fastnn.onnx: every layer type exported in inference form, checked by onnx.checker, and run
by onnxruntime with fastnn's outputs (skipped cleanly without onnx / onnxruntime).

Every comparison is NaN-aware: a NaN in one output must be a NaN in the other (``_same``
checks the NaN positions explicitly before comparing the rest), so a graph that turns a
row into NaN cannot pass. The cases fastnn treats specially (a constant feature in
Standardize, BatchNorm1d's folded inference form, a float64 slope, Maxout's order of
comparison, Softmax rows with -inf, Dropout with p=1) each have a test of their own; so do
the convolutional layers (a table of CNNs, MaxPool2d's NaN and -inf windows, BatchNorm2d bit
for bit)."""

import subprocess
import sys

import numpy as np
import pytest

import fastnn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from fastnn import onnx as fnn_onnx  # noqa: E402

DTYPES = pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])

# onnxruntime's Gemm, Softmax, Sigmoid and Tanh take other summation orders / exp and tanh
# routines than fastnn's (and a GEMV path for one row): agreement is to rounding, ~1e-9
# relative in float64. Layers exported as the same elementwise IEEE operations fastnn's
# kernels perform (Standardize, BatchNorm1d, LeakyReLU, Identity, Maxout's selection) are
# compared bit for bit.
TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-8}


def _same(out, expected, dtype, exact=False):
    """onnxruntime's ``out`` equals fastnn's ``expected``: same dtype and shape, NaN exactly
    where fastnn has NaN, infinities equal, everything else equal (``exact``) or within
    TOL."""
    out, expected = np.asarray(out), np.asarray(expected)
    assert out.dtype == np.dtype(dtype) and out.shape == expected.shape, (out.dtype, out.shape)
    nan_out, nan_expected = np.isnan(out), np.isnan(expected)
    assert np.array_equal(nan_out, nan_expected), (
        f"NaN in onnxruntime's output at {np.argwhere(nan_out & ~nan_expected)[:5].tolist()}, "
        f"in fastnn's at {np.argwhere(nan_expected & ~nan_out)[:5].tolist()} (first five)"
    )
    if exact:
        np.testing.assert_array_equal(out, expected)
    else:
        tol = TOL[np.dtype(dtype)]
        np.testing.assert_allclose(out, expected, rtol=tol, atol=tol, equal_nan=True)


def _every_layer(dtype, X):
    width = X.shape[1]
    std = fastnn.Standardize()
    std.adapt(X)
    model = fastnn.Sequential(
        std,
        fastnn.Dense(width, 20, rng=1),
        fastnn.BatchNorm1d(20),
        fastnn.LeakyReLU(0.1),
        fastnn.Dropout(0.3, rng=0),
        fastnn.Maxout(20, 8, 3, rng=2),
        fastnn.Tanh(),
        fastnn.Dense(8, 8, rng=3),
        fastnn.Sigmoid(),
        fastnn.Dense(8, 6, rng=4),
        fastnn.ReLU(),
        fastnn.Identity(),
        fastnn.BatchNorm1d(6, affine=False),
        fastnn.Dense(6, 5, bias=False, rng=5),
        fastnn.Softmax(),
        dtype=dtype,
    )
    for _ in range(3):  # running statistics away from their initial 0 / 1
        model.forward(X, training=True)
    return model


def _export(model, path):
    fnn_onnx.export(model, path)
    return path


def _run(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": X})[0]


def _digits(dtype):
    X, _ = fastnn.load_digits()
    X = X.astype(dtype)
    assert (X[:, 0] == 0).all()  # the first pixel is always blank: its std is 0
    return X


def _random(dtype):
    return np.random.default_rng(0).normal(size=(37, 12)).astype(dtype)


@DTYPES
@pytest.mark.parametrize("data", [_random, _digits], ids=["random", "digits"])
def test_every_layer_matches_onnxruntime(tmp_path, dtype, data):
    X = data(dtype)
    model = _every_layer(dtype, X)
    path = tmp_path / "model.onnx"
    fnn_onnx.export(model, path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == fnn_onnx.DEFAULT_OPSET
    ops = {n.op_type for n in proto.graph.node}
    assert {
        "Gemm",
        "Mul",
        "Add",
        "Reshape",
        "Gather",
        "Greater",
        "Where",
        "Tanh",
        "Sigmoid",
        "Relu",
        "Softmax",
        "Sub",
        "Div",
    } <= ops
    assert "Dropout" not in ops
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == X.shape[1]
    expected = model.predict(X)
    assert np.isfinite(expected).all()
    for n in (1, 5, 37, len(X)):  # the batch dimension is dynamic
        _same(_run(path, X[:n]), expected[:n], dtype)


@DTYPES
def test_standardize_with_a_constant_feature_matches(tmp_path, dtype):
    """The digits' first pixel is 0 in every image: fastnn only centres a feature whose std
    is 0 (dividing by zero would make every row NaN once a Dense mixes the features)."""
    X = _digits(dtype)
    std = fastnn.Standardize().adapt(X)
    assert std.std[0] == 0
    alone = fastnn.Sequential(std, dtype=dtype)
    _same(_run(_export(alone, tmp_path / "std.onnx"), X), alone.predict(X), dtype, exact=True)
    model = fastnn.Sequential(
        fastnn.Standardize().adapt(X),
        fastnn.Dense(64, 32, rng=0),
        fastnn.ReLU(),
        fastnn.Dense(32, 10, rng=1),
        dtype=dtype,
    )
    expected = model.predict(X)
    assert np.isfinite(expected).all()
    _same(_run(_export(model, tmp_path / "mlp.onnx"), X), expected, dtype)


@DTYPES
def test_standardize_given_statistics_with_zero_std(tmp_path, dtype):
    layer = fastnn.Standardize(mean=[1.0, -2.0, 0.5], std=[0.0, 3.0, 1e-300])
    model = fastnn.Sequential(layer, dtype=dtype)  # 1e-300 is 0 in float32, not in float64
    X = np.array([[1.0, 1.0, 1.0], [4.0, -8.0, 0.5], [np.nan, np.inf, -np.inf]], dtype)
    _same(_run(_export(model, tmp_path / "m.onnx"), X), model.predict(X), dtype, exact=True)


@DTYPES
@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"affine": False},
        {"momentum": None},
        {"momentum": None, "affine": False, "eps": 1e-3},
        {"eps": 0.1},
    ],
    ids=["default", "no-affine", "momentum-None", "cumulative-no-affine", "eps-0.1"],
)
def test_batchnorm_matches_bit_for_bit(tmp_path, dtype, kwargs):
    """Inference form of BatchNorm1d, including a feature whose running variance is 0 (the
    output is then dominated by eps, which an ONNX attribute would hold only in float32)."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(64, 5)).astype(dtype) * np.array([1, 100, 1e-3, 1, 1], dtype)
    X[:, 3] = 7.0  # constant: running variance 0
    bn = fastnn.BatchNorm1d(5, **kwargs)
    model = fastnn.Sequential(bn, dtype=dtype)
    for start in range(0, 64, 16):
        model.forward(X[start : start + 16], training=True)
    if bn.affine:
        bn.weight.data[...] = rng.normal(size=5)
        bn.bias.data[...] = rng.normal(size=5)
    Xt = rng.normal(size=(29, 5)).astype(dtype) * 50
    _same(_run(_export(model, tmp_path / "bn.onnx"), Xt), model.predict(Xt), dtype, exact=True)


@DTYPES
@pytest.mark.parametrize("slope", [0.01, 0.1, 0.25, 0.0, -2.0, 3.3])
def test_leaky_relu_and_identity_match_bit_for_bit(tmp_path, dtype, slope):
    """ONNX float attributes are float32: a float64 model's slope must not be rounded."""
    X = np.array(
        [[-1e3, -1.0, -0.0, 0.0, 1.0, 1e3], [-np.inf, np.inf, np.nan, -7.3, 2.5, 1e-30]], dtype
    )
    X = np.vstack([X, np.random.default_rng(1).normal(size=(8, 6)).astype(dtype) * 100])
    model = fastnn.Sequential(fastnn.LeakyReLU(slope), fastnn.Identity(), dtype=dtype)
    _same(_run(_export(model, tmp_path / "m.onnx"), X), model.predict(X), dtype, exact=True)
    fused = fastnn.Sequential(
        fastnn.Dense(6, 4, rng=0),
        fastnn.LeakyReLU(slope),
        fastnn.Dense(4, 3, rng=1),
        fastnn.Identity(),
        dtype=dtype,
    )
    finite = X[2:]
    _same(_run(_export(fused, tmp_path / "f.onnx"), finite), fused.predict(finite), dtype)


@DTYPES
def test_softmax_of_rows_with_infinities(tmp_path, dtype):
    inf = np.inf
    X = np.array(
        [
            [0.0, -inf, 1.0],
            [-inf, -inf, 5.0],
            [-inf, -inf, -inf],
            [inf, 0.0, 1.0],
            [1e30, -1e30, 0.0],
            [np.nan, 0.0, 1.0],
            [3.0, 3.0, 3.0],
        ],
        dtype,
    )
    model = fastnn.Sequential(fastnn.Identity(), fastnn.Softmax(), dtype=dtype)
    expected = model.predict(X)
    np.testing.assert_array_equal(expected[1], [0, 0, 1])  # -inf entries get exactly 0
    _same(_run(_export(model, tmp_path / "m.onnx"), X), expected, dtype)


@DTYPES
def test_dropout_is_the_identity_in_the_graph_even_with_p_1(tmp_path, dtype):
    X = _random(dtype)
    model = fastnn.Sequential(
        fastnn.Dense(12, 6, rng=0),
        fastnn.Dropout(1.0, rng=0),
        fastnn.ReLU(),
        fastnn.Dropout(0.5),
        fastnn.Dense(6, 3, rng=1),
        dtype=dtype,
    )
    model.forward(X, training=True)  # p=1 zeroes everything when training
    path = _export(model, tmp_path / "m.onnx")
    assert "Dropout" not in {n.op_type for n in onnx.load(str(path)).graph.node}
    expected = model.predict(X)
    assert np.abs(expected).max() > 0
    _same(_run(path, X), expected, dtype)


def test_maxout_pieces_are_unit_major(tmp_path):
    layer = fastnn.Maxout(2, 2, 3, bias=False, dtype=np.float64)
    # unit 0 owns rows 0..2, unit 1 rows 3..5; each unit's best piece is different
    layer.weight.data[...] = [[1, 0], [0, 1], [-1, 0], [5, 5], [0, 0], [-5, -5]]
    model = fastnn.Sequential(layer)
    fnn_onnx.export(model, tmp_path / "m.onnx")
    X = np.array([[1.0, 2.0], [-3.0, 1.0]])
    np.testing.assert_allclose(_run(tmp_path / "m.onnx", X), [[2.0, 15.0], [3.0, 10.0]])
    np.testing.assert_allclose(model.predict(X), [[2.0, 15.0], [3.0, 10.0]])


@DTYPES
@pytest.mark.parametrize("pieces", [1, 3])
def test_maxout_selects_as_fastnn_does(tmp_path, dtype, pieces):
    """fastnn's Maxout takes the first piece and replaces it by a strictly greater one or
    by the first NaN. An infinite input makes pieces inf, -inf and 0 * inf = NaN in every
    order; the graph must pick the same values."""
    weights = {
        1: [[1.0], [0.0], [-1.0]],
        3: [[1.0], [0.0], [-1.0], [0.0], [1.0], [-1.0], [-1.0], [0.0], [1.0], [0.0], [-1.0], [1.0]],
    }[pieces]
    layer = fastnn.Maxout(1, len(weights) // pieces, pieces, bias=False, dtype=dtype)
    layer.weight.data[...] = weights
    model = fastnn.Sequential(layer, dtype=dtype)
    X = np.array([[np.inf], [-np.inf], [2.0], [-3.0], [0.0], [np.nan]], dtype)
    expected = model.predict(X)
    if pieces == 3:  # unit 0: [x, 0x, -x]; unit 1: [0x, x, -x]; ...
        np.testing.assert_array_equal(expected[0], [np.nan, np.nan, np.nan, np.nan])
    _same(_run(_export(model, tmp_path / "m.onnx"), X), expected, dtype, exact=True)


@DTYPES
def test_empty_batch(tmp_path, dtype):
    model = _every_layer(dtype, _random(dtype))
    X = np.zeros((0, 12), dtype)
    _same(_run(_export(model, tmp_path / "m.onnx"), X), model.predict(X), dtype)


def test_trained_sklearn_estimator_model_exports(tmp_path):
    pytest.importorskip("sklearn")
    from fastnn.sklearn import MLPClassifier

    X, y = fastnn.load_digits()
    clf = MLPClassifier(
        hidden_layer_sizes=(32,), max_iter=5, batch_norm=True, dropout=0.1, random_state=0
    ).fit(X / 16, y)
    fnn_onnx.export(clf.model_, tmp_path / "clf.onnx")
    logits = _run(tmp_path / "clf.onnx", (X / 16).astype(np.float32))
    _same(logits, clf.model_.predict(X / 16), np.float32)
    np.testing.assert_array_equal(clf.classes_[logits.argmax(axis=1)], clf.predict(X / 16))


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="model must be a fastnn.Sequential"):
        fnn_onnx.export(object(), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="opset must be an integer >= 13, got 9"):
        fnn_onnx.export(fastnn.Sequential(fastnn.Dense(2, 2)), tmp_path / "x.onnx", opset=9)
    with pytest.raises(ValueError, match="adapt"):
        fnn_onnx.export(
            fastnn.Sequential(fastnn.Standardize(), fastnn.Dense(2, 2)), tmp_path / "x.onnx"
        )


def test_missing_onnx_names_the_extra():
    code = (
        "import sys; sys.modules['onnx'] = None\n"
        "import fastnn, fastnn.onnx\n"
        "try:\n    fastnn.onnx.to_onnx(fastnn.Sequential(fastnn.Dense(2, 2)))\n"
        "except ImportError as e:\n    print(e)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "pip install 'fastnn[onnx]'" in out


# ---- convolutional models ----------------------------------------------------------------

# Each case: (input shape (N, C, H, W), the layers). onnxruntime's Conv (im2col + its own
# GEMM) and AveragePool sum in other orders than fastnn's kernels: agreement to rounding.
CNNS = {
    "stride2-dilation2": (
        (5, 3, 11, 9),
        lambda dt: [
            fastnn.Conv2d(3, 6, 3, stride=2, padding=1, rng=0, dtype=dt),
            fastnn.ReLU(),
            fastnn.Conv2d(6, 4, 3, stride=(1, 2), dilation=2, padding=(2, 1), rng=1, dtype=dt),
            fastnn.Tanh(),
        ],
    ),
    "groups-depthwise": (
        (4, 4, 8, 7),
        lambda dt: [
            fastnn.Conv2d(4, 8, 3, padding=1, groups=2, bias=False, rng=0, dtype=dt),
            fastnn.LeakyReLU(0.1),
            fastnn.Conv2d(8, 8, (3, 2), padding="same", groups=8, rng=1, dtype=dt),
            fastnn.Sigmoid(),
        ],
    ),
    "same-even-kernels": (
        (3, 3, 9, 8),
        lambda dt: [
            fastnn.Conv2d(3, 4, 4, padding="same", rng=0, dtype=dt),
            fastnn.Conv2d(4, 5, (2, 3), padding="same", dilation=(1, 2), rng=1, dtype=dt),
            fastnn.Identity(),
            fastnn.Conv2d(5, 2, 1, padding="valid", bias=False, rng=2, dtype=dt),
        ],
    ),
    "maxpool": (
        (3, 2, 10, 9),
        lambda dt: [
            fastnn.Conv2d(2, 3, 3, rng=0, dtype=dt),
            fastnn.MaxPool2d((3, 2), stride=1, padding=(1, 0)),
            fastnn.MaxPool2d(2),
            fastnn.MaxPool2d(3, stride=2, padding=1),
        ],
    ),
    "avgpool-count-include-pad": (
        (3, 2, 10, 9),
        lambda dt: [
            fastnn.AvgPool2d(3, stride=2, padding=1),
            fastnn.AvgPool2d((2, 3), stride=1, padding=(1, 1)),
        ],
    ),
    "avgpool-exclude-pad": (
        (3, 2, 10, 9),
        lambda dt: [
            fastnn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False),
            fastnn.AvgPool2d((2, 3), stride=(2, 1), padding=(1, 1), count_include_pad=False),
        ],
    ),
    "batchnorm2d": (
        (6, 3, 7, 6),
        lambda dt: [
            fastnn.Conv2d(3, 4, 3, padding=1, rng=0, dtype=dt),
            fastnn.BatchNorm2d(4, dtype=dt),
            fastnn.ReLU(),
            fastnn.BatchNorm2d(4, affine=False, momentum=None, dtype=dt),
            fastnn.Dropout(0.5, rng=0),
            fastnn.Softmax(),  # over the last axis (the width)
        ],
    ),
    "lenet5": (
        (7, 1, 28, 28),
        lambda dt: [
            fastnn.Conv2d(1, 6, 5, padding=2, rng=0, dtype=dt),
            fastnn.ReLU(),
            fastnn.MaxPool2d(2),
            fastnn.Conv2d(6, 16, 5, rng=1, dtype=dt),
            fastnn.BatchNorm2d(16, dtype=dt),
            fastnn.Tanh(),
            fastnn.AvgPool2d(2),
            fastnn.Flatten(),
            fastnn.Dense(400, 120, rng=2, dtype=dt),
            fastnn.ReLU(),
            fastnn.Dense(120, 84, rng=3, dtype=dt),
            fastnn.Dropout(0.2, rng=1),
            fastnn.Dense(84, 10, rng=4, dtype=dt),
            fastnn.Softmax(),
        ],
    ),
}


def _cnn(name, dtype):
    shape, make = CNNS[name]
    model = fastnn.Sequential(*make(dtype), dtype=dtype)
    X = np.random.default_rng(1).normal(size=shape).astype(dtype)
    for layer in model:  # running statistics and weights away from their initial values
        if isinstance(layer, fastnn.BatchNorm2d) and layer.affine:
            rng = np.random.default_rng(layer.num_features)
            layer.weight.data[...] = rng.uniform(0.5, 2.0, layer.num_features)
            layer.bias.data[...] = rng.normal(size=layer.num_features)
    if any(isinstance(layer, fastnn.BatchNorm2d) for layer in model):
        for seed in range(3):
            model.forward(X * (seed + 1) + seed, training=True)
    return model, X


@DTYPES
@pytest.mark.parametrize("name", sorted(CNNS))
def test_cnn_matches_onnxruntime(tmp_path, dtype, name):
    model, X = _cnn(name, dtype)
    path = _export(model, tmp_path / "cnn.onnx")
    proto = onnx.load(str(path))
    ops = {n.op_type for n in proto.graph.node}
    native = {
        fastnn.Conv2d: "Conv",
        fastnn.MaxPool2d: "MaxPool",
        fastnn.AvgPool2d: "AveragePool",
        fastnn.Flatten: "Flatten",
    }
    for layer in model:
        op = native.get(type(layer))
        if op == "MaxPool" or op == "Flatten" or (op and dtype == np.float32):
            assert op in ops
    if dtype == np.float64:  # onnxruntime has no float64 Conv or AveragePool
        assert not {"Conv", "AveragePool"} & ops
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    channels = model.in_features or "channels"  # pools alone fix no channel count
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", channels, "height", "width"]
    out_rank = 2 if any(isinstance(layer, fastnn.Flatten) for layer in model) else 4
    assert len(proto.graph.output[0].type.tensor_type.shape.dim) == out_rank
    expected = model.predict(X)
    assert np.isfinite(expected).all()
    for n in (0, 1, len(X)):  # the batch dimension is dynamic, an empty batch included
        _same(_run(path, X[:n]), expected[:n], dtype)
    if out_rank == 4:  # so are the height and width
        X2 = np.random.default_rng(2).normal(size=(2, X.shape[1], 13, 12)).astype(dtype)
        _same(_run(path, X2), model.predict(X2), dtype)


@DTYPES
def test_maxpool_nan_and_infinities_match_bit_for_bit(tmp_path, dtype):
    """A window holding a NaN gives NaN (onnxruntime's float32 MaxPool would skip it), a
    window of -inf gives -inf, and padding never wins (an all-negative border window)."""
    X = np.random.default_rng(0).normal(size=(2, 3, 6, 7)).astype(dtype) - 10
    X[0, 0, 0, 0] = np.nan
    X[0, 1] = -np.inf  # every window of a plane of -inf, padded or not
    X[1, 2, 5, 6] = np.inf
    X[1, 0, 3, :] = np.nan
    for layer in (
        fastnn.MaxPool2d(2),
        fastnn.MaxPool2d(3, stride=2, padding=1),
        fastnn.MaxPool2d((2, 3), stride=(1, 2), padding=(1, 1)),
    ):
        model = fastnn.Sequential(layer, dtype=dtype)
        expected = model.predict(X)
        assert np.isnan(expected).any() and np.isneginf(expected).any()
        _same(_run(_export(model, tmp_path / "m.onnx"), X), expected, dtype, exact=True)


@DTYPES
@pytest.mark.parametrize("affine", [True, False])
def test_batchnorm2d_matches_bit_for_bit(tmp_path, dtype, affine):
    """BatchNorm2d as the per-channel Mul + Add fastnn's kernel computes (not a
    BatchNormalization node, which holds eps as float32), a zero-variance channel included."""
    rng = np.random.default_rng(5)
    X = (
        rng.normal(size=(8, 4, 5, 3)).astype(dtype)
        * np.array([1, 100, 1e-3, 1], dtype)[:, None, None]
    )
    X[:, 3] = 7.0  # constant channel: running variance 0
    bn = fastnn.BatchNorm2d(4, momentum=0.3, affine=affine)
    model = fastnn.Sequential(bn, dtype=dtype)
    for start in range(0, 8, 2):
        model.forward(X[start : start + 2], training=True)
    if affine:
        bn.weight.data[...] = rng.normal(size=4)
        bn.bias.data[...] = rng.normal(size=4)
    Xt = rng.normal(size=(3, 4, 6, 2)).astype(dtype) * 50
    Xt[0, 0, 0, 0], Xt[1, 1, 1, 1] = np.nan, -np.inf
    _same(_run(_export(model, tmp_path / "bn.onnx"), Xt), model.predict(Xt), dtype, exact=True)


@DTYPES
def test_cnn_nan_and_infinity_propagate_like_fastnn(tmp_path, dtype):
    model, X = _cnn("lenet5", dtype)
    X = X[:3].copy()
    X[0, 0, 3, 3] = np.nan
    X[1, 0, 10, 10] = np.inf
    expected = model.predict(X)
    assert np.isnan(expected[0]).all() and np.isfinite(expected[2]).all()
    _same(_run(_export(model, tmp_path / "m.onnx"), X), expected, dtype)


def test_image_model_without_a_fixed_channel_count(tmp_path):
    model = fastnn.Sequential(fastnn.MaxPool2d(2), fastnn.Flatten(), fastnn.Dense(12, 2, rng=0))
    proto = fnn_onnx.to_onnx(model)
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", "channels", "height", "width"]
    X = np.random.default_rng(0).normal(size=(4, 3, 4, 4)).astype(np.float32)
    _same(_run(_export(model, tmp_path / "m.onnx"), X), model.predict(X), np.float32)
