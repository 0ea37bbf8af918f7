"""How each training step runs: mixed precision, memory layout and gradient clipping, set once.

`fit(amp=True, channels_last=True, clip_grad=1.0)` builds one `TrainStep` and the loop calls it in
four places; with the defaults each call is the plain PyTorch line it replaces. Like nanoGPT,
the GradScaler is created once with `enabled=...`, so the loop has no `if amp:` branches.

- amp: bf16 autocast on the CPU, fp16 on cuda (with a GradScaler: small fp16 gradients would
  underflow to 0 without it) and on mps. Lesson 09 measures it.
- channels_last: the training model and its image batches stored as NHWC (the model converted in
  place; faster convolutions on CPUs, `make bench`). Only training: inference has its own
  option, `fold_batchnorm` (inference.py).
- clip_grad: rescale the gradients so their global norm is at most this (after unscaling).

Example:
    >>> step = TrainStep(model, "cpu", amp=True)
    >>> with step.autocast():
    ...     loss = nn.functional.cross_entropy(model(step.inputs(images)), labels)
    >>> optimizer.zero_grad(); step.backward(loss); step.update(optimizer)
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


class TrainStep:
    """The step options of one fit: autocast dtype, GradScaler, memory format, clipping.

    Example:
        >>> step = TrainStep(model, "cpu")  # all off: plain fp32 steps
        >>> step.amp, step.channels_last, step.clip_grad
        (False, False, None)
    """

    def __init__(
        self,
        model: nn.Module,
        device: torch.device | str,
        amp: bool = False,
        channels_last: bool = False,
        clip_grad: float | None = None,
    ):
        device = torch.device(device)  # "cpu" and torch.device("cpu") alike
        self.model, self.device, self.amp = model, device, amp
        self.channels_last, self.clip_grad = channels_last, clip_grad
        self.autocast_dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
        # fp16 gradients need loss scaling on cuda; disabled, every scaler call is a pass-through
        self.scaler = torch.amp.GradScaler("cuda", enabled=amp and device.type == "cuda")
        if channels_last:  # before DDP wraps the model: DDP's gradient buckets follow the layout
            model.to(memory_format=torch.channels_last)

    def inputs(self, inputs: torch.Tensor) -> torch.Tensor:
        """The batch on the device (B, C, H, W), stored NHWC when channels_last is on."""
        inputs = inputs.to(self.device, non_blocking=True)
        if self.channels_last and inputs.ndim == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        return inputs

    def autocast(self):
        """Mixed-precision forward pass; a free `nullcontext` when amp is off."""
        if not self.amp:  # nullcontext: ~10x cheaper per batch than autocast(enabled=False)
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.autocast_dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """`loss.backward()`, with the loss scaled first when fp16 needs it."""
        self.scaler.scale(loss).backward()

    def update(self, optimizer: torch.optim.Optimizer) -> None:
        """`optimizer.step()`, after unscaling and clipping the gradients when asked."""
        if self.clip_grad:
            self.scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad)
        self.scaler.step(optimizer)  # skips the step if fp16 gradients overflowed to inf/NaN
        self.scaler.update()
