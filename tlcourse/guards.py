"""What can go wrong in a fit, said in plain words: labels the head can't output, a NaN loss,
Ctrl-C, running out of GPU memory. `fit` stops cleanly on each, keeping history and best weights.

Example:
    >>> logits, labels = torch.zeros(2, 10), torch.tensor([3, 12])  # label 12 of 10 classes?
    >>> loss = checked_loss(nn.CrossEntropyLoss(), logits, labels, labels)
    Traceback (most recent call last):
    ValueError: label 12 is outside [0, 10) but the model has 10 outputs: use replace_head(...
    >>> with stop_cleanly(history):   # Ctrl-C, NaN or OOM: history.stop_reason says why
    ...     finite(float("nan"), epoch=2, batch=5)
    >>> history.stop_reason
    'loss is nan at epoch 2, batch 5: lower the learning rate or check the inputs for NaN'
"""

from __future__ import annotations

import math
import warnings
from contextlib import contextmanager

import torch


def renamed_keywords(
    function: str, given: dict, renames: dict[str, tuple[str, str]], stacklevel: int = 3
) -> dict:
    """Old keyword names taken with a FutureWarning each, their values under the new names.

    `renames` maps old name -> (new name, why it changed); any other keyword in `given` is the
    TypeError Python itself would raise. `stacklevel` points the warning at the learner's line.

    Example:
        >>> renamed_keywords("predict", {}, {"precision": ("dtype", "one name, one meaning")})
        {}
    """
    unknown = sorted(set(given) - set(renames))
    if unknown:
        raise TypeError(f"{function}() got an unexpected keyword argument {unknown[0]!r}")
    for old in given:
        new, why = renames[old]
        message = f"{function}({old}=...) is now {function}({new}=...): {why}"
        warnings.warn(message, FutureWarning, stacklevel=stacklevel)
    return {renames[old][0]: value for old, value in given.items()}


def check_epochs(epochs: object) -> None:
    """Refuse `epochs=0`, `epochs=2.5` or `epochs=True` before anything starts.

    Example:
        >>> check_epochs(0)
        Traceback (most recent call last):
        ValueError: epochs=0: must be a whole number >= 1
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs={epochs!r}: must be a whole number >= 1")


def require_trainable(optimizer: torch.optim.Optimizer | None) -> torch.optim.Optimizer:
    """`optimizer`, or a clear error when it has nothing to train (everything frozen).

    Example:
        >>> require_trainable(None)  # fit(model) after tl.freeze(model), with no new head
        Traceback (most recent call last):
        ValueError: nothing to train: every parameter is frozen. Call tl.unfreeze(model, ...) ...
    """
    if optimizer is None or not any(
        p.requires_grad for group in optimizer.param_groups for p in group["params"]
    ):
        raise ValueError(
            "nothing to train: every parameter is frozen. Call "
            "tl.unfreeze(model, ...) or tl.replace_head(...) first"
        )
    return optimizer


def label_problem(labels: torch.Tensor, num_outputs: int) -> str | None:
    """Why `labels` cannot go with a head of `num_outputs` classes, or None if they can.

    Example:
        >>> print(label_problem(torch.tensor([0, 12]), 10))
        label 12 is outside [0, 10) but the model has 10 outputs: use replace_head(...) with ...
        >>> label_problem(torch.tensor([0, 9]), 10) is None
        True
    """
    extremes = torch.aminmax(labels)  # one op, not four
    low, high = int(extremes.min), int(extremes.max)
    if low >= 0 and high < num_outputs:
        return None
    return (
        f"label {high if high >= num_outputs else low} "
        f"is outside [0, {num_outputs}) but the model has {num_outputs} outputs: "
        f"use replace_head(model, num_classes=...) with the dataset's class count"
    )


def checked_loss(loss_fn, logits: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor):
    """`loss_fn(logits, targets)`, with a plain-words error for a label the head cannot output.

    On cuda/mps the (CPU) labels are checked before the loss: there an out-of-range label is an
    asynchronous device-side assert. On the CPU the loss itself raises ("Target 5 is out of
    bounds"), so the check runs only then: no cost per batch.

    Example:
        >>> loss = checked_loss(nn.CrossEntropyLoss(), model(images), labels, labels)
        >>> loss.ndim  # a scalar, ready for loss.backward()
        0
    """
    if targets.device.type != "cpu" and (problem := label_problem(labels, logits.shape[1])):
        raise ValueError(problem)
    try:
        return loss_fn(logits, targets)
    except (IndexError, RuntimeError):
        if problem := label_problem(labels, logits.shape[1]):
            raise ValueError(problem) from None
        raise


def finite(loss_value: float, epoch: int, batch: int) -> float:
    """`loss_value`, or FloatingPointError naming the epoch, the batch and the fix.

    Example:
        >>> finite(0.25, 3, 17)
        0.25
        >>> finite(float("nan"), 3, 17)
        Traceback (most recent call last):
        FloatingPointError: loss is nan at epoch 3, batch 17: lower the learning rate or ...
    """
    if not math.isfinite(loss_value):
        raise FloatingPointError(
            f"loss is {loss_value} at epoch {epoch}, batch {batch}: "
            "lower the learning rate or check the inputs for NaN"
        )
    return loss_value


@contextmanager
def stop_cleanly(history):
    """Turn Ctrl-C, a NaN loss and CUDA out-of-memory into `history.stop_reason`, not a crash.

    The epochs already trained stay in `history`; `fit` then restores the best weights.

    Example:
        >>> with stop_cleanly(history):  # fit trains its epochs inside this
        ...     raise KeyboardInterrupt  # Ctrl-C
        >>> history.stop_reason
        'interrupted (Ctrl-C) after ... epochs'
    """
    try:
        yield
    except KeyboardInterrupt:
        history.stop_reason = f"interrupted (Ctrl-C) after {len(history.train_loss)} epochs"
    except FloatingPointError as error:
        history.stop_reason = str(error)
    except torch.cuda.OutOfMemoryError:
        history.stop_reason = (
            "out of memory: use a smaller batch_size or image_size, "
            "or amp=True; torch.cuda.empty_cache() frees what is left"
        )
