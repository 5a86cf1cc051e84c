"""fastnn.onnx: every layer type exported in inference form, checked by onnx.checker, and run
by onnxruntime with fastnn's outputs (skipped cleanly without onnx / onnxruntime).

Every comparison is NaN-aware: a NaN in one output must be a NaN in the other (``_same``
checks the NaN positions explicitly before comparing the rest), so a graph that turns a
row into NaN cannot pass. The cases fastnn treats specially (a constant feature in
Standardize, BatchNorm1d's folded inference form, a float64 slope, Maxout's order of
comparison, Softmax rows with -inf, Dropout with p=1) each have a test of their own."""

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
