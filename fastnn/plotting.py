"""Figures of training curves, drawn from the numbers alone: the per-epoch logs of a
:class:`fastnn.callbacks.History` (``History.plot`` draws with :func:`plot_history`) and the
per-update losses of :func:`fastnn.training.lr_sweep`. This module knows no model and
imports no other part of fastnn, so the training floor can draw through it.

Drawing needs matplotlib (the ``plot`` extra), imported only when a figure is drawn; it
draws on a private Agg canvas, so the caller's pyplot backend and state are left alone."""

import math

import numpy as np

__all__ = ["plot_history", "plot_lr_sweep"]


def _figure(nrows, ncols, width, height):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("plotting needs matplotlib: pip install 'fastnn[plot]'") from None
    fig = Figure(figsize=(width * ncols, height * nrows))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, squeeze=False)[0]


def plot_history(history, path, *, title=None):
    """One panel for the loss and one per metric, training and validation curves against
    the epoch, written to `path` as PNG; returns `path`. `history` is a History, or any
    object with its ``history`` (name -> per-epoch values) and ``epoch`` (indices)."""
    curves = history.history
    names = [k for k in curves if not k.startswith("val_") and k != "lr"]
    names += [k[4:] for k in curves if k.startswith("val_") and k[4:] not in curves]
    if not names:
        raise ValueError("history is empty: train for at least one epoch before plotting")
    fig, axes = _figure(1, len(names), 4.5, 3.5)
    epochs = np.asarray(history.epoch) + 1
    for ax, name in zip(axes, names):
        for key, label in ((name, "train"), ("val_" + name, "validation")):
            if key in curves:
                ax.plot(
                    epochs,
                    curves[key],
                    marker="o" if len(epochs) < 30 else None,
                    markersize=3,
                    label=label,
                )
        ax.set_xlabel("epoch")
        ax.set_title(name)
        if name.endswith("loss") and _positive(curves, name):
            ax.set_yscale("log")
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    return path


def _positive(curves, name):
    values = [v for key in (name, "val_" + name) for v in curves.get(key, ())]
    return bool(values) and all(math.isfinite(v) and v > 0 for v in values)


def plot_lr_sweep(curves, path, *, smooth=0.9):
    """Loss against update count for each learning rate of :func:`fastnn.training.lr_sweep`
    (``{lr: losses}``), on one figure, written to `path` as PNG; returns `path`:
    the raw losses faint, an exponential moving average (``smooth``) on top. The y axis
    stops at 1.5 times the largest initial loss, so a diverging rate does not flatten the
    others."""
    fig, (ax,) = _figure(1, 1, 7, 4.5)
    finite = np.concatenate([c[np.isfinite(c)] for c in curves.values()] or [np.zeros(0)])
    for lr, losses in sorted(curves.items()):
        x = np.arange(1, len(losses) + 1)
        (line,) = ax.plot(x, losses, alpha=0.25, linewidth=0.8)
        ax.plot(x, _ema(losses, smooth), color=line.get_color(), label=f"lr={lr:g}")
    if finite.size:
        first = [c[0] for c in curves.values() if c.size and math.isfinite(c[0])]
        top = 1.5 * max(first) if first else float(finite.max())
        ax.set_ylim(max(0.0, float(finite.min()) * 0.9), top)
    ax.set_xlabel("update")
    ax.set_ylabel("training loss")
    ax.set_title("learning-rate sweep")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    return path


def _ema(values, smooth):
    out = np.empty_like(values)
    avg = None
    for i, v in enumerate(values):
        avg = v if avg is None or not math.isfinite(avg) else smooth * avg + (1 - smooth) * v
        out[i] = avg
    return out
