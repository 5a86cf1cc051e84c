"""The training loop (fastnn/training.py): fit / evaluate / predict with histories,
validation, seeding, progress lines, NaN detection and memory-mapped datasets; training to
an accuracy; lr_sweep's loss curves (its figure: test_plotting.py); batches of any rank
(images (n, C, H, W)) checked against the rank the model takes and gathered row by row."""

import os
import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest

import fastnn
from fastnn import BatchNorm1d, Dense, Dropout, Maxout, Sequential, Standardize, optim
from fastnn.training import _FileRows
from helpers import digits_mlp, digits_subset

CE = fastnn.SoftmaxCrossEntropy()

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))


def blobs(n=300, d=4, k=3, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    X = rng.normal(size=(n, d)) + 2.0 * np.eye(k, d)[y]
    return X.astype(np.float32), y


def mlp(d=4, k=3, dtype=np.float32, seed=0):
    return fastnn.Sequential(
        fastnn.Dense(d, 16, rng=seed, dtype=dtype),
        fastnn.ReLU(),
        fastnn.Dense(16, k, rng=seed + 1, dtype=dtype),
    )


def train(model, X, y, **kw):
    opt = fastnn.optim.SGD(model, lr=kw.pop("lr", 0.05), momentum=0.9)
    kw.setdefault("loss", fastnn.SoftmaxCrossEntropy())
    return model.fit(X, y, optimizer=opt, **kw), opt


def test_history_has_per_epoch_values_and_times():
    X, y = blobs()
    model = mlp()
    h, opt = train(
        model, X, y, epochs=4, metrics=("accuracy", "log_loss"), validation_split=0.2, seed=0
    )
    assert set(h.history) == {
        "loss",
        "accuracy",
        "log_loss",
        "val_loss",
        "val_accuracy",
        "val_log_loss",
        "lr",
    }
    assert all(len(v) == 4 for v in h.history.values())
    assert h.epoch == [0, 1, 2, 3] and len(h.epoch_times) == 4
    assert all(t > 0 for t in h.epoch_times)
    assert h.history["loss"][-1] < h.history["loss"][0]
    assert h.history["val_accuracy"][-1] > 0.8
    assert model.history is h and model.optimizer is opt


def test_validation_split_takes_the_last_rows_like_keras():
    X, y = blobs(100)
    model = mlp()
    h, _ = train(model, X, y, epochs=1, validation_split=0.25, seed=0, shuffle=False)
    expected = fastnn.Sequential.evaluate(model, X[75:], y[75:], loss=fastnn.SoftmaxCrossEntropy())
    assert h.history["val_loss"][0] == pytest.approx(expected["loss"], rel=1e-6)


def test_validation_data_matches_evaluate():
    X, y = blobs()
    model = mlp()
    h, _ = train(
        model,
        X[:200],
        y[:200],
        epochs=2,
        metrics=("accuracy",),
        validation_data=(X[200:], y[200:]),
        seed=1,
    )
    res = model.evaluate(X[200:], y[200:], loss=fastnn.SoftmaxCrossEntropy(), metrics=("accuracy",))
    assert h.history["val_loss"][-1] == pytest.approx(res["loss"], rel=1e-6)
    assert h.history["val_accuracy"][-1] == pytest.approx(res["accuracy"])


def test_seeded_shuffling_is_reproducible_and_seed_dependent():
    X, y = blobs()
    runs = []
    for seed in (3, 3, 4):
        model = mlp()
        train(model, X, y, epochs=2, seed=seed)
        runs.append(model.state_dict()["0.weight"])
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])


def test_predict_batches_equal_forward_and_inputs_untouched():
    X, _ = blobs(1000)
    X.setflags(write=False)
    model = mlp()
    np.testing.assert_array_equal(model.predict(X, batch_size=128), model.forward(X))
    assert model.predict(X[:5].tolist()).shape == (5, 3)


