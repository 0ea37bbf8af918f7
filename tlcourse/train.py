"""The training loop: `train_one_epoch`, `evaluate`, `fit` -> `History`, `predict`.

Lesson 02 writes this loop by hand first; `fit` is the same loop (tests/test_hand_loop.py keeps
them equal). For each batch: forward, loss, zero_grad, backward, step; metrics weighted by
samples; after each epoch validate and keep the best weights. Everything else enters in a line:
step options (`train_step.py`), fast inference (`inference.py`), plain-words errors and clean
stops (`guards.py`), what is recorded (`history.py`) and printed (`report.py`), checkpoint/resume
(`checkpoint.py`) and torchrun/DDP (`distributed.py`).

Example:
    >>> history = fit(model, loaders["train"], loaders["val"], epochs=5, lr=1e-3, progress=False)
    >>> figure = history.plot()  # loss and accuracy curves
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader

from tlcourse import distributed
from tlcourse.checkpoint import resume_fit, save_fit_state, state_on_cpu
from tlcourse.device import get_device, place_model
from tlcourse.guards import (
    check_epochs,
    checked_loss,
    finite,
    renamed_keywords,
    require_trainable,
    stop_cleanly,
)
from tlcourse.history import History
from tlcourse.inference import FrozenForward, loader_samples, renamed_options
from tlcourse.report import FitReport
from tlcourse.train_step import TrainStep


def train_one_epoch(
    model, loader, loss_fn, optimizer, device, *, step=None, epoch=1, bar=None, **renamed
) -> dict[str, float]:
    """One pass over `loader` in train mode. Returns sample-weighted {"loss", "accuracy"}.

    step: a `TrainStep` (amp, channels_last, clipping); default all off, the plain PyTorch lines.

    Example:
        >>> train_one_epoch(model, loaders["train"], nn.CrossEntropyLoss(), optimizer, "cpu")
        {'loss': ..., 'accuracy': ...}
    """
    old = renamed_keywords("train_one_epoch", renamed, {"precision": ("step", "a TrainStep")})
    step = step or old.get("step") or TrainStep(model, device)
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for batch, (inputs, labels) in enumerate(loader, start=1):
        inputs, targets = step.inputs(inputs), labels.to(device, non_blocking=True)
        with step.autocast():
            logits = model(inputs)  # (B, num_classes)
            loss = checked_loss(loss_fn, logits, targets, labels)
        loss_value = finite(loss.item(), epoch, batch)  # NaN/inf: stop, naming the batch
        optimizer.zero_grad(set_to_none=True)
        step.backward(loss)  # loss.backward()
        step.update(optimizer)  # optimizer.step()
        total_loss += loss_value * len(labels)  # weight by batch size: the last batch may be short
        correct += (logits.argmax(1) == targets).sum().item()
        seen += len(labels)
        if bar is not None:
            bar.update(1)
    return _means(loader, total_loss, correct, seen, "train_one_epoch: the training loader")


def evaluate(
    model: nn.Module, loader: DataLoader, loss_fn=None, device=None, *,
    dtype: str = "fp32", fold_batchnorm: bool | None = None, **renamed,
) -> dict[str, float]:  # fmt: skip
    """Loss and accuracy over `loader` in eval mode, without gradients.

    dtype, fold_batchnorm: how the forward pass runs (`tlcourse.inference`). By default the
    model runs as it is below 256 samples and through its folded copy from there on: the same
    numbers within float rounding, faster on cpu and cuda. fold_batchnorm=False: the model as
    it is, the hand loop's numbers to the last bit.

    Example:
        >>> evaluate(model, loaders["test"])
        {'loss': ..., 'accuracy': ...}
    """
    dtype, fold_batchnorm = renamed_options("evaluate", renamed, dtype, fold_batchnorm)
    device = place_model(model, device)  # a given device: the model moves there, like fit
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    model.eval()
    forward = FrozenForward(model, device, dtype, fold_batchnorm, loader_samples(loader))
    total_loss, correct, seen = 0.0, 0, 0
    with torch.inference_mode():
        for inputs, labels in loader:
            targets = labels.to(device, non_blocking=True)
            logits = forward(inputs).float()  # (B, num_classes); float: bf16/fp16 under autocast
            total_loss += checked_loss(loss_fn, logits, targets, labels).item() * len(labels)
            correct += (logits.argmax(1) == targets).sum().item()
            seen += len(labels)
    return _means(loader, total_loss, correct, seen, "evaluate: the loader")


def fit(
    model: nn.Module, train_loader: DataLoader, val_loader: DataLoader | None = None, *,
    epochs: int = 5, optimizer: torch.optim.Optimizer | None = None, lr: float = 1e-3,
    loss_fn: nn.Module | None = None, device: torch.device | str | None = None, scheduler=None,
    amp: bool = False, channels_last: bool = False, clip_grad: float | None = None,  # steps
    fold_batchnorm: bool = False,  # validation through the folded copy
    patience: int | None = None, restore_best: bool = True,  # when to stop, what to keep
    checkpoint: str | Path | None = None, resume_from: str | Path | None = None,
    progress: bool = True,
) -> History:  # fmt: skip
    """Train `model` for `epochs`, validating after each; keeps the best weights. Returns History.

    Args:
        optimizer: default Adam(lr) over the parameters with `requires_grad` only.
        device: default `get_device()`; the model is moved there, batches follow.
        scheduler: stepped once per epoch (ReduceLROnPlateau gets the validation loss).
        amp, channels_last, clip_grad: mixed precision, NHWC memory, clipping (train_step.py).
            channels_last is off by default, from measurements (`make bench`, section 8): it
            made an epoch through Lite0's last blocks 1.45x faster on 2 CPU cores (1.11x for
            the demo's tail) but none on a GPU (0.94x), and it converts the model's weights
            in place. Turn it on to fine-tune convolutions on a CPU.
        fold_batchnorm: validate through the folded copy (`tlcourse.inference`): faster on a
            conv net with a big validation set, the numbers equal within float rounding but not
            bit for bit. Off by default: validation runs the model as it is, as the hand loop
            of lesson 02 does, and gives its numbers exactly.
        patience: stop after this many epochs without a better validation accuracy.
        restore_best: load the best epoch's weights at the end (by val accuracy, else train loss).
        checkpoint: file written after every epoch; `resume_from` continues from one.
        progress: a tqdm bar and epoch lines (report.py); False for silence.

    Ctrl-C, a NaN loss or CUDA out-of-memory stop cleanly (history, best weights kept); under
    `torchrun --nproc_per_node=N` the same call trains as N DDP processes (lesson 09).

    Example:
        >>> history = fit(model, loaders["train"], loaders["val"], epochs=3)  # doctest: +ELLIPSIS
        epoch   1/3  train loss ... acc ...  val loss ... acc ...  ...s
        ...
        completed; best epoch ... (its weights restored)
    """
    check_epochs(epochs)
    device = distributed.setup(get_device(str(device) if device is not None else None))
    model.to(device)  # under torchrun: joined the process group, this process's device
    optimizer = require_trainable(optimizer or _adam_over_trainable(model, lr))
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    step = TrainStep(model, device, amp, channels_last, clip_grad)  # before DDP wraps the model
    # torchrun: a DDP model and loaders reading this process's share; else all unchanged
    train_model, train_loader, val_loader = distributed.prepare(
        model, device, train_loader, val_loader
    )
    history, best_score, best_state = History(), -math.inf, None
    if resume_from is not None:
        saved = resume_fit(resume_from, model, optimizer, scheduler, train_loader)
        history = History(**saved["history"])
        best_score, best_state = saved["best_score"], saved["best_state"]
    start, history.stop_reason = len(history.train_loss), "completed"
    batches = (epochs - start) * len(train_loader)
    with FitReport(progress and distributed.is_main(), batches) as report, stop_cleanly(history):
        for epoch in range(start + 1, epochs + 1):
            started = time.perf_counter()
            distributed.set_epoch(train_loader, epoch)  # DDP: a new shuffle every epoch
            train = train_one_epoch(
                train_model, train_loader, loss_fn, optimizer, device,
                step=step, epoch=epoch, bar=report.bar,
            )  # fmt: skip
            # no device: the model is already there (moving it again each epoch costs time)
            val = None
            if val_loader is not None:
                val = evaluate(model, val_loader, loss_fn, fold_batchnorm=fold_batchnorm)
            lr_now, seconds = optimizer.param_groups[0]["lr"], time.perf_counter() - started
            history.record(train, val, lr_now, seconds)
            _step_scheduler(scheduler, val or train)
            score = val["accuracy"] if val else -train["loss"]  # higher is better
            if score > best_score:
                best_score, history.best_epoch = score, epoch
                best_state = state_on_cpu(model)  # a copy: training goes on changing the model
            report.epoch(history, epoch, epochs)
            if checkpoint is not None:
                save_fit_state(checkpoint, model, optimizer, scheduler, history,
                               best_score, best_state, train_loader)  # fmt: skip
            if patience is not None and epoch - history.best_epoch >= patience:
                history.stop_reason = f"early stopping: {patience} epochs, no better val accuracy"
                break
    restored = restore_best and best_state is not None
    if restored:
        model.load_state_dict(best_state)
    report.finish(history, restored, distributed.is_main())
    return history


def predict(
    model: nn.Module, inputs: torch.Tensor | DataLoader, device=None, batch_size: int = 256, *,
    dtype: str = "fp32", fold_batchnorm: bool | None = None, **renamed,
) -> torch.Tensor:  # fmt: skip
    """Probabilities (N, num_classes) on the CPU for a batch (N, C, H, W), one image or a loader.

    dtype, fold_batchnorm: as in `evaluate` (the folded copy from 256 images on).

    Example:
        >>> predict(model, image).shape  # one (C, H, W) image: a batch of one, here 2 classes
        torch.Size([1, 2])
    """
    dtype, fold_batchnorm = renamed_options("predict", renamed, dtype, fold_batchnorm)
    device = place_model(model, device)  # a given device: the model moves there, like fit
    if isinstance(inputs, torch.Tensor):
        inputs = inputs[None] if inputs.ndim == 3 else inputs  # one image -> a batch of one
        samples, batches = len(inputs), inputs.split(batch_size)
    else:
        samples, batches = loader_samples(inputs), (batch[0] for batch in inputs)
    model.eval()
    forward = FrozenForward(model, device, dtype, fold_batchnorm, samples)
    with torch.inference_mode():
        return torch.cat([forward(x).float().softmax(1).cpu() for x in batches])


def _means(loader, total_loss: float, correct: int, seen: int, what: str) -> dict[str, float]:
    """Sample-weighted means; under DDP the sums of all processes first (else a no-op)."""
    total_loss, correct, seen = distributed.global_sums(loader, total_loss, correct, seen)
    if seen == 0:
        raise ValueError(
            f"{what} is empty (0 batches): check len(dataset) and batch_size "
            "(drop_last=True drops a short last batch)"
        )
    return {"loss": total_loss / seen, "accuracy": correct / seen}


def _adam_over_trainable(model: nn.Module, lr: float) -> torch.optim.Optimizer | None:
    trainable = [p for p in model.parameters() if p.requires_grad]  # frozen ones: no state
    return torch.optim.Adam(trainable, lr=lr) if trainable else None


def _step_scheduler(scheduler, metrics: dict[str, float]) -> None:
    """Once per epoch; ReduceLROnPlateau needs the loss it watches (validation, else training)."""
    if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        scheduler.step(metrics["loss"])
    elif scheduler is not None:
        scheduler.step()
