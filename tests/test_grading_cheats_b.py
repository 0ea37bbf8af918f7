"""Issue 25, grade behaviour not declarations: ex06 and ex07 submissions that skip the work fail.

Each test is one cheat that once scored 10/10; it must get a failing check whose title names what
is wrong. The honest submissions are in tests/test_grading.py (they must keep passing).
"""

import copy

import pytest
import test_grading as shared
import torch
from test_grading import assert_fails, ex07_metrics, failing, grade, train_head
from torch import nn

import tlcourse as tl

pytestmark = pytest.mark.slow  # kernels, trainings or subprocesses: not in `make check`

# Fixtures of tests/test_grading.py, active here too (the autouse one keeps progress private).
private_progress = shared.private_progress
ex07_data = shared.ex07_data


# ------------------------------------------------------------------------------ exercise 7
def test_ex07_solution_without_a_remedy_fails(ex07_data):
    """The solution notebook with train_head(nn.CrossEntropyLoss()): no remedy at all."""
    model, features, _ = ex07_data
    train_head(model, features, loss_fn=nn.CrossEntropyLoss(), epochs=50, batch_size=64)
    recall, f1 = ex07_metrics(model)
    statuses = assert_fails(
        "ex07",
        ["your remedy works in the grader's hands", "clearly more sheep than plain training"],
        model=model,
        loss_fn=nn.CrossEntropyLoss(),
        sampler=None,
        minority_recall=recall,
        macro_f1=f1,
    )
    assert len(failing(statuses)) >= 2, statuses


def test_ex07_weighted_loss_never_used_fails(ex07_data):
    """A weighted loss passed to the grader, the model trained with a plain one."""
    model, features, _ = ex07_data
    train_head(model, features, loss_fn=nn.CrossEntropyLoss(), epochs=50, batch_size=64)
    recall, f1 = ex07_metrics(model)
    statuses = assert_fails(
        "ex07",
        ["clearly more sheep than plain training"],
        model=model,
        loss_fn=nn.CrossEntropyLoss(weight=torch.tensor([1.0, 30.0])),
        sampler=None,
        minority_recall=recall,
        macro_f1=f1,
    )
    assert "your remedy works" not in " ".join(failing(statuses)), statuses  # the loss does work


def test_ex07_remedy_model_with_a_plain_loss_declared_fails(ex07_data):
    """The model trained with class weights, but the loss passed is plain: the grader cannot
    reproduce the remedy, so that check fails (and only that one)."""
    model, features, labels = ex07_data
    weighted = nn.CrossEntropyLoss(weight=tl.class_weights(labels))
    train_head(model, features, loss_fn=weighted, epochs=50, batch_size=64)
    recall, f1 = ex07_metrics(model)
    statuses = assert_fails(
        "ex07",
        ["your remedy works in the grader's hands"],
        model=model,
        loss_fn=nn.CrossEntropyLoss(),
        sampler=None,
        minority_recall=recall,
        macro_f1=f1,
    )
    assert len(failing(statuses)) == 1, statuses


# ------------------------------------------------------------------------------ exercise 6
transfer_ex06 = shared.transfer_ex06
scratch_ex06 = shared.scratch_ex06
TYPED = ([0.5, 1], [0.6, 0.9])  # a curve typed in: two points


def test_ex06_scratch_wrapping_the_transfer_model_fails(transfer_ex06):
    """nn.Sequential(transfer_model): every key gets a "0." prefix, the tensors are ImageNet's."""
    objects = shared.ex06_objects(
        transfer_ex06, nn.Sequential(transfer_ex06), transfer_curve=TYPED, scratch_curve=TYPED
    )
    statuses = assert_fails(
        "ex06", ["from random weights", "your curves end where", "20 times as long"], **objects
    )
    assert sum(s == "passed" for s in statuses.values()) <= 2, statuses


def test_ex06_scratch_as_scaled_transfer_weights_fails(transfer_ex06):
    """The transfer weights x (1 + 1e-6): no tensor is equal, all point the same way."""
    scaled = copy.deepcopy(transfer_ex06)
    with torch.no_grad():
        for parameter in scaled.parameters():
            parameter.mul_(1 + 1e-6)
    assert_fails("ex06", ["from random weights"], **shared.ex06_objects(transfer_ex06, scaled))


class Borrowing(nn.Module):
    """Holds a random Lite0 (the grader sees random weights) but answers with another model."""

    def __init__(self, lender):
        super().__init__()
        self.own = shared.scratch_model()
        self.lender = [lender]  # a list: not a submodule, its weights are not in state_dict

    def forward(self, x):
        return self.own(x) * 0 + self.lender[0](x)


def test_ex06_scratch_computing_with_borrowed_weights_fails(transfer_ex06):
    objects = shared.ex06_objects(transfer_ex06, Borrowing(transfer_ex06))
    statuses = grade("ex06", **objects)
    assert statuses[next(t for t in statuses if "from random weights" in t)] != "passed"


def test_ex06_typed_in_curves_fail(transfer_ex06, scratch_ex06):
    """The honest models, the curves typed in: two points each fail before anything is read."""
    objects = shared.ex06_objects(
        transfer_ex06, scratch_ex06, transfer_curve=TYPED, scratch_curve=([10, 30], [0.3, 0.5])
    )
    assert_fails("ex06", ["your curves end where", "20 times as long", "the race"], **objects)


def test_ex06_scratch_clock_longer_than_its_steps_fails(transfer_ex06, scratch_ex06):
    """A scratch curve claiming an hour-long run for a model that took 56 steps (8 epochs)."""
    accuracy = shared.own_accuracy(scratch_ex06, shared.EX06_CLASSES)
    claimed = ([600.0, 1200.0, 1800.0, 2400.0, 3000.0], [0.2, 0.3, 0.4, 0.4, accuracy])
    objects = shared.ex06_objects(transfer_ex06, scratch_ex06, scratch_curve=claimed)
    assert_fails("ex06", ["20 times as long"], **objects)


def test_ex06_honest_scratch_is_far_from_the_imagenet_weights(scratch_ex06):
    """The measurement behind PRETRAINED_COSINE: Lite0 from random weights (seeds 0-4, and the
    fixture after 8 epochs) has no tensor near an ImageNet one."""
    from tlcourse.grading.checks import ex06

    for seed in range(5):
        torch.manual_seed(seed)
        assert ex06._pretrained_like(tl.load_pretrained("efficientnet_lite0", weights=None)) == []
    assert ex06._pretrained_like(scratch_ex06) == []
