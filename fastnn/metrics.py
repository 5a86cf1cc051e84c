"""Metrics accumulated over mini-batches, so that an epoch's value needs no extra pass.

Each metric object has ``update(output, target)`` and ``result()``; ``get(name, loss)``
builds one by name ("accuracy", "mse", "mae", "r2", "log_loss")."""

import numpy as np

from fastnn._validation import lookup

__all__ = ["Accuracy", "MeanSquaredError", "MeanAbsoluteError", "R2", "LogLoss", "get", "NAMES"]


def _as_2d(target, output):
    target = np.asarray(target)
    return (
        target.reshape(output.shape)
        if target.ndim == 1 and output.ndim == 2 and output.shape[1] == 1
        else target
    )


class _Metric:
    def __init__(self):
        self.reset()


class Accuracy(_Metric):
    """Fraction of correct predictions: argmax of the outputs against class labels (or
    one-hot rows); one output column is thresholded at 0 for logits, 0.5 otherwise."""

    def __init__(self, threshold=0.5):
        self.threshold = threshold
        super().__init__()

    def reset(self):
        self.correct, self.count = 0, 0

    def update(self, output, target):
        target = np.asarray(target)
        if output.ndim == 2 and output.shape[1] > 1:
            labels = target.argmax(axis=1) if target.ndim == 2 else target
            hits = output.argmax(axis=1) == labels
        else:
            hits = (output > self.threshold) == (_as_2d(target, output) > 0.5)
        self.correct += int(np.count_nonzero(hits))
        self.count += hits.size

    def result(self):
        return self.correct / self.count if self.count else float("nan")


class MeanSquaredError(_Metric):
    def reset(self):
        self.total, self.count = 0.0, 0

    def update(self, output, target):
        d = output.astype(np.float64) - _as_2d(target, output)
        self.total += float(np.dot(d.ravel(), d.ravel()))
        self.count += d.size

    def result(self):
        return self.total / self.count if self.count else float("nan")


class MeanAbsoluteError(MeanSquaredError):
    def update(self, output, target):
        d = output.astype(np.float64) - _as_2d(target, output)
        self.total += float(np.abs(d).sum())
        self.count += d.size


class R2(_Metric):
    """Coefficient of determination 1 - SS_res / SS_tot, averaged uniformly over outputs
    (scikit-learn's default), from running sums."""

    def reset(self):
        self.n, self.sy, self.syy, self.sres = 0, 0.0, 0.0, 0.0

    def update(self, output, target):
        t = _as_2d(target, output).astype(np.float64)
        d = output.astype(np.float64) - t
        self.n += t.shape[0]
        self.sy = self.sy + t.sum(axis=0)
        self.syy = self.syy + (t * t).sum(axis=0)
        self.sres = self.sres + (d * d).sum(axis=0)

    def result(self):
        if self.n < 2:
            return float("nan")
        sstot = self.syy - self.sy * self.sy / self.n
        with np.errstate(divide="ignore", invalid="ignore"):
            r2 = np.where(
                sstot > 0,
                1 - self.sres / np.where(sstot > 0, sstot, 1),
                np.where(self.sres == 0, 1.0, 0.0),
            )
        return float(np.mean(r2))


class LogLoss(_Metric):
    """Mean cross-entropy of predicted probabilities (softmax of logits for several
    columns, sigmoid of one logit column) against labels."""

    def __init__(self, from_logits=True):
        self.from_logits = from_logits
        super().__init__()

    def reset(self):
        self.total, self.count = 0.0, 0

    def update(self, output, target):
        out = output.astype(np.float64)
        target = np.asarray(target)
        if out.ndim == 2 and out.shape[1] > 1:
            if self.from_logits:
                z = out - out.max(axis=1, keepdims=True)
                logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            else:
                logp = np.log(np.clip(out, 1e-15, 1.0))
            onehot = target if target.ndim == 2 else np.eye(out.shape[1])[target.astype(np.int64)]
            self.total += float(-(onehot * logp).sum())
            self.count += out.shape[0]
        else:
            t = _as_2d(target, out).astype(np.float64)
            if self.from_logits:
                ll = np.maximum(out, 0) - out * t + np.log1p(np.exp(-np.abs(out)))
            else:
                p = np.clip(out, 1e-15, 1 - 1e-15)
                ll = -(t * np.log(p) + (1 - t) * np.log(1 - p))
            self.total += float(ll.sum())
            self.count += ll.size

    def result(self):
        return self.total / self.count if self.count else float("nan")


#: each metric's name and how to build it, given whether the outputs are logits
_FACTORIES = {
    "accuracy": lambda logits: Accuracy(threshold=0.0 if logits else 0.5),
    "mse": lambda logits: MeanSquaredError(),
    "mae": lambda logits: MeanAbsoluteError(),
    "r2": lambda logits: R2(),
    "log_loss": lambda logits: LogLoss(from_logits=logits),
}
NAMES = tuple(_FACTORIES)


def get(name, loss=None):
    """A fresh metric called `name` (one of ``NAMES``), adapted to the loss (logit outputs
    or not)."""
    factory = lookup(_FACTORIES, name, "metric")
    return factory(bool(getattr(loss, "logits", False)))
