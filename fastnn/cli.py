"""The ``fastnn`` command line (also ``python -m fastnn``).

Errors the user can fix (missing file, unknown column, non-numeric data, bad option values)
print one line to stderr and exit with status 2, without a traceback. Progress goes to
stderr and results to stdout."""

import argparse
import inspect
import os
import sys
import time
from types import SimpleNamespace

import numpy as np

import fastnn
from fastnn import _cli_data


class CLIError(Exception):
    """An error the user can fix: printed as one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line (the usage text is behind --help)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _cmd_info(args):
    info = fastnn.kernels.info()
    print(f"fastnn {fastnn.__version__}")
    print(f"numpy {np.__version__}")
    print(f"isa {info['isa']} (cpu best: {info['cpu_isa']})")
    print(f"threads {info['threads']}")
    return 0


def _split(n, test_fraction, seed):
    order = np.random.default_rng(seed).permutation(n)
    n_test = round(n * test_fraction)
    return order[n_test:], order[:n_test]


def _require_matplotlib(option):
    """Fail before training rather than after it when a plot cannot be drawn."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIError(f"{option} needs matplotlib: pip install 'fastnn[plot]'") from None


def _demo_mlp(seed):
    return fastnn.Sequential(
        fastnn.Dense(64, 128, rng=seed),
        fastnn.ReLU(),
        fastnn.Dense(128, 64, rng=seed + 1),
        fastnn.ReLU(),
        fastnn.Dense(64, 10, init="xavier_uniform", rng=seed + 2),
    )


def _demo_cnn(seed):
    """Two convolution + pooling stages on 8x8 images: 16 x 4 x 4, then 32 x 2 x 2 maps."""
    return fastnn.Sequential(
        fastnn.Conv2d(1, 16, 3, padding=1, rng=seed),
        fastnn.ReLU(),
        fastnn.MaxPool2d(2),
        fastnn.Conv2d(16, 32, 3, padding=1, rng=seed + 1),
        fastnn.ReLU(),
        fastnn.MaxPool2d(2),
        fastnn.Flatten(),
        fastnn.Dense(128, 10, init="xavier_uniform", rng=seed + 2),
    )


def _mnist_cnn(seed):
    """The notes' CNN on 28x28 digits: 16 then 32 5x5 filters, each stage pooled by 2."""
    return fastnn.Sequential(
        fastnn.Conv2d(1, 16, 5, padding=2, rng=seed),
        fastnn.ReLU(),
        fastnn.MaxPool2d(2),
        fastnn.Conv2d(16, 32, 5, padding=2, rng=seed + 1),
        fastnn.ReLU(),
        fastnn.MaxPool2d(2),
        fastnn.Flatten(),
        fastnn.Dense(32 * 7 * 7, 10, init="xavier_uniform", rng=seed + 2),
    )


# Per demo: what it trains on, its model, and its defaults (epochs, batch size, optimizer, lr).
_DEMOS = {
    "mlp": ("an MLP", _demo_mlp, 30, 32, "sgd", 0.05),
    "cnn": ("a CNN", _demo_cnn, 20, 32, "adam", 3e-3),
    "mnist": ("a CNN", _mnist_cnn, 6, 64, "adam", 1e-3),
}


def _demo_data(args):
    """((X_train, y_train), (X_test, y_test)) with pixel intensities scaled to 0..1, as
    rows of 64 features for the MLP and as (n, 1, side, side) images for the CNNs."""
    if args.mnist is not None:
        try:
            (X, y), (Xt, yt) = fastnn.load_mnist(args.mnist)
        except (OSError, ValueError) as exc:
            raise CLIError(str(exc)) from None
        scale = np.float32(1 / 255)
        return (X[:, None] * scale, y), (Xt[:, None] * scale, yt)
    X, y = fastnn.load_digits()
    train, test = _split(len(X), 0.2, args.seed)
    X = X / np.float32(16.0)  # pixel intensities are 0..16
    if args.cnn:
        X = X.reshape(-1, 1, 8, 8)
    return (X[train], y[train]), (X[test], y[test])