def test_evaluate_in_batches_matches_single_batch():
    X, y = blobs(500)
    model = mlp()
    loss = fastnn.SoftmaxCrossEntropy()
    a = model.evaluate(X, y, loss=loss, metrics=("accuracy",), batch_size=64)
    b = model.evaluate(X, y, loss=loss, metrics=("accuracy",), batch_size=500)
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-5)
    assert a["accuracy"] == b["accuracy"]


def test_bad_arguments_name_themselves():
    X, y = blobs(20)
    model = mlp()
    opt = fastnn.optim.SGD(model, lr=0.1)
    loss = fastnn.SoftmaxCrossEntropy()
    with pytest.raises(ValueError, match="verbose"):
        model.fit(X, y, loss=loss, optimizer=opt, verbose=3)
    with pytest.raises(TypeError, match="wrap it in a list"):
        model.fit(X, y, loss=loss, optimizer=opt, callbacks=fastnn.TerminateOnNaN())
    with pytest.raises(ValueError, match="validation_split"):
        model.fit(X, y, loss=loss, optimizer=opt, validation_split=0.999)
    with pytest.raises(ValueError, match="samples"):
        model.fit(X, y[:10], loss=loss, optimizer=opt)


def test_verbose_0_prints_nothing(capsys):
    X, y = blobs(50)
    train(mlp(), X, y, epochs=2, verbose=0)
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize("verbose", [1, 2])
def test_progress_is_one_stderr_line_per_epoch_when_not_a_tty(capsys, verbose):
    X, y = blobs(200)
    train(mlp(), X, y, epochs=3, batch_size=8, metrics=("accuracy",), verbose=verbose)
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 3 and "\r" not in err
    assert lines[0].startswith("epoch 1/3") and "loss=" in lines[0] and "accuracy=" in lines[0]


def test_nan_loss_raises_without_callbacks():
    # Without TerminateOnNaN a diverged fit stops with an error naming where, and the
    # poisoned step is not taken: the weights stay those before the batch.
    X, _ = blobs(64)
    y = X.sum(axis=1)
    y[5] = np.nan
    model = fastnn.Sequential(fastnn.Dense(4, 1, rng=0))
    before = model.state_dict()
    with pytest.raises(FloatingPointError, match=r"epoch 1, batch 1 of 4: this batch of y"):
        train(model, X, y, loss=fastnn.MSELoss(), epochs=2, batch_size=16, shuffle=False)
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(v, before[k])


def test_memmap_training_equals_in_memory(tmp_path):
    X, y = blobs(257)
    path = tmp_path / "X.npy"
    np.save(path, X)
    np.save(tmp_path / "y.npy", y)
    Xm = np.load(path, mmap_mode="r")
    ym = np.load(tmp_path / "y.npy", mmap_mode="r")
    a, b = mlp(), mlp()
    train(a, X, y, epochs=2, batch_size=10, seed=5, validation_split=0.1)
    train(b, Xm, ym, epochs=2, batch_size=10, seed=5, validation_split=0.1)
    for k, v in a.state_dict().items():
        np.testing.assert_array_equal(v, b.state_dict()[k])


@pytest.mark.parametrize("view", ["all", "rows", "columns", "asarray"])
def test_file_rows_reads_memmap_views(tmp_path, view):
    data = np.arange(50 * 6, dtype=np.float64).reshape(50, 6)
    np.save(tmp_path / "d.npy", data)
    m = np.load(tmp_path / "d.npy", mmap_mode="r")
    arr = {"all": m, "rows": m[7:], "columns": m[:, 1:-1], "asarray": np.asarray(m)[3:]}[view]
    expected = {"all": data, "rows": data[7:], "columns": data[:, 1:-1], "asarray": data[3:]}[view]
    reader = _FileRows.open(arr)
    try:
        idx = np.array([0, 1, 2, 5, 9, 10, 40])
        np.testing.assert_array_equal(reader.take(idx), expected[idx])
    finally:
        reader.close()
    assert _FileRows.open(np.load(tmp_path / "d.npy", mmap_mode="c")) is None
    assert _FileRows.open(data) is None


