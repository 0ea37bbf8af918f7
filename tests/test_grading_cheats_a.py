"""Issue 25, "grade behaviour, not declarations": submissions that skip the work of ex02, ex05,
ex09 and ex11 get a ❌ whose message names what is wrong (each test fails if its cheat passes
again). The solutions' own objects pass in tests/test_grading.py and tests/test_grading_ex11.py.
"""

import copy
import math

import numpy as np
import pytest
import torch
import torchvision
from sklearn.metrics import roc_curve
from test_grading import (  # noqa: F401 (private_progress: the autouse fixture)
    assert_fails,
    detail,
    grade,
    make_feature_extractor,
    private_progress,
    resnet34,
    sgd,
)
from test_grading_ex11 import EPOCHS, setup, solved, train  # noqa: F401 (fixtures)
from torch import nn

import tlcourse as tl
from tlcourse.grading.checks import ex09
from tlcourse.grading.checks.ex11 import CURVES, grader_curve
from tlcourse.lr_finder import LRFinder, suggest_lr

pytestmark = pytest.mark.slow  # kernels, trainings or subprocesses: not in `make check`


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
BATCHNORM = "BatchNorm: every pretrained BatchNorm2d, in layer3/layer4 too"


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
    assert "16 of the 36 pretrained BatchNorm2d layers" in message and "bn1 is Identity" in message


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


def test_ex05_batchnorm_fixed_only_in_the_frozen_blocks_fails():
    """The policy covers the unfrozen blocks too: BatchNorm in layer3/layer4 left trainable and
    in train mode (its statistics drifting) fails, though everything outside them is fixed."""
    model = resnet34(batchnorm=False)
    for name in ("bn1", "layer1", "layer2"):  # what a learner tried: 10/10 before the fix
        tl.freeze_batchnorm(model.get_submodule(name))
    objects = {"model": model, "optimizer": sgd(model)}
    assert_fails("ex05", [BATCHNORM], **objects)
    message = detail("ex05", BATCHNORM, **objects)
    assert "in train mode (batch statistics): layer3.0.bn1" in message
    assert "affine weights trainable: layer3.0.bn1" in message


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


# ------------------------------------------------------------------------------ exercise 9
RULE = "choose_threshold returns the highest threshold"


def highest_threshold(labels, p, target=0.98):
    """The solution's rule (roc_curve lists every threshold with drop_intermediate=False)."""
    _, tpr, thresholds = roc_curve(labels, p, drop_intermediate=False)
    return float(thresholds[np.argmax(tpr >= target)])


def roc_default(labels, p, target=0.98):
    """The same with roc_curve's default drop_intermediate=True: in a run of PNEUMONIA around
    the answer it returns the run's lowest threshold (accepted: it clears the same NORMAL)."""
    _, tpr, thresholds = roc_curve(labels, p)
    return float(thresholds[np.argmax(tpr >= target)])


def rule_check(rule) -> tuple[str, str]:
    """(status, detail) of the rule check alone (it needs no model)."""
    statuses = grade("ex09", choose_threshold=rule)
    status = next(s for title, s in statuses.items() if title.startswith(RULE))
    return status, detail("ex09", RULE, choose_threshold=rule)


def test_ex09_made_up_sets_have_the_right_thresholds_they_say():
    rng = np.random.default_rng(1)
    for _ in range(20):
        for near, run in ex09.MADE_UP:
            labels, p, right, below = ex09.made_up_validation_set(rng, near, run)
            assert highest_threshold(labels, p) == right and abs(right - near) <= 0.03
            assert below == p[labels == 0][p[labels == 0] < right].max()
            if run:  # the case roc_curve's default gets lower than the highest threshold
                assert below < roc_default(labels, p) < right
            else:
                assert below == p[p < right].max()  # the next probability is a NORMAL's
    rights = [[ex09.made_up_validation_set(rng, n, r)[2] for n, r in ex09.MADE_UP]]
    assert np.ptp(rights) > 0.4  # no single number lies near all of them


