"""Exercise 2: freeze + new head, on the learner's ResNet18 and on models the grader builds."""

from __future__ import annotations

from collections.abc import Callable

import torch
import torchvision
from torch import nn

from tlcourse.grading.checks.common import (
    FUNCTION,
    MODULE,
    expect_trainable,
)
from tlcourse.grading.data import (
    changed_tensors,
    model_outputs,
    pretrained_lite0_state,
)
from tlcourse.grading.registry import NotYet, Spec, call_learner, exercise
from tlcourse.models import get_head, load_pretrained

EX02 = exercise(
    __name__,
    "Feature extraction: freeze, replace the head",
    {
        "make_feature_extractor": Spec(
            FUNCTION,
            "your function make_feature_extractor(model, num_classes)",
            "make_feature_extractor",
        ),
        "model": Spec(MODULE, "your ResNet18 for 5 classes", "model"),
    },
    summary="feature extraction: freeze, new head",
    weights="ResNet18 random (offline); Lite0 real",
)


# torchvision's ResNets by (block type, blocks per stage): the name a learner knows them by
RESNETS = {
    ("BasicBlock", (2, 2, 2, 2)): "ResNet18",
    ("BasicBlock", (3, 4, 6, 3)): "ResNet34",
    ("Bottleneck", (3, 4, 6, 3)): "ResNet50",
    ("Bottleneck", (3, 4, 23, 3)): "ResNet101",
    ("Bottleneck", (3, 8, 36, 3)): "ResNet152",
}
STAGES = ("layer1", "layer2", "layer3", "layer4")


def resnet18_architecture(model: nn.Module) -> str:
    """Nothing wrong if `model` is built as torchvision's ResNet18: the stem conv1/bn1, four
    stages of 2 BasicBlocks each and a head fed 512 features; else NotYet naming what it is.

    Example:
        >>> resnet18_architecture(torchvision.models.resnet50())
        Traceback (most recent call last):
        tlcourse.grading.registry.NotYet: model is a ResNet50 (Bottleneck blocks, [3, 4, 6, 3] ...)
    """
    names = [n for n, _ in model.named_children()]
    if names[:2] != ["conv1", "bn1"] or "fc" not in names or not all(s in names for s in STAGES):
        raise NotYet(f"model is not a ResNet (top-level modules {names})")
    blocks = [list(getattr(model, stage).children()) for stage in STAGES]
    kinds = {type(b).__name__ for stage in blocks for b in stage}
    if not kinds <= {"BasicBlock", "Bottleneck"} or len(kinds) != 1:
        raise NotYet(f"model's stages hold {sorted(kinds)}; a ResNet18 has BasicBlocks only")
    kind, counts = kinds.pop(), tuple(len(stage) for stage in blocks)
    fed = getattr(getattr(model, "fc", None), "in_features", None)
    if (kind, counts) != ("BasicBlock", (2, 2, 2, 2)) or fed != 512:
        found = RESNETS.get((kind, counts), f"ResNet with {list(counts)} blocks per stage")
        raise NotYet(
            f"model is a {found} ({kind} blocks, {list(counts)} per stage, fc fed {fed} "
            "features); the exercise asks for ResNet18 (BasicBlocks, [2, 2, 2, 2] per stage, fc "
            'fed 512 features): model = make_feature_extractor(tl.load_pretrained("resnet18"), 5)'
        )
    return "ResNet18"


def _apply(function: Callable, model: nn.Module, num_classes: int) -> nn.Module:
    result = call_learner(function, model, num_classes, name="make_feature_extractor")
    if not isinstance(result, nn.Module):
        raise NotYet(f"make_feature_extractor returned {type(result).__name__}; return the model")
    return result


def _head_outputs(model: nn.Module, num_classes: int, what: str) -> None:
    logits = model_outputs(model, torch.randn(2, 3, 64, 64), what)
    if logits.shape != (2, num_classes):
        raise NotYet(
            f"{what} gives logits {tuple(logits.shape)} for 2 images; want (2, {num_classes})"
        )


@EX02.check(
    "model: a ResNet18 (BasicBlocks, 2 per stage) whose only trainable parameters are fc.weight "
    "and fc.bias",
    points=2,
    needs=("model",),
    hint='Start from tl.load_pretrained("resnet18") (not another ResNet); freeze first '
    "(tl.freeze or requires_grad_(False)), then replace fc: a new layer trains.",
)
def _ex02_model_frozen(submitted: dict) -> str:
    resnet18_architecture(submitted["model"])
    expect_trainable(submitted["model"], ["fc.weight", "fc.bias"], "model")
    return "fc only"


@EX02.check(
    "model: 5 outputs (logits of shape (2, 5) for 2 images)",
    points=2,
    needs=("model",),
    hint="The new head takes the old head's in_features and gives 5 outputs (tl.replace_head).",
)
def _ex02_model_shape(submitted: dict) -> str:
    _head_outputs(submitted["model"], 5, "model")
    return "(2, 5)"


@EX02.check(
    "make_feature_extractor on pretrained Lite0: backbone unchanged, only the new head trains",
    points=3,
    needs=("make_feature_extractor",),
    hint="Change the model you are given in place (freeze, replace head) and return it.",
)
def _ex02_lite(submitted: dict) -> str:
    model = _apply(submitted["make_feature_extractor"], load_pretrained("efficientnet_lite0"), 3)
    head = get_head(model)[0]
    changed = changed_tensors(model, pretrained_lite0_state(), skip=head)
    if changed:
        raise NotYet(f"{len(changed)} pretrained tensors changed, e.g. {changed[:2]}")
    expect_trainable(model, [f"{head}.weight", f"{head}.bias"], "Lite0")
    _head_outputs(model, 3, "Lite0")
    return f"{head} -> 3 classes"


@EX02.check(
    "make_feature_extractor on a fresh ResNet18 with 7 classes",
    points=3,
    needs=("make_feature_extractor",),
    hint="Use the num_classes argument, and keep the weights of the model you are given.",
)
def _ex02_resnet(submitted: dict) -> str:
    torch.manual_seed(7)
    original = torchvision.models.resnet18()
    before = {k: v.clone() for k, v in original.state_dict().items()}
    model = _apply(submitted["make_feature_extractor"], original, 7)
    changed = changed_tensors(model, before, skip="fc.")
    if changed:
        raise NotYet(f"{len(changed)} backbone tensors changed (a new model?), e.g. {changed[:2]}")
    expect_trainable(model, ["fc.weight", "fc.bias"], "ResNet18")
    _head_outputs(model, 7, "ResNet18")
    return "fc -> 7 classes"