RSS_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import fastnn

    def status(key):
        for line in open("/proc/self/status"):
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024

    X = np.load(sys.argv[1], mmap_mode="r")
    y = np.load(sys.argv[2], mmap_mode="r")
    model = fastnn.Sequential(fastnn.Dense(X.shape[1], 32, rng=0), fastnn.ReLU(),
                              fastnn.Dense(32, 2, rng=1))
    opt = fastnn.optim.SGD(model, lr=0.01)
    loss = fastnn.SoftmaxCrossEntropy()
    model.fit(X[:512], y[:512], loss=loss, optimizer=opt, batch_size=256)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # restart the peak-RSS counter from here
    base = status("VmRSS")
    shuffle = sys.argv[3] == "1"
    model.fit(X, y, loss=loss, optimizer=opt, epochs=1, batch_size=256, shuffle=shuffle,
              validation_data=(X[-50000:], y[-50000:]))
    model.predict(X, batch_size=8192)
    print((status("VmHWM") - base) / 2**20)
""")


@pytest.mark.skipif(not os.path.exists("/proc/self/clear_refs"), reason="needs Linux /proc")
@pytest.mark.skipif(
    os.environ.get("FASTNN_SANITIZED") == "1",
    reason="ASan's shadow memory and quarantine inflate the resident set",
)
@pytest.mark.parametrize("shuffle", [True, False])
def test_memmap_epoch_keeps_resident_memory_flat(tmp_path, shuffle):
    size_mb = 200
    stat = os.statvfs(tmp_path)
    if stat.f_bavail * stat.f_frsize < 3 * size_mb * 2**20:
        pytest.skip("not enough space in the temporary directory")
    rows = size_mb * 2**20 // (4 * 128)
    X = np.lib.format.open_memmap(
        tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=(rows, 128)
    )
    rng = np.random.default_rng(0)
    for s in range(0, rows, 65536):
        X[s : s + 65536] = rng.standard_normal((min(65536, rows - s), 128), dtype=np.float32)
    X.flush()
    del X
    np.save(tmp_path / "y.npy", np.arange(rows) % 2)
    script = tmp_path / "rss.py"
    script.write_text(RSS_SCRIPT)
    out = subprocess.run(
        [
            sys.executable,
            str(script),
            str(tmp_path / "X.npy"),
            str(tmp_path / "y.npy"),
            "1" if shuffle else "0",
        ],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONPATH": ROOT},
    )
    growth_mb = float(out.stdout.strip().splitlines()[-1])
    # Without page release this is ~200 MB (every page of the file ends up mapped).
    assert growth_mb < 100, f"resident memory grew by {growth_mb:.0f} MB over a 200 MB memmap"


# ---- training to an accuracy ----------------------------------------------------------------


def test_fit_on_digits_reaches_97_percent():
    X, y = fastnn.load_digits()
    X = X / 16
    order = np.random.default_rng(0).permutation(len(X))
    test, train = order[:360], order[360:]
    model = fastnn.Sequential(
        fastnn.Dense(64, 128, rng=0), fastnn.ReLU(), fastnn.Dense(128, 10, rng=1)
    )
    loss = fastnn.SoftmaxCrossEntropy()
    history = model.fit(
        X[train],
        y[train],
        loss=loss,
        optimizer=optim.SGD(model, lr=0.05, momentum=0.9),
        epochs=25,
        metrics=("accuracy",),
        validation_data=(X[test], y[test]),
        seed=0,
    )
    assert len(history.history["loss"]) == 25
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert model.evaluate(X[test], y[test], loss=loss, metrics=("accuracy",))["accuracy"] >= 0.97


def test_fit_is_reproducible_with_seed():
    X, y = fastnn.load_digits()
    runs = []
    for _ in range(2):
        model = fastnn.Sequential(
            fastnn.Dense(64, 32, rng=0), fastnn.ReLU(), fastnn.Dense(32, 10, rng=1)
        )
        model.fit(
            X[:300] / 16,
            y[:300],
            loss=fastnn.SoftmaxCrossEntropy(),
            optimizer=optim.SGD(model, lr=0.05),
            epochs=2,
            seed=3,
        )
        runs.append(model.state_dict())
    for k in runs[0]:
        np.testing.assert_array_equal(runs[0][k], runs[1][k])


def test_toolbox_model_trains():
    X, y = fastnn.load_digits()
    X, y = X[:600], y[:600]
    model = Sequential(
        Standardize().adapt(X),
        Maxout(64, 32, 2, rng=0),
        BatchNorm1d(32),
        Dropout(0.2, rng=0),
        Dense(32, 10, rng=1),
    )
    hist = model.fit(
        X,
        y,
        loss=CE,
        optimizer=fastnn.optim.AdamW(model, lr=0.01),
        epochs=8,
        batch_size=32,
        seed=0,
        metrics=("accuracy",),
    )
    assert hist.history["loss"][-1] < hist.history["loss"][0] / 3
    assert model.evaluate(X, y, loss=CE, metrics=("accuracy",))["accuracy"] > 0.95


# ---- lr_sweep ----------------------------------------------------------------------------------


def test_lr_sweep_returns_per_update_losses_from_the_same_start():
    X, y = digits_subset()
    curves = fastnn.lr_sweep(
        digits_mlp,
        X,
        y,
        loss=fastnn.SoftmaxCrossEntropy(),
        lrs=[0.001, 0.1, 50.0],
        steps=30,
        epochs=5,
        batch_size=16,
        seed=0,
    )
    assert list(curves) == [0.001, 0.1, 50.0]
    assert len(curves[0.001]) == len(curves[0.1]) == 30
    # every run starts from the same weights and batches, so the first losses agree
    assert curves[0.001][0] == curves[0.1][0] == curves[50.0][0]
    assert curves[0.1][-5:].mean() < curves[0.001][-5:].mean()
    assert curves[50.0][-5:].mean() > 2 * curves[0.1][-5:].mean()


def test_lr_sweep_stops_a_diverging_run_quietly():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(256, 4))
    y = X @ np.arange(1.0, 5.0)

    def linear():
        return fastnn.Sequential(fastnn.Dense(4, 1, rng=0, dtype=np.float64))

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        curves = fastnn.lr_sweep(
            linear, X, y, loss=fastnn.MSELoss(), lrs=[0.01, 1e3], steps=50, epochs=10, batch_size=8
        )
    assert len(curves[0.01]) == 50 and np.all(np.isfinite(curves[0.01]))
    assert len(curves[1e3]) < 50 and not np.isfinite(curves[1e3][-1])


def test_lr_sweep_with_optimizer_factory_and_epochs():
    X, y = digits_subset()
    used = []

    def factory(model, lr):
        used.append(lr)
        return fastnn.optim.SGD(model, lr=lr, momentum=0.9)

    curves = fastnn.lr_sweep(
        digits_mlp,
        X,
        y,
        loss=fastnn.SoftmaxCrossEntropy(),
        lrs=[0.01],
        optimizer_factory=factory,
        epochs=2,
        batch_size=100,
    )
    assert used == [0.01] and len(curves[0.01]) == 8


def test_lr_sweep_validates_arguments():
    X, y = digits_subset()
    with pytest.raises(ValueError, match="lrs"):
        fastnn.lr_sweep(digits_mlp, X, y, loss=fastnn.SoftmaxCrossEntropy(), lrs=[])
    with pytest.raises(ValueError, match="lrs"):
        fastnn.lr_sweep(digits_mlp, X, y, loss=fastnn.SoftmaxCrossEntropy(), lrs=[0.1, -1])
    with pytest.raises(TypeError, match="build_model"):
        fastnn.lr_sweep(None, X, y, loss=fastnn.SoftmaxCrossEntropy(), lrs=[0.1])


# ---- batches of any rank: images (n, C, H, W) -------------------------------------------


class _Flatten4(fastnn.Layer):
    """(n, C, H, W) -> (n, C*H*W) and back (the underscore keeps it out of the registry)."""

    input_ndim = 4

    def __init__(self):
        super().__init__()
        self._shape = None

    def forward(self, x, training=False):
        x = self._input(x)
        if training:
            self._shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy):
        return np.asarray(dy).reshape(self._shape)


def test_the_model_input_rank_is_its_first_declared_one():
    assert fastnn.training.input_ndim(mlp()) == 2
    assert fastnn.training.input_ndim(Sequential(_Flatten4(), Dense(6, 2))) == 4
    assert fastnn.training.input_ndim(Sequential(fastnn.ReLU(), _Flatten4(), Dense(6, 2))) == 4
    assert fastnn.training.input_ndim(Sequential(fastnn.ReLU(), Dropout(0.1))) is None


def test_check_pair_keeps_a_4d_memmap_as_it_is(tmp_path):
    X = np.lib.format.open_memmap(tmp_path / "X.npy", "w+", np.float32, (10, 3, 5, 7))
    y = np.zeros(10, np.int64)
    model = Sequential(_Flatten4(), Dense(105, 2))
    Xc, yc = fastnn.training.check_pair(X, y, model=model)
    assert Xc is X and yc is y
    assert fastnn.training.check_pair(X[:, :, 1:], y)[0].shape == (10, 3, 4, 7)
    with pytest.raises(ValueError, match=r"X must be 4-D \(n_samples, channels, height, width\) "):
        fastnn.training.check_pair(X[:, 0], y, model=model)
    with pytest.raises(ValueError, match=r"X must have a samples axis and at least one more"):
        fastnn.training.check_pair(np.ones(10), y)
    with pytest.raises(ValueError, match="y has 9 samples, X has 10"):
        fastnn.training.check_pair(X, y[:9], model=model)


def test_fit_evaluate_predict_name_the_rank_the_model_takes():
    X, y = blobs(12)
    images = X.reshape(12, 1, 2, 2)
    image_model = Sequential(_Flatten4(), Dense(4, 3, rng=0))
    opt = fastnn.optim.SGD(image_model, lr=0.1)
    four = (
        r"X must be 4-D \(n_samples, channels, height, width\) for this model, got shape \(12, 4\)"
    )
    with pytest.raises(ValueError, match=four):
        image_model.fit(X, y, loss=CE, optimizer=opt)
    with pytest.raises(ValueError, match=four):
        image_model.evaluate(X, y, loss=CE)
    with pytest.raises(ValueError, match=four):
        image_model.predict(X)
    with pytest.raises(ValueError, match=r"validation_data\[0\] must be 4-D"):
        image_model.fit(images, y, loss=CE, optimizer=opt, validation_data=(X, y))
    two = r"X must be 2-D \(n_samples, n_features\) for this model, got shape \(12, 1, 2, 2\)"
    with pytest.raises(ValueError, match=two):
        mlp().fit(images, y, loss=CE, optimizer=opt)
    with pytest.raises(ValueError, match=two):
        mlp().predict(images)
    with pytest.raises(ValueError, match=r"validation_data\[0\] must be 2-D"):
        mlp().fit(X, y, loss=CE, optimizer=opt, validation_data=(images, y))


def test_page_releaser_and_file_rows_take_rows_of_images(tmp_path):
    X = np.random.default_rng(0).standard_normal((40, 3, 5, 7)).astype(np.float32)
    np.save(tmp_path / "X.npy", X)
    Xm = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert fastnn.training.PageReleaser(Xm).row_bytes == 3 * 5 * 7 * 4
    reader = _FileRows.open(Xm)
    try:
        idx = np.array([0, 1, 2, 7, 30, 31, 39])
        np.testing.assert_array_equal(reader.take(idx), X[idx])
    finally:
        reader.close()
    reader = _FileRows.open(Xm[5:, :, 1:])  # rows no longer contiguous: not read with pread
    assert reader is None
