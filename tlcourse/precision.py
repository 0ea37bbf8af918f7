"""How a training step runs fast: mixed precision, channels_last and gradient clipping, set once.

`fit(amp=True, channels_last=True, clip_grad=1.0)` builds one `Precision` and the loop calls it in
three places; with the defaults each call is the plain PyTorch line it replaces. Like nanoGPT,
the GradScaler is created once with `enabled=...`, so the loop has no `if amp:` branches.

- amp: bf16 autocast on the CPU, fp16 on cuda (with a GradScaler: small fp16 gradients would
  underflow to 0 without it) and on mps. Lesson 09 measures it.
- channels_last: model and image batches stored as NHWC (faster convolutions on recent GPUs).
- clip_grad: rescale the gradients so their global norm is at most this (after unscaling).

Example:
    >>> precision = Precision(model, device, amp=True)
    >>> with precision.autocast():
    ...     loss = loss_fn(model(precision.inputs(images)), labels)
    >>> optimizer.zero_grad(); precision.backward(loss); precision.step(optimizer)
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


class Precision:
    """The speed options of one fit: autocast dtype, GradScaler, memory format, clipping.

    Example:
        >>> precision = Precision(model, torch.device("cpu"))  # all off: plain fp32 steps
        >>> precision.step(optimizer)                           # just optimizer.step()
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
        self.dtype = torch.bfloat16 if device.type == "cpu" else torch.float16
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
        return torch.autocast(self.device.type, dtype=self.dtype)

    def backward(self, loss: torch.Tensor) -> None:
        """`loss.backward()`, with the loss scaled first when fp16 needs it."""
        self.scaler.scale(loss).backward()

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """`optimizer.step()`, after unscaling and clipping the gradients when asked."""
        if self.clip_grad:
            self.scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad)
        self.scaler.step(optimizer)  # skips the step if fp16 gradients overflowed to inf/NaN
        self.scaler.update()