def _cmd_demo(args):
    if args.plot:
        _require_matplotlib("--plot")
    t0 = time.perf_counter()
    kind = "mnist" if args.mnist is not None else "cnn" if args.cnn else "mlp"
    what, build, epochs, batch_size, optimizer, lr = _DEMOS[kind]
    epochs = args.epochs or epochs
    batch_size = args.batch_size or batch_size
    (X, y), (Xt, yt) = _demo_data(args)
    model = build(args.seed)
    loss = fastnn.SoftmaxCrossEntropy()
    if optimizer == "adam":
        opt = fastnn.optim.Adam(model, lr=args.lr or lr)
    else:
        opt = fastnn.optim.SGD(model, lr=args.lr or lr, momentum=0.9)
    side = X.shape[-1] if X.ndim == 4 else 8
    source = "MNIST" if kind == "mnist" else "digits"
    print(
        f"{source}: {len(X)} training and {len(Xt)} held-out {side}x{side} images; "
        f"{what}, {type(opt).__name__}(lr={opt.lr:g}), batch {batch_size}, {epochs} epochs:"
    )
    print(model)
    # On MNIST the learning rate anneals to 0 over the run (cosine): the last epochs settle
    # into the minimum instead of circling it, worth a few tenths of a percent.
    callbacks = []
    if kind == "mnist":
        schedule = fastnn.schedules.cosine_annealing(opt.lr, total_epochs=epochs)
        callbacks.append(fastnn.callbacks.LearningRateScheduler(schedule))
    t_fit = time.perf_counter()
    history = model.fit(
        X,
        y,
        loss=loss,
        optimizer=opt,
        epochs=epochs,
        batch_size=batch_size,
        metrics=("accuracy",),
        seed=args.seed,
        validation_data=(Xt, yt),
        callbacks=callbacks,
        verbose=1,
    )
    fit_time = time.perf_counter() - t_fit
    result = model.evaluate(Xt, yt, loss=loss, metrics=("accuracy",))
    elapsed = time.perf_counter() - t0
    print(
        f"held-out accuracy: {result['accuracy']:.4f} (loss {result['loss']:.4f}) "
        f"in {elapsed:.2f} s wall time ({fit_time / epochs:.2f} s per epoch, "
        f"{fastnn.get_num_threads()} threads)"
    )
    if args.plot:
        history.plot(args.plot, title=f"fastnn demo: {source}, {what}")
        print(f"wrote {args.plot}")
    return 0


# ---- train / lr-sweep ----------------------------------------------------------------------


def _optimizer(args, model, lr=None):
    """The optimizer named by --optimizer (``fastnn.optim.get``, so every optimizer this
    build has is available), with --lr (default: the optimizer's own default, or 0.01
    where it has none, as SGD) and --momentum where the optimizer takes one."""
    try:
        cls = fastnn.optim.get(args.optimizer)
    except ValueError as exc:
        raise CLIError(f"--optimizer: {exc}") from None
    params = inspect.signature(cls).parameters
    if lr is None:
        lr = args.lr
    if lr is None:
        default = params["lr"].default if "lr" in params else inspect.Parameter.empty
        lr = 0.01 if default is inspect.Parameter.empty else default
    kwargs = {}
    if args.momentum is not None:
        if "momentum" not in params:
            raise CLIError(f"--momentum: {cls.__name__} takes no momentum")
        kwargs["momentum"] = args.momentum
    return cls(model, lr=lr, **kwargs)


def _build_model(n_in, n_out, args, front):
    try:
        act = fastnn.layers.get_activation(args.activation)
    except ValueError as exc:
        raise CLIError(f"--activation: {exc}") from None
    init = "he_uniform" if act in (fastnn.ReLU, fastnn.LeakyReLU) else "xavier_uniform"
    layers = [front]  # the input scaling (Standardize)
    width = n_in
    for i, h in enumerate(args.hidden):
        layers += [fastnn.Dense(width, h, init=init, dtype=args.dtype, rng=args.seed + i), act()]
        width = h
    layers.append(
        fastnn.Dense(
            width, n_out, init="xavier_uniform", dtype=args.dtype, rng=args.seed + len(args.hidden)
        )
    )
    return fastnn.Sequential(*layers, dtype=args.dtype)


