"""The losses (fastnn/losses.py): every loss's gradient against float64 central differences,
and the conversions at the Python floor. The output keeps its dtype when it is a
float32/float64 array, anything else becomes float64; probability and regression targets
take the output's dtype; class labels stay integers; arrays already in the kernel's form
reach it without copies."""

import numpy as np
import pytest

import fastnn
from helpers import numeric_grad, rel_error

F64 = np.float64
GRAD_TOL = 1e-6


def _loss_cases(rng):
    x = rng.standard_normal((6, 4)) * 2
    yield "sce_labels", fastnn.SoftmaxCrossEntropy(), x, rng.integers(0, 4, 6)
    yield "sce_labels_sum", fastnn.SoftmaxCrossEntropy("sum"), x, rng.integers(0, 4, 6)
    yield "sce_probs", fastnn.SoftmaxCrossEntropy(), x, rng.dirichlet(np.ones(4), 6)
    yield "bce", fastnn.BCEWithLogits(), x, rng.integers(0, 2, (6, 4)).astype(F64)
    yield "bce_soft_sum", fastnn.BCEWithLogits("sum"), x, rng.uniform(0, 1, (6, 4))
    for red in ("mean", "sum", "half_sum"):
        yield f"mse_{red}", fastnn.MSELoss(red), x, rng.standard_normal((6, 4))


@pytest.mark.parametrize("case", list(_loss_cases(np.random.default_rng(4))), ids=lambda c: c[0])
def test_loss_gradient(case):
    _, loss, x, target = case
    x = x.copy()
    value, grad = loss(x, target)
    assert isinstance(value, float) and grad.shape == x.shape and grad.dtype == F64
    numeric = numeric_grad(lambda: loss(x, target)[0], x)
    assert rel_error(grad, numeric) < GRAD_TOL


LOSS_CASES = {  # name -> (loss, target for a (3, 4) output as a list)
    "sce-probs": (fastnn.SoftmaxCrossEntropy(), [[1, 0, 0, 0], [0.25, 0.25, 0.5, 0], [0, 0, 0, 1]]),
    "sce-onehot-ints": (
        fastnn.SoftmaxCrossEntropy("sum"),
        [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 0, 1]],
    ),
    "bce": (fastnn.BCEWithLogits(), [[1, 0, 0, 1], [0, 1, 0, 0], [0.5, 0, 0, 1]]),
    "mse": (fastnn.MSELoss("half_sum"), [[1, -2, 0, 3], [0, 1, 0.5, 0], [2, 0, 0, 1]]),
}


def _reference(loss, output, target):
    """The kernel on contiguous arrays that already have the output's dtype."""
    return type(loss).kernel(
        np.ascontiguousarray(output), np.asarray(target, output.dtype), reduction=loss.reduction
    )


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
    for out in (
        output.tolist(),
        output.astype(np.float16).tolist(),
        (output > 0).astype(int).tolist(),
    ):
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
    for out, tgt in [
        (output, np.asarray(target_list, other)),  # mixed precision
        (np.asfortranarray(output), big[:, ::2]),  # layouts
        (output, np.asarray(target_list, dtype)[::-1][::-1]),
    ]:
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
    for labels in (
        [0, 2, 1, 2],
        np.array([0, 2, 1, 2], np.uint8),
        np.array([0, 2, 1, 2], np.int32),
        np.array([0.0, 2.0, 1.0, 2.0], np.float32),
        (0, 2, 1, 2),
    ):
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
        monkeypatch.setattr(
            cls,
            "kernel",
            staticmethod(
                lambda o, t, kernel=kernel, **kw: (seen.append((o, t)), kernel(o, t, **kw))[1]
            ),
        )
    out = np.zeros((3, 4), dtype)
    cases = [
        (fastnn.SoftmaxCrossEntropy(), np.array([0, 1, 3])),
        (fastnn.SoftmaxCrossEntropy(), np.full((3, 4), 0.25, dtype)),
        (fastnn.BCEWithLogits(), np.ones((3, 4), dtype)),
        (fastnn.MSELoss(), np.ones((3, 4), dtype)),
    ]
    for loss, target in cases:
        seen.clear()
        loss(out, target)
        assert seen[0][0] is out and seen[0][1] is target
