"""The command line (fastnn/cli.py, reading data through fastnn/_cli_data.py) end to end,
through `python -m fastnn` in a temporary directory: train, evaluate, predict, lr-sweep,
demo, info and bench, and one-line errors."""

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

import fastnn
from fastnn import cli
from helpers import mnist_dir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
SGD = ["--optimizer", "sgd", "--lr", "0.05", "--momentum", "0.9"]


def fastnn_cmd(cwd, *args):
    return subprocess.run(
        [sys.executable, "-m", "fastnn", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "FASTNN_NUM_THREADS": "1",
            "PYTHONPATH": os.pathsep.join(
                [ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]
            ),
        },
    )


def ok(cwd, *args):
    r = fastnn_cmd(cwd, *args)
    assert r.returncode == 0, r.stderr
    return r


def fails(cwd, *args, match):
    r = fastnn_cmd(cwd, *args)
    assert r.returncode == 2
    assert r.stdout == "" or "error" not in r.stdout
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    assert match in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def digits(tmp_path_factory):
    d = tmp_path_factory.mktemp("digits")
    X, y = fastnn.load_digits()
    order = np.random.default_rng(0).permutation(len(X))
    header = ",".join([f"p{i}" for i in range(64)] + ["digit"])
    for name, idx in (("train.csv", order[360:]), ("test.csv", order[:360])):
        np.savetxt(
            d / name,
            np.column_stack([X[idx].astype(int), y[idx]]),
            fmt="%d",
            delimiter=",",
            header=header,
            comments="",
        )
    np.save(d / "train.npy", np.column_stack([y[order[360:]], X[order[360:]]]).astype(np.float32))
    np.savez(d / "test.npz", X=X[order[:360]], y=y[order[:360]])
    return d, y[order[:360]]


def test_train_evaluate_predict_on_digits_csv(digits):
    d, y_test = digits
    r = ok(
        d,
        "train",
        "train.csv",
        "--target",
        "digit",
        "--out",
        "m.safetensors",
        "--hidden",
        "128,64",
        "--epochs",
        "30",
        "--val-split",
        "0.1",
        *SGD,
    )
    assert "saved m.safetensors" in r.stdout and "10 classes" in r.stdout
    assert r.stderr.count("\n") == 30  # one progress line per epoch (stderr is not a tty)
    r = ok(d, "evaluate", "m.safetensors", "test.csv", "--target", "digit")
    lines = dict(line.split(": ") for line in r.stdout.splitlines() if ": " in line)
    assert float(lines["accuracy"]) >= 0.97 and float(lines["loss"]) < 0.2

    ok(d, "predict", "m.safetensors", "test.csv", "--out", "pred.csv")
    rows = list(csv.reader(open(d / "pred.csv")))
    assert rows[0] == ["digit"] and len(rows) == 361
    pred = np.array([int(r[0]) for r in rows[1:]])
    assert np.mean(pred == y_test) == pytest.approx(float(lines["accuracy"]), abs=1e-3)

    ok(d, "predict", "m.safetensors", "test.csv", "--out", "proba.npy", "--proba")
    proba = np.load(d / "proba.npy")
    assert proba.shape == (360, 10)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(proba.argmax(axis=1), pred)

    # the file is an ordinary fastnn model with the CLI's metadata
    ckpt = fastnn.load_checkpoint(d / "m.safetensors")
    meta = ckpt.metadata["cli"]
    assert meta["classes"] == list(range(10)) and meta["task"] == "classification"
    assert meta["features"] == [f"p{i}" for i in range(64)]


def test_npy_with_target_column_and_npz(digits):
    d, _y_test = digits
    ok(
        d,
        "train",
        "train.npy",
        "--target",
        "0",
        "--out",
        "npy.safetensors",
        "--epochs",
        "10",
        "-q",
        *SGD,
    )
    ok(d, "predict", "npy.safetensors", "train.npy", "--out", "p.npy")  # target column dropped
    assert np.load(d / "p.npy").shape == (1437,)
    r = ok(d, "evaluate", "npy.safetensors", "test.npz", "--target", "y")
    assert float(r.stdout.split("accuracy: ")[1]) > 0.93
    ok(d, "predict", "npy.safetensors", "test.npz", "--out", "q.csv")
    assert len(open(d / "q.csv").read().splitlines()) == 361


