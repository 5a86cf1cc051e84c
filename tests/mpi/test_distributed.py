"""fastnn.distributed with real processes: ``mpiexec -n 2`` runs tests/mpi/worker.py, whose
ranks write what they saw to .npz files; the tests compare the ranks with each other (bit
for bit), two runs with each other (bit for bit), and both with one process that trains on
the two ranks' batches as one batch (to rounding).

(This folder is not called ``distributed``: a package of that name under tests/ would
shadow Dask's ``distributed`` under pytest.)"""

import os
import pickle
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mpi4py")

import fastnn
from fastnn import distributed as dist

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import worker  # noqa: E402

#: the directory that holds the fastnn under test (installed or the source tree)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(fastnn.__file__)))
#: a hang must fail the test, not block the run
TIMEOUT = 180
RANKS = 2
#: relative tolerance against one process with the whole batch
TOL = {"float32": 1e-5, "float64": 1e-12}


def mpiexec():
    """The MPICH wheel installs mpiexec beside the venv's python; else the one on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    found = str(beside) if beside.exists() else shutil.which("mpiexec")
    if found is None:
        pytest.fail("mpi4py is installed but no mpiexec was found (pip install mpich)")
    return found


def _env():
    return {
        **os.environ,
        "FASTNN_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join([ROOT] + [p for p in [os.environ.get("PYTHONPATH")] if p]),
    }


def launch(out, scenario, *args, ranks=RANKS):
    out.mkdir(parents=True, exist_ok=True)
    cmd = [mpiexec(), "-n", str(ranks), sys.executable, str(HERE / "worker.py"), scenario]
    return subprocess.run(
        [*cmd, str(out), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=_env(),
    )


def run(out, scenario, *args, ranks=RANKS):
    """The ranks' results, one dict per rank."""
    done = launch(out, scenario, *args, ranks=ranks)
    assert done.returncode == 0, done.stderr
    results = []
    for r in range(ranks):
        with np.load(out / f"rank{r}.npz") as f:
            results.append({k: f[k] for k in f.files})
    return results


def close(got, want, dtype):
    """Within TOL relative to the largest weight, at every step."""
    scale = np.abs(want).max(axis=-1, keepdims=True)
    err = np.abs(got - want) / scale
    assert np.all(err <= TOL[dtype]), f"max relative difference {np.nanmax(err):.3g}"


def reference_manual(opt_name, dtype, batch, steps):
    """One process, batch RANKS * batch: the steps the ranks must take together."""
    big = RANKS * batch
    X, y = worker.problem(big * steps, dtype)
    model = worker.build(dtype, seed=0)
    opt = worker.make_optimizer(opt_name, model)
    loss = fastnn.SoftmaxCrossEntropy()
    history = []
    for k in range(steps):
        rows = slice(k * big, (k + 1) * big)
        _, grad = loss(model.forward(X[rows], training=True), y[rows])
        model.backward(grad)
        opt.step()
        history.append(worker.weights(model))
    return np.array(history)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("opt_name", ["sgd", "adam"])
def test_manual_loop_matches_one_process_with_the_whole_batch(tmp_path, opt_name, dtype):
    batch, steps = 6, 8
    ranks = run(tmp_path / "a", "manual", opt_name, dtype, batch, steps)
    again = run(tmp_path / "b", "manual", opt_name, dtype, batch, steps)
    # broadcast_parameters: every rank starts from rank 0's weights (built with seed 0)
    start = worker.weights(worker.build(dtype, seed=0))
    for r in ranks:
        assert np.array_equal(r["start"], start)
    # every rank's weights the same bits after every step, and the same in a second run
    assert np.array_equal(ranks[0]["steps"], ranks[1]["steps"])
    assert np.array_equal(ranks[0]["steps"], again[0]["steps"])
    # the ranks' own losses differ (their batches do): the data really was split
    assert not np.array_equal(ranks[0]["losses"], ranks[1]["losses"])
    want = reference_manual(opt_name, dtype, batch, steps)
    assert not np.allclose(want[0], want[-1])  # the weights move
    close(ranks[0]["steps"], want, dtype)


def _reference_fit(opt_name, dtype, batch, epochs, n_samples):
    X, y = worker.problem(n_samples, dtype)
    Xv, yv = worker.problem(101, dtype, seed=7)
    model = worker.build(dtype, seed=0)
    recorder = worker.Recorder()
    history = model.fit(
        X,
        y,
        loss=fastnn.SoftmaxCrossEntropy(),
        optimizer=worker.make_optimizer(opt_name, model),
        epochs=epochs,
        batch_size=RANKS * batch,
        metrics=["accuracy"],
        validation_data=(Xv, yv),
        shuffle=False,
        callbacks=[recorder],
    )
    return np.array(recorder.steps), history.history


@pytest.mark.parametrize(("opt_name", "dtype"), [("sgd", "float64"), ("adam", "float32")])
def test_fit_on_shards_matches_one_process_and_averages_its_logs(tmp_path, opt_name, dtype):
    batch, epochs, n_samples = 8, 3, 96  # 6 steps per epoch, every batch full
    ranks = run(tmp_path, "fit", opt_name, dtype, batch, epochs, "noshuffle", n_samples)
    want, logs = _reference_fit(opt_name, dtype, batch, epochs, n_samples)
    assert ranks[0]["steps"].shape == want.shape == (epochs * 6, want.shape[1])
    assert np.array_equal(ranks[0]["steps"], ranks[1]["steps"])
    close(ranks[0]["steps"], want, dtype)
    # The logs are the whole data's, on both ranks: loss, accuracy and their val_ twins.
    for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        assert np.array_equal(ranks[0][f"log_{key}"], ranks[1][f"log_{key}"]), key
        np.testing.assert_allclose(ranks[0][f"log_{key}"], logs[key], rtol=TOL[dtype] * 10)
    # Files are written by rank 0 only; rank 1 ran without its file callbacks.
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".npz")) == [
        "ckpt-0.safetensors",
        "log-0.csv",
    ]
    lines = (tmp_path / "log-0.csv").read_text().splitlines()
    assert len(lines) == 1 + epochs
    assert int(ranks[0]["saved"]) >= 1 and int(ranks[1]["saved"]) == 0


