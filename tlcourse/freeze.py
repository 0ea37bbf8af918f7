"""Freezing and unfreezing parameters, BatchNorm in eval mode, per-layer learning rates.

Notebooks 02-03. Freezing is nothing more than `param.requires_grad = False`; these helpers do it
by name pattern and report trainable vs total parameters so the surgery is visible.

Example:
    >>> model = freeze(torchvision.models.resnet18())
    trainable 0 / 11,689,512 parameters (0.0 %)
    >>> model = unfreeze(model, "layer4", "fc")
    trainable 8,906,728 / 11,689,512 parameters (76.2 %)
    note: 5 BatchNorm layers are trainable and will update their running statistics in ...
"""

from __future__ import annotations

import difflib
import fnmatch

from torch import nn
from torch.utils.hooks import RemovableHandle


def _require_module(model: object, caller: str) -> nn.Module:
    if not isinstance(model, nn.Module):
        raise TypeError(f"{caller}() expects an nn.Module (a model), got {type(model).__name__}")
    return model


def matches(name: str, pattern: str) -> bool:
    """True if parameter `name` lies under `pattern` ("layer4" matches "layer4.0.conv1.weight")

    Glob patterns work too: "features.*.block.2*".

    Example:
        >>> matches("layer4.0.conv1.weight", "layer4")
        True
    """
    if any(ch in pattern for ch in "*?["):
        return fnmatch.fnmatchcase(name, pattern)
    return name == pattern or name.startswith(pattern + ".")


