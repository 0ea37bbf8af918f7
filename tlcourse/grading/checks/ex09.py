"""Exercise 9: the threshold is chosen on validation data; test rates are measured here, once.

The learner passes a rule, `choose_threshold(labels, p_pneumonia) -> threshold`, and the
threshold it gave on the exercise's validation split. The grader checks that this threshold is
the rule's answer on that validation split (not on the test folder, not a typed-in number),
then applies the rule to its own images: the threshold picked on one half of them is measured on
the other half, both ways, so no image is used to choose the threshold that it is scored with.
"""

from __future__ import annotations

import os
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets

from tlcourse.data import stratified_split, transforms_for
from tlcourse.grading.checks.common import (
    FUNCTION,
    MODULE,
    agrees,
    at_least,
)
from tlcourse.grading.data import (
    IMAGE_SIZE,
    heldout_outputs,
    model_outputs,
    write_medical_standin,
)
from tlcourse.grading.registry import NotYet, Spec, call_learner, exercise, number
from tlcourse.metrics import sensitivity_specificity

EX09_HELDOUT = ["Cat", "Dog"]  # the stand-in's NORMAL and PNEUMONIA roles, grader pool
EX09_PER_CLASS = 200  # the grader pool of each class: two halves of 100 + 100 images
SAME = 1e-4  # two thresholds this close are the same (batching changes the last float digits)
EX09 = exercise(
    __name__,
    "Medical case study: threshold on validation, sensitivity, specificity",
    {
        "model": Spec(MODULE, "Lite0 with a 2-class head (NORMAL, PNEUMONIA)", "model"),
        "choose_threshold": Spec(
            FUNCTION, "your rule choose_threshold(labels, p_pneumonia)", "choose_threshold"
        ),
        "threshold": number("the threshold your rule chose on your validation split", "threshold"),
        "sensitivity": number("your test sensitivity at that threshold", "sensitivity"),
        "specificity": number("your test specificity at that threshold", "specificity"),
    },
    summary="the chest X-ray pipeline: a threshold rule chosen on validation, sensitivity / "
    "specificity on test once (offline stand-in, or your data via `TLCOURSE_XRAY_DIR`)",
    weights="Lite0 real",
)


def _standin_only() -> None:
    if os.environ.get("TLCOURSE_XRAY_DIR"):
        raise NotYet("the grader scores the offline stand-in: unset TLCOURSE_XRAY_DIR and re-run")


def _p_pneumonia(logits: torch.Tensor) -> np.ndarray:
    if logits.shape[1] != 2:
        raise NotYet(f"model has {logits.shape[1]} outputs; want 2 (NORMAL, PNEUMONIA)")
    return logits.softmax(1)[:, 1].double().numpy()


def _rule(o: dict, labels: np.ndarray, p: np.ndarray) -> float:
    """The learner's choose_threshold on (labels, P(PNEUMONIA)): a probability in (0, 1)."""
    answer = call_learner(o["choose_threshold"], labels.copy(), p.copy(), name="choose_threshold")
    try:
        threshold = float(answer)
    except (TypeError, ValueError):
        raise NotYet(f"choose_threshold returned {answer!r}; want a number") from None
    if not 0 < threshold < 1:
        raise NotYet(f"choose_threshold returned {threshold}: want a probability between 0 and 1")
    return threshold


def _uses_its_data(o: dict, labels: np.ndarray, p: np.ndarray) -> float:
    """The rule's threshold on (labels, p); NotYet if halving every probability leaves it as is."""
    threshold = _rule(o, labels, p)
    halved = _rule(o, labels, p / 2)
    if abs(halved - threshold) < 1e-9:
        raise NotYet(
            f"choose_threshold gave {threshold:.3f} on the grader's validation images and "
            f"{halved:.3f} again when every probability was halved: it must compute the threshold "
            "from the labels and probabilities it is given, not return a number fixed in advance "
            "(a threshold read off the test set is one)"
        )
    return threshold


