"""Learning-rate schedules: each function returns an ``epoch -> lr`` callable (epoch counts
from 0) for :class:`fastnn.callbacks.LearningRateScheduler`::

    sched = fastnn.schedules.cosine_annealing(0.1, total_epochs=50, warmup_epochs=5)
    model.fit(X, y, ..., callbacks=[fastnn.callbacks.LearningRateScheduler(sched)])
"""

import math
import numbers

from fastnn._validation import positive_int, real

__all__ = ["step_decay", "exponential_decay", "cosine_annealing"]


class _Schedule:
    """An ``epoch -> lr`` function with a readable repr."""

    def __init__(self, fn, description):
        self._fn = fn
        self._description = description

    def __call__(self, epoch):
        if isinstance(epoch, bool) or not isinstance(epoch, numbers.Integral) or epoch < 0:
            raise ValueError(f"epoch must be an integer >= 0, got {epoch!r}")
        return float(self._fn(int(epoch)))

    def __repr__(self):
        return self._description


def step_decay(initial_lr, drop=0.5, every=10):
    """``initial_lr * drop ** (epoch // every)``: the rate falls by the factor ``drop`` every
    ``every`` epochs."""
    initial_lr = real(initial_lr, "initial_lr", minimum=0.0)
    drop = real(drop, "drop", minimum=0.0, maximum=1.0)
    every = positive_int(every, "every")
    return _Schedule(
        lambda e: initial_lr * drop ** (e // every),
        f"step_decay(initial_lr={initial_lr}, drop={drop}, every={every})",
    )


def exponential_decay(initial_lr, decay_rate=0.96, decay_epochs=1, staircase=False):
    """``initial_lr * decay_rate ** (epoch / decay_epochs)``, with the exponent rounded down
    when ``staircase``."""
    initial_lr = real(initial_lr, "initial_lr", minimum=0.0)
    decay_rate = real(decay_rate, "decay_rate", minimum=0.0, min_inclusive=False)
    decay_epochs = real(decay_epochs, "decay_epochs", minimum=0.0, min_inclusive=False)
    staircase = bool(staircase)

    def lr(e):
        t = e / decay_epochs
        return initial_lr * decay_rate ** (math.floor(t) if staircase else t)

    return _Schedule(
        lr,
        f"exponential_decay(initial_lr={initial_lr}, decay_rate={decay_rate}, "
        f"decay_epochs={decay_epochs}, staircase={staircase})",
    )


def cosine_annealing(initial_lr, total_epochs, min_lr=0.0, warmup_epochs=0):
    """Cosine annealing from ``initial_lr`` to ``min_lr`` over ``total_epochs``, after an
    optional linear warmup.

    For ``epoch < warmup_epochs``: ``initial_lr * (epoch + 1) / (warmup_epochs + 1)`` (never
    zero, so no epoch is wasted). Then with ``t = (epoch - warmup_epochs) /
    (total_epochs - warmup_epochs)``: ``min_lr + (initial_lr - min_lr) (1 + cos(pi t)) / 2``,
    which is ``initial_lr`` right after the warmup and ``min_lr`` from ``total_epochs`` on
    (PyTorch's ``CosineAnnealingLR`` with ``T_max = total_epochs - warmup_epochs``)."""
    initial_lr = real(initial_lr, "initial_lr", minimum=0.0)
    total_epochs = positive_int(total_epochs, "total_epochs")
    min_lr = real(min_lr, "min_lr", minimum=0.0, maximum=initial_lr)
    warmup_epochs = positive_int(warmup_epochs, "warmup_epochs", minimum=0)
    if warmup_epochs >= total_epochs:
        raise ValueError(
            f"warmup_epochs must be < total_epochs ({total_epochs}), got {warmup_epochs}"
        )
    span = total_epochs - warmup_epochs

    def lr(e):
        if e < warmup_epochs:
            return initial_lr * (e + 1) / (warmup_epochs + 1)
        t = min(e - warmup_epochs, span) / span
        return min_lr + (initial_lr - min_lr) * (1 + math.cos(math.pi * t)) / 2

    return _Schedule(
        lr,
        f"cosine_annealing(initial_lr={initial_lr}, total_epochs={total_epochs}, "
        f"min_lr={min_lr}, warmup_epochs={warmup_epochs})",
    )