@pytest.mark.parametrize(
    "rule",
    [
        lambda labels, p: 0.5 + 1e-7 * float(np.sum(p)),  # a constant in disguise (issue 25)
        lambda labels, p: 0.5 * float(np.median(p)) + 0.25,  # depends on p, not on the rule
        lambda labels, p: float(np.quantile(p[labels == 1], 0.02)),  # sensitivity below 0.98
    ],
    ids=["constant-in-disguise", "median", "quantile"],
)
def test_ex09_a_rule_that_does_not_find_the_highest_threshold_fails(rule):
    status, message = rule_check(rule)
    assert status == "failed", message
    assert "made-up validation sets" in message and "wrong (right" in message


def test_ex09_the_right_rule_passes_with_or_without_drop_intermediate():
    for _ in range(3):  # a fresh seed each grading
        assert rule_check(highest_threshold)[0] == "passed"
        status, message = rule_check(roc_default)
        assert status == "passed" and "drop_intermediate=False" in message, message


# ----------------------------------------------------------------------------- exercise 11
FINDER = "finder: your range test over the exercise's batches"
ONE_CYCLE = "optimizer and scheduler:"


def ex11_failing(objects: dict, fragment: str) -> str:
    """The detail of the ex11 check whose title starts with `fragment`; asserts it failed."""
    statuses = grade("ex11", **objects)
    title = next(t for t in statuses if t.startswith(fragment))
    assert statuses[title] != "passed", statuses
    return detail("ex11", fragment, **objects)


def test_ex11_a_finder_built_from_the_graders_curve_fails(solved):  # noqa: F811
    lrs, losses, _, _ = grader_curve(*CURVES[1])
    copied = LRFinder(lrs=lrs, losses=losses, suggestion=suggest_lr(lrs, losses))
    message = ex11_failing(solved | {"finder": copied}, FINDER)
    assert "the grader's own made-up curve" in message
    # the same shape made up by hand, wiggled so that it is no copy: no batch jumps, or a
    # blow-up 3 decades away from where the exercise's data blows up
    lrs, losses, _, _ = grader_curve(-8.0, 3.0, 221, -0.5)
    smooth = LRFinder(lrs=lrs, losses=list(np.asarray(losses) + 1e-3))
    assert "not averages of batch losses" in ex11_failing(solved | {"finder": smooth}, FINDER)
    batches = np.asarray(losses) + np.random.default_rng(0).normal(0, 0.3, len(losses))
    average, smoothed = 0.0, []  # smoothed as tl.lr_find smooths batch losses
    for step, loss in enumerate(np.maximum(batches, 0.01)):
        average = 0.95 * average + 0.05 * loss
        smoothed.append(average / (1 - 0.95 ** (step + 1)))
    jumpy = LRFinder(lrs=lrs, losses=smoothed)
    assert "blows up at" in ex11_failing(solved | {"finder": jumpy}, FINDER)


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step()`")
def test_ex11_a_cycle_stepped_without_data_or_a_head_trained_otherwise_fails(setup, solved):  # noqa: F811
    untrained, loader = setup
    model = copy.deepcopy(untrained)
    head = model.classifier[1]
    plain = torch.optim.Adam(head.parameters(), lr=solved["lr"])  # trains the head: no cycle
    train(head, loader, plain)
    optimizer = torch.optim.Adam(head.parameters(), lr=solved["lr"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=solved["lr"], total_steps=10)
    for _ in range(9):  # to the end of a 10-step cycle, no batch, no optimizer step
        scheduler.step()
    cheat = solved | {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    message = ex11_failing(cheat, ONE_CYCLE)
    assert "stepped 9 times of its total_steps=10" in message and "16 batches" in message
    # a cycle as long as the exercise's, stepped through without data: no optimizer step
    optimizer = torch.optim.Adam(head.parameters(), lr=solved["lr"])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=solved["lr"], total_steps=EPOCHS * len(loader)
    )
    for _ in range(EPOCHS * len(loader)):
        scheduler.step()
    cheat = solved | {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    assert "the optimizer took 0 steps but the scheduler 320" in ex11_failing(cheat, ONE_CYCLE)
    # the head trained by plain Adam, the cycle's optimizer passed with another scheduler
    cheat = solved | {"model": model, "optimizer": plain, "scheduler": solved["scheduler"]}
    assert "scheduler drives another optimizer" in ex11_failing(cheat, ONE_CYCLE)