@lru_cache(maxsize=1)
def _exercise_splits() -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    """The exercise's own validation and test images, rebuilt exactly as the exercise builds them.

    Same stand-in (write_medical_standin with its defaults), same 20 % stratified validation
    split of the training folder (seed 0). Returns {"val" | "test": (inputs, labels)}.
    """
    transform = transforms_for("efficientnet_lite0", image_size=IMAGE_SIZE)
    with tempfile.TemporaryDirectory() as folder:
        root = write_medical_standin(Path(folder) / "xray_standin")
        out = {}
        for split in ("train", "test"):
            dataset = datasets.ImageFolder(root / split, transform=transform)
            out[split] = (torch.stack([image for image, _ in dataset]), np.array(dataset.targets))
    inputs, targets = out.pop("train")
    n = len(targets)
    val = stratified_split(targets, {"train": n - n // 5, "val": n // 5})["val"]
    out["val"] = (inputs[val], targets[val])
    return out


def _on_exercise(model: torch.nn.Module, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, P(PNEUMONIA)) of the model on the exercise's "val" or "test" images."""
    inputs, labels = _exercise_splits()[split]
    return labels, _p_pneumonia(model_outputs(model, inputs))


def _cross_fitted(o: dict) -> tuple[tuple[float, float], list[float]]:
    """(sensitivity, specificity) on the grader's 400 images; each half is thresholded by the
    rule applied to the other half. Also returns the two thresholds."""
    _standin_only()
    logits, labels = heldout_outputs(o["model"], EX09_HELDOUT, per_class=EX09_PER_CLASS)
    p, labels = _p_pneumonia(logits), labels.numpy()
    half = EX09_PER_CLASS // 2  # labels are 200 NORMAL then 200 PNEUMONIA
    halves = [np.r_[0:half, 2 * half : 3 * half], np.r_[half : 2 * half, 3 * half : 4 * half]]
    thresholds = [_uses_its_data(o, labels[h], p[h]) for h in halves]
    predicted = np.zeros(len(p), dtype=int)
    for chosen_on, scored_on in ((0, 1), (1, 0)):
        predicted[halves[scored_on]] = p[halves[scored_on]] >= thresholds[chosen_on]
    return sensitivity_specificity(labels, predicted, positive=1), thresholds


@EX09.check(
    "your threshold is choose_threshold's answer on your validation split, not on the test set",
    points=2,
    needs=("model", "choose_threshold", "threshold"),
    hint="Call your rule on the validation labels and probabilities and keep its answer; the test "
    "set is used once, afterwards, to report.",
)
def _ex09_chosen_on_validation(o: dict) -> str:
    _standin_only()
    logits, labels = heldout_outputs(o["model"], EX09_HELDOUT, per_class=EX09_PER_CLASS)
    _uses_its_data(o, labels.numpy(), _p_pneumonia(logits))
    threshold = float(o["threshold"])
    on_val = _rule(o, *_on_exercise(o["model"], "val"))
    if abs(threshold - on_val) <= SAME:
        return f"{threshold:.3f}, chosen on the validation split"
    on_test = _rule(o, *_on_exercise(o["model"], "test"))
    if abs(threshold - on_test) <= SAME:
        raise NotYet(
            f"threshold {threshold:.3f} is what choose_threshold gives on the TEST images; on the "
            f"validation split it gives {on_val:.3f}. Choose it on validation data and use the "
            "test set once, to report: a threshold tuned on test makes the test rates look better "
            "than they will be on new patients"
        )
    raise NotYet(
        f"threshold {threshold:.3f} is not what choose_threshold gives on your validation split "
        f"({on_val:.3f}): call it on the validation labels and probabilities and keep its answer"
    )


@EX09.check(
    "sensitivity (PNEUMONIA found) >= 0.9 on 400 held-out stand-in images, each half at the "
    "threshold your rule picks on the other half",
    points=3,
    needs=("model", "choose_threshold"),
    hint="Missing a sick patient costs most: class weights in training, and a rule that aims "
    "high on validation (a screening test: miss at most 2 in 100).",
)
def _ex09_sensitivity(o: dict) -> str:
    (sensitivity, _), thresholds = _cross_fitted(o)
    chosen = f"(thresholds {thresholds[0]:.2f} and {thresholds[1]:.2f})"
    return at_least(sensitivity, 0.9, "sensitivity", chosen)


@EX09.check(
    "specificity (NORMAL cleared) >= 0.7 on the same images",
    points=3,
    needs=("model", "choose_threshold"),
    hint="A threshold near 0 finds every case but clears nobody: look at both rates on validation.",
)
def _ex09_specificity(o: dict) -> str:
    (_, specificity), _ = _cross_fitted(o)
    return at_least(specificity, 0.7, "specificity")


@EX09.check(
    "the sensitivity and specificity you report match your model at your threshold on the "
    "exercise's test folder (within 0.1)",
    points=2,
    needs=("model", "threshold", "sensitivity", "specificity"),
    hint="Measure once on the test set: tl.sensitivity_specificity of the test labels and the "
    "predictions at your threshold.",
)
def _ex09_reported(o: dict) -> str:
    _standin_only()
    threshold = float(o["threshold"])
    if not 0 < threshold < 1:
        raise NotYet(f"threshold={threshold}: a probability strictly between 0 and 1")
    labels, p = _on_exercise(o["model"], "test")
    sensitivity, specificity = sensitivity_specificity(labels, (p >= threshold).astype(int))
    return "; ".join(
        [
            agrees(o["sensitivity"], sensitivity, "sensitivity"),
            agrees(o["specificity"], specificity, "specificity"),
        ]
    )
