"""Exercise 6: both models re-measured by the grader; the claim and the time budget."""

from __future__ import annotations

import torch

from tlcourse.grading.checks.common import (
    MODULE,
    agrees,
    at_least,
    pretrained_backbone,
)
from tlcourse.grading.data import (
    measured_accuracy,
    pretrained_lite0_state,
)
from tlcourse.grading.registry import NotYet, Spec, exercise, number

EX06_CLASSES = ["Bear", "Bird", "Elephant", "Giraffe", "Horse"]
EX06 = exercise(
    "ex06",
    "Scratch vs transfer at the same time budget",
    "06_scratch_vs_transfer",
    {
        "scratch_model": Spec(MODULE, "the model trained from random weights", "scratch_model"),
        "transfer_model": Spec(MODULE, "pretrained Lite0 + trained head", "transfer_model"),
        "scratch_seconds": number("training seconds of scratch_model", "scratch_seconds"),
        "transfer_seconds": number("training seconds of transfer_model", "transfer_seconds"),
        "scratch_accuracy": number("your test accuracy of scratch_model", "scratch_accuracy"),
        "transfer_accuracy": number("your test accuracy of transfer_model", "transfer_accuracy"),
    },
)


@EX06.check(
    "transfer_model: pretrained backbone, accuracy >= 0.75 on 250 held-out images",
    points=3,
    needs=("transfer_model",),
    hint="Freeze the pretrained Lite0, replace its head, train the head on cached features.",
)
def _ex06_transfer(o: dict) -> str:
    pretrained_backbone(o["transfer_model"], "transfer_model")
    accuracy, n = measured_accuracy(o["transfer_model"], EX06_CLASSES, what="transfer_model")
    return at_least(accuracy, 0.75, context=f"on {n} held-out images")


@EX06.check(
    "scratch_model: really from scratch (not the ImageNet weights)",
    points=2,
    needs=("scratch_model",),
    hint="Build it with weights=None: tl.load_pretrained('efficientnet_lite0', weights=None).",
)
def _ex06_scratch(o: dict) -> str:
    reference = pretrained_lite0_state()
    state = o["scratch_model"].state_dict()
    same = [k for k, v in reference.items() if k in state and state[k].shape == v.shape]
    equal = [k for k in same if k.endswith("weight") and torch.equal(state[k].cpu(), reference[k])]
    if len(equal) > 2:
        raise NotYet(f"{len(equal)} weight tensors equal the pretrained ones: that is transfer")
    measured_accuracy(o["scratch_model"], EX06_CLASSES, what="scratch_model")  # it must run
    return "random start"


@EX06.check(
    "the accuracies you report match the grader's measurements (within 0.1)",
    points=2,
    needs=("scratch_model", "transfer_model", "scratch_accuracy", "transfer_accuracy"),
    hint="Report tl.evaluate(...)['accuracy'] of exactly the models you pass.",
)
def _ex06_reported(o: dict) -> str:
    details = []
    for kind in ("scratch", "transfer"):
        measured, _ = measured_accuracy(o[f"{kind}_model"], EX06_CLASSES, what=f"{kind}_model")
        details.append(agrees(o[f"{kind}_accuracy"], measured, f"{kind}_accuracy"))
    return "; ".join(details)


@EX06.check(
    "fair comparison: scratch trained at least as long as transfer (seconds > 0)",
    points=1,
    needs=("scratch_seconds", "transfer_seconds"),
    hint="Give scratch a budget of at least transfer_seconds (time.perf_counter()).",
)
def _ex06_fair(o: dict) -> str:
    scratch, transfer = float(o["scratch_seconds"]), float(o["transfer_seconds"])
    if not (0 < transfer < 3600 and 0 < scratch < 3600):
        raise NotYet(f"times must be measured seconds, got {scratch} and {transfer}")
    if scratch < 0.9 * transfer:
        raise NotYet(f"scratch had {scratch:.1f} s, transfer {transfer:.1f} s: not the same budget")
    return f"scratch {scratch:.1f} s >= transfer {transfer:.1f} s"


@EX06.check(
    "the claim holds: transfer beats scratch by >= 0.15 on the grader's images",
    points=2,
    needs=("scratch_model", "transfer_model"),
    hint="Both models must be the trained ones; the grader measures them itself.",
)
def _ex06_claim(o: dict) -> str:
    transfer, _ = measured_accuracy(o["transfer_model"], EX06_CLASSES, what="transfer_model")
    scratch, _ = measured_accuracy(o["scratch_model"], EX06_CLASSES, what="scratch_model")
    return at_least(
        transfer - scratch, 0.15, "gap", f"(transfer {transfer:.3f}, scratch {scratch:.3f})"
    )
