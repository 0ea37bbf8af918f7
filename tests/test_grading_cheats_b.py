"""Issue 25, grade behaviour not declarations: ex06 and ex07 submissions that skip the work fail.

Each test is one cheat that once scored 10/10; it must get a failing check whose title names what
is wrong. The honest submissions are in tests/test_grading.py (they must keep passing).
"""

import torch
from torch import nn

import tests.test_grading as shared
import tlcourse as tl
from tests.test_grading import assert_fails, ex07_metrics, failing, train_head

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
