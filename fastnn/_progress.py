"""The progress display of ``fit(verbose=...)``, written to stderr so that stdout carries only
results (what ``fastnn evaluate`` prints, for instance) and can be piped.

On a terminal, ``verbose=1`` redraws one bar per epoch in place (at most ten times a second)
with the batch count, ETA and running loss, then leaves the epoch's summary line. When
stderr is not a terminal (a log file, CI) and with ``verbose=2``, only the summary line is
written, once per epoch."""

import sys
import time

from fastnn.callbacks import Callback

_WIDTH = 24
_REDRAW_SECONDS = 0.1


def _duration(seconds):
    seconds = round(seconds)
    minutes, seconds = divmod(seconds, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def _format_logs(logs):
    return " ".join(f"{k}={v:.4f}" for k, v in logs.items() if k not in ("time", "lr"))


class ProgressBar(Callback):
    def __init__(self, verbose, stream=None):
        self.stream = sys.stderr if stream is None else stream
        isatty = getattr(self.stream, "isatty", None)
        self.live = verbose == 1 and bool(isatty and isatty())

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.t0 = self.last_draw = time.perf_counter()
        self.rows = 0
        self.loss_sum = 0.0

    def on_batch_end(self, batch, logs=None):
        if not self.live:
            return
        size = logs.get("size", 0)
        self.rows += size
        self.loss_sum += logs.get("loss", float("nan")) * size
        now = time.perf_counter()
        steps = self.params["steps"]
        if now - self.last_draw < _REDRAW_SECONDS and batch + 1 < steps:
            return
        self.last_draw = now
        done = (batch + 1) / steps
        filled = int(_WIDTH * done)
        eta = (now - self.t0) * (1 - done) / done
        self.stream.write(
            f"\r{self._prefix()} [{'=' * filled}{'.' * (_WIDTH - filled)}] "
            f"{batch + 1}/{steps} ETA {_duration(eta)} loss={self.loss_sum / self.rows:.4f}\033[K"
        )
        self.stream.flush()

    def _prefix(self):
        return f"epoch {self.epoch + 1}/{self.params['epochs']}"

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        line = f"{self._prefix()} [{logs.get('time', 0.0):.2f}s] {_format_logs(logs)}"
        self.stream.write(("\r" + line + "\033[K\n") if self.live else line + "\n")
        self.stream.flush()
