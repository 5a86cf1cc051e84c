"""The ``fastnn`` command line (also ``python -m fastnn``)."""
import argparse
import sys
import time

import numpy as np

import fastnn


class CLIError(Exception):
    """An error the user can fix: printed as one line, exit status 2."""


def _cmd_info(args):
    info = fastnn.kernels.info()
    print(f"fastnn {fastnn.__version__}")
    print(f"numpy {np.__version__}")
    print(f"isa {info['isa']} (cpu best: {info['cpu_isa']})")
    print(f"threads {info['threads']} (openmp: {'yes' if info['openmp'] else 'no'})")
    return 0


def _split(n, test_fraction, seed):
    order = np.random.default_rng(seed).permutation(n)
    n_test = int(round(n * test_fraction))
    return order[n_test:], order[:n_test]


def _cmd_demo(args):
    t0 = time.perf_counter()
    X, y = fastnn.load_digits()
    train, test = _split(len(X), 0.2, args.seed)
    X = X / np.float32(16.0)  # pixel intensities are 0..16
    model = fastnn.Sequential(
        fastnn.Dense(64, 128, rng=args.seed), fastnn.ReLU(),
        fastnn.Dense(128, 64, rng=args.seed + 1), fastnn.ReLU(),
        fastnn.Dense(64, 10, init="xavier_uniform", rng=args.seed + 2),
    )
    loss = fastnn.SoftmaxCrossEntropy()
    opt = fastnn.optim.SGD(model, lr=args.lr, momentum=0.9)
    print(f"digits: {len(train)} training and {len(test)} held-out 8x8 images; model:")
    print(model)
    model.fit(X[train], y[train], loss=loss, optimizer=opt, epochs=args.epochs,
              batch_size=args.batch_size, metrics=("accuracy",), seed=args.seed,
              validation_data=(X[test], y[test]), verbose=1)
    result = model.evaluate(X[test], y[test], loss=loss, metrics=("accuracy",))
    elapsed = time.perf_counter() - t0
    print(f"held-out accuracy: {result['accuracy']:.4f} (loss {result['loss']:.4f}) "
          f"in {elapsed:.2f} s wall time")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastnn", description="Small, fast neural networks on the CPU.")
    parser.add_argument("--version", action="version", version=f"fastnn {fastnn.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("demo", help="train an MLP on the built-in handwritten digits",
                       description="Train a 64-128-64-10 MLP on the built-in handwritten digits "
                                   "and report held-out accuracy and wall time.")
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.05)
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)

    p = sub.add_parser("info", help="version, kernel instruction set and threads")
    p.set_defaults(func=_cmd_info)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (CLIError, ValueError, TypeError, OSError) as exc:
        print(f"fastnn {args.command}: error: {exc}", file=sys.stderr)
        return 2
