"""Exercise 11's checks: the solution's objects pass; a rate typed in, a rule that returns a
constant or the minimum, a made-up or late range test, a constant-rate optimizer, a cycle cut
short and an untrained or changed model fail the checks they should."""

import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import tlcourse as tl
from tlcourse.grading import CheckFailed
from tlcourse.grading.checks.ex11 import CURVES, EX11_CLASSES, grader_curve
from tlcourse.lr_finder import LRFinder, suggest_lr

pytestmark = pytest.mark.slow  # kernels, trainings or subprocesses: not in `make check`

EPOCHS = 20


@pytest.fixture(autouse=True)
def private_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_PROGRESS", str(tmp_path / "progress.json"))
    monkeypatch.delenv("TLCOURSE_SUBMIT_DIR", raising=False)


def choose_lr(lrs, losses):
    """The solution's rule: the steepest fall before the minimum, the first 10 points left out."""
    lrs, losses = np.asarray(lrs, dtype=float)[10:], np.asarray(losses, dtype=float)[10:]
    lowest = int(np.argmin(losses))
    slopes = np.gradient(losses[: lowest + 1], np.log10(lrs[: lowest + 1]))
    return float(lrs[int(np.argmin(slopes))])


def train(head, loader, optimizer, scheduler=None, epochs=EPOCHS, step_per_batch=True):
    head.train()
    for _ in range(epochs):
        for inputs, targets in loader:
            loss = F.cross_entropy(head(inputs), targets)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if scheduler is not None and step_per_batch:
                scheduler.step()
        if scheduler is not None and not step_per_batch:
            scheduler.step()


@pytest.fixture(scope="module")
def setup():
    """What the exercise builds before section 1: a frozen Lite0, a fresh head, a loader."""
    tl.seed_everything(0)
    images, labels, names = tl.grading.practice_data(EX11_CLASSES, per_class=100)
    transform = tl.transforms_for("efficientnet_lite0", image_size=tl.grading.IMAGE_SIZE)
    model = tl.load_pretrained("efficientnet_lite0")
    tl.freeze(model, verbose=False)
    tl.replace_head(model, num_classes=len(EX11_CLASSES), verbose=False)
    dataset = tl.ImageArrayDataset(images, labels, names, transform)
    features = tl.extract_features(model, DataLoader(dataset, batch_size=100))
    loader = DataLoader(features, batch_size=32, shuffle=True, generator=tl.make_generator(0))
    return model, loader


@pytest.fixture(scope="module")
def solved(setup):
    """The solution's objects: range test, rate, one-cycle training of the head."""
    untrained, loader = setup
    model = copy.deepcopy(untrained)
    head = model.classifier[1]
    finder = tl.lr_find(head, loader, torch.optim.Adam(head.parameters()))
    lr = choose_lr(finder.lrs, finder.losses)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=EPOCHS * len(loader)
    )
    train(head, loader, optimizer, scheduler)
    return {
        "choose_lr": choose_lr,
        "finder": finder,
        "lr": lr,
        "optimizer": optimizer,
        "scheduler": scheduler,
        "model": model,
    }


def grade(**objects) -> dict[str, str]:
    try:
        report = tl.check("ex11", **objects)
    except CheckFailed as failure:
        report = failure.report
    return {r.check.title: r.status for r in report.results}


def failing(**objects) -> list[str]:
    return [title for title, status in grade(**objects).items() if status != "passed"]


def details(**objects) -> str:
    try:
        report = tl.check("ex11", **objects)
    except CheckFailed as failure:
        report = failure.report
    return "\n".join(r.detail for r in report.results)


def test_the_solution_passes(solved):
    assert not failing(**solved)


def test_the_grader_curves_accept_the_classic_rules_and_no_constant():
    windows = []
    for curve in CURVES:
        lrs, losses, low, high = grader_curve(*curve)
        lowest = lrs[int(np.argmin(losses))]
        for picked in (choose_lr(lrs, losses), suggest_lr(lrs, losses), lowest / 10):
            assert low <= picked <= high, (curve, picked)
        assert not low <= lowest <= high  # the minimum itself is too far: the edge of divergence
        windows.append((low, high))
    assert max(low for low, _ in windows) > min(high for _, high in windows)  # no constant fits all


