"""The device-aware training loop: `train_one_epoch`, `evaluate`, `fit` -> `History`, `predict`.

Every notebook trains with `fit`. It is plain PyTorch you can read in one sitting: move each batch
to the device, forward, loss, backward, step; metrics weighted by samples; best weights kept.

Example:
    >>> history = fit(model, loaders["train"], loaders["val"], epochs=5, lr=1e-3)
    >>> history.plot()
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from tlcourse import distributed
from tlcourse.checkpoint import load_checkpoint, restore_rng_state, rng_state, save_checkpoint
from tlcourse.device import get_device, place_model

LINE_SECONDS = 0.5  # fit(progress=True) prints an epoch line at most this often


@dataclass
class History:
    """Per-epoch metrics of one `fit` call (lists ready to plot), and why it stopped."""

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


def _autocast(device: torch.device, amp: bool):
    """bf16 on CPU, fp16 on cuda/mps; a no-op context when amp is False."""
    if not amp:  # nullcontext: ~10x cheaper per batch than autocast(enabled=False)
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
    return torch.autocast(device.type, dtype=dtype, enabled=True)


def _label_problem(labels: torch.Tensor, num_outputs: int) -> str | None:
    """Why `labels` cannot go with a head of `num_outputs` classes, or None if they can."""
    extremes = torch.aminmax(labels)  # one op, not four
    low, high = int(extremes.min), int(extremes.max)
    if low >= 0 and high < num_outputs:
        return None
    return (
        f"label {high if high >= num_outputs else low} "
        f"is outside [0, {num_outputs}) but the model has {num_outputs} outputs: "
        f"use replace_head(model, num_classes=...) with the dataset's class count"
    )


def _loss(loss_fn, logits: torch.Tensor, targets: torch.Tensor, labels: torch.Tensor):
    """`loss_fn(logits, targets)`, with a plain-words error for a label the head cannot output.

    On cuda/mps the (CPU) labels are checked before the loss: there an out-of-range label is an
    asynchronous device-side assert. On the CPU the loss itself raises ("Target 5 is out of
    bounds"), so the check runs only then: no cost per batch.
    """
    if targets.device.type != "cpu" and (problem := _label_problem(labels, logits.shape[1])):
        raise ValueError(problem)
    try:
        return loss_fn(logits, targets)
    except (IndexError, RuntimeError):
        if problem := _label_problem(labels, logits.shape[1]):
            raise ValueError(problem) from None
        raise


def train_one_epoch(
    model,
    loader,
    loss_fn,
    optimizer,
    device,
    amp=False,
    scaler=None,
    clip_grad=None,
    epoch=1,
    bar=None,
    channels_last=False,
) -> dict[str, float]:
    """One pass over `loader` in train mode. Returns sample-weighted {"loss", "accuracy"}."""
    model.train()
    total_loss, correct, seen = 0.0, 0, 0
    for batch, (inputs, labels) in enumerate(loader, start=1):
        inputs = inputs.to(device, non_blocking=True)
        if channels_last and inputs.ndim == 4:  # (B, C, H, W) stored as B, H, W, C in memory
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        targets = labels.to(device, non_blocking=True)
        with _autocast(device, amp):
            logits = model(inputs)  # (B, num_classes)
            loss = _loss(loss_fn, logits, targets, labels)
        loss_value = loss.item()  # read once: the finite check and the epoch sum
        if not math.isfinite(loss_value):
            raise FloatingPointError(
                f"loss is {loss_value} at epoch {epoch}, batch {batch}: "
                "lower the learning rate or check the inputs for NaN"
            )
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:  # fp16 on cuda: scale the loss so small gradients do not underflow
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)
        else:
            loss.backward()
        if clip_grad:
            nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        total_loss += loss_value * len(labels)  # weight by batch size: the last batch may be short
        correct += (logits.argmax(1) == targets).sum().item()
        seen += len(labels)
        if bar is not None:
            bar.update(1)
    # DDP: add the sums of all processes (a no-op in one process)
    total_loss, correct, seen = distributed.global_sums(loader, total_loss, correct, seen)
    if seen == 0:
        raise ValueError(
            "train_one_epoch: the training loader is empty (0 batches): check len(dataset) "
            "and batch_size (drop_last=True drops a short last batch)"
        )
    return {"loss": total_loss / seen, "accuracy": correct / seen}


def evaluate(model: nn.Module, loader: DataLoader, loss_fn=None, device=None) -> dict[str, float]:
    """Loss and accuracy over `loader` in eval mode, without gradients.

    Example:
        >>> evaluate(model, loaders["test"])
        {'loss': 0.25, 'accuracy': 0.93}
    """
    device = place_model(model, device)  # a given device: the model moves there, like fit
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    model.eval()
    total_loss, correct, seen = 0.0, 0, 0
    with torch.inference_mode():
        for inputs, labels in loader:
            inputs = inputs.to(device, non_blocking=True)
            targets = labels.to(device, non_blocking=True)
            logits = model(inputs)
            total_loss += _loss(loss_fn, logits, targets, labels).item() * len(labels)
            correct += (logits.argmax(1) == targets).sum().item()
            seen += len(labels)
    total_loss, correct, seen = distributed.global_sums(loader, total_loss, correct, seen)  # DDP
    if seen == 0:
        raise ValueError("evaluate: the loader is empty (0 batches): check len(dataset)")
    return {"loss": total_loss / seen, "accuracy": correct / seen}


def predict(
    model: nn.Module, inputs: torch.Tensor | DataLoader, device=None, batch_size: int = 256
) -> torch.Tensor:
    """Probabilities (N, num_classes) on the CPU for a batch (N, C, H, W), one image or a loader."""
    device = place_model(model, device)  # a given device: the model moves there, like fit
    if isinstance(inputs, torch.Tensor):
        inputs = inputs[None] if inputs.ndim == 3 else inputs  # one image -> a batch of one
        batches = inputs.split(batch_size)
    else:
        batches = (batch[0] for batch in inputs)
    model.eval()
    with torch.inference_mode():
        return torch.cat([model(x.to(device)).softmax(1).float().cpu() for x in batches])


def fit(
    model: nn.Module,
    train_loader: DataLoader,
    val_loader: DataLoader | None = None,
    *,
    epochs: int = 5,
    optimizer: torch.optim.Optimizer | None = None,
    lr: float = 1e-3,
    loss_fn: nn.Module | None = None,
    device: torch.device | str | None = None,
    scheduler=None,
    amp: bool = False,
    channels_last: bool = False,
    clip_grad: float | None = None,
    patience: int | None = None,
    restore_best: bool = True,
    checkpoint: str | Path | None = None,
    resume_from: str | Path | None = None,
    progress: bool = True,
) -> History:
    """Train `model` for `epochs`, validating after each; keeps the best weights. Returns History.

    Args:
        optimizer: default Adam(lr) over the parameters with `requires_grad` only.
        device: default `get_device()`; the model is moved there, batches follow.
        scheduler: stepped once per epoch (ReduceLROnPlateau gets the validation loss).
        amp: mixed precision (bf16 on CPU, fp16 + GradScaler on cuda, fp16 on mps).
        channels_last: store the model and image batches as NHWC (faster convolutions on
            recent GPUs, best with amp); the numbers stay the same up to float rounding.
        patience: stop after this many epochs without a better validation accuracy.
        restore_best: load the best epoch's weights at the end (by val accuracy, else train loss).
        checkpoint: file written atomically after every epoch; `resume_from` continues from one.
        progress: one tqdm bar for the whole fit plus a line per epoch (at most one every
            LINE_SECONDS; the last epoch always: History has them all); False for silence.

    Ctrl-C, a NaN loss or CUDA out-of-memory stop the fit cleanly: history and best weights kept.
    Launched by `torchrun --nproc_per_node=N`, the same call trains as N DDP processes
    (`tlcourse/distributed.py`): `batch_size` is then per process; rank 0 prints and saves.

    Example:
        >>> history = fit(model, loaders["train"], loaders["val"], epochs=3)
    """
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs={epochs!r}: must be a whole number >= 1")
    device = get_device(str(device)) if device is not None else get_device()
    device = distributed.setup(device)  # under torchrun: join the process group (else no-op)
    model.to(device)
    if channels_last:  # before DDP wraps the model: DDP's gradient buckets follow the layout
        model.to(memory_format=torch.channels_last)
    if optimizer is None:
        trainable = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.Adam(trainable, lr=lr) if trainable else None
    if optimizer is None or not any(
        p.requires_grad for g in optimizer.param_groups for p in g["params"]
    ):
        raise ValueError(
            "nothing to train: every parameter is frozen. Call "
            "tl.unfreeze(model, ...) or tl.replace_head(...) first"
        )
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    scaler = torch.amp.GradScaler("cuda") if amp and device.type == "cuda" else None
    history, start, best_score, best_state = History(), 0, -math.inf, None
    # Under torchrun (tlcourse/distributed.py): a DDP model, each process reading its own share
    # of the data; only rank 0 prints and saves. One process: everything comes back unchanged.
    train_model, train_loader, val_loader = distributed.prepare(
        model, device, train_loader, val_loader
    )
    progress = progress and distributed.is_main()
    if resume_from is not None:
        state = load_checkpoint(resume_from, model)
        optimizer.load_state_dict(state["optimizer"])
        if scheduler is not None and state.get("scheduler"):
            scheduler.load_state_dict(state["scheduler"])
        history, start = History(**state["history"]), state["epoch"]
        best_score, best_state = state["best_score"], state["best_state"]
        restore_rng_state(state["rng"], train_loader.generator)
    bar = tqdm(
        total=(epochs - start) * len(train_loader), disable=not progress, desc="fit", leave=False
    )
    history.stop_reason = "completed"
    printed = -math.inf  # when the last epoch line was printed
    try:
        for epoch in range(start + 1, epochs + 1):
            started = time.perf_counter()
            distributed.set_epoch(train_loader, epoch)  # DDP: a new shuffle every epoch
            train = train_one_epoch(
                train_model,
                train_loader,
                loss_fn,
                optimizer,
                device,
                amp,
                scaler,
                clip_grad,
                epoch,
                bar,
                channels_last,
            )
            # no device: the model is already there (moving it again each epoch costs time)
            val = evaluate(model, val_loader, loss_fn) if val_loader is not None else None
            history.record(
                train, val, optimizer.param_groups[0]["lr"], time.perf_counter() - started
            )
            if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
                scheduler.step((val or train)["loss"])
            elif scheduler is not None:
                scheduler.step()
            score = val["accuracy"] if val else -train["loss"]
            if score > best_score:
                best_score, history.best_epoch = score, epoch
                best_state = {
                    k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()
                }
            # a line per epoch, but at most every LINE_SECONDS: 30 fast epochs are not 30 lines
            if progress and (epoch == epochs or time.perf_counter() - printed >= LINE_SECONDS):
                tqdm.write(_epoch_line(history, epoch, epochs))
                printed = time.perf_counter()
            if checkpoint is not None and distributed.is_main():
                save_checkpoint(
                    checkpoint,
                    model,
                    optimizer=optimizer.state_dict(),
                    scheduler=scheduler.state_dict() if scheduler else None,
                    epoch=epoch,
                    history=asdict(history),
                    best_score=best_score,
                    best_state=best_state,
                    rng=rng_state(train_loader.generator),
                )
            if patience is not None and epoch - history.best_epoch >= patience:
                history.stop_reason = (
                    f"early stopping: no better val accuracy for {patience} epochs"
                )
                break
    except KeyboardInterrupt:
        history.stop_reason = f"interrupted (Ctrl-C) after {len(history.train_loss)} epochs"
    except FloatingPointError as error:
        history.stop_reason = str(error)
    except torch.cuda.OutOfMemoryError:
        history.stop_reason = (
            "out of memory: use a smaller batch_size or image_size, "
            "or amp=True; torch.cuda.empty_cache() frees what is left"
        )
    finally:
        bar.close()
    if restore_best and best_state is not None:
        model.load_state_dict(best_state)
    if progress or (history.stop_reason != "completed" and distributed.is_main()):
        restored = " (its weights restored)" if restore_best and best_state is not None else ""
        print(f"{history.stop_reason}; best epoch {history.best_epoch}{restored}")
    return history


def _epoch_line(history: History, epoch: int, epochs: int) -> str:
    line = (
        f"epoch {epoch:>3}/{epochs}  train loss {history.train_loss[-1]:.4f} "
        f"acc {history.train_accuracy[-1]:.3f}"
    )
    if not math.isnan(history.val_loss[-1]):
        line += f"  val loss {history.val_loss[-1]:.4f} acc {history.val_accuracy[-1]:.3f}"
    return line + f"  {history.seconds[-1]:.1f}s"
