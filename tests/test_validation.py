"""Bad input raises ValueError/TypeError naming the argument; nothing crashes."""
import re

import numpy as np
import pytest

import fastnn
from fastnn import kernels, metrics

f32 = np.float32


@pytest.mark.parametrize("call,exc,match", [
    (lambda: kernels.gemm(np.ones(3, f32), np.ones((3, 3), f32)), ValueError, "a must be 2-D"),
    (lambda: kernels.gemm(np.ones((2, 3), f32), np.ones((4, 3), f32)), ValueError, "inner dimensions"),
    (lambda: kernels.gemm(np.ones((2, 3), np.int64), np.ones((3, 3))), TypeError, "float32 or float64"),
    (lambda: kernels.gemm(np.ones((2, 3), f32), np.ones((3, 3))), TypeError, "expected float32"),
    (lambda: kernels.gemm(np.ones((2, 3), np.complex64), np.ones((3, 3))), TypeError, "a must have dtype"),
    (lambda: kernels.gemm(np.ones((2, 3), object), np.ones((3, 3))), TypeError, "a must have dtype"),
    (lambda: kernels.gemm(np.ones((2, 3), np.float16), np.ones((3, 3))), TypeError, "float16"),
    (lambda: kernels.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), bias=np.ones(3, f32)),
     ValueError, "bias must have shape"),
    (lambda: kernels.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), activation="gelu"),
     ValueError, "activation must be one of"),
    (lambda: kernels.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), out=np.empty((2, 5), f32)),
     ValueError, "out has shape"),
    (lambda: kernels.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), out=np.empty((2, 4))),
     TypeError, "out has dtype"),
    (lambda: kernels.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32), out=[[0] * 4] * 2),
     TypeError, "out must be a numpy.ndarray"),
    (lambda: kernels.gemm(np.ones((2, 3), f32), np.ones((3, 4), f32),
                          out=np.broadcast_to(np.empty(4, f32), (2, 4))), ValueError, "read-only"),
    (lambda: kernels.softmax_cross_entropy(np.ones((2, 3), f32), [0, 3]), ValueError, r"\[0, 3\)"),
    (lambda: kernels.softmax_cross_entropy(np.ones((2, 3), f32), [0, -1]), ValueError, "got -1"),
    (lambda: kernels.softmax_cross_entropy(np.ones((2, 3), f32), [0]), ValueError, "shape"),
    (lambda: kernels.softmax_cross_entropy(np.ones((2, 3), f32), [0.5, 1]), ValueError, "whole numbers"),
    (lambda: kernels.softmax_cross_entropy(np.ones((2, 3), f32), ["a", "b"]), TypeError, "integers"),
    (lambda: kernels.softmax_cross_entropy(np.ones((2, 0), f32), [0, 0]), ValueError, "at least one column"),
    (lambda: kernels.softmax_cross_entropy(np.ones((0, 3), f32), []), ValueError, "at least one row"),
    (lambda: kernels.softmax_cross_entropy(np.ones((2, 3), f32), [0, 1], reduction="max"),
     ValueError, "reduction"),
    (lambda: kernels.mse(np.ones((2, 3), f32), np.ones((3, 2))), ValueError, "target has shape"),
    (lambda: kernels.bce_with_logits(np.ones((2, 3), f32), np.full((2, 3), "x")), TypeError, "numeric"),
    (lambda: kernels.sgd_step(np.ones(3, f32), np.ones(4, f32), None, lr=0.1), ValueError, "grad has shape"),
    (lambda: kernels.sgd_step(np.ones(3, f32), np.ones(3, f32), np.ones(3), lr=0.1, momentum=0.9),
     ValueError, "momentum_buffer"),
    (lambda: kernels.sgd_step([1.0, 2.0], np.ones(2, f32), None, lr=0.1), TypeError, "param"),
    (lambda: kernels.set_num_threads(0), ValueError, "n must be"),
    (lambda: kernels.set_isa("sse9"), ValueError, "isa must be"),
])
def test_kernel_bad_input(call, exc, match):
    with pytest.raises(exc, match=match):
        call()


def test_out_overlapping_input_rejected():
    a = np.ones((4, 4), f32)
    with pytest.raises(ValueError, match="overlaps"):
        kernels.gemm(a, a, out=a)
    buf = np.ones(20, f32)
    x, shifted = buf[:16].reshape(4, 4), buf[2:18].reshape(4, 4)
    with pytest.raises(ValueError, match="overlaps"):
        kernels.activation_forward(x, "relu", out=shifted)
    assert kernels.activation_forward(x, "relu", out=x) is x  # exactly in place is allowed


