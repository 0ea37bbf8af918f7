"""What `fit` prints: one tqdm bar for the whole fit, a line per epoch (throttled) and a last
line (what it records is `History`, history.py).

30 fast epochs are not 30 lines: a line is printed at most every LINE_SECONDS, and the last
epoch always (History keeps every epoch anyway). Under torchrun only rank 0 prints.

Example:
    >>> with FitReport(enabled=True, batches=3 * len(loader)) as report:
    ...     report.epoch(history, epoch=1, epochs=3)  # the bar goes to stderr, the line to stdout
    epoch   1/3  train loss ... acc ...  val loss ... acc ...  ...s
"""

from __future__ import annotations

import math
import time

from tqdm.auto import tqdm

from tlcourse.history import History

LINE_SECONDS = 0.5  # fit(progress=True) prints an epoch line at most this often


class FitReport:
    """The progress bar (`.bar`, one tick per batch) and the epoch lines of one fit.

    Example:
        >>> report = FitReport(enabled=False, batches=0)  # silent: fit(progress=False)
    """

    def __init__(self, enabled: bool, batches: int):
        self.enabled = enabled
        self.bar = tqdm(total=batches, disable=not enabled, desc="fit", leave=False)
        self.printed = -math.inf  # when the last epoch line was printed

    def __enter__(self) -> FitReport:
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()

    def epoch(self, history: History, epoch: int, epochs: int) -> None:
        """Print this epoch's line if LINE_SECONDS passed since the last one (or it is the last).

        Example:
            >>> FitReport(enabled=True, batches=0).epoch(history, epoch=5, epochs=5)
            epoch   5/5  train loss ... acc ...  val loss ... acc ...  ...s
        """
        if self.enabled and (epoch == epochs or time.perf_counter() - self.printed >= LINE_SECONDS):
            tqdm.write(epoch_line(history, epoch, epochs))
            self.printed = time.perf_counter()

    def finish(self, history: History, restored: bool, main: bool) -> None:
        """Say why the fit stopped: always with progress on, on rank 0 also when it stopped early.

        Example:
            >>> FitReport(enabled=True, batches=0).finish(history, restored=True, main=True)
            completed; best epoch 1 (its weights restored)
        """
        if self.enabled or (history.stop_reason != "completed" and main):
            weights = " (its weights restored)" if restored else ""
            print(f"{history.stop_reason}; best epoch {history.best_epoch}{weights}")


def epoch_line(history: History, epoch: int, epochs: int) -> str:
    """One epoch as a line: train loss/accuracy, validation loss/accuracy when there is one.

    Example:
        >>> epoch_line(history, 2, 5)  # the last epoch recorded, numbered 2 of 5
        'epoch   2/5  train loss ... acc ...  val loss ... acc ...  ...s'
    """
    line = (
        f"epoch {epoch:>3}/{epochs}  train loss {history.train_loss[-1]:.4f} "
        f"acc {history.train_accuracy[-1]:.3f}"
    )
    if not math.isnan(history.val_loss[-1]):
        line += f"  val loss {history.val_loss[-1]:.4f} acc {history.val_accuracy[-1]:.3f}"
    return line + f"  {history.seconds[-1]:.1f}s"