def test_fit_is_reproducible_with_shuffling_and_unequal_shards(tmp_path):
    """101 samples: rank 0 has 51, rank 1 has 50, so 6 and 5 batches of 10: both take 5
    steps an epoch (the least), and two runs are the same bits."""
    args = ("sgd", "float32", 10, 2, "shuffle", 101)
    ranks = run(tmp_path / "a", "fit", *args)
    again = run(tmp_path / "b", "fit", *args)
    for r in ranks:
        assert int(r["params_steps"]) == 5
        assert r["steps"].shape[0] == 2 * 5
    assert np.array_equal(ranks[0]["steps"], ranks[1]["steps"])
    assert np.array_equal(ranks[0]["steps"], again[0]["steps"])
    assert np.array_equal(ranks[0]["log_loss"], again[1]["log_loss"])


def test_broadcast_optimizer_state_and_mismatched_models(tmp_path):
    ranks = run(tmp_path, "broadcast")
    for key in ("lr", "steps", "exp_avg"):
        assert np.array_equal(ranks[0][key], ranks[1][key]), key
    assert int(ranks[1]["steps"]) == 1 and float(ranks[1]["lr"]) == 0.01
    assert np.any(ranks[1]["exp_avg"] != 0)
    for r in ranks:  # the same clear error on every rank, none left waiting
        assert "differ from rank 0's" in str(r["error"]), r["error"]


def test_a_nonfinite_batch_on_one_rank_skips_the_step_on_all(tmp_path):
    ranks = run(tmp_path, "nonfinite")
    start = worker.weights(worker.build(np.float32))
    for r in ranks:
        assert np.isnan(r["first"])  # rank 0's own loss was finite
        assert np.array_equal(r["after_nan"], start)
        assert np.isfinite(r["second"])
    assert np.array_equal(ranks[0]["end"], ranks[1]["end"])
    assert not np.array_equal(ranks[0]["end"], start)


def test_one_rank_raising_ends_the_job(tmp_path):
    done = launch(tmp_path, "fail")
    assert done.returncode != 0
    # the failing rank printed its traceback before aborting the job
    assert "RuntimeError: rank 1 fails on purpose" in (tmp_path / "rank1.err").read_text()


def test_functions_before_init_say_to_call_it():
    model = worker.build("float32")
    calls = {
        "rank()": dist.rank,
        "size()": dist.size,
        "broadcast_parameters()": lambda: dist.broadcast_parameters(model),
        "broadcast_optimizer_state()": lambda: dist.broadcast_optimizer_state(
            fastnn.optim.SGD(model, lr=0.1)
        ),
        "DistributedOptimizer()": lambda: dist.DistributedOptimizer(
            fastnn.optim.SGD(model, lr=0.1)
        ),
    }
    if dist._group is not None:
        pytest.fail("a test called fastnn.distributed.init() in the pytest process")
    for name, call in calls.items():
        with pytest.raises(
            RuntimeError, match=rf"{re.escape(name)}: call fastnn\.distributed\.init\(\) first"
        ):
            call()


class _OneRank:
    """A communicator of one process, so that a DistributedOptimizer can be built here
    without starting MPI in the pytest process."""

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1


def test_one_rank_steps_as_the_wrapped_optimizer_and_pickles_as_it():
    X, y = worker.problem(32, np.float32)
    models = [worker.build("float32") for _ in range(2)]
    plain = fastnn.optim.Adam(models[0], lr=0.01)
    wrapped = dist.DistributedOptimizer(
        fastnn.optim.Adam(models[1], lr=0.01), group=dist.ProcessGroup(_OneRank())
    )
    for opt, model in zip((plain, wrapped), models):
        for _ in range(3):
            model.train_on_batch(X, y, loss=fastnn.SoftmaxCrossEntropy(), optimizer=opt)
    assert np.array_equal(worker.weights(models[0]), worker.weights(models[1]))
    wrapped.lr = 0.5
    assert wrapped.optimizer.lr == 0.5 and wrapped.state_dict()["type"] == "Adam"
    copy = pickle.loads(pickle.dumps(wrapped))
    assert type(copy) is fastnn.optim.Adam and copy.lr == 0.5
    with pytest.raises(TypeError, match="group must be a ProcessGroup"):
        dist.DistributedOptimizer(plain, group=_OneRank())
    with pytest.raises(TypeError, match="already a DistributedOptimizer"):
        dist.DistributedOptimizer(wrapped)


def test_without_mpi4py_the_import_names_the_extra():
    code = textwrap.dedent("""
        import sys
        sys.modules["mpi4py"] = None
        import fastnn
        try:
            import fastnn.distributed
        except ImportError as exc:
            print(exc)
    """)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_env(), check=True
    )
    assert 'pip install "fastnn[mpi]"' in done.stdout
