"""The callbacks (fastnn/callbacks.py) with Keras's semantics: EarlyStopping,
ModelCheckpoint, LearningRateScheduler (driven by a schedule too), ReduceLROnPlateau,
TerminateOnNaN, CSVLogger, and the order of the hooks. (The schedules themselves:
test_schedules.py.)"""

import csv
import math

import numpy as np
import pytest

import fastnn
from fastnn import callbacks as C
from fastnn import schedules


def data(n=120, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    X = (rng.normal(size=(n, 3)) + 1.5 * y[:, None]).astype(np.float32)
    return X, y


def model_and_opt(lr=0.05):
    model = fastnn.Sequential(fastnn.Dense(3, 8, rng=0), fastnn.ReLU(), fastnn.Dense(8, 2, rng=1))
    return model, fastnn.optim.SGD(model, lr=lr, momentum=0.9)


class Script(C.Callback):
    """Overwrites a logged value with scripted numbers (it runs before the callback under
    test, which sees the same logs dict), and records the weights of every epoch."""

    def __init__(self, key, values):
        self.key, self.values = key, list(values)
        self.weights = []

    def on_epoch_end(self, epoch, logs=None):
        logs[self.key] = self.values[epoch]
        self.weights.append(self.model.state_dict())


def run(callbacks, epochs, lr=0.05):
    X, y = data()
    model, opt = model_and_opt(lr)
    h = model.fit(
        X,
        y,
        loss=fastnn.SoftmaxCrossEntropy(),
        optimizer=opt,
        epochs=epochs,
        batch_size=16,
        metrics=("accuracy",),
        validation_split=0.25,
        seed=0,
        callbacks=callbacks,
    )
    return model, opt, h


@pytest.mark.parametrize("patience,stop_after", [(0, 4), (1, 4), (2, 5), (3, 6)])
def test_early_stopping_patience(patience, stop_after):
    # Best at epoch index 2. As in Keras, training stops at the end of the epoch that makes
    # `patience` epochs without improvement (at the first one when patience is 0 or 1).
    script = Script("val_loss", [5, 4, 3, 3.5, 3.2, 4, 4, 4, 4, 4])
    es = C.EarlyStopping(patience=patience)
    _, _, h = run([script, es], epochs=10)
    assert len(h.epoch) == stop_after
    assert es.stopped_epoch == stop_after - 1 and es.best_epoch == 2 and es.best == 3


def test_early_stopping_min_delta_and_max_mode():
    script = Script("val_accuracy", [0.5, 0.6, 0.605, 0.61, 0.9, 0.9])
    es = C.EarlyStopping(monitor="val_accuracy", patience=2, min_delta=0.02)
    _, _, h = run([script, es], epochs=6)
    assert es.mode == "max"
    assert len(h.epoch) == 4  # 0.605 and 0.61 are within min_delta of 0.6
    assert C.EarlyStopping(monitor="loss").mode == "min"
    assert C.EarlyStopping(monitor="val_r2").mode == "max"
    assert C.EarlyStopping(monitor="val_accuracy", mode="min").mode == "min"
    with pytest.raises(ValueError, match="mode"):
        C.EarlyStopping(mode="up")


def test_early_stopping_restores_best_weights():
    script = Script("val_loss", [5, 4, 1, 2, 3, 4, 5])
    es = C.EarlyStopping(patience=2, restore_best_weights=True)
    model, _, h = run([script, es], epochs=7)
    assert len(h.epoch) == 5
    for k, v in script.weights[2].items():
        np.testing.assert_array_equal(model.state_dict()[k], v)
    # without restoring, the model keeps the last epoch's weights
    script2 = Script("val_loss", [5, 4, 1, 2, 3, 4, 5])
    model2, _, _ = run([script2, C.EarlyStopping(patience=2)], epochs=7)
    np.testing.assert_array_equal(model2.state_dict()["0.weight"], script2.weights[4]["0.weight"])


def test_missing_monitor_warns():
    X, y = data()
    model, opt = model_and_opt()
    with pytest.warns(RuntimeWarning, match="val_loss"):
        model.fit(
            X,
            y,
            loss=fastnn.SoftmaxCrossEntropy(),
            optimizer=opt,
            epochs=1,
            callbacks=[C.EarlyStopping()],
        )


def test_model_checkpoint_saves_best_only(tmp_path):
    path = str(tmp_path / "best.safetensors")
    script = Script("val_loss", [3, 2, 2.5, 1, 1.5])
    ckpt = C.ModelCheckpoint(path)
    run([script, ckpt], epochs=5)
    assert ckpt.saved == [path] * 3  # epochs 0, 1 and 3 improved
    loaded = fastnn.load_checkpoint(path)
    for k, v in script.weights[3].items():
        np.testing.assert_array_equal(loaded.model.state_dict()[k], v)
    assert loaded.metadata["epoch"] == 4 and loaded.metadata["logs"]["val_loss"] == 1
    assert loaded.optimizer_state["type"] == "SGD"


def test_model_checkpoint_every_epoch_with_formatted_names(tmp_path):
    pattern = str(tmp_path / "m-{epoch:02d}-{loss:.2f}.safetensors")
    ckpt = C.ModelCheckpoint(pattern, save_best_only=False, include_optimizer=False)
    run([ckpt], epochs=3)
    assert len(ckpt.saved) == 3 and ckpt.saved[0].endswith(".safetensors")
    assert "m-01-" in ckpt.saved[0] and "m-03-" in ckpt.saved[2]
    assert fastnn.load_checkpoint(ckpt.saved[1]).optimizer_state is None
    bad = C.ModelCheckpoint(str(tmp_path / "{nope}.safetensors"), save_best_only=False)
    with pytest.raises(ValueError, match="nope"):
        run([bad], epochs=1)


def test_learning_rate_scheduler_sets_lr_each_epoch():
    sched = C.LearningRateScheduler(lambda epoch: 0.1 / (epoch + 1))
    _, opt, h = run([sched], epochs=4)
    assert h.history["lr"] == pytest.approx([0.1, 0.05, 0.1 / 3, 0.025])
    assert opt.lr == pytest.approx(0.025)
    with pytest.raises(ValueError, match="schedule"):
        run([C.LearningRateScheduler(lambda e: -1.0)], epochs=1)
    with pytest.raises(TypeError):
        C.LearningRateScheduler(0.1)


def test_optimizer_is_reachable_from_callbacks():
    seen = []

    class Probe(C.Callback):
        def on_train_begin(self, logs=None):
            seen.append((self.optimizer, self.model.optimizer, self.params["epochs"]))

    _, opt, _ = run([Probe()], epochs=2)
    assert seen == [(opt, opt, 2)]


def test_reduce_lr_on_plateau():
    script = Script("val_loss", [1.0, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9])
    plateau = C.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.01)
    _, opt, h = run([script, plateau], epochs=8, lr=0.08)
    # reductions at the end of epochs 3, 5 and 7 (lr logged is the one each epoch used)
    assert h.history["lr"] == pytest.approx([0.08] * 4 + [0.04] * 2 + [0.02] * 2)
    assert opt.lr == pytest.approx(0.01)


