"""Exercise 6: a race to a target accuracy; models re-measured, curves checked against them."""

from __future__ import annotations

import copy
import math
import numbers
import time

import torch
from torch import nn

from tlcourse.grading.checks.common import (
    FUNCTION,
    MODULE,
    agrees,
    at_least,
    pretrained_backbone,
)
from tlcourse.grading.data import (
    heldout_batch,
    measured_accuracy,
    model_outputs,
    pretrained_lite0_state,
)
from tlcourse.grading.registry import NotYet, Spec, call_learner, exercise

EX06_CLASSES = ["Bear", "Bird", "Elephant", "Giraffe", "Horse"]
EX06_TARGET = 0.7  # the race's target accuracy (the exercise's TARGET)
TRANSFER_FLOOR = 0.75  # transfer_model's accuracy on the grader's held-out images
EX06_BUDGET = 20  # scratch's clock must run this many times transfer's (the exercise gives 30)
SCRATCH_FLOOR = 0.3  # chance is 0.2; at init a model scores 0.2 (one class), the solution 0.5-0.8
CURVE_TOLERANCE = 0.15  # a curve's last point (your 200 test images) vs the grader's 250 images
MIN_POINTS = 5  # evaluations per curve: the solution has 20 (transfer) and 11 (scratch)
# |cosine| of a scratch weight tensor with the ImageNet tensor of the same shape that is most
# alike, under any name or wrapping: Lite0 from random weights after its training 0.0x (see
# tests/test_grading_cheats_b.py), the ImageNet weights scaled or wrapped 1.0.
PRETRAINED_COSINE = 0.5
STEP_SLACK = 10  # a curve may claim at most 10x the seconds the grader times for its steps
CURVE = (tuple, list)
# The grader's own curves for seconds_to_reach: (seconds, accuracies, target, answer)
READING_CASES = [
    ([1.0, 2.0, 3.0], [0.2, 0.5, 0.9], 0.5, 2.0),  # "at least": equal counts
    ([0.5, 1.5, 4.0], [0.8, 0.3, 0.9], 0.7, 0.5),  # the first crossing, not a later one
    ([1.0, 2.0, 3.0], [0.1, 0.6, 0.4], 0.7, math.inf),  # never reached
    ([2.5, 7.0], [0.4, 0.75], 0.7, 7.0),
]
EX06 = exercise(
    __name__,
    "Scratch vs transfer: a race to a target accuracy",
    {
        "transfer_model": Spec(MODULE, "pretrained Lite0 + trained head", "transfer_model"),
        "scratch_model": Spec(MODULE, "Lite0 trained from random weights", "scratch_model"),
        "transfer_curve": Spec(CURVE, "(seconds, test accuracies) of transfer", "transfer_curve"),
        "scratch_curve": Spec(CURVE, "(seconds, test accuracies) of scratch", "scratch_curve"),
        "seconds_to_reach": Spec(
            FUNCTION,
            "your function seconds_to_reach(seconds, accuracies, target)",
            "seconds_to_reach",
        ),
    },
    summary="a race to a target accuracy: transfer vs scratch with 30× the seconds, "
    "accuracy-vs-time curves, `seconds_to_reach`",
    weights="Lite0 real vs random init",
)


def _curve(curve: object, what: str) -> tuple[list[float], list[float]]:
    """(seconds, accuracies) as float lists, or NotYet saying what is wrong with the curve."""
    try:
        seconds, accuracies = ([float(x) for x in part] for part in curve)
    except (TypeError, ValueError):
        raise NotYet(f"{what} should be (seconds, accuracies): two lists of numbers") from None
    if len(seconds) != len(accuracies) or len(seconds) < MIN_POINTS:
        raise NotYet(
            f"{what}: {len(seconds)} seconds and {len(accuracies)} accuracies; expected the same "
            f"number, at least {MIN_POINTS} (one per evaluation, measured as you train)"
        )
    if not (0 < seconds[0] and all(a < b < 3600 for a, b in zip(seconds, seconds[1:]))):
        raise NotYet(
            f"{what}: the seconds should be measured clock times, positive and strictly "
            f"growing (got {seconds[:4]})"
        )
    if not all(0 <= a <= 1 for a in accuracies):
        raise NotYet(f"{what}: accuracies should lie between 0 and 1 (got {accuracies[:4]})")
    return seconds, accuracies


