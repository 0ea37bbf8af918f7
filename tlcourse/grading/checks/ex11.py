"""Exercise 11: the LR range test; the rate read off it by the learner's rule; one-cycle training.

The grader never trusts the rate: it calls the learner's rule on curves it makes up (a fixed
number cannot land on all of them), recomputes the rate from the learner's own range test, and
reads what OneCycleLR left in the optimizer.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from tlcourse.grading.checks.common import FUNCTION, MODULE, at_least, pretrained_backbone
from tlcourse.grading.data import measured_accuracy
from tlcourse.grading.registry import NotYet, Spec, call_learner, exercise, number
from tlcourse.lr_finder import LRFinder
from tlcourse.models import get_head

EX11_CLASSES = ["Bird", "Cat", "Elephant", "Giraffe", "Zebra"]
ACCURACY_FLOOR = 0.85  # the solution: 0.94-0.96 over seeds 0-2; an untrained head about 0.2
MIN_STEPS, MIN_DECADES = 50, 3  # what makes a run a range test
# The grader's curves: (first and last log10 rate, points, log10 rate where the loss falls fastest)
CURVES = [(-10.0, 0.0, 200, -5.0), (-6.0, 1.0, 140, -2.5), (-8.0, 3.0, 220, -0.5)]
EX11 = exercise(
    __name__,
    "Learning-rate range test and one-cycle",
    {
        "choose_lr": Spec(FUNCTION, "your function choose_lr(lrs, losses)", "choose_lr"),
        "finder": Spec((LRFinder,), "what tl.lr_find returned", "finder"),
        "lr": number("the rate you trained with", "lr"),
        "optimizer": Spec((torch.optim.Optimizer,), "the optimizer OneCycleLR drove", "optimizer"),
        "model": Spec(MODULE, "Lite0 with its trained head", "model"),
    },
    summary="the LR range test (`tl.lr_find`), a rule to read a rate off it, `OneCycleLR`",
    weights="Lite0 real",
)


def grader_curve(first: float, last: float, points: int, centre: float):
    """A made-up range test: flat, a fall centred at 10**centre, a floor, then a blow-up.

    Returns (lrs, losses, lowest acceptable rate, highest acceptable rate): the fall has gone a
    tenth of its way at the lowest; the highest is half the rate at the minimum.

    Example:
        >>> lrs, losses, low, high = grader_curve(-6.0, 1.0, 140, -2.5)
        >>> low < 10**-2.5 < high
        True
    """
    log_lrs = np.linspace(first, last, points)
    fall = 1.2 / (1 + np.exp(-3 * (log_lrs - centre)))  # a sigmoid in log10(lr)
    blow_up = np.where(log_lrs > centre + 2, 3 * (log_lrs - centre - 2) ** 2, 0.0)
    losses = 1.6 - fall + blow_up + 0.01 * np.sin(7 * log_lrs)  # small wiggles, like smoothing
    above = np.flatnonzero(losses > 2 * losses[0])  # blown up: the range test stops there
    end = int(above[0]) + 1 if len(above) else points
    lrs, losses = 10 ** log_lrs[:end], losses[:end]
    low = lrs[int(np.argmax(losses <= losses[0] - 0.12))]
    return lrs.tolist(), losses.tolist(), float(low), float(lrs[int(np.argmin(losses))] / 2)


def _curve_of(finder: object) -> tuple[list[float], list[float]]:
    lrs = [float(x) for x in getattr(finder, "lrs", [])]
    losses = [float(x) for x in getattr(finder, "losses", [])]
    if len(lrs) != len(losses) or len(lrs) < MIN_STEPS:
        raise NotYet(
            f"finder has {len(lrs)} rates and {len(losses)} losses; a range test measures one "
            f"loss per rate, at least {MIN_STEPS} of them: run tl.lr_find(head, train_loader, ...)"
        )
    return lrs, losses


@EX11.check(
    f"finder: a range test: >= {MIN_STEPS} batches, the rate growing by one factor over "
    f">= {MIN_DECADES} decades, the loss falling from an untrained head's",
    points=2,
    needs=("finder",),
    hint="Idea: a range test starts from the fresh head and tries ever larger rates. API: "
    "tl.lr_find(head, train_loader, torch.optim.Adam(head.parameters())) before any training.",
)
def _ex11_finder(o: dict) -> str:
    lrs, losses = _curve_of(o["finder"])
    ratios = np.diff(np.log(lrs))
    if not (ratios > 0).all() or np.ptp(ratios) > 1e-6 * abs(ratios.mean()):
        raise NotYet("finder.lrs should grow by one factor at every step (an exponential range)")
    if lrs[-1] / lrs[0] < 10**MIN_DECADES:
        raise NotYet(f"finder tried {lrs[0]:.1e} to {lrs[-1]:.1e}: span {MIN_DECADES}+ decades")
    chance = math.log(len(EX11_CLASSES))  # the loss of a head that knows nothing
    if not all(map(math.isfinite, losses)) or abs(losses[0] - chance) > 0.7:
        raise NotYet(
            f"the range test starts at loss {losses[0]:.2f}; an untrained head of "
            f"{len(EX11_CLASSES)} classes starts near ln {len(EX11_CLASSES)} = {chance:.2f}: "
            "run it on the fresh head, before training"
        )
    if min(losses) > losses[0] - 0.3:
        raise NotYet(f"the loss never fell (from {losses[0]:.2f} to at best {min(losses):.2f})")
    span = f"{lrs[0]:.0e} to {lrs[-1]:.2g}"
    return f"{len(lrs)} batches, {span}, loss {losses[0]:.2f} -> {min(losses):.2f}"


@EX11.check(
    "choose_lr picks a rate on the falling part of range tests it has never seen",
    points=3,
    needs=("choose_lr",),
    hint="Idea: where the loss falls fastest, before its minimum (or the minimum's rate / 10); a "
    "fixed number cannot fit curves that fall at different rates. API: np.argmin, np.gradient.",
)
def _ex11_rule(o: dict) -> str:
    picked = []
    for curve in CURVES:
        lrs, losses, low, high = grader_curve(*curve)
        lr = call_learner(o["choose_lr"], list(lrs), list(losses), name="choose_lr")
        if not isinstance(lr, numbers.Real) or not low <= float(lr) <= high:
            shown = f"{float(lr):.2g}" if isinstance(lr, numbers.Real) else repr(lr)
            raise NotYet(
                f"on a curve falling fastest at {10 ** curve[3]:.1g} (flat below {low:.1g}, its "
                f"minimum at {2 * high:.2g}), choose_lr returned {shown}; want a rate in "
                f"[{low:.2g}, {high:.2g}]"
            )
        picked.append(f"{float(lr):.1g}")
    return f"{len(CURVES)} curves, rates {', '.join(picked)}"


@EX11.check(
    "lr is what choose_lr reads off your own range test",
    points=1,
    needs=("choose_lr", "finder", "lr"),
    hint="Idea: the rate comes from the test, not from memory. API: "
    "lr = choose_lr(finder.lrs, finder.losses), after finder = tl.lr_find(...).",
)
def _ex11_lr_from_finder(o: dict) -> str:
    lrs, losses = _curve_of(o["finder"])
    expected = call_learner(o["choose_lr"], list(lrs), list(losses), name="choose_lr")
    if not isinstance(expected, numbers.Real) or not math.isclose(
        float(o["lr"]), float(expected), rel_tol=1e-6
    ):
        raise NotYet(
            f"lr is {float(o['lr']):.3g} but choose_lr(finder.lrs, finder.losses) gives {expected}"
        )
    return f"{float(o['lr']):.3g}"


@EX11.check(
    "optimizer: the model's head, driven by OneCycleLR with max_lr = lr, to the end of its cycle",
    points=1,
    needs=("optimizer", "model", "lr"),
    hint="Idea: one-cycle peaks at the rate you found and ends near zero. API: OneCycleLR("
    "optimizer, max_lr=lr, total_steps=EPOCHS * len(train_loader)), scheduler.step() per batch.",
)
def _ex11_one_cycle(o: dict) -> str:
    optimizer, lr = o["optimizer"], float(o["lr"])
    head = get_head(o["model"])[1]
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if held != {id(p) for p in head.parameters()}:
        raise NotYet("optimizer should hold exactly the parameters of model's head")
    for group in optimizer.param_groups:
        if "max_lr" not in group:
            raise NotYet("optimizer was never given to a OneCycleLR scheduler (no max_lr)")
        if not math.isclose(group["max_lr"], lr, rel_tol=1e-6):
            raise NotYet(f"OneCycleLR's max_lr is {group['max_lr']:.3g}; want lr = {lr:.3g}")
        if group["lr"] > group["max_lr"] / 100:
            raise NotYet(
                f"the rate is still {group['lr']:.2g} (peak {group['max_lr']:.2g}): step the "
                "scheduler once per batch, for every batch of every epoch"
            )
    return f"max_lr {lr:.3g}, now {optimizer.param_groups[0]['lr']:.1e}"


@EX11.check(
    f"model: pretrained backbone untouched, accuracy >= {ACCURACY_FLOOR} on 250 held-out images",
    points=3,
    needs=("model",),
    hint="Idea: only the head trains, on cached features; train it after the range test. API: "
    "the loop of section 3 trains model.classifier[1] in place.",
)
def _ex11_accuracy(o: dict) -> str:
    pretrained_backbone(o["model"], "model")
    accuracy, n = measured_accuracy(o["model"], EX11_CLASSES)
    return at_least(accuracy, ACCURACY_FLOOR, context=f"on {n} held-out images")