def _prepare(args):
    """Training data, loss and metadata shared by train and lr-sweep: read DATA, choose the
    task, encode the target, split off validation rows (the last --val-split fraction,
    Keras's rule) and set up feature scaling from the training rows."""
    data = _cli_data.read(args.data, target=args.target)
    X, y_raw = data.X, data.y
    n = len(X)
    task = args.task if args.task != "auto" else _cli_data.infer_task(y_raw)
    p = SimpleNamespace()
    p.meta = {
        "task": task,
        "target": args.target,
        "n_features": int(X.shape[1]),
        "features": data.feature_names,
        "target_column": data.target_column,
    }
    if task == "classification":
        classes = _cli_data.class_values(y_raw)
        if len(classes) < 2:
            raise CLIError(f"--target: column {args.target!r} has a single class {classes}")
        p.meta["classes"] = classes
        y = _cli_data.encode_labels(y_raw, classes)
        p.loss, p.metrics, p.n_out = fastnn.SoftmaxCrossEntropy(), ("accuracy",), len(classes)
        p.y_scale = None
    else:
        y = _cli_data.numeric_values(y_raw)
        if y is None or not np.all(np.isfinite(y)):
            raise CLIError(f"--target: regression needs finite numeric targets in {args.target!r}")
        # Standardised targets train at the same learning rate whatever their units; the
        # scale is folded into the last layer after training.
        y_mean, y_std = y.mean(axis=0), y.std(axis=0)
        y_std = np.where(y_std > 0, y_std, 1.0)
        y = (y - y_mean) / y_std
        p.y_scale = (np.atleast_1d(y_mean), np.atleast_1d(y_std))
        p.loss, p.metrics = fastnn.MSELoss(), ("mae", "r2")
        p.n_out = 1 if y.ndim == 1 else y.shape[1]
    split = n
    if args.val_split > 0:
        split = int(n * (1 - args.val_split))
        if split <= 0 or split >= n:
            raise CLIError(
                f"--val-split: {args.val_split} leaves no training or no validation rows out of {n}"
            )
    mean, std = _cli_data.mean_std(X[:split])
    # The scaling travels with the model as its first layer.
    p.front = fastnn.Standardize(mean=mean, std=std)
    p.X_train, p.y_train = X[:split], y[:split]
    p.validation = (X[split:], y[split:]) if split < n else None
    p.n_in = int(X.shape[1])
    return p


def _cmd_bench(args):
    from fastnn.benchmark import run

    run(seconds=args.seconds, threads=args.threads)
    return 0


def _cmd_train(args):
    if args.plot:
        _require_matplotlib("--plot")
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir):
        raise CLIError(f"--out: no directory {out_dir}")
    p = _prepare(args)
    model = _build_model(p.n_in, p.n_out, args, p.front)
    opt = _optimizer(args, model)
    callbacks = []
    if args.patience is not None:
        callbacks.append(
            fastnn.EarlyStopping(
                monitor="val_loss" if p.validation else "loss",
                patience=args.patience,
                restore_best_weights=True,
            )
        )
    t0 = time.perf_counter()
    history = model.fit(
        p.X_train,
        p.y_train,
        loss=p.loss,
        optimizer=opt,
        epochs=args.epochs,
        batch_size=args.batch_size,
        metrics=p.metrics,
        validation_data=p.validation,
        seed=args.seed,
        callbacks=callbacks,
        verbose=0 if args.quiet else 1,
    )
    elapsed = time.perf_counter() - t0
    if p.y_scale is not None:
        mean, std = p.y_scale
        last = model.layers[-1]
        last.weight.data *= std[:, None].astype(model.dtype)
        last.bias.data[...] = last.bias.data * std + mean
    fastnn.save(model, args.out, metadata={"cli": p.meta})
    final = {k: v[-1] for k, v in history.history.items() if k != "lr"}
    what = (
        f"{p.n_out} classes"
        if p.meta["task"] == "classification"
        else "regression (losses of the standardised target)"
    )
    print(f"{args.data}: {len(p.y_train)} training rows, {p.n_in} features, {what}")
    print(
        f"{len(history.epoch)} epochs in {elapsed:.2f} s: "
        + " ".join(f"{k}={v:.4f}" for k, v in final.items())
    )
    print(f"saved {args.out}")
    if args.plot:
        history.plot(args.plot, title=f"fastnn train {os.path.basename(args.data)}")
        print(f"wrote {args.plot}")
    return 0


