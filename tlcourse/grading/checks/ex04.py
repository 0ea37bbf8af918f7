"""Exercise 4: optimizer groups hold exactly the trainable parameters at the right LRs."""

from __future__ import annotations

import torch
import torchvision
from torch import nn

from tlcourse.freeze import matches, trainable_names
from tlcourse.grading.checks.common import (
    FUNCTION,
    MODULE,
    listing,
)
from tlcourse.grading.registry import NotYet, Spec, call_learner, exercise
from tlcourse.models import get_head, load_pretrained

EX04 = exercise(
    __name__,
    "Optimizer: trainable parameters, head/body LRs",
    {
        "make_optimizer": Spec(FUNCTION, "your function make_optimizer(model)", "make_optimizer"),
        "model": Spec(MODULE, "the partly frozen Lite0 of the notebook", "model"),
        "optimizer": Spec((torch.optim.Optimizer,), "your optimizer for model", "optimizer"),
    },
    summary="an optimizer over trainable parameters only, two learning rates",
    weights="Lite0 real",
)
HEAD_LR, BODY_LR = 1e-3, 1e-4


def _check_groups(model: nn.Module, optimizer: torch.optim.Optimizer, what: str) -> str:
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise NotYet(f"{what}: expected a torch.optim optimizer, got {type(optimizer).__name__}")
    names = {id(p): n for n, p in model.named_parameters()}
    lr_of: dict[str, list[float]] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            lr_of.setdefault(names.get(id(p), "<not in the model>"), []).append(group["lr"])
    trainable = set(trainable_names(model))
    frozen = sorted(n for n in lr_of if n not in trainable)
    missing = sorted(trainable - set(lr_of))
    twice = sorted(n for n, lrs in lr_of.items() if len(lrs) > 1)
    if frozen or missing or twice:
        raise NotYet(
            f"{what}: the optimizer must hold each trainable parameter once and nothing frozen; "
            + listing(("frozen but in it", frozen), ("missing", missing), ("twice", twice))
        )
    head = get_head(model)[0]
    wrong = {
        n: lrs[0]
        for n, lrs in lr_of.items()
        if abs(lrs[0] - (HEAD_LR if matches(n, head) else BODY_LR)) > 1e-12
    }
    if wrong:
        raise NotYet(f"{what}: wrong learning rates {dict(list(wrong.items())[:3])}")
    return f"{what}: {len(lr_of)} tensors"


@EX04.check(
    f"optimizer: exactly the trainable parameters of model, head at {HEAD_LR:g}, the rest at "
    f"{BODY_LR:g}",
    points=4,
    needs=("model", "optimizer"),
    hint="tl.param_groups (a head pattern at HEAD_LR, default_lr for the rest) skips frozen ones.",
)
def _ex04_notebook(submitted: dict) -> str:
    return _check_groups(submitted["model"], submitted["optimizer"], "optimizer")


def _resnet_layer4() -> nn.Module:
    model = torchvision.models.resnet18(num_classes=4)
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(("layer4.", "fc."))
    return model


def _lite_head_only() -> nn.Module:
    model = load_pretrained("efficientnet_lite0", weights=None)
    model.requires_grad_(False)
    model.classifier[1] = nn.Linear(1280, 3)
    return model


@EX04.check(
    "make_optimizer works on models it has never seen (ResNet18 layer4+fc; a head-only Lite0)",
    points=6,
    needs=("make_optimizer",),
    hint="Find the head with tl.get_head(model); put only p.requires_grad parameters in groups.",
)
def _ex04_function(submitted: dict) -> str:
    details = []
    for what, build in (("ResNet18", _resnet_layer4), ("head-only Lite0", _lite_head_only)):
        model = build()
        optimizer = call_learner(submitted["make_optimizer"], model, name="make_optimizer")
        details.append(_check_groups(model, optimizer, what))
    return "; ".join(details)
