"""Issue 25, "grade behaviour, not declarations": submissions that skip the work of ex02, ex05,
ex09 and ex11 get a ❌ whose message names what is wrong (each test fails if its cheat passes
again). The solutions' own objects pass in tests/test_grading.py and tests/test_grading_ex11.py.
"""

import math

import pytest
import torch
import torchvision
from torch import nn

from tests.test_grading import (  # noqa: F401 (private_progress: the autouse fixture)
    assert_fails,
    detail,
    grade,
    make_feature_extractor,
    private_progress,
    resnet34,
    sgd,
)


# ------------------------------------------------------------------------------ exercise 2
@pytest.mark.parametrize(
    ("build", "found"),
    [
        (torchvision.models.resnet50, "ResNet50 (Bottleneck blocks"),
        (torchvision.models.resnet34, "ResNet34 (BasicBlock blocks, [3, 4, 6, 3]"),
    ],
    ids=["resnet50", "resnet34"],
)
def test_ex02_another_resnet_than_resnet18_fails(build, found):
    model = make_feature_extractor(build(), 5)  # frozen, 5 outputs: all but the architecture
    title = "model: a ResNet18 (BasicBlocks, 2 per stage)"
    statuses = assert_fails(
        "ex02", [title], make_feature_extractor=make_feature_extractor, model=model
    )
    assert sum(s != "passed" for s in statuses.values()) == 1, statuses  # only that one
    message = detail("ex02", title, make_feature_extractor=make_feature_extractor, model=model)
    assert f"model is a {found}" in message and "the exercise asks for ResNet18" in message


# ------------------------------------------------------------------------------ exercise 5
BATCHNORM = "BatchNorm: every pretrained BatchNorm2d outside layer3/layer4"


def _replace_batchnorm_outside_blocks(model: nn.Module, make) -> nn.Module:
    for name, module in list(model.named_modules()):
        if isinstance(module, nn.BatchNorm2d) and not name.startswith(("layer3", "layer4")):
            parent, _, attr = name.rpartition(".")
            setattr(model.get_submodule(parent) if parent else model, attr, make(module))
    return model


def test_ex05_batchnorm_replaced_by_identity_fails():
    model = _replace_batchnorm_outside_blocks(resnet34(), lambda bn: nn.Identity())
    objects = {"model": model, "optimizer": sgd(model)}
    assert_fails("ex05", [BATCHNORM], **objects)
    message = detail("ex05", BATCHNORM, **objects)
    assert "16 of the 16 pretrained BatchNorm2d layers" in message and "bn1 is Identity" in message


def test_ex05_batchnorm_without_running_statistics_fails():
    def untracked(bn: nn.BatchNorm2d) -> nn.BatchNorm2d:
        new = nn.BatchNorm2d(bn.num_features, track_running_stats=False)
        new.load_state_dict(bn.state_dict(), strict=False)
        new.requires_grad_(False)
        return new

    model = _replace_batchnorm_outside_blocks(resnet34(), untracked)
    objects = {"model": model, "optimizer": sgd(model)}
    assert_fails("ex05", [BATCHNORM], **objects)
    assert "track_running_stats=False" in detail("ex05", BATCHNORM, **objects)


def test_ex05_batchnorm_in_train_mode_with_momentum_zero_fails():
    """momentum=0 keeps the running statistics, but train mode normalises with the batch's."""
    model = resnet34(batchnorm=False)
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            module.momentum = 0.0
            module.requires_grad_(False)
    objects = {"model": model, "optimizer": sgd(model)}
    assert_fails("ex05", [BATCHNORM], **objects)
    assert "in train mode (batch statistics): bn1" in detail("ex05", BATCHNORM, **objects)


@pytest.mark.parametrize("bad", [math.inf, math.nan, 0.0, -1e-3], ids=["inf", "nan", "0", "neg"])
def test_ex05_learning_rate_not_finite_and_positive_fails(bad):
    model = resnet34()
    objects = {"model": model, "optimizer": sgd(model, {"fc": bad, "layer3": 1e-4, "layer4": 1e-4})}
    title = "every LR finite and > 0"
    assert_fails("ex05", [title], **objects)
    message = detail("ex05", title, **objects)
    assert (
        f"the group of fc has learning rate {bad!r}" in message and "finite number > 0" in message
    )


def test_ex05_the_grader_leaves_the_learners_model_as_it_was():
    model = resnet34()
    state = {k: v.clone() for k, v in model.state_dict().items()}
    hooks = sum(len(m._forward_pre_hooks) for m in model.modules())
    grade("ex05", model=model, optimizer=sgd(model))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in state.items())
    assert sum(len(m._forward_pre_hooks) for m in model.modules()) == hooks