def _cmd_lr_sweep(args):
    if args.plot:
        _require_matplotlib("--plot")
    p = _prepare(args)
    curves = fastnn.lr_sweep(
        lambda: _build_model(p.n_in, p.n_out, args, p.front),
        p.X_train,
        p.y_train,
        loss=p.loss,
        lrs=args.lrs,
        optimizer_factory=lambda m, lr: _optimizer(args, m, lr),
        epochs=args.epochs,
        steps=args.steps,
        batch_size=args.batch_size,
        seed=args.seed,
        path=args.plot or None,
    )
    for lr, losses in curves.items():
        if losses.size and not np.isfinite(losses[-1]):
            print(f"lr {lr:g}: diverged after {losses.size} updates")
        else:
            tail = losses[-max(1, losses.size // 10) :]
            print(
                f"lr {lr:g}: {losses.size} updates, loss {losses[0]:.4f} -> "
                f"{tail.mean():.4f} (mean of the last {tail.size})"
            )
    if args.plot:
        print(f"wrote {args.plot}")
    return 0


# ---- predict / evaluate --------------------------------------------------------------------


def _load_model(path):
    if not os.path.isfile(path):
        raise CLIError(f"MODEL: no such file: {path}")
    ckpt = fastnn.load_checkpoint(path)
    return ckpt.model, ckpt.metadata.get("cli") or {}


def _model_inputs(model, meta, path, target=None):
    """(features ready for the model, raw target or None) from DATA."""
    n_features = model.in_features or meta.get("n_features")
    data = _cli_data.read(
        path,
        target=target,
        feature_names=meta.get("features"),
        n_features=n_features,
        target_column=meta.get("target_column"),
    )
    X = data.X
    if n_features is not None and X.shape[1] != n_features:
        raise CLIError(
            f"DATA: the model expects {n_features} feature columns, {path} has {X.shape[1]}"
        )
    return X, data.y


def _task(model, meta, X):
    """The saved task; for models saved outside the CLI, classification when there are
    several output columns."""
    if "task" in meta:
        return meta["task"]
    return "classification" if model.predict(X[:1]).shape[1] > 1 else "regression"


def _write_table(path, values, columns):
    if path.lower().endswith(".npy"):
        np.save(path, values, allow_pickle=False)
        return
    import csv

    rows = values.reshape(len(values), -1)
    fmt = (lambda v: f"{v:.9g}") if rows.dtype.kind == "f" else str
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(columns)
        writer.writerows([fmt(v) for v in row] for row in rows.tolist())


def _cmd_predict(args):
    model, meta = _load_model(args.model)
    X, _ = _model_inputs(model, meta, args.data)
    out = model.predict(X)
    task = _task(model, meta, X)
    target = meta.get("target") or "prediction"
    if args.proba:
        if task != "classification":
            raise CLIError("--proba: the model does regression, it has no class probabilities")
        values = fastnn.kernels.softmax(np.ascontiguousarray(out))
        columns = [str(c) for c in meta.get("classes", range(out.shape[1]))]
    elif task == "classification":
        values = np.asarray(meta.get("classes", range(out.shape[1])))[out.argmax(axis=1)]
        columns = [target]
    else:
        values = out[:, 0] if out.shape[1] == 1 else out
        columns = [target] if out.shape[1] == 1 else [f"{target}_{j}" for j in range(out.shape[1])]
    _write_table(args.out, values, columns)
    print(f"wrote {len(values)} predictions to {args.out}")
    return 0


def _cmd_evaluate(args):
    model, meta = _load_model(args.model)
    X, y_raw = _model_inputs(model, meta, args.data, target=args.target)
    if _task(model, meta, X) == "classification":
        classes = meta.get("classes") or list(range(model.predict(X[:1]).shape[1]))
        y = _cli_data.encode_labels(y_raw, classes)
        loss, metrics = fastnn.SoftmaxCrossEntropy(), ("accuracy",)
    else:
        y = _cli_data.numeric_values(y_raw)
        if y is None:
            raise CLIError(f"--target: regression needs numeric targets in {args.target!r}")
        loss, metrics = fastnn.MSELoss(), ("mae", "r2")
    result = model.evaluate(X, y, loss=loss, metrics=metrics)
    print(f"{args.data}: {len(y)} rows")
    for key, value in result.items():
        print(f"{key}: {value:.4f}")
    return 0


# ---- the parser ----------------------------------------------------------------------------


def _type(convert, check, expected):
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not check(value):
            raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}")
        return value

    parse.__name__ = expected
    return parse


_positive_int = _type(int, lambda v: v >= 1, "an integer >= 1")
_nonneg_int = _type(int, lambda v: v >= 0, "an integer >= 0")
_positive_float = _type(float, lambda v: np.isfinite(v) and v > 0, "a number > 0")
_nonneg_float = _type(float, lambda v: np.isfinite(v) and v >= 0, "a number >= 0")
_fraction = _type(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")


def _int_list(text):
    return [] if text.strip().lower() in ("", "none") else [int(t) for t in text.split(",")]


def _float_list(text):
    return [float(t) for t in text.split(",")]


_hidden = _type(
    _int_list,
    lambda v: all(h >= 1 for h in v),
    "comma-separated layer widths >= 1 such as 256,256 (or 'none')",
)
_lrs = _type(
    _float_list,
    lambda v: bool(v) and all(np.isfinite(x) and x > 0 for x in v),
    "comma-separated learning rates > 0 such as 1e-3,1e-2,0.1",
)


def _data_options(p, training):
    p.add_argument(
        "data", metavar="DATA", help="CSV with a header row, .npy (2-D) or .npz (arrays X and y)"
    )
    p.add_argument(
        "--target",
        required=True,
        metavar="COL",
        help="the target: a CSV column name, a .npy column index, or an .npz array "
        "name (or column index into X)",
    )
    if not training:
        return
    p.add_argument(
        "--task",
        choices=("auto", "classification", "regression"),
        default="auto",
        help="default: classification for text labels or up to 50 distinct whole "
        "numbers, else regression",
    )
    p.add_argument(
        "--hidden", type=_hidden, default=[256, 256], help="hidden layer widths (default 256,256)"
    )
    p.add_argument(
        "--activation",
        default="relu",
        help="relu, leaky_relu, tanh, sigmoid or identity (default relu)",
    )
    p.add_argument(
        "--optimizer",
        default="adam",
        help="an optimizer of fastnn.optim: sgd, adam, adamw, rmsprop, adagrad (default adam)",
    )
    p.add_argument(
        "--lr",
        type=_positive_float,
        default=None,
        help="learning rate (default: the optimizer's default; 0.01 for sgd)",
    )
    p.add_argument(
        "--momentum",
        type=_nonneg_float,
        default=None,
        help="momentum, for optimizers that take one (sgd, rmsprop)",
    )
    p.add_argument("--epochs", type=_positive_int, default=20)
    p.add_argument("--batch-size", type=_positive_int, default=32)
    p.add_argument(
        "--val-split",
        type=_fraction,
        default=0.0,
        help="fraction of rows, taken from the end of DATA, held out for validation",
    )
    p.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    p.add_argument("--seed", type=int, default=0)


def build_parser():
    parser = _Parser(prog="fastnn", description="Small, fast neural networks on the CPU.")
    parser.add_argument("--version", action="version", version=f"fastnn {fastnn.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    p = sub.add_parser(
        "demo",
        help="train on handwritten digits: an MLP, a CNN (--cnn) or a CNN on MNIST (--mnist)",
        description="Train a 64-128-64-10 MLP on the built-in 8x8 handwritten digits and "
        "report held-out accuracy and wall time; with --cnn a small CNN on the same digits as "
        "(1, 8, 8) images; with --mnist DIR the lecture notes' CNN (two 5x5 convolution + "
        "max-pooling stages) on MNIST read from DIR (the four IDX files, raw or gzipped).",
    )
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--cnn", action="store_true", help="a CNN on the built-in digits")
    mode.add_argument("--mnist", metavar="DIR", help="a CNN on MNIST from DIR")
    p.add_argument(
        "--epochs", type=_positive_int, help="default: 30 (MLP), 20 (--cnn), 6 (--mnist)"
    )
    p.add_argument("--batch-size", type=_positive_int, help="default: 32, 64 for --mnist")
    p.add_argument(
        "--lr",
        type=_positive_float,
        help="default: SGD 0.05 (MLP), Adam 3e-3 (--cnn), Adam 1e-3 annealed to 0 (--mnist)",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--plot", metavar="PNG", help="write the loss and accuracy curves (matplotlib)")
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser(
        "train",
        help="train an MLP on a data file and save it",
        description="Train an MLP on DATA (inputs standardised) and save it, with "
        "its class list and scaling, to one .safetensors file.",
    )
    _data_options(p, training=True)
    p.add_argument("--out", required=True, metavar="MODEL", help="where to save the model")
    p.add_argument(
        "--patience",
        type=_nonneg_int,
        default=None,
        help="stop when the (validation) loss has not improved for this many epochs "
        "and keep the best weights",
    )
    p.add_argument("--plot", metavar="PNG", help="write the training curves (matplotlib)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser(
        "lr-sweep",
        help="train at several learning rates and plot the losses",
        description="Train the same model from the same initial weights at each "
        "learning rate and report (and plot) the loss per update.",
    )
    _data_options(p, training=True)
    p.add_argument(
        "--lrs",
        type=_lrs,
        default=[1e-4, 1e-3, 1e-2, 1e-1, 1.0],
        help="learning rates (default 1e-4,1e-3,1e-2,0.1,1)",
    )
    p.add_argument(
        "--steps",
        type=_positive_int,
        default=500,
        help="updates per learning rate (default 500; also bounded by --epochs)",
    )
    p.add_argument("--plot", metavar="PNG", help="write loss against update count (matplotlib)")
    p.set_defaults(func=_cmd_lr_sweep, epochs=1000)

    p = sub.add_parser("evaluate", help="print a saved model's loss and metrics on a data file")
    p.add_argument("model", metavar="MODEL")
    _data_options(p, training=False)
    p.set_defaults(func=_cmd_evaluate)

    p = sub.add_parser(
        "predict",
        help="write a saved model's predictions for a data file",
        description="One prediction per row of DATA (class labels as in the "
        "training data), to a .csv or .npy file.",
    )
    p.add_argument("model", metavar="MODEL")
    p.add_argument("data", metavar="DATA", help="CSV with a header row, .npy or .npz")
    p.add_argument("--out", required=True, metavar="FILE", help=".csv or .npy")
    p.add_argument("--proba", action="store_true", help="class probabilities instead of labels")
    p.set_defaults(func=_cmd_predict)

    p = sub.add_parser("info", help="version, kernel instruction set and threads")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser(
        "bench",
        help="kernel speed against NumPy on this machine",
        description="The host (CPU model, family/model, ISA flags, fastnn's "
        "instruction set, the measured FMA limit, NumPy's BLAS "
        "kernel, thread counts), then GEMM GFLOP/s of fastnn and "
        "NumPy timed alternately with both pinned to the same "
        "thread count: medians, the median of the paired speed "
        "ratios, each as a fraction of the FMA limit, and "
        "PERFORMANCE.md's GEMM targets; then the same for the main "
        "convolution of each of the three benchmark CNNs (forward, "
        "batch 64, against NumPy's im2col and matmul). Targets are "
        "reported met or not; the exit "
        "status does not depend on them. Unset OPENBLAS_CORETYPE "
        "and OPENBLAS_L2_SIZE first: they handicap NumPy.",
    )
    p.add_argument(
        "--threads",
        type=_positive_int,
        default=1,
        help="threads for both fastnn and NumPy (default 1)",
    )
    p.add_argument("--seconds", type=float, default=0.3, help="time per case (default 0.3)")
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CLIError, ValueError, TypeError, OSError, ImportError) as exc:
        print(f"fastnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fastnn {args.command}: interrupted", file=sys.stderr)
        return 130
