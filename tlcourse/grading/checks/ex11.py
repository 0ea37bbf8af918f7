"""Exercise 11: the LR range test; the rate read off it by the learner's rule; one-cycle training.

The grader never trusts the rate: it calls the learner's rule on curves it makes up (a fixed
number cannot land on all of them), recomputes the rate from the learner's own range test, and
reads what OneCycleLR left in the optimizer.

Nor does it trust the range test or the schedule it is shown. The range test must be a run over
the exercise's batches: not one of the grader's own curves, its losses (undone from tl.lr_find's
smoothing) must jump from batch to batch as real batches do, and it must stop blowing up where a
range test the grader runs itself on the exercise's data stops. The OneCycleLR must have stepped
once per batch, with an optimizer step each time, to the end of a whole number of epochs.
"""

from __future__ import annotations

import math
import numbers
from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse.data import ImageArrayDataset, transforms_for
from tlcourse.device import make_generator
from tlcourse.features import extract_features
from tlcourse.freeze import freeze
from tlcourse.grading.checks.common import FUNCTION, MODULE, at_least, pretrained_backbone
from tlcourse.grading.data import IMAGE_SIZE, measured_accuracy, practice_data
from tlcourse.grading.registry import NotYet, Spec, call_learner, exercise, number
from tlcourse.lr_finder import LRFinder, lr_find
from tlcourse.models import get_head, load_pretrained, replace_head

EX11_CLASSES = ["Bird", "Cat", "Elephant", "Giraffe", "Zebra"]
ACCURACY_FLOOR = 0.85  # the solution: 0.94-0.96 over seeds 0-2; an untrained head about 0.2
MIN_STEPS, MIN_DECADES = 50, 3  # what makes a run a range test
PER_CLASS, BATCH_SIZE = 100, 32  # the exercise's training data and loader: 16 batches an epoch
SMOOTHING = 0.95  # tl.lr_find's default: its losses are bias-corrected averages of batch losses
# Batch losses of a real range test jump from batch to batch: the standard deviation of their
# steps over its first 40 batches was 0.14-0.50 over 16 seeds of the exercise's data; the
# grader's smooth curves give 0.011. Below this the losses were not measured on batches.
MIN_BATCH_JUMPS = 0.05
# Where a range test over the exercise's data blows up: log10 of its last rate was -0.83 to -0.48
# over 16 seeds (head init and shuffle; Adam, tl.lr_find's defaults); a run ending more than
# this many decades from the grader's own run did not run over these batches.
END_DECADES = 1.0
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
        "scheduler": Spec(
            (torch.optim.lr_scheduler.OneCycleLR,), "the OneCycleLR you stepped", "scheduler"
        ),
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


def batch_losses(losses: list[float], smoothing: float = SMOOTHING) -> np.ndarray:
    """The batch losses a tl.lr_find curve was averaged from (its smoothing undone).

    Example:
        >>> batch_losses([2.0, 1.5])  # a curve at 2.0 then 1.5: the second batch was lower
        array([2.   , 1.025])
    """
    smoothed = np.asarray(losses, dtype=float)
    average = smoothed * (1 - smoothing ** np.arange(1, len(smoothed) + 1))  # bias put back
    return (average - smoothing * np.r_[0.0, average[:-1]]) / (1 - smoothing)


@lru_cache(maxsize=1)
def exercise_features() -> TensorDataset:
    """The exercise's training features, built as its first cell builds them: 100 practice
    images of each class through the frozen pretrained Lite0 at IMAGE_SIZE.

    Example:
        >>> exercise_features().tensors[0].shape
        torch.Size([500, 1280])
    """
    images, labels, names = practice_data(EX11_CLASSES, per_class=PER_CLASS)
    transform = transforms_for("efficientnet_lite0", image_size=IMAGE_SIZE)
    model = load_pretrained("efficientnet_lite0")
    freeze(model, verbose=False)
    replace_head(model, num_classes=len(EX11_CLASSES), verbose=False)
    dataset = ImageArrayDataset(images, labels, names, transform)
    return extract_features(model, DataLoader(dataset, batch_size=100))


