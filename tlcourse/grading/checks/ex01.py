"""Exercise 1: the model has the real Lite0 weights; head_info works on any classifier."""

from __future__ import annotations

from collections.abc import Callable

import torchvision
from torch import nn

from tlcourse.grading.checks.common import (
    FUNCTION,
    MODULE,
)
from tlcourse.grading.data import (
    changed_tensors,
    pretrained_lite0_state,
)
from tlcourse.grading.registry import NotYet, Spec, call_learner, exercise
from tlcourse.models import get_head, load_pretrained

EX01 = exercise(
    __name__,
    "Load a pretrained model and find its head",
    {
        "model": Spec(MODULE, "the pretrained EfficientNet-Lite0", "model"),
        "head_info": Spec(FUNCTION, "your function head_info(model) -> dict", "head_info"),
    },
    summary="load a pretrained model, find the head, count parameters",
    weights="Lite0 real; VGG16/ResNet18 structure only",
)


def _info(head_info: Callable, model: nn.Module, name: str) -> str:
    path, layer = get_head(model)  # the trusted reference
    expected = {
        "path": path,
        "in_features": layer.in_features,
        "num_params": sum(p.numel() for p in model.parameters()),
    }
    got = call_learner(head_info, model, name="head_info")
    if not isinstance(got, dict):
        raise NotYet(f"head_info({name}) returned {type(got).__name__}; return a dict")
    wrong = {k: got.get(k) for k in expected if got.get(k) != expected[k]}
    if wrong:
        raise NotYet(f"head_info({name}) is wrong for {sorted(wrong)}: got {wrong}")
    return f"{name}: {expected['path']}, {expected['in_features']} in, {expected['num_params']:,}"


@EX01.check(
    "model has the real pretrained ImageNet weights of EfficientNet-Lite0",
    points=2,
    needs=("model",),
    hint="tl.load_pretrained loads the real weights by the model's name; do not change them.",
)
def _ex01_weights(submitted: dict) -> str:
    changed = changed_tensors(submitted["model"], pretrained_lite0_state())
    if changed:
        raise NotYet(f"{len(changed)} tensors differ from the pretrained ones, e.g. {changed[:2]}")
    return f"all {len(pretrained_lite0_state())} tensors match"


@EX01.check(
    "head_info finds the head of EfficientNet-Lite0",
    points=2,
    needs=("head_info",),
    hint="tl.get_head(model) returns (path, layer); count with p.numel() over model.parameters().",
)
def _ex01_lite(submitted: dict) -> str:
    return _info(
        submitted["head_info"], load_pretrained("efficientnet_lite0", weights=None), "lite0"
    )


@EX01.check(
    "head_info finds the head of VGG16 and ResNet18",
    points=3,
    needs=("head_info",),
    hint="The head is the last nn.Linear: classifier[6] in VGG16, fc in ResNet18.",
)
def _ex01_syllabus(submitted: dict) -> str:
    details = [
        _info(submitted["head_info"], torchvision.models.get_model(n), n)
        for n in ("resnet18", "vgg16")
    ]
    return "; ".join(details)


@EX01.check(
    "head_info works on a model it has never seen",
    points=3,
    needs=("head_info",),
    hint="Compute from the model you are given (no hard-coded numbers or names).",
)
def _ex01_unseen(submitted: dict) -> str:
    model = torchvision.models.mobilenet_v3_small(num_classes=7)
    return _info(submitted["head_info"], model, "a MobileNetV3 with 7 classes")
