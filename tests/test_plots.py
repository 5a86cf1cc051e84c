"""History.plot and lr_sweep (the figures need matplotlib; the numbers do not)."""
import sys
import warnings

import numpy as np
import pytest

import fastnn


def digits_subset():
    X, y = fastnn.load_digits()
    return X[:400] / 16.0, y[:400]


def build():
    return fastnn.Sequential(fastnn.Dense(64, 32, rng=0), fastnn.ReLU(),
                             fastnn.Dense(32, 10, rng=1))


def test_lr_sweep_returns_per_update_losses_from_the_same_start():
    X, y = digits_subset()
    curves = fastnn.lr_sweep(build, X, y, loss=fastnn.SoftmaxCrossEntropy(),
                             lrs=[0.001, 0.1, 50.0], steps=30, epochs=5, batch_size=16,
                             seed=0)
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
        curves = fastnn.lr_sweep(linear, X, y, loss=fastnn.MSELoss(), lrs=[0.01, 1e3],
                                 steps=50, epochs=10, batch_size=8)
    assert len(curves[0.01]) == 50 and np.all(np.isfinite(curves[0.01]))
    assert len(curves[1e3]) < 50 and not np.isfinite(curves[1e3][-1])


def test_lr_sweep_with_optimizer_factory_and_epochs():
    X, y = digits_subset()
    used = []

    def factory(model, lr):
        used.append(lr)
        return fastnn.optim.SGD(model, lr=lr, momentum=0.9)

    curves = fastnn.lr_sweep(build, X, y, loss=fastnn.SoftmaxCrossEntropy(), lrs=[0.01],
                             optimizer_factory=factory, epochs=2, batch_size=100)
    assert used == [0.01] and len(curves[0.01]) == 8


def test_lr_sweep_validates_arguments():
    X, y = digits_subset()
    with pytest.raises(ValueError, match="lrs"):
        fastnn.lr_sweep(build, X, y, loss=fastnn.SoftmaxCrossEntropy(), lrs=[])
    with pytest.raises(ValueError, match="lrs"):
        fastnn.lr_sweep(build, X, y, loss=fastnn.SoftmaxCrossEntropy(), lrs=[0.1, -1])
    with pytest.raises(TypeError, match="build_model"):
        fastnn.lr_sweep(None, X, y, loss=fastnn.SoftmaxCrossEntropy(), lrs=[0.1])


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path):
    X, y = digits_subset()
    model = build()
    h = model.fit(X, y, loss=fastnn.SoftmaxCrossEntropy(),
                  optimizer=fastnn.optim.SGD(model, lr=0.1), epochs=1)
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'fastnn\[plot\]'"):
        h.plot(tmp_path / "c.png")


def test_history_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    X, y = digits_subset()
    model = build()
    h = model.fit(X, y, loss=fastnn.SoftmaxCrossEntropy(),
                  optimizer=fastnn.optim.SGD(model, lr=0.1), epochs=3, metrics=("accuracy",),
                  validation_split=0.2)
    path = tmp_path / "curves.png"
    assert h.plot(path) == path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="empty"):
        fastnn.History().plot(tmp_path / "empty.png")


def test_lr_sweep_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    X, y = digits_subset()
    path = tmp_path / "sweep.png"
    fastnn.lr_sweep(build, X, y, loss=fastnn.SoftmaxCrossEntropy(), lrs=[0.01, 0.1, 50.0],
                    steps=20, path=path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