@pytest.mark.parametrize(
    "rule",
    [
        lambda lrs, losses: 3e-3,  # a constant
        lambda lrs, losses: lrs[int(np.argmin(losses))],  # the minimum: on the edge of blowing up
        lambda lrs, losses: lrs[len(lrs) // 2],  # ignores the losses
    ],
    ids=["constant", "minimum", "middle"],
)
def test_a_rule_that_does_not_read_the_fall_fails(solved, rule):
    objects = solved | {
        "choose_lr": rule,
        "lr": rule(solved["finder"].lrs, solved["finder"].losses),
    }
    assert "choose_lr picks a rate on the falling part of range tests it has never seen" in failing(
        **objects
    )


def test_a_rate_typed_in_fails(solved):
    objects = solved | {"lr": 1e-2}
    bad = failing(**objects)
    assert "lr is what choose_lr reads off your own range test" in bad
    assert any("OneCycleLR" in title for title in bad)  # its max_lr is not this lr either
    assert "choose_lr(finder.lrs, finder.losses) gives" in details(**objects)


def test_a_made_up_or_late_range_test_fails(solved, setup):
    title = next(t for t in grade(**solved) if t.startswith("finder: your range test"))
    linear = LRFinder(
        lrs=list(np.linspace(1e-4, 1e-1, 100)), losses=[1.6 - i / 100 for i in range(100)]
    )
    assert title in failing(**solved | {"finder": linear})
    short = LRFinder(
        lrs=[1e-3 * 1.1**k for k in range(60)], losses=[1.6 - k / 60 for k in range(60)]
    )
    assert title in failing(**solved | {"finder": short})  # 2.5 decades only
    # the range test run on the trained head: it starts from a low loss, not an untrained head's
    trained_head = copy.deepcopy(solved["model"].classifier[1])
    _, loader = setup
    late = tl.lr_find(trained_head, loader, torch.optim.Adam(trained_head.parameters()))
    assert title in failing(**solved | {"finder": late})
    assert "run it on the fresh head" in details(**solved | {"finder": late})


def test_a_constant_rate_or_a_cycle_cut_short_fails(solved, setup):
    untrained, loader = setup
    title = next(t for t in grade(**solved) if t.startswith("optimizer and scheduler:"))
    lr = solved["lr"]
    # constant rate: no OneCycleLR at all
    model = copy.deepcopy(untrained)
    constant = torch.optim.Adam(model.classifier[1].parameters(), lr=lr)
    train(model.classifier[1], loader, constant)
    assert title in failing(**solved | {"model": model, "optimizer": constant})
    # one-cycle stepped once an epoch: the cycle is far from its end
    model = copy.deepcopy(untrained)
    optimizer = torch.optim.Adam(model.classifier[1].parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=EPOCHS * len(loader)
    )
    train(model.classifier[1], loader, optimizer, scheduler, step_per_batch=False)
    cut_short = {"model": model, "optimizer": optimizer, "scheduler": scheduler}
    assert title in failing(**solved | cut_short)
    assert "step the scheduler once per batch" in details(**solved | cut_short)
    # the optimizer of another model
    assert title in failing(**solved | {"model": copy.deepcopy(solved["model"])})


def test_an_untrained_or_changed_model_fails(solved, setup):
    untrained, _ = setup
    title = "model: pretrained backbone untouched, accuracy >= 0.85 on 250 held-out images"
    assert title in failing(**solved | {"model": untrained})
    changed = copy.deepcopy(solved["model"])
    with torch.no_grad():
        changed.features[0][0].weight.mul_(1.01)
    assert title in failing(**solved | {"model": changed})


def test_a_rule_that_raises_or_is_not_written_is_reported(solved):
    def not_written(lrs, losses):
        raise NotImplementedError("Exercise 11: return a learning rate")

    statuses = grade(**solved | {"choose_lr": not_written})
    assert set(statuses.values()) >= {"not attempted"}
    assert "choose_lr() raised ZeroDivisionError" in details(
        **solved | {"choose_lr": lambda a, b: 1 / 0}
    )
    assert math.isfinite(solved["lr"]) and solved["lr"] == choose_lr(
        solved["finder"].lrs, solved["finder"].losses
    )