def test_reduce_lr_on_plateau_cooldown_and_floor():
    script = Script("val_loss", [1.0] * 8)
    plateau = C.ReduceLROnPlateau(factor=0.1, patience=1, cooldown=2, min_lr=0.0005)
    _, opt, h = run([script, plateau], epochs=8, lr=0.05)
    # Keras's rule: reduce after epoch 1; epoch 2 is a cooldown epoch; epoch 3 counts again
    # and reduces (to the floor); later plateaus cannot go lower.
    assert h.history["lr"] == pytest.approx([0.05, 0.05, 0.005, 0.005] + [0.0005] * 4)
    assert opt.lr == pytest.approx(0.0005)
    with pytest.raises(ValueError, match="factor"):
        C.ReduceLROnPlateau(factor=1.0)


def test_terminate_on_nan_names_epoch_and_batch():
    X, y = data()
    y = X.sum(axis=1)
    y[40] = np.inf
    model = fastnn.Sequential(fastnn.Dense(3, 1, rng=0))
    opt = fastnn.optim.SGD(model, lr=0.01)
    stopper = C.TerminateOnNaN()
    batches = []

    class Count(C.Callback):
        def on_batch_end(self, batch, logs=None):
            batches.append(batch)

    with pytest.warns(RuntimeWarning, match=r"epoch 1, batch 3"):
        h = model.fit(
            X,
            y,
            loss=fastnn.MSELoss(),
            optimizer=opt,
            epochs=5,
            batch_size=16,
            shuffle=False,
            callbacks=[stopper, Count()],
        )
    assert batches == [0, 1, 2] and len(h.epoch) == 1
    assert "batch 3" in stopper.message
    assert not math.isfinite(h.history["loss"][0])


def test_csv_logger(tmp_path):
    path = tmp_path / "log.csv"
    run([C.CSVLogger(str(path))], epochs=3)
    rows = list(csv.DictReader(open(path)))
    assert [r["epoch"] for r in rows] == ["0", "1", "2"]
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "time"} <= set(rows[0])
    assert float(rows[0]["loss"]) > 0
    run([C.CSVLogger(str(path), append=True)], epochs=2)
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + 3 + 2 and lines[0].startswith("epoch,")


def test_custom_callback_hook_order():
    events = []

    class Trace(C.Callback):
        def on_train_begin(self, logs=None):
            events.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            events.append(f"epoch_begin {epoch}")

        def on_batch_begin(self, batch, logs=None):
            events.append("batch_begin")

        def on_batch_end(self, batch, logs=None):
            events.append(f"batch_end {logs['size']}")

        def on_epoch_end(self, epoch, logs=None):
            events.append(f"epoch_end {epoch}")

        def on_train_end(self, logs=None):
            events.append("train_end")

    X, y = data(20)
    model, opt = model_and_opt()
    model.fit(
        X,
        y,
        loss=fastnn.SoftmaxCrossEntropy(),
        optimizer=opt,
        epochs=2,
        batch_size=16,
        callbacks=[Trace()],
    )
    assert events == [
        "train_begin",
        "epoch_begin 0",
        "batch_begin",
        "batch_end 16",
        "batch_begin",
        "batch_end 4",
        "epoch_end 0",
        "epoch_begin 1",
        "batch_begin",
        "batch_end 16",
        "batch_begin",
        "batch_end 4",
        "epoch_end 1",
        "train_end",
    ]


def test_schedule_drives_training():
    sched = C.LearningRateScheduler(schedules.step_decay(0.08, drop=0.5, every=2))
    _, _, h = run([sched], epochs=4)
    assert h.history["lr"] == pytest.approx([0.08, 0.08, 0.04, 0.04])
