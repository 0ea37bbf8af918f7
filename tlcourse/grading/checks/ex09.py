"""Exercise 9: sensitivity and specificity recomputed on the grader's stand-in images."""

from __future__ import annotations

import os

from tlcourse.grading.checks.common import (
    MODULE,
    agrees,
    at_least,
)
from tlcourse.grading.data import (
    heldout_outputs,
)
from tlcourse.grading.registry import NotYet, Spec, exercise, number
from tlcourse.metrics import sensitivity_specificity

EX09_HELDOUT = ["Cat", "Dog"]  # the stand-in's NORMAL and PNEUMONIA roles, grader pool
EX09 = exercise(
    "ex09",
    "Medical case study: sensitivity, specificity",
    "09_medical_case_study",
    {
        "model": Spec(MODULE, "Lite0 with a 2-class head (NORMAL, PNEUMONIA)", "model"),
        "threshold": number("P(PNEUMONIA) from which you call it positive", "threshold"),
        "sensitivity": number("your test sensitivity", "sensitivity"),
        "specificity": number("your test specificity", "specificity"),
    },
)


def _ex09_rates(o: dict) -> tuple[float, float]:
    if os.environ.get("TLCOURSE_XRAY_DIR"):
        raise NotYet("the grader scores the offline stand-in: unset TLCOURSE_XRAY_DIR and re-run")
    threshold = float(o["threshold"])
    if not 0 < threshold < 1:
        raise NotYet(f"threshold={threshold}: a probability strictly between 0 and 1")
    logits, labels = heldout_outputs(o["model"], EX09_HELDOUT, per_class=100)
    if logits.shape[1] != 2:
        raise NotYet(f"model has {logits.shape[1]} outputs; want 2 (NORMAL, PNEUMONIA)")
    predicted = (logits.softmax(1)[:, 1] >= threshold).long()
    return sensitivity_specificity(labels, predicted, positive=1)


@EX09.check(
    "sensitivity (PNEUMONIA found) >= 0.9 on 200 held-out stand-in images",
    points=4,
    needs=("model", "threshold"),
    hint="Missing a sick patient costs most: use class weights and lower the threshold if needed.",
)
def _ex09_sensitivity(o: dict) -> str:
    sensitivity, _ = _ex09_rates(o)
    return at_least(sensitivity, 0.9, "sensitivity")


@EX09.check(
    "specificity (NORMAL cleared) >= 0.7 on the same images",
    points=3,
    needs=("model", "threshold"),
    hint="A threshold near 0 finds every case but clears nobody: check both rates.",
)
def _ex09_specificity(o: dict) -> str:
    _, specificity = _ex09_rates(o)
    return at_least(specificity, 0.7, "specificity")


@EX09.check(
    "the sensitivity and specificity you report match the grader's (within 0.1)",
    points=3,
    needs=("model", "threshold", "sensitivity", "specificity"),
    hint="Use tl.sensitivity_specificity(labels, (p_pneumonia >= threshold).long()).",
)
def _ex09_reported(o: dict) -> str:
    sensitivity, specificity = _ex09_rates(o)
    return "; ".join(
        [
            agrees(o["sensitivity"], sensitivity, "sensitivity"),
            agrees(o["specificity"], specificity, "specificity"),
        ]
    )