@lru_cache(maxsize=8)
def grader_range_test_end(start: float, growth: float) -> float:
    """log10 of the rate where the grader's own range test over the exercise's batches blew up
    (tl.lr_find, Adam, a fresh head, seed 0), trying the learner's rates: start * growth**k.

    Example:
        >>> end = grader_range_test_end(1e-6, (1e7) ** (1 / 199))  # tl.lr_find's default rates
        >>> -3 < end < 1  # blew up between 0.001 and 10 (-0.55 and -0.72 measured on two CPUs)
        True
    """
    torch.manual_seed(0)
    head = nn.Linear(exercise_features().tensors[0].shape[1], len(EX11_CLASSES))
    loader = DataLoader(
        exercise_features(), batch_size=BATCH_SIZE, shuffle=True, generator=make_generator(0)
    )
    steps = int(min(max(math.log(1e4 / start) / math.log(growth), 10), 1000))  # to 1e4 at most
    try:
        finder = lr_find(
            head,
            loader,
            torch.optim.Adam(head.parameters()),
            start_lr=start,
            end_lr=start * growth ** (steps - 1),
            steps=steps,
        )
    except ValueError:  # blew up within its first 13 rates
        return math.log10(start)
    return math.log10(finder.lrs[-1])


def _own_run(lrs: list[float], losses: list[float]) -> None:
    """NotYet unless the curve was measured on the exercise's batches (see the module doc)."""
    for curve in CURVES:
        made_up, made_up_losses, _, _ = grader_curve(*curve)
        if len(made_up) == len(lrs) and (
            np.allclose(made_up, lrs, rtol=1e-6) or np.allclose(made_up_losses, losses)
        ):
            raise NotYet(
                f"finder holds the grader's own made-up curve grader_curve{curve}, not a range "
                "test of yours: run tl.lr_find(head, train_loader, torch.optim.Adam(...)) on "
                "the exercise's batches"
            )
    batches = batch_losses(losses)
    jumps = float(np.std(np.diff(batches[:40])))
    if not np.isfinite(batches).all() or batches.min() < -1e-6 or jumps < MIN_BATCH_JUMPS:
        raise NotYet(
            f"finder's losses are not averages of batch losses (undoing tl.lr_find's smoothing "
            f"{SMOOTHING} gives batch losses from {batches.min():.3f}, jumping by {jumps:.3f} "
            f"from batch to batch; real batches jump by >= {MIN_BATCH_JUMPS}): pass what "
            "tl.lr_find returned for your head and train_loader, not a curve made up or edited"
        )
    end, blew_up = math.log10(lrs[-1]), losses[-1] > 4 * min(losses)  # tl.lr_find's stop
    expected = grader_range_test_end(float(lrs[0]), float(lrs[1] / lrs[0]))
    if end > expected + END_DECADES or (blew_up and end < expected - END_DECADES):
        raise NotYet(
            f"finder's range test {'blew up' if blew_up else 'ends'} at rate {lrs[-1]:.2g}, but a "
            f"range test over the exercise's batches (Adam, the same rates) blows up at "
            f"{10**expected:.2g}: run tl.lr_find(head, train_loader, "
            "torch.optim.Adam(head.parameters())) on the exercise's data"
        )


@EX11.check(
    f"finder: your range test over the exercise's batches: >= {MIN_STEPS} batches, the rate "
    f"growing by one factor over >= {MIN_DECADES} decades, the loss falling from an untrained "
    "head's and blowing up where a range test on this data does",
    points=2,
    needs=("finder",),
    hint="Idea: a range test starts from the fresh head and tries ever larger rates. API: "
    "tl.lr_find(head, train_loader, torch.optim.Adam(head.parameters())) before any training.",
)
def _ex11_finder(submitted: dict) -> str:
    lrs, losses = _curve_of(submitted["finder"])
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
    _own_run(lrs, losses)
    span = f"{lrs[0]:.0e} to {lrs[-1]:.2g}"
    return f"{len(lrs)} batches, {span}, loss {losses[0]:.2f} -> {min(losses):.2f}"