@pytest.mark.parametrize("call,exc,match", [
    (lambda m: m.forward(np.ones((2, 5))), ValueError, "expects 4 features"),
    (lambda m: m.forward(np.ones(4)), ValueError, "X must be 2-D"),
    (lambda m: m.forward(np.array([["a"] * 4])), TypeError, "numeric"),
    (lambda m: m.forward(np.ones((2, 4), complex)), TypeError, "numeric"),
    (lambda m: m.fit(np.ones((3, 4)), [0, 1], loss=fastnn.SoftmaxCrossEntropy(),
                     optimizer=fastnn.optim.SGD(m, lr=0.1)), ValueError, "y has 2 samples"),
    (lambda m: m.fit(np.ones((3, 4)), [0, 1, 2], loss=fastnn.SoftmaxCrossEntropy(),
                     optimizer=fastnn.optim.SGD(m, lr=0.1), batch_size=0), ValueError, "batch_size"),
    (lambda m: m.fit(np.ones((3, 4)), [0, 1, 9], loss=fastnn.SoftmaxCrossEntropy(),
                     optimizer=fastnn.optim.SGD(m, lr=0.1)), ValueError, r"\[0, 3\)"),
    (lambda m: m.backward(np.ones((2, 3))), RuntimeError, "before a forward"),
])
def test_model_bad_input(call, exc, match):
    model = fastnn.Sequential(fastnn.Dense(4, 3), fastnn.ReLU())
    with pytest.raises(exc, match=match):
        call(model)


@pytest.mark.parametrize("make,match", [
    (lambda: fastnn.Dense(0, 3), "in_features"),
    (lambda: fastnn.Dense(3, 2.5), "out_features"),
    (lambda: fastnn.Dense(3, 2, init="magic"), "unknown init 'magic'"),
    (lambda: fastnn.Dense(3, 2, l2=-1), "l2"),
    (lambda: fastnn.Dense(3, 2, dtype=np.int32), "dtype"),
    (lambda: fastnn.LeakyReLU("x"), "negative_slope"),
    (lambda: fastnn.MSELoss("avg"), "reduction"),
    (lambda: fastnn.Sequential(fastnn.Dense(2, 2), "relu"), "layer 1"),
])
def test_constructor_bad_arguments(make, match):
    with pytest.raises((ValueError, TypeError), match=match):
        make()


def test_unusual_layouts_equal_contiguous(rng):
    model = fastnn.Sequential(fastnn.Dense(6, 5), fastnn.Sigmoid(), fastnn.Dense(5, 2))
    X = rng.standard_normal((9, 6)).astype(f32)
    want = model(X)
    ro = X.copy()
    ro.flags.writeable = False
    big = np.zeros((18, 12), f32)
    big[::2, ::2] = X
    for variant in (np.asfortranarray(X), X[::-1][::-1], big[::2, ::2], ro, X.tolist(),
                    X.astype(np.float64)):
        # A layout may take another GEMM path whose sums run in another order.
        np.testing.assert_allclose(model(variant), want, rtol=1e-5, atol=1e-6)


def test_memmap_input(tmp_path, rng):
    X = rng.standard_normal((50, 6)).astype(f32)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=f32, shape=X.shape)
    mm[...] = X
    mm.flush()
    ro = np.load(tmp_path / "x.npy", mmap_mode="r")
    model = fastnn.Sequential(fastnn.Dense(6, 3))
    np.testing.assert_allclose(model(ro), model(X))


# ---- losses convert at the Python floor (issue #14) -----------------------------------------
# The output keeps its dtype when it is a float32/float64 array, anything else becomes float64;
# probability and regression targets take the output's dtype; class labels stay integers.

LOSS_CASES = {  # name -> (loss, target for a (3, 4) output as a list)
    "sce-probs": (fastnn.SoftmaxCrossEntropy(), [[1, 0, 0, 0], [0.25, 0.25, 0.5, 0], [0, 0, 0, 1]]),
    "sce-onehot-ints": (fastnn.SoftmaxCrossEntropy("sum"), [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]]),
    "bce": (fastnn.BCEWithLogits(), [[1, 0, 0, 1], [0, 1, 0, 0], [0.5, 0, 0, 1]]),
    "mse": (fastnn.MSELoss("half_sum"), [[1, -2, 0, 3], [0, 1, 0.5, 0], [2, 0, 0, 1]]),
}


