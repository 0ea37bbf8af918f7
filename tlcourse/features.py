"""Feature caching: run the frozen part of a model once, then train the head on stored features.

Notebook 02 and the demo. With a frozen backbone, every epoch would compute the same backbone
outputs again; computing them once makes each head epoch milliseconds instead of minutes.

Example:
    >>> train_features = extract_features(model, loaders["train"])   # (N, 1280) + labels
    >>> head = get_head(model)[1]
    >>> fit(head, DataLoader(train_features, batch_size=64, shuffle=True), epochs=20)
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse.models import get_head


def extract_features(
    model: nn.Module, loader: DataLoader, layer: str | None = None, device=None
) -> TensorDataset:
    """Inputs of `layer` (default: the head) for every sample of `loader`, as (features, label).

    Runs in eval mode (BatchNorm uses its running stats, dropout off) under `torch.no_grad`, not
    `inference_mode`, so the cached tensors can feed a trainable head. Features live on the CPU.

    Args:
        layer: dotted module name whose input is cached, e.g. "features.7" to fine-tune the
            layers from there on; default the head found by `get_head`.

    Example:
        >>> features = extract_features(model, loaders["train"])
        >>> x, y = features[0]  # x (1280,) for Lite0: what its final Linear layer receives
    """
    path = layer or get_head(model)[0]
    try:
        module = model.get_submodule(path)
    except AttributeError:
        names = ", ".join(name for name, _ in model.named_children())
        raise ValueError(
            f"extract_features: {type(model).__name__} has no layer {path!r}; top-level: {names}"
        ) from None
    device = torch.device(device) if device else next(model.parameters()).device
    captured: list[torch.Tensor] = []
    hook = module.register_forward_pre_hook(
        lambda _module, args: captured.append(args[0].detach().cpu())
    )
    was_training = model.training
    labels = []
    try:
        model.eval()
        with torch.no_grad():
            for inputs, targets in loader:
                model(inputs.to(device))
                labels.append(targets)
    finally:
        hook.remove()
        model.train(was_training)
    if not captured:
        raise ValueError(
            f"extract_features: layer {path!r} was never called (empty loader or unused layer)"
        )
    return TensorDataset(torch.cat(captured), torch.cat(labels))
