"""fastnn.onnx: every layer type exported in inference form, checked by onnx.checker, and run
by onnxruntime with fastnn's outputs (skipped cleanly without onnx / onnxruntime)."""
import subprocess
import sys

import numpy as np
import pytest

import fastnn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from fastnn import onnx as fnn_onnx  # noqa: E402

# onnxruntime's float64 kernels take other summation orders / exp and tanh routines than
# fastnn's (and a GEMV path for one row): agreement is to ~1e-9 relative.
TOL = {np.dtype(np.float32): 2e-5, np.dtype(np.float64): 1e-8}


def _every_layer(dtype, X):
    std = fastnn.Standardize()
    std.adapt(X)
    model = fastnn.Sequential(
        std, fastnn.Dense(12, 20, rng=1), fastnn.BatchNorm1d(20), fastnn.LeakyReLU(0.1),
        fastnn.Dropout(0.3, rng=0), fastnn.Maxout(20, 8, 3, rng=2), fastnn.Tanh(),
        fastnn.Dense(8, 8, rng=3), fastnn.Sigmoid(), fastnn.Dense(8, 6, rng=4), fastnn.ReLU(),
        fastnn.Identity(), fastnn.BatchNorm1d(6, affine=False),
        fastnn.Dense(6, 5, bias=False, rng=5), fastnn.Softmax(), dtype=dtype)
    for _ in range(3):  # running statistics away from their initial 0 / 1
        model.forward(X, training=True)
    return model


def _run(path, X):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": X})[0]


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
def test_every_layer_matches_onnxruntime(tmp_path, dtype):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(37, 12)).astype(dtype)
    model = _every_layer(dtype, X)
    path = tmp_path / "model.onnx"
    fnn_onnx.export(model, path)
    proto = onnx.load(str(path))
    onnx.checker.check_model(proto)
    assert proto.opset_import[0].version == fnn_onnx.DEFAULT_OPSET
    ops = {n.op_type for n in proto.graph.node}
    assert {"Gemm", "BatchNormalization", "LeakyRelu", "ReduceMax", "Reshape", "Tanh",
            "Sigmoid", "Relu", "Softmax", "Sub", "Div"} <= ops
    assert "Dropout" not in ops
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 12
    expected = model.predict(X)
    for n in (1, 5, 37):  # the batch dimension is dynamic
        out = _run(path, X[:n])
        assert out.dtype == np.dtype(dtype) and out.shape == expected[:n].shape
        np.testing.assert_allclose(out, expected[:n], rtol=TOL[np.dtype(dtype)],
                                   atol=TOL[np.dtype(dtype)])


def test_maxout_pieces_are_unit_major(tmp_path):
    layer = fastnn.Maxout(2, 2, 3, bias=False, dtype=np.float64)
    # unit 0 owns rows 0..2, unit 1 rows 3..5; each unit's best piece is different
    layer.weight.data[...] = [[1, 0], [0, 1], [-1, 0], [5, 5], [0, 0], [-5, -5]]
    model = fastnn.Sequential(layer)
    fnn_onnx.export(model, tmp_path / "m.onnx")
    X = np.array([[1.0, 2.0], [-3.0, 1.0]])
    np.testing.assert_allclose(_run(tmp_path / "m.onnx", X), [[2.0, 15.0], [3.0, 10.0]])
    np.testing.assert_allclose(model.predict(X), [[2.0, 15.0], [3.0, 10.0]])


def test_trained_sklearn_estimator_model_exports(tmp_path):
    pytest.importorskip("sklearn")
    from fastnn.sklearn import MLPClassifier
    X, y = fastnn.load_digits()
    clf = MLPClassifier(hidden_layer_sizes=(32,), max_iter=5, batch_norm=True, dropout=0.1,
                        random_state=0).fit(X / 16, y)
    fnn_onnx.export(clf.model_, tmp_path / "clf.onnx")
    logits = _run(tmp_path / "clf.onnx", (X / 16).astype(np.float32))
    np.testing.assert_array_equal(clf.classes_[logits.argmax(axis=1)], clf.predict(X / 16))


def test_bad_arguments(tmp_path):
    with pytest.raises(TypeError, match="model must be a fastnn.Sequential"):
        fnn_onnx.export(object(), tmp_path / "x.onnx")
    with pytest.raises(ValueError, match="opset must be an integer >= 13, got 9"):
        fnn_onnx.export(fastnn.Sequential(fastnn.Dense(2, 2)), tmp_path / "x.onnx", opset=9)
    with pytest.raises(ValueError, match="adapt"):
        fnn_onnx.export(fastnn.Sequential(fastnn.Standardize(), fastnn.Dense(2, 2)),
                        tmp_path / "x.onnx")


def test_missing_onnx_names_the_extra():
    code = ("import sys; sys.modules['onnx'] = None\n"
            "import fastnn, fastnn.onnx\n"
            "try:\n    fastnn.onnx.to_onnx(fastnn.Sequential(fastnn.Dense(2, 2)))\n"
            "except ImportError as e:\n    print(e)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert "pip install 'fastnn[onnx]'" in out