def _reference(loss, output, target):
    """The kernel on contiguous arrays that already have the output's dtype."""
    return type(loss).kernel(np.ascontiguousarray(output), np.asarray(target, output.dtype),
                             reduction=loss.reduction)


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
@pytest.mark.parametrize("target_dtype", [np.float32, np.float64, "list", np.int64, np.bool_])
def test_loss_converts_targets_to_the_outputs_dtype(case, target_dtype, dtype, rng):
    loss, target_list = LOSS_CASES[case]
    output = rng.standard_normal((3, 4)).astype(dtype)
    if target_dtype is np.bool_:
        target_list = (np.asarray(target_list) > 0.5).tolist()
    target = target_list if target_dtype == "list" else np.asarray(target_list, target_dtype)
    value, grad = loss(output, target)
    want_value, want_grad = _reference(loss, output, target)
    assert isinstance(value, float) and value == want_value
    assert grad.dtype == dtype and grad.shape == output.shape
    np.testing.assert_array_equal(grad, want_grad)


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_loss_converts_a_list_output_to_float64(case, rng):
    loss, target = LOSS_CASES[case]
    output = rng.standard_normal((3, 4))
    for out in (output.tolist(), output.astype(np.float16).tolist(), (output > 0).astype(int).tolist()):
        value, grad = loss(out, target)
        assert grad.dtype == np.float64 and grad.shape == (3, 4)
        want_value, want_grad = _reference(loss, np.asarray(out, np.float64), target)
        assert value == want_value
        np.testing.assert_array_equal(grad, want_grad)


@pytest.mark.parametrize("case", sorted(LOSS_CASES))
def test_loss_reads_readonly_and_strided_inputs_without_modifying_them(case, dtype, rng):
    loss, target_list = LOSS_CASES[case]
    output = rng.standard_normal((3, 4)).astype(dtype)
    want_value, want_grad = _reference(loss, output, target_list)
    other = np.float64 if dtype == np.float32 else np.float32
    big = np.zeros((3, 8), other)
    big[:, ::2] = target_list
    for out, tgt in [(output, np.asarray(target_list, other)),      # mixed precision
                     (np.asfortranarray(output), big[:, ::2]),       # layouts
                     (output, np.asarray(target_list, dtype)[::-1][::-1])]:
        out0, tgt0 = out.copy(), tgt.copy()
        out.flags.writeable = tgt.flags.writeable = False
        value, grad = loss(out, tgt)
        assert grad.dtype == dtype
        np.testing.assert_allclose(value, want_value, rtol=1e-6)
        np.testing.assert_allclose(grad, want_grad, rtol=1e-6, atol=1e-7)
        np.testing.assert_array_equal(out, out0)
        np.testing.assert_array_equal(tgt, tgt0)
        assert grad is not out and not np.shares_memory(grad, out)


def test_loss_labels_of_any_integer_dtype_or_whole_floats(dtype, rng):
    output = rng.standard_normal((4, 3)).astype(dtype)
    want = fastnn.SoftmaxCrossEntropy()(output, np.array([0, 2, 1, 2]))
    for labels in ([0, 2, 1, 2], np.array([0, 2, 1, 2], np.uint8), np.array([0, 2, 1, 2], np.int32),
                   np.array([0.0, 2.0, 1.0, 2.0], np.float32), (0, 2, 1, 2)):
        value, grad = fastnn.SoftmaxCrossEntropy()(output, labels)
        assert value == want[0] and grad.dtype == dtype
        np.testing.assert_array_equal(grad, want[1])


def test_evaluate_and_fit_accept_integer_one_hot_targets(dtype):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((12, 4))
    labels = rng.integers(0, 3, 12)
    onehot = np.eye(3, dtype=np.int64)[labels]
    model = fastnn.Sequential(fastnn.Dense(4, 3, rng=0), dtype=dtype)
    loss = fastnn.SoftmaxCrossEntropy()
    got = model.evaluate(X, onehot.tolist(), loss=loss)["loss"]
    assert got == pytest.approx(model.evaluate(X, labels, loss=loss)["loss"], rel=1e-6)
    before = model.state_dict()
    model.fit(X, onehot, loss=loss, optimizer=fastnn.optim.SGD(model, lr=0.1), epochs=1)
    assert not np.array_equal(model.state_dict()["0.weight"], before["0.weight"])


