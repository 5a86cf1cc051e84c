"""The figures (fastnn/plotting.py): History.plot and lr_sweep's path= write PNG files
(with matplotlib); without matplotlib the error names the extra to install. (lr_sweep's
numbers: test_training.py.)"""

import sys

import pytest

import fastnn
from helpers import digits_mlp, digits_subset


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path):
    X, y = digits_subset()
    model = digits_mlp()
    h = model.fit(
        X, y, loss=fastnn.SoftmaxCrossEntropy(), optimizer=fastnn.optim.SGD(model, lr=0.1), epochs=1
    )
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'fastnn\[plot\]'"):
        h.plot(tmp_path / "c.png")


def test_history_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    X, y = digits_subset()
    model = digits_mlp()
    h = model.fit(
        X,
        y,
        loss=fastnn.SoftmaxCrossEntropy(),
        optimizer=fastnn.optim.SGD(model, lr=0.1),
        epochs=3,
        metrics=("accuracy",),
        validation_split=0.2,
    )
    path = tmp_path / "curves.png"
    assert h.plot(path) == path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="empty"):
        fastnn.History().plot(tmp_path / "empty.png")


def test_lr_sweep_plot_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    X, y = digits_subset()
    path = tmp_path / "sweep.png"
    fastnn.lr_sweep(
        digits_mlp,
        X,
        y,
        loss=fastnn.SoftmaxCrossEntropy(),
        lrs=[0.01, 0.1, 50.0],
        steps=20,
        path=path,
    )
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
