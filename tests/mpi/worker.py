"""What each MPI rank runs in tests/mpi/test_distributed.py: ``mpiexec -n 2 python worker.py
SCENARIO OUT_DIR [ARGS...]``. Each rank writes what it saw to ``OUT_DIR/rank<r>.npz``; the
test compares the ranks with each other and with one process training on the whole batch.
The data and the model come from problem() and build(), which the test imports too."""

import os
import sys

import numpy as np

import fastnn
from fastnn import optim
from fastnn.callbacks import Callback, CSVLogger, EarlyStopping, ModelCheckpoint

N_FEATURES, N_CLASSES = 12, 4


def problem(n, dtype, seed=42):
    """A small classification set whose labels depend on X (so training moves the loss)."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, N_FEATURES)).astype(dtype)
    w = rng.standard_normal((N_FEATURES, N_CLASSES))
    y = np.argmax(X @ w + 0.5 * rng.standard_normal((n, N_CLASSES)), axis=1)
    return X, y


def build(dtype, seed=0):
    return fastnn.Sequential(
        fastnn.Dense(N_FEATURES, 16, rng=seed),
        fastnn.ReLU(),
        fastnn.Dense(16, 16, rng=seed + 1),
        fastnn.Tanh(),
        fastnn.Dense(16, N_CLASSES, rng=seed + 2),
        dtype=dtype,
    )


def make_optimizer(name, model):
    if name == "sgd":
        return optim.SGD(model, lr=0.1, momentum=0.9)
    if name == "adam":
        return optim.Adam(model, lr=0.01)
    raise ValueError(name)


def weights(model):
    return np.concatenate([p.data.ravel() for p in model.parameters()])


class Recorder(Callback):
    """The weights after every step of fit."""

    def __init__(self):
        self.steps = []

    def on_batch_end(self, batch, logs=None):
        self.steps.append(weights(self.model))


def manual(dist, out, opt_name, dtype, batch, steps):
    """The loop without fit: forward, loss, backward, step. Each rank starts from its own
    random weights; broadcast_parameters makes them rank 0's (seed 0)."""
    r, n = dist.rank(), dist.size()
    batch, steps = int(batch), int(steps)
    X, y = problem(n * batch * steps, dtype)
    model = build(dtype, seed=10 * r)
    dist.broadcast_parameters(model, root=0)
    opt = dist.DistributedOptimizer(make_optimizer(opt_name, model))
    loss = fastnn.SoftmaxCrossEntropy()
    start = weights(model)
    history, losses = [], []
    for k in range(steps):
        rows = slice(k * n * batch + r, (k + 1) * n * batch, n)
        out_b = model.forward(X[rows], training=True)
        value, grad = loss(out_b, y[rows])
        model.backward(grad)
        opt.step()
        history.append(weights(model))
        losses.append(value)
    np.savez(out, start=start, steps=np.array(history), losses=np.array(losses))


def fit(dist, out, opt_name, dtype, batch, epochs, shuffle, n_samples):
    """fit on the rank's shard X[rank::size], with validation, metrics and callbacks that
    write files (named by rank, so the test sees which ranks wrote)."""
    r, n = dist.rank(), dist.size()
    batch, epochs, n_samples = int(batch), int(epochs), int(n_samples)
    X, y = problem(n_samples, dtype)
    Xv, yv = problem(101, dtype, seed=7)
    model = build(dtype, seed=10 * r)
    dist.broadcast_parameters(model)
    opt = dist.DistributedOptimizer(make_optimizer(opt_name, model))
    recorder = Recorder()
    where = os.path.dirname(out)
    callbacks = [
        recorder,
        CSVLogger(os.path.join(where, f"log-{r}.csv")),
        ModelCheckpoint(os.path.join(where, f"ckpt-{r}.safetensors"), monitor="val_loss"),
        EarlyStopping(monitor="val_loss", patience=100),
    ]
    history = model.fit(
        X[r::n],
        y[r::n],
        loss=fastnn.SoftmaxCrossEntropy(),
        optimizer=opt,
        epochs=epochs,
        batch_size=batch,
        metrics=["accuracy"],
        validation_data=(Xv[r::n], yv[r::n]),
        shuffle=shuffle == "shuffle",
        seed=0,
        callbacks=callbacks,
    )
    logs = {k: np.array(v) for k, v in history.history.items() if k != "time"}
    np.savez(
        out,
        steps=np.array(recorder.steps),
        params_steps=recorder.params["steps"],
        saved=len(callbacks[2].saved),
        **{f"log_{k}": v for k, v in logs.items()},
    )


def broadcast(dist, out):
    """broadcast_optimizer_state, and broadcast_parameters between different models."""
    r = dist.rank()
    model = build(np.float32, seed=r)
    opt = optim.Adam(model, lr=0.01 * (r + 1))
    if r == 0:  # only rank 0 has state to share
        X, y = problem(8, np.float32)
        model.train_on_batch(X, y, loss=fastnn.SoftmaxCrossEntropy(), optimizer=opt)
    dist.broadcast_optimizer_state(opt, root=0)
    state = opt.state_dict()
    other = build(np.float32) if r == 0 else fastnn.Sequential(fastnn.Dense(N_FEATURES, 3))
    try:
        dist.broadcast_parameters(other, root=0)
        error = ""
    except ValueError as exc:
        error = str(exc)
    np.savez(
        out,
        lr=state["lr"],
        steps=state["steps"],
        exp_avg=np.concatenate([s["exp_avg"].ravel() for s in state["state"]]),
        error=error,
    )


def nonfinite(dist, out):
    """A NaN in rank 1's batch: train_on_batch skips the update on both ranks (one skipping
    alone would leave the other waiting), then both go on with the next batch."""
    r = dist.rank()
    X, y = problem(16, np.float32)
    model = build(np.float32)
    opt = dist.DistributedOptimizer(optim.SGD(model, lr=0.1))
    loss = fastnn.SoftmaxCrossEntropy()
    bad = X[r::2].copy()
    if r == 1:
        bad[0, 0] = np.nan
    first, _ = model.train_on_batch(bad, y[r::2], loss=loss, optimizer=opt)
    after_nan = weights(model)
    second, _ = model.train_on_batch(X[r::2], y[r::2], loss=loss, optimizer=opt)
    np.savez(out, first=first, second=second, after_nan=after_nan, end=weights(model))


def fail(dist, out):
    """Rank 1 raises while rank 0 waits in a collective: the job must end, not hang. Each
    rank's stderr goes to a file of its own (rank1.err): what mpiexec forwards of a rank's
    output races with MPI_Abort tearing the job down, a file is written before it."""
    err = os.open(out.replace(".npz", ".err"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    os.dup2(err, 2)
    opt = dist.DistributedOptimizer(optim.SGD(build(np.float32), lr=0.1))
    if dist.rank() == 1:
        raise RuntimeError("rank 1 fails on purpose")
    opt.step()


SCENARIOS = {
    "manual": manual,
    "fit": fit,
    "broadcast": broadcast,
    "nonfinite": nonfinite,
    "fail": fail,
}

if __name__ == "__main__":
    from fastnn import distributed

    scenario, out_dir, *args = sys.argv[1:]
    distributed.init()
    target = os.path.join(out_dir, f"rank{distributed.rank()}.npz")
    SCENARIOS[scenario](distributed, target, *args)