def test_loss_passes_arrays_of_the_right_form_to_the_kernel_without_copies(monkeypatch, dtype):
    """The hot path stays copy-free: arrays already in the kernel's form reach it as they are."""
    seen = []
    for cls in (fastnn.SoftmaxCrossEntropy, fastnn.BCEWithLogits, fastnn.MSELoss):
        kernel = cls.kernel
        monkeypatch.setattr(cls, "kernel", staticmethod(
            lambda o, t, kernel=kernel, **kw: (seen.append((o, t)), kernel(o, t, **kw))[1]))
    out = np.zeros((3, 4), dtype)
    cases = [(fastnn.SoftmaxCrossEntropy(), np.array([0, 1, 3])),
             (fastnn.SoftmaxCrossEntropy(), np.full((3, 4), 0.25, dtype)),
             (fastnn.BCEWithLogits(), np.ones((3, 4), dtype)), (fastnn.MSELoss(), np.ones((3, 4), dtype))]
    for loss, target in cases:
        seen.clear()
        loss(out, target)
        assert seen[0][0] is out and seen[0][1] is target


def test_load_state_dict_checks_every_value_before_loading_any():
    model = fastnn.Sequential(fastnn.Dense(4, 5, rng=0), fastnn.ReLU(), fastnn.Dense(5, 3, rng=1))
    before = model.state_dict()
    bad = {k: v + 1 for k, v in before.items()}
    bad["2.weight"] = np.ones((3, 6))
    with pytest.raises(ValueError, match=r"'2\.weight'"):
        model.load_state_dict(bad)
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, before[key], err_msg=key)


# ---- looking names up: one get() per family, one error form ------------------------------

#: family -> (its get, {name: what it returns}, a name it does not have, names its error lists)
LOOKUPS = {
    "init": (fastnn.init.get, {"he_uniform": fastnn.init.he_uniform, "zeros": fastnn.init.zeros},
             "He_Uniform", ["normal", "xavier_uniform", "lecun_normal", "zeros"]),
    "optimizer": (fastnn.optim.get, {"adam": fastnn.optim.Adam, "AdamW": fastnn.optim.AdamW,
                                     "sgd": fastnn.optim.SGD, "RMS-prop": fastnn.optim.RMSprop},
                  "Optimizer", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]),
    "activation": (fastnn.layers.get_activation,
                   {"relu": fastnn.ReLU, "leaky_relu": fastnn.LeakyReLU, "Tanh": fastnn.Tanh,
                    "SIGMOID": fastnn.Sigmoid, "identity": fastnn.Identity},
                   "softmax", ["Identity", "ReLU", "LeakyReLU", "Sigmoid", "Tanh"]),
    "layer class": (fastnn.layers.get, {"Dense": fastnn.Dense, "BatchNorm1d": fastnn.BatchNorm1d,
                                        "Standardize": fastnn.Standardize},
                    "dense", ["Dense", "Maxout", "Dropout", "Softmax"]),
}


@pytest.mark.parametrize("family", sorted(LOOKUPS))
def test_each_family_looks_names_up_with_one_get(family):
    get, found, unknown, listed = LOOKUPS[family]
    for name, expected in found.items():
        assert get(name) is expected, name
    for bad in (unknown, None, ["relu"], ""):
        with pytest.raises(ValueError, match=f"unknown {family} {re.escape(repr(bad))}; "
                                             "expected one of ") as info:
            get(bad)
        assert all(name in str(info.value) for name in listed), str(info.value)


def test_metrics_get_builds_a_fresh_metric_for_the_loss():
    assert metrics.NAMES == ("accuracy", "mse", "mae", "r2", "log_loss")
    first, second = (metrics.get("accuracy", fastnn.SoftmaxCrossEntropy()) for _ in range(2))
    assert type(first) is metrics.Accuracy and first is not second
    assert first.threshold == 0.0 and metrics.get("accuracy").threshold == 0.5
    assert metrics.get("log_loss", fastnn.MSELoss()).from_logits is False
    with pytest.raises(ValueError, match="unknown metric 'precision'; expected one of accuracy, "
                                         "mse, mae, r2, log_loss"):
        metrics.get("precision")


def test_the_layer_registry_finds_user_layers_by_exact_name():
    """fastnn.layers.get reads Layer.registry when called, so a layer defined later is found
    (and an elementwise one by get_activation too)."""
    saved = dict(fastnn.Layer.registry)
    try:
        class Swish(fastnn.layers._Activation):
            kernel_name = "sigmoid"
        assert fastnn.layers.get("Swish") is Swish
        assert fastnn.layers.get_activation("swish") is Swish
        with pytest.raises(ValueError, match="unknown layer class 'swish'"):
            fastnn.layers.get("swish")
    finally:
        fastnn.Layer.registry.clear()
        fastnn.Layer.registry.update(saved)
