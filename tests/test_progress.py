"""The progress bar (fastnn/_progress.py): on a terminal it redraws one line in place, with
the step count and an ETA, and ends the epoch with a newline. (fit's progress lines when
stderr is not a terminal: test_training.py.)"""


def test_progress_bar_on_a_terminal_redraws_in_place():
    from fastnn._progress import ProgressBar

    class Tty:
        def __init__(self):
            self.text = ""

        def isatty(self):
            return True

        def write(self, s):
            self.text += s

        def flush(self):
            pass

    stream = Tty()
    bar = ProgressBar(1, stream)
    bar.set_params({"epochs": 2, "steps": 3})
    bar.on_epoch_begin(0)
    for b in range(3):
        bar.on_batch_end(b, {"size": 4, "loss": 1.0})
    bar.on_epoch_end(0, {"loss": 1.0, "time": 0.5})
    assert "\r" in stream.text and "ETA" in stream.text and "3/3" in stream.text
    assert stream.text.endswith("\n") and stream.text.count("\n") == 1