def test_text_labels_map_back(tmp_path):
    rng = np.random.default_rng(0)
    names = ["setosa", "versicolor", "virginica"]
    with open(tmp_path / "iris.csv", "w") as f:
        f.write("a,b,species\n")
        for i in range(300):
            c = i % 3
            f.write(f"{rng.normal() + 4 * c:.3f},{rng.normal() - 3 * c:.3f},{names[c]}\n")
    ok(
        tmp_path,
        "train",
        "iris.csv",
        "--target",
        "species",
        "--out",
        "m.safetensors",
        "--hidden",
        "16",
        "--epochs",
        "20",
        "-q",
        *SGD,
    )
    ok(tmp_path, "predict", "m.safetensors", "iris.csv", "--out", "p.csv")
    labels = [r[0] for r in csv.reader(open(tmp_path / "p.csv"))]
    assert labels[0] == "species" and labels[1:4] == names
    ok(tmp_path, "predict", "m.safetensors", "iris.csv", "--out", "pp.csv", "--proba")
    assert open(tmp_path / "pp.csv").readline().strip() == ",".join(names)


def test_regression_reports_original_units(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(600, 3))
    y = 1000 + 250 * (X @ np.array([1.0, -2.0, 0.5]))
    np.savez(tmp_path / "reg.npz", X=X, price=y)
    ok(
        tmp_path,
        "train",
        "reg.npz",
        "--target",
        "price",
        "--task",
        "regression",
        "--out",
        "r.safetensors",
        "--epochs",
        "40",
        "-q",
        "--optimizer",
        "sgd",
        "--lr",
        "0.01",
        "--momentum",
        "0.9",
        "--hidden",
        "32",
    )
    r = ok(tmp_path, "evaluate", "r.safetensors", "reg.npz", "--target", "price")
    values = dict(line.split(": ") for line in r.stdout.splitlines() if ": " in line)
    assert float(values["r2"]) > 0.99 and float(values["mae"]) < 60
    ok(tmp_path, "predict", "r.safetensors", "reg.npz", "--out", "p.npy")
    np.testing.assert_allclose(np.load(tmp_path / "p.npy"), y, atol=200)
    fails(
        tmp_path,
        "predict",
        "r.safetensors",
        "reg.npz",
        "--out",
        "p.csv",
        "--proba",
        match="--proba",
    )


def test_lr_sweep_command(digits):
    d, _ = digits
    r = ok(
        d,
        "lr-sweep",
        "train.csv",
        "--target",
        "digit",
        "--optimizer",
        "sgd",
        "--lrs",
        "0.001,0.1,100",
        "--steps",
        "60",
        "--hidden",
        "32",
    )
    lines = r.stdout.splitlines()
    assert lines[0].startswith("lr 0.001: 60 updates") and "diverged" in lines[2]


def test_errors_are_one_line(digits, tmp_path):
    d, _ = digits
    (tmp_path / "bad.csv").write_text("a,b,y\n1,2,0\n3,x,1\n")
    (tmp_path / "ragged.csv").write_text("a,b,y\n1,2,0\n3,1\n")
    sgd = " ".join(SGD)
    train = "train train.csv --target digit --out m"
    cases = [
        # (directory, command line, what the one line of error must contain)
        (tmp_path, "train missing.csv --target y --out m", "no such file"),
        (d, f"train train.csv --target nope --out m {sgd}", "unknown column 'nope'"),
        (
            tmp_path,
            f"train bad.csv --target y --out m {sgd}",
            "column 'b', row 3: non-numeric value 'x'",
        ),
        (tmp_path, f"train ragged.csv --target y --out m {sgd}", "row 3 has 2 fields"),
        (d, f"{train} --epochs 0", "--epochs"),
        (d, f"{train} --hidden 8,x", "--hidden"),
        (d, f"{train} --val-split 1.5", "--val-split"),
        (d, f"{train} --optimizer lbfgs", "unknown optimizer 'lbfgs'"),
        (d, f"{train} --activation swish {sgd}", "unknown activation 'swish'"),
        (d, f"train train.csv --target digit --out no/such/dir/m {sgd}", "--out"),
        (d, f"train train.npy --target x --out m {sgd}", "column index"),
        (d, "evaluate nothing.safetensors test.csv --target digit", "no such file"),
        (d, "evaluate train.csv test.csv --target digit", "not a fastnn model file"),
    ]
    for cwd, command, match in cases:
        fails(cwd, *command.split(), match=match)
    fails(tmp_path, "frobnicate", match="invalid choice")


def test_default_optimizer_is_adam():
    args = cli.build_parser().parse_args(["train", "d.csv", "--target", "y", "--out", "m"])
    assert args.optimizer == "adam"
    assert type(cli._optimizer(args, fastnn.Sequential(fastnn.Dense(2, 2)))) is fastnn.optim.Adam