def _pretrained_like(model: nn.Module) -> list[str]:
    """Names of `model`'s weight tensors that point the way an ImageNet Lite0 tensor of the same
    shape does (|cosine| >= PRETRAINED_COSINE): names, prefixes and scale do not matter."""
    by_shape: dict[tuple, list[torch.Tensor]] = {}
    for tensor in pretrained_lite0_state().values():
        if tensor.is_floating_point() and tensor.ndim >= 2:
            by_shape.setdefault(tuple(tensor.shape), []).append(tensor.flatten())
    stacked = {
        shape: nn.functional.normalize(torch.stack(ts), dim=1) for shape, ts in by_shape.items()
    }
    found = []
    for name, tensor in model.state_dict().items():
        reference = stacked.get(tuple(tensor.shape))
        if reference is None or not tensor.is_floating_point():
            continue
        mine = nn.functional.normalize(tensor.detach().cpu().float().flatten(), dim=0)
        if float((reference @ mine).abs().max()) >= PRETRAINED_COSINE:
            found.append(name)
    return found


def _own_weights(model: nn.Module) -> None:
    """NotYet if the model's outputs do not change when its own parameters are zeroed: its
    forward then computes with weights it does not hold (another model, a lookup)."""
    inputs, _ = heldout_batch(EX06_CLASSES, per_class=10)
    before = model_outputs(model, inputs, "scratch_model")
    try:
        zeroed = copy.deepcopy(model)
    except Exception as error:
        raise NotYet(f"scratch_model cannot be copied ({type(error).__name__}: {error})") from None
    with torch.no_grad():
        for parameter in zeroed.parameters():
            parameter.zero_()
    if torch.allclose(before, model_outputs(zeroed, inputs, "scratch_model")):
        raise NotYet(
            "scratch_model's outputs stay the same with all its parameters zeroed: its forward "
            "uses weights it does not hold (another model?); train the Lite0 you pass"
        )


def _training_steps(model: nn.Module) -> tuple[int, float]:
    """(training steps the model took, the grader's seconds for one such step of 32 images).

    Steps: BatchNorm's `num_batches_tracked`, which counts forward passes in train mode.
    """
    counts = [int(m.num_batches_tracked) for m in model.modules() if _counts_batches(m)]
    steps = max(counts, default=0)
    if steps == 0:
        raise NotYet(
            "scratch_model never trained: its BatchNorm layers counted 0 training steps "
            "(model.train() before each step)"
        )
    try:
        copied = copy.deepcopy(model)
        device = next(copied.parameters()).device
        inputs = heldout_batch(EX06_CLASSES, per_class=7)[0][:32].to(device)
        if any(
            p.ndim == 4
            and p.is_contiguous(memory_format=torch.channels_last)
            and not p.is_contiguous()
            for p in copied.parameters()
        ):
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        copied.train()
        times = []
        for _ in range(3):  # the first one warms up
            started = time.perf_counter()
            copied(inputs).float().logsumexp(1).mean().backward()
            if device.type == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
    except Exception as error:
        raise NotYet(f"timing a training step of scratch_model raised {error!r}") from None
    return steps, min(times[1:])


def _counts_batches(module: nn.Module) -> bool:
    tracked = getattr(module, "num_batches_tracked", None)
    return isinstance(module, nn.modules.batchnorm._BatchNorm) and tracked is not None


def _reach(seconds: list[float], accuracies: list[float], target: float) -> float:
    """The grader's reading of a curve: the clock at the first accuracy >= target, else inf."""
    return next((s for s, a in zip(seconds, accuracies) if a >= target), math.inf)


@EX06.check(
    f"transfer_model: pretrained backbone, accuracy >= {TRANSFER_FLOOR} on 250 held-out images",
    points=2,
    needs=("transfer_model",),
    hint="Freeze the pretrained Lite0, replace its head, train the head on cached features.",
)
def _ex06_transfer(submitted: dict) -> str:
    pretrained_backbone(submitted["transfer_model"], "transfer_model")
    accuracy, n = measured_accuracy(
        submitted["transfer_model"], EX06_CLASSES, what="transfer_model"
    )
    return at_least(accuracy, TRANSFER_FLOOR, context=f"on {n} held-out images")


@EX06.check(
    f"scratch_model: from random weights, and it learned (>= {SCRATCH_FLOOR} held-out; chance "
    f"{1 / len(EX06_CLASSES):g})",
    points=2,
    needs=("scratch_model",),
    hint="Idea: all of Lite0 trains from random weights, for the whole budget. "
    "API: tl.load_pretrained('efficientnet_lite0', weights=None); if it stays at chance, "
    "use lr 3e-3 and BatchNorm momentum 0.5 (notebook 06).",
)
def _ex06_scratch(submitted: dict) -> str:
    pretrained = _pretrained_like(submitted["scratch_model"])
    if len(pretrained) > 2:
        raise NotYet(
            f"{len(pretrained)} weight tensors of scratch_model are the ImageNet weights (|cosine| "
            f">= {PRETRAINED_COSINE} with a pretrained tensor, whatever their name, wrapping or "
            f"scale), e.g. {pretrained[:2]}: that is transfer; build it with weights=None"
        )
    _own_weights(submitted["scratch_model"])
    accuracy, n = measured_accuracy(submitted["scratch_model"], EX06_CLASSES, what="scratch_model")
    return at_least(accuracy, SCRATCH_FLOOR, context=f"on {n} held-out images, from a random start")


