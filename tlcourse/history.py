"""What `fit` records: `History`, the per-epoch metrics of one fit and why it stopped.

Lists ready to plot (`history.plot()`), one entry per epoch; saved in every checkpoint, so a
resumed fit goes on with the same History.

Example:
    >>> history = History()
    >>> history.record({"loss": 0.9, "accuracy": 0.6}, None, lr=1e-3, seconds=1.2)
    >>> history.train_loss, history.val_loss
    ([0.9], [nan])
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class History:
    """Per-epoch metrics of one `fit` call (lists ready to plot), and why it stopped.

    Example:
        >>> history = tl.fit(model, loaders["train"], loaders["val"], epochs=3, progress=False)
        >>> len(history.val_accuracy), history.best_epoch in (1, 2, 3)
        (3, True)
    """

    train_loss: list[float] = field(default_factory=list)
    train_accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    lr: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    best_epoch: int | None = None  # 1-based epoch whose weights the model holds at the end
    stop_reason: str = ""

    def record(self, train: dict, val: dict | None, lr: float, seconds: float) -> None:
        """Append one epoch's metrics (val = None when there is no validation loader)."""
        self.train_loss.append(train["loss"])
        self.train_accuracy.append(train["accuracy"])
        self.val_loss.append(val["loss"] if val else math.nan)
        self.val_accuracy.append(val["accuracy"] if val else math.nan)
        self.lr.append(lr)
        self.seconds.append(seconds)

    def plot(self, title: str = ""):
        """Loss and accuracy curves as a matplotlib Figure."""
        from tlcourse.plots import plot_history

        return plot_history(self, title=title)