def test_scaling_is_the_models_first_layer(tmp_path, monkeypatch):
    """train fits a Standardize layer to the training rows and puts it first in the saved
    model, so the scaling travels with the model into evaluate."""
    rng = np.random.default_rng(0)
    X = rng.normal(loc=50, scale=10, size=(200, 2))
    np.savez(tmp_path / "d.npz", X=X, y=(X[:, 0] > 50).astype(int))
    monkeypatch.chdir(tmp_path)
    assert (
        cli.main(
            [
                "train",
                "d.npz",
                "--target",
                "y",
                "--out",
                "m.safetensors",
                "-q",
                "--epochs",
                "5",
                "--hidden",
                "8",
                *SGD,
            ]
        )
        == 0
    )
    ckpt = fastnn.load_checkpoint("m.safetensors")
    assert type(ckpt.model[0]) is fastnn.Standardize
    np.testing.assert_allclose(ckpt.model[0].mean, X.mean(axis=0))
    np.testing.assert_allclose(ckpt.model[0].std, X.std(axis=0))
    assert cli.main(["evaluate", "m.safetensors", "d.npz", "--target", "y"]) == 0


def test_plot_options(digits, tmp_path):
    d, _ = digits
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        fails(
            d,
            "train",
            "train.csv",
            "--target",
            "digit",
            "--out",
            "m",
            "--plot",
            "c.png",
            *SGD,
            match="pip install 'fastnn[plot]'",
        )
        return
    ok(
        d,
        "train",
        "train.csv",
        "--target",
        "digit",
        "--out",
        str(tmp_path / "m"),
        "-q",
        "--epochs",
        "3",
        "--val-split",
        "0.2",
        "--plot",
        str(tmp_path / "c.png"),
        *SGD,
    )
    ok(d, "demo", "--epochs", "2", "--plot", str(tmp_path / "demo.png"))
    ok(
        d,
        "lr-sweep",
        "train.csv",
        "--target",
        "digit",
        "--optimizer",
        "sgd",
        "--steps",
        "20",
        "--plot",
        str(tmp_path / "sweep.png"),
    )
    for name in ("c.png", "demo.png", "sweep.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_demo_reaches_97_percent():
    r = ok(ROOT, "demo")
    accuracy = float(r.stdout.split("held-out accuracy: ")[1].split()[0])
    assert accuracy >= 0.97


def test_demo_cnn_reaches_97_percent():
    r = ok(ROOT, "demo", "--cnn")
    accuracy = float(r.stdout.split("held-out accuracy: ")[1].split()[0])
    assert "Conv2d(1, 16" in r.stdout and "MaxPool2d" in r.stdout
    assert accuracy >= 0.97, r.stdout


def test_demo_mnist_errors_are_one_line(tmp_path):
    fails(tmp_path, "demo", "--mnist", str(tmp_path), match="load_mnist: no train-images")
    r = fastnn_cmd(tmp_path, "demo", "--cnn", "--mnist", str(tmp_path))
    assert r.returncode == 2 and "not allowed with" in r.stderr


@pytest.mark.slow
def test_demo_mnist_reaches_99_percent():
    r = ok(ROOT, "demo", "--mnist", mnist_dir())
    accuracy = float(r.stdout.split("held-out accuracy: ")[1].split()[0])
    assert "s per epoch" in r.stdout and accuracy >= 0.99, r.stdout


def test_cli_demo_and_info():
    out = subprocess.run(
        [sys.executable, "-m", "fastnn", "demo"], capture_output=True, text=True, check=True
    ).stdout
    acc = float(out.split("held-out accuracy:")[1].split()[0])
    assert acc >= 0.97
    info = subprocess.run(
        [sys.executable, "-m", "fastnn", "info"], capture_output=True, text=True, check=True
    ).stdout
    assert "isa" in info and "threads" in info


# ----------------------------------------------------------------------------------------
# fastnn bench (the host description and the helpers behind it: test_benchmark.py)
# ----------------------------------------------------------------------------------------


def test_bench_states_the_host_and_judges_the_targets(tmp_path):
    r = ok(tmp_path, "bench", "--seconds", "0.01")
    out = r.stdout
    for text in (
        "host: ",
        "family",
        "ISA flags: avx2 ",
        "fma ",
        "avx512f ",
        f"isa={fastnn.kernels.info()['isa']}",
        "threads=1",
        "numpy ",
        "requested threads: 1",
        "geometric mean ratio fastnn/numpy",
        "targets (PERFORMANCE.md) met: ",
    ):
        assert text in out, (text, out)
    assert len([line for line in out.splitlines() if " NT " in line]) == 6
    assert len([line for line in out.splitlines() if " conv2 " in line]) == 3
    if fastnn.kernels.fma_peak_gflops():
        assert "FMA limit used for the fractions" in out and "% FMA" in out
    fails(tmp_path, "bench", "--threads", "0", match="--threads")