@EX11.check(
    "choose_lr picks a rate on the falling part of range tests it has never seen",
    points=3,
    needs=("choose_lr",),
    hint="Idea: where the loss falls fastest, before its minimum (or the minimum's rate / 10); a "
    "fixed number cannot fit curves that fall at different rates. API: np.argmin, np.gradient.",
)
def _ex11_rule(submitted: dict) -> str:
    picked = []
    for curve in CURVES:
        lrs, losses, low, high = grader_curve(*curve)
        lr = call_learner(submitted["choose_lr"], list(lrs), list(losses), name="choose_lr")
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
def _ex11_lr_from_finder(submitted: dict) -> str:
    lrs, losses = _curve_of(submitted["finder"])
    expected = call_learner(submitted["choose_lr"], list(lrs), list(losses), name="choose_lr")
    lr = float(submitted["lr"])
    if not isinstance(expected, numbers.Real) or not math.isclose(
        lr, float(expected), rel_tol=1e-6
    ):
        raise NotYet(f"lr is {lr:.3g} but choose_lr(finder.lrs, finder.losses) gives {expected}")
    return f"{lr:.3g}"


@EX11.check(
    "optimizer and scheduler: the model's head, driven by OneCycleLR with max_lr = lr, stepped "
    "once per batch (an optimizer step each time) to the end of its cycle, over whole epochs",
    points=1,
    needs=("optimizer", "scheduler", "model", "lr"),
    hint="Idea: one-cycle peaks at the rate you found and ends near zero, one step per batch. "
    "API: OneCycleLR(optimizer, max_lr=lr, total_steps=EPOCHS * len(train_loader)); in the loop "
    "optimizer.step() then scheduler.step() for every batch; pass both to tl.check.",
)
def _ex11_one_cycle(submitted: dict) -> str:
    optimizer, scheduler, lr = (
        submitted["optimizer"],
        submitted["scheduler"],
        float(submitted["lr"]),
    )
    head = get_head(submitted["model"])[1]
    held = {id(p) for group in optimizer.param_groups for p in group["params"]}
    if held != {id(p) for p in head.parameters()}:
        raise NotYet("optimizer should hold exactly the parameters of model's head")
    if scheduler.optimizer is not optimizer:
        raise NotYet("scheduler drives another optimizer: pass the optimizer given to OneCycleLR")
    for group in optimizer.param_groups:
        if "max_lr" not in group:
            raise NotYet("optimizer was never given to a OneCycleLR scheduler (no max_lr)")
        if not math.isclose(group["max_lr"], lr, rel_tol=1e-6):
            raise NotYet(f"OneCycleLR's max_lr is {group['max_lr']:.3g}; want lr = {lr:.3g}")
    batches = math.ceil(PER_CLASS * len(EX11_CLASSES) / BATCH_SIZE)  # len(train_loader)
    stepped, total = scheduler.last_epoch, scheduler.total_steps
    if stepped not in (total - 1, total) or stepped % batches:
        raise NotYet(
            f"the scheduler was stepped {stepped} times of its total_steps={total}; the "
            f"exercise's train_loader has {batches} batches: total_steps = EPOCHS * "
            f"len(train_loader), and step the scheduler once per batch, for every batch of "
            "every epoch"
        )
    taken = {
        int(optimizer.state[p]["step"]) if "step" in optimizer.state.get(p, {}) else 0
        for p in head.parameters()
    }
    if taken != {stepped}:
        raise NotYet(
            f"the optimizer took {max(taken)} steps but the scheduler {stepped}: train the head "
            "with this optimizer (Adam), optimizer.step() then scheduler.step() on every batch"
        )
    for group in optimizer.param_groups:
        if abs(group["lr"] - group.get("min_lr", 0.0)) > group["max_lr"] / 100:
            raise NotYet(
                f"the rate is still {group['lr']:.2g} (peak {group['max_lr']:.2g}): step the "
                "scheduler once per batch, for every batch of every epoch"
            )
    return (
        f"max_lr {lr:.3g}, {stepped} steps ({stepped // batches} epochs of {batches} batches), "
        f"now {optimizer.param_groups[0]['lr']:.1e}"
    )


@EX11.check(
    f"model: pretrained backbone untouched, accuracy >= {ACCURACY_FLOOR} on 250 held-out images",
    points=3,
    needs=("model",),
    hint="Idea: only the head trains, on cached features; train it after the range test. API: "
    "the loop of section 3 trains model.classifier[1] in place.",
)
def _ex11_accuracy(submitted: dict) -> str:
    pretrained_backbone(submitted["model"], "model")
    accuracy, n = measured_accuracy(submitted["model"], EX11_CLASSES)
    return at_least(accuracy, ACCURACY_FLOOR, context=f"on {n} held-out images")
