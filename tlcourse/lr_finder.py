"""The learning-rate range test (Smith 2017; fastai's `lr_find`), in a few readable lines.

Lesson 10 and exercise 11. Train a few hundred batches while the learning rate grows
exponentially, record the (smoothed) loss, stop once it blows up, put the weights back, and
suggest the rate where the loss fell fastest.

Example:
    >>> head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 2))  # any model: 64 px -> 2
    >>> optimizer = torch.optim.SGD(head.parameters(), momentum=0.9)
    >>> finder = lr_find(head, loaders["train"], optimizer, steps=20)
    >>> figure = finder.plot()  # pick a rate where the loss still falls steeply
    >>> 1e-6 < finder.suggestion < 10
    True
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader


@dataclass
class LRFinder:
    """What a range test measured: the learning rates tried, the smoothed losses, a suggestion.

    Example:
        >>> head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 2))
        >>> finder = lr_find(head, loader, torch.optim.SGD(head.parameters(), lr=0.1), steps=20)
        >>> len(finder.lrs) == len(finder.losses), type(finder.suggestion)  # e.g. 0.0032
        (True, <class 'float'>)
    """

    lrs: list[float] = field(default_factory=list)
    losses: list[float] = field(default_factory=list)  # exponentially smoothed, bias-corrected
    suggestion: float = math.nan

    def plot(self, title: str = "learning-rate range test") -> Figure:
        """Loss vs learning rate (log scale), the suggestion marked.

        Example:
            >>> finder = LRFinder(lrs=[1e-3, 1e-2, 1e-1], losses=[2.3, 1.1, 4.0], suggestion=1e-2)
            >>> finder.plot().savefig("lr_find.png")
        """
        figure = Figure(figsize=(6, 3.2), layout="constrained")
        ax = figure.subplots()
        ax.plot(self.lrs, self.losses)
        ax.axvline(
            self.suggestion,
            color="tab:red",
            linestyle="--",
            label=f"suggestion {self.suggestion:.2g}",
        )
        ax.set(xscale="log", xlabel="learning rate", ylabel="loss (smoothed)", title=title)
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        return figure


def suggest_lr(lrs: list[float], losses: list[float], skip: int = 10) -> float:
    """The learning rate where the loss falls fastest (steepest descent per decade), before its
    minimum. The first `skip` points are left out: the smoothed loss is still warming up there,
    and a batch-to-batch jump over a tiny step of the rate looks like a steep fall.

    Example:
        >>> suggest_lr([1e-4, 1e-3, 1e-2, 1e-1, 1.0], [2.3, 2.2, 1.2, 0.9, 5.0], skip=0)
        0.01
        >>> warm_up = [1e-4] * 10  # repeated rates before the fall: cut off before the slopes
        >>> suggest_lr(warm_up + [1e-4, 1e-3, 1e-2, 1e-1, 1.0], [2.3] * 11 + [2.2, 1.2, 0.9, 5.0])
        0.01
    """
    if len(lrs) != len(losses) or len(lrs) < skip + 3:
        raise ValueError(
            f"suggest_lr: {len(lrs)} learning rates and {len(losses)} losses; need the same "
            f"number, at least {skip + 3}: run more steps or raise diverge"
        )
    # the first `skip` points are cut off before the slopes: a rate repeated there would divide
    # by zero (np.gradient over equal rates), and NaN wins np.argmin
    log_lrs = np.log10(np.asarray(lrs, dtype=float)[skip:])
    losses = np.asarray(losses, dtype=float)[skip:]
    lowest = int(np.argmin(losses))  # where the loss bottoms out
    if lowest == 0:
        return float(lrs[skip])
    slopes = np.gradient(losses[: lowest + 1], log_lrs[: lowest + 1])  # d loss / d log10(lr)
    return float(lrs[skip + int(np.nanargmin(slopes))])


def _forever(loader: DataLoader):
    """The batches of `loader`, started again (a new shuffle) each time it runs out."""
    if len(loader) == 0:
        raise ValueError("lr_find: the loader is empty (0 batches): check len(dataset)")
    while True:
        yield from loader


def lr_find(
    model: nn.Module,
    loader: DataLoader,
    optimizer: torch.optim.Optimizer,
    *,
    loss_fn: nn.Module | None = None,
    start_lr: float = 1e-6,
    end_lr: float = 10.0,
    steps: int = 200,
    smoothing: float = 0.95,
    diverge: float = 4.0,
    device: torch.device | str | None = None,
) -> LRFinder:
    """Train `steps` batches with the LR growing exponentially from `start_lr` to `end_lr`.

    Every parameter group gets the same LR; batches cycle through `loader` as often as needed.
    Stops when the smoothed loss exceeds `diverge` times its lowest; then puts the model's and
    the optimizer's state back, so training starts from where it was.

    Example:
        >>> head = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 2))  # any model
        >>> optimizer = torch.optim.SGD(head.parameters(), momentum=0.9)
        >>> finder = lr_find(head, loaders["train"], optimizer, steps=20)
        >>> 1e-6 < finder.suggestion < 10  # e.g. 0.03
        True
    """
    if not 0 < start_lr < end_lr or steps < 10:
        raise ValueError(
            f"lr_find: need 0 < start_lr < end_lr and steps >= 10, got "
            f"start_lr={start_lr}, end_lr={end_lr}, steps={steps}"
        )
    device, loss_fn = device or next(model.parameters()).device, loss_fn or nn.CrossEntropyLoss()
    saved = copy.deepcopy((model.state_dict(), optimizer.state_dict()))
    growth = (end_lr / start_lr) ** (1 / (steps - 1))  # lr of step k: start_lr * growth**k
    result, average = LRFinder(), 0.0
    model.train()
    try:
        for step, (inputs, labels) in zip(range(steps), _forever(loader)):
            lr = start_lr * growth**step
            for group in optimizer.param_groups:
                group["lr"] = lr
            loss = loss_fn(model(inputs.to(device)), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            average = smoothing * average + (1 - smoothing) * loss.item()
            smoothed = average / (1 - smoothing ** (step + 1))  # bias-corrected, as in Adam
            if not math.isfinite(smoothed):
                break
            result.lrs.append(lr)
            result.losses.append(smoothed)
            if smoothed > diverge * min(result.losses):  # blown up: larger rates only get worse
                break
    finally:
        model.load_state_dict(saved[0])
        optimizer.load_state_dict(saved[1])
    if len(result.lrs) < 13:  # suggest_lr skips 10 points and needs 3 more
        raise ValueError(
            f"lr_find: the loss diverged after {len(result.lrs)} steps: lower "
            f"start_lr (now {start_lr:g}) or raise diverge (now {diverge:g})"
        )
    result.suggestion = suggest_lr(result.lrs, result.losses)
    return result