@EX06.check(
    f"your curves end where your models are (last accuracy within {CURVE_TOLERANCE} of the "
    "grader's)",
    points=2,
    needs=("transfer_model", "scratch_model", "transfer_curve", "scratch_curve"),
    hint="Idea: a curve is (seconds, accuracies), one pair per evaluation, the last one after the "
    "last training step. API: tl.evaluate(model, test_loader)['accuracy'] of the model you pass.",
)
def _ex06_curves(submitted: dict) -> str:
    details = []
    for kind in ("transfer", "scratch"):
        _, accuracies = _curve(submitted[f"{kind}_curve"], f"{kind}_curve")
        measured, _ = measured_accuracy(
            submitted[f"{kind}_model"], EX06_CLASSES, what=f"{kind}_model"
        )
        shown = agrees(
            accuracies[-1],
            measured,
            f"{kind}_curve ending at",
            tolerance=CURVE_TOLERANCE,
            of=f"{kind}_model",
            fix="the curve's last point should measure the model you pass, after its training",
        )
        details.append(f"{kind} {shown}")
    return "; ".join(details)


@EX06.check(
    f"scratch trained at least {EX06_BUDGET} times as long as transfer",
    points=1,
    needs=("transfer_curve", "scratch_curve", "scratch_model"),
    hint="Idea: the race is about time, so scratch gets far more of it; the grader counts "
    "scratch_model's training steps and times one itself, so the clock must be real. "
    "API: keep training until the clock passes scratch_budget = BUDGET_FACTOR * transfer_seconds.",
)
def _ex06_budget(submitted: dict) -> str:
    transfer = _curve(submitted["transfer_curve"], "transfer_curve")[0][-1]
    scratch = _curve(submitted["scratch_curve"], "scratch_curve")[0][-1]
    steps, step_seconds = _training_steps(submitted["scratch_model"])
    if scratch > STEP_SLACK * steps * step_seconds:
        raise NotYet(
            f"scratch_curve says {scratch:.1f} s of training, but scratch_model took {steps} "
            f"training steps (its BatchNorm layers count them), {steps * step_seconds:.1f} s "
            "on this machine by the grader's clock: record the clock of the training you ran"
        )
    if scratch < EX06_BUDGET * transfer:
        raise NotYet(
            f"scratch trained {scratch:.1f} s, transfer {transfer:.2f} s: "
            f"only {scratch / transfer:.1f} times as long"
        )
    return f"scratch {scratch:.1f} s = {scratch / transfer:.0f} x transfer's {transfer:.2f} s"


@EX06.check(
    "seconds_to_reach: the first time at or above the target; math.inf if never",
    points=2,
    needs=("seconds_to_reach",),
    hint="Idea: the first evaluation that is high enough counts, equal included; none means "
    "never. API: zip(seconds, accuracies), return float(...) or math.inf.",
)
def _ex06_reading(submitted: dict) -> str:
    for seconds, accuracies, target, answer in READING_CASES:
        got = call_learner(
            submitted["seconds_to_reach"], seconds, accuracies, target, name="seconds_to_reach"
        )
        if not isinstance(got, numbers.Real) or not (
            got == answer or (math.isfinite(answer) and math.isclose(got, answer))
        ):
            raise NotYet(
                f"seconds_to_reach({seconds}, {accuracies}, {target}) returned {got!r}; "
                f"expected {answer}"
            )
    return f"{len(READING_CASES)} curves of the grader's read right"


@EX06.check(
    f"the race: transfer reaches {EX06_TARGET} sooner than scratch (read off your curves)",
    points=1,
    needs=("transfer_curve", "scratch_curve"),
    hint="Idea: both curves are measured on the same test images with the clock stopped; "
    "transfer should pass the target within its run. API: the curves of sections 2 and 3.",
)
def _ex06_race(submitted: dict) -> str:
    transfer = _reach(*_curve(submitted["transfer_curve"], "transfer_curve"), EX06_TARGET)
    scratch = _reach(*_curve(submitted["scratch_curve"], "scratch_curve"), EX06_TARGET)
    if not transfer < scratch:
        raise NotYet(
            f"seconds to reach {EX06_TARGET}: transfer {transfer:.2f}, scratch {scratch:.2f}: "
            "transfer should get there first"
        )
    shown = "never" if scratch == math.inf else f"{scratch:.1f} s"
    return f"transfer {transfer:.2f} s, scratch {shown}"