def count_params(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) number of parameter values.

    Example:
        >>> count_params(torchvision.models.resnet18())
        (11689512, 11689512)
    """
    _require_module(model, "count_params")
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def trainable_names(model: nn.Module) -> list[str]:
    """Names of the parameters that will be trained (`requires_grad=True`).

    Example:
        >>> model = freeze(torchvision.models.resnet18(), verbose=False)
        >>> head = tl.replace_head(model, num_classes=5, verbose=False)
        >>> trainable_names(model)
        ['fc.weight', 'fc.bias']
    """
    _require_module(model, "trainable_names")
    return [name for name, p in model.named_parameters() if p.requires_grad]


def _report(model: nn.Module, verbose: bool) -> nn.Module:
    if verbose:
        trainable, total = count_params(model)
        print(
            f"trainable {trainable:,} / {total:,} parameters "
            f"({100 * trainable / max(total, 1):.1f} %)"
        )
    return model


def freeze(model: nn.Module, verbose: bool = True) -> nn.Module:
    """Set `requires_grad = False` on every parameter; returns the model.

    Example:
        >>> model = freeze(torchvision.models.resnet18())
        trainable 0 / 11,689,512 parameters (0.0 %)
    """
    for param in _require_module(model, "freeze").parameters():
        param.requires_grad = False
    return _report(model, verbose)


def unfreeze(model: nn.Module, *patterns: str, verbose: bool = True) -> nn.Module:
    """Make parameters under the named modules trainable (all of them if no pattern is given).

    A pattern that matches no parameter raises ValueError listing the model's top-level modules.
    The course's BatchNorm policy (measured in lesson 03): pretrained BatchNorm layers stay in
    eval mode with frozen weights, in thawed blocks too, so call `freeze_batchnorm(model)` next;
    with `verbose`, unfreeze reminds you when it thawed BatchNorm weights.

    Example:
        >>> model = freeze(torchvision.models.resnet18(), verbose=False)
        >>> model = unfreeze(model, "layer4", "fc"); handles = freeze_batchnorm(model)
        trainable 8,906,728 / 11,689,512 parameters (76.2 %)
        note: 5 BatchNorm layers are trainable ...: tl.freeze_batchnorm(model)
    """
    named = list(_require_module(model, "unfreeze").named_parameters())
    for pattern in patterns:
        if not any(matches(name, pattern) for name, _ in named):
            raise ValueError(
                f"unfreeze: pattern {pattern!r} matches no parameter. {_hint(model, pattern)}"
            )
    for name, param in named:
        if not patterns or any(matches(name, p) for p in patterns):
            param.requires_grad = True
    _report(model, verbose)
    thawed = [m for m in model.modules() if _is_batchnorm(m) and m.weight is not None]
    thawed = [m for m in thawed if m.weight.requires_grad and not _kept_in_eval(m)]
    if verbose and thawed:
        print(
            f"note: {len(thawed)} BatchNorm layers are trainable and will update their running "
            "statistics in model.train(); the course keeps them frozen: tl.freeze_batchnorm(model)"
        )
    return model


def _hint(model: nn.Module, pattern: str) -> str:
    top = [name for name, _ in model.named_children()]
    close = difflib.get_close_matches(pattern, [n for n, _ in model.named_modules() if n], n=3)
    return (
        f"Did you mean {', '.join(close)}? " if close else ""
    ) + f"Top-level modules: {', '.join(top)}"


def _keep_eval(module: nn.Module, args: tuple) -> None:
    module.eval()  # runs before every forward: model.train() cannot switch this layer back


def _is_batchnorm(module: nn.Module) -> bool:
    return isinstance(module, nn.modules.batchnorm._BatchNorm)


def _kept_in_eval(module: nn.Module) -> bool:
    return _keep_eval in module._forward_pre_hooks.values()


def freeze_batchnorm(model: nn.Module) -> list[RemovableHandle]:
    """Keep every BatchNorm layer in eval mode (running stats fixed) and its weights frozen.

    Why: in `model.train()` a BatchNorm layer overwrites its ImageNet running mean/var with
    statistics of your batches even when its weights are frozen. The course applies this to
    thawed blocks too (lesson 03 measures it: small batches of new data give noisy statistics).
    Calling it again adds no second hook. Returns the new hook handles (`.remove()` undoes).

    Example:
        >>> handles = freeze_batchnorm(model)  # after every unfreeze(...)
        >>> len(handles)  # Lite0 has 49 BatchNorm layers
        49
    """
    handles = []
    for module in _require_module(model, "freeze_batchnorm").modules():
        if _is_batchnorm(module):
            module.eval()
            for param in module.parameters():
                param.requires_grad = False
            if not _kept_in_eval(module):
                handles.append(module.register_forward_pre_hook(_keep_eval))
    return handles


def param_groups(
    model: nn.Module, lrs: dict[str, float], default_lr: float | None = None
) -> list[dict]:
    """Optimizer parameter groups with one learning rate per module pattern (discriminative LRs).

    Only trainable parameters are included; each belongs to the first pattern it matches.
    Trainable parameters matching no pattern get `default_lr`, or raise ValueError if it is None.

    Example:
        >>> model = freeze(torchvision.models.resnet18(), verbose=False)
        >>> model = unfreeze(model, "layer4", "fc", verbose=False)
        >>> optimizer = torch.optim.Adam(param_groups(model, {"fc": 1e-3, "layer4": 1e-4}))
        >>> [(group["name"], group["lr"]) for group in optimizer.param_groups]
        [('fc', 0.001), ('layer4', 0.0001)]
    """
    groups = {pattern: [] for pattern in lrs}
    rest = []
    for name, param in _require_module(model, "param_groups").named_parameters():
        if param.requires_grad:
            pattern = next((p for p in lrs if matches(name, p)), None)
            (groups[pattern] if pattern else rest).append((name, param))
    empty = [p for p, members in groups.items() if not members]
    if empty:
        raise ValueError(
            f"param_groups: {empty} match no trainable parameter (unfreeze them first?)"
        )
    if rest and default_lr is None:
        names = ", ".join(n for n, _ in rest[:3])
        raise ValueError(
            f"{len(rest)} trainable parameters ({names}, ...) match no pattern: "
            "add a pattern for them or pass default_lr="
        )
    result = [
        {"params": [p for _, p in members], "lr": lrs[pattern], "name": pattern}
        for pattern, members in groups.items()
    ]
    if rest:
        result.append({"params": [p for _, p in rest], "lr": default_lr, "name": "default"})
    return result
