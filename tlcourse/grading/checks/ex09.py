"""Exercise 9: the threshold is chosen on validation data; test rates are measured here, once.

The learner passes a rule, `choose_threshold(labels, p_pneumonia) -> threshold`, and the
threshold it gave on the exercise's validation split. The grader checks that this threshold is
the rule's answer on that validation split (not on the test folder, not a typed-in number).

Two data sources, each re-measured with the grader's own loading and transforms:

- the offline stand-in (default): the rule is applied to the grader's own 400 images, the
  threshold picked on one half measured on the other half, both ways, so no image is used to
  choose the threshold that it is scored with. Floors: sensitivity 0.9, specificity 0.7.
- the learner's real X-rays, when `TLCOURSE_XRAY_DIR` names a folder in the layout of the public
  "Chest X-Ray Images (Pneumonia)" set (`train/` and `test/`, each with `NORMAL/` and
  `PNEUMONIA/`): `tl.load_imagefolder` reads it (unreadable files skipped, grey and 16-bit made
  RGB), the validation split is the exercise's (`split_by_patient`: 20 % of `train/`,
  stratified, no patient on both sides, seed 0), and the rates are measured on all of `test/` at
  the learner's threshold, at `image_size` (default 96).
  Floors: sensitivity 0.9, specificity 0.6. Source: Kermany et al., Cell 172(5), 2018,
  "Identifying Medical Diagnoses and Treatable Diseases by Image-Based Deep Learning", report
  sensitivity 93.2 % and specificity 90.1 % on this test set with a fine-tuned ImageNet
  Inception-v3 at 299 px. A frozen Lite0 at 96-224 px with a threshold aimed at 98 %
  sensitivity on validation trades specificity away, hence 0.6: well below the paper, above the
  0 that "everyone is sick" scores. No real X-rays ship with the course, so these two floors
  were not measured here; the stand-in's were.
"""

from __future__ import annotations

import math
import os
import secrets
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torchvision import datasets

from tlcourse.data import transforms_for
from tlcourse.grading.checks.common import (
    FUNCTION,
    MODULE,
    TOLERANCE,
    agrees,
    at_least,
)
from tlcourse.grading.data import (
    IMAGE_SIZE,
    cached_outputs,
    heldout_outputs,
    model_outputs,
    write_medical_standin,
)
from tlcourse.grading.registry import NotYet, Spec, call_learner, exercise, number
from tlcourse.imagefolder import ImageFolderDataset, load_imagefolder, split_by_patient
from tlcourse.metrics import sensitivity_specificity

EX09_HELDOUT = ["Cat", "Dog"]  # the stand-in's NORMAL and PNEUMONIA roles, grader pool
EX09_PER_CLASS = 200  # the grader pool of each class: two halves of 100 + 100 images
SAME = 1e-4  # two thresholds this close are the same (batching changes the last float digits)
XRAY_ENV = "TLCOURSE_XRAY_DIR"
XRAY_CLASSES = ["NORMAL", "PNEUMONIA"]
XRAY_LAYOUT = "chest_xray/{train,test}/{NORMAL,PNEUMONIA}/*.jpeg"
TARGET = 0.98  # choose_threshold's default target, given in the exercise
# Made-up validation sets: (about where the right threshold lies, whether the positives around it
# form one run with no healthy image between them: roc_curve's default drop_intermediate=True
# then lists only the run's lowest threshold). Far apart, so no constant fits two of them.
MADE_UP = [(0.3, False), (0.55, False), (0.8, False), (0.45, True)]
FLOORS = {  # see the module docstring for where the real-data floors come from
    "stand-in": {"sensitivity": 0.9, "specificity": 0.7},
    "real": {"sensitivity": 0.9, "specificity": 0.6},
}
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
        "image_size": Spec(
            (int,),
            "the image size your model was trained at (real X-rays only; default 96)",
            "IMAGE_SIZE",
            optional=True,
        ),
    },
    summary="the chest X-ray pipeline: a threshold rule chosen on validation, sensitivity / "
    "specificity on test once (offline stand-in, or your data via `TLCOURSE_XRAY_DIR`)",
    weights="Lite0 real",
)


def _xray_root() -> Path | None:
    """The learner's real X-ray folder from TLCOURSE_XRAY_DIR, or None: grade the stand-in."""
    value = os.environ.get(XRAY_ENV, "").strip()
    return Path(value).expanduser() if value else None


def _graded_on() -> str:
    root = _xray_root()
    return "the offline stand-in" if root is None else f"your X-rays in {root}"


@lru_cache(maxsize=4)
def _real_folder(root: Path, split: str, image_size: int) -> ImageFolderDataset:
    """root/split read with the grader's loading and transforms (each file checked once)."""
    transform = transforms_for("efficientnet_lite0", image_size=image_size)
    try:
        folder = load_imagefolder(root / split, transform, verbose=False)
    except (FileNotFoundError, NotADirectoryError, ValueError) as error:
        raise NotYet(f"{XRAY_ENV}={root}: {error} (want the layout {XRAY_LAYOUT})") from None
    if folder.classes != XRAY_CLASSES:
        raise NotYet(
            f"{XRAY_ENV}={root}: {split}/ has the class folders {folder.classes}; want "
            f"{XRAY_CLASSES} (the layout {XRAY_LAYOUT}): rename the folders or point "
            f"{XRAY_ENV} at the folder that holds train/ and test/"
        )
    return folder


def _real_outputs(model: torch.nn.Module, split: str, image_size: int):
    """(logits, labels) on the real "val" (20 % of train/, as the exercise) or "test" images."""
    root = _xray_root()
    if split == "test":
        folder = _real_folder(root, "test", image_size)
        indices = np.arange(len(folder))
    else:
        folder = _real_folder(root, "train", image_size)
        paths = [path for path, _ in folder.samples]
        indices = split_by_patient(paths, folder.targets, val_fraction=0.2)["val"]

    def compute() -> tuple[torch.Tensor, torch.Tensor]:
        chunks = np.array_split(indices, max(len(indices) // 64, 1))  # 64 images at a time
        batches = [torch.stack([folder[int(i)][0] for i in chunk]) for chunk in chunks]
        logits = torch.cat([model_outputs(model, batch) for batch in batches])
        return logits, torch.tensor([folder.targets[int(i)] for i in indices])

    return cached_outputs(model, ("xray", str(root), split, image_size), compute)


def _image_size(submitted: dict) -> int:
    size = submitted.get("image_size") or IMAGE_SIZE
    if not 32 <= size <= 1024:
        raise NotYet(f"image_size={size}: pass the size your model was trained at, e.g. 96 or 224")
    return size


def _p_pneumonia(logits: torch.Tensor) -> np.ndarray:
    if logits.shape[1] != 2:
        raise NotYet(f"model has {logits.shape[1]} outputs; want 2 (NORMAL, PNEUMONIA)")
    return logits.softmax(1)[:, 1].double().numpy()


def _rule(submitted: dict, labels: np.ndarray, p: np.ndarray) -> float:
    """The learner's choose_threshold on (labels, P(PNEUMONIA)): a probability in (0, 1)."""
    answer = call_learner(
        submitted["choose_threshold"], labels.copy(), p.copy(), name="choose_threshold"
    )
    try:
        threshold = float(answer)
    except (TypeError, ValueError):
        raise NotYet(f"choose_threshold returned {answer!r}; want a number") from None
    if not 0 < threshold < 1:
        raise NotYet(f"choose_threshold returned {threshold}: want a probability between 0 and 1")
    return threshold


def _uses_its_data(submitted: dict, labels: np.ndarray, p: np.ndarray) -> float:
    """The rule's threshold on (labels, p); NotYet if halving every probability leaves it as is."""
    threshold = _rule(submitted, labels, p)
    halved = _rule(submitted, labels, p / 2)
    if abs(halved - threshold) < 1e-9:
        raise NotYet(
            f"choose_threshold gave {threshold:.3f} on the grader's validation images and "
            f"{halved:.3f} again when every probability was halved: it must compute the threshold "
            "from the labels and probabilities it is given, not return a number fixed in advance "
            "(a threshold read off the test set is one)"
        )
    return threshold


def made_up_validation_set(
    rng: np.random.Generator, near: float, run: bool
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(labels, P(PNEUMONIA), right threshold, the highest probability below it of a NORMAL).

    60 PNEUMONIA and 60 NORMAL in random order. The right threshold (the highest whose
    sensitivity is >= 0.98) is the 59th-highest PNEUMONIA probability, placed within 0.03 of
    `near`; the next probability below it belongs to a NORMAL image 0.01-0.03 lower, except with
    `run`, where one more PNEUMONIA lies between them (right below the right threshold, and one
    right above it), so that roc_curve(drop_intermediate=True) lists only the run's lowest one.
    Any threshold above the NORMAL's probability and at most the right one flags the same images
    of both classes (with `run`: the same NORMAL ones and at least as many PNEUMONIA ones).

    Example:
        >>> labels, p, right, below = made_up_validation_set(np.random.default_rng(0), 0.3, False)
        >>> bool(below < right and np.mean(p[labels == 1] >= right) >= 0.98)
        True
    """
    right = near + rng.uniform(-0.03, 0.03)
    gap = rng.uniform(0.01, 0.03)
    below = right - (2 if run else 1) * gap
    positives = [right, below - rng.uniform(0.02, 0.1)]  # the 59th and 60th highest
    if run:  # the 60th right below, and the 58th right above, with no NORMAL in between
        positives = [right, right - gap, right + gap]
    positives += list(rng.uniform(right + 2 * gap, 0.995, 60 - len(positives)))
    negatives = [below]
    negatives += list(rng.uniform(0.005, below - 0.005, 40))
    negatives += list(rng.uniform(right + 2 * gap, 0.995, 19))
    p = np.array(positives + negatives)
    labels = np.r_[np.ones(60, dtype=int), np.zeros(60, dtype=int)]
    order = rng.permutation(len(p))
    return labels[order], p[order], float(right), float(below)


def _right_threshold(labels: np.ndarray, p: np.ndarray, target: float = TARGET) -> float:
    """The highest probability t with mean(p[positive] >= t) >= target (the exercise's rule)."""
    return float(next(t for t in np.unique(p)[::-1] if np.mean(p[labels == 1] >= t) >= target))


def _tracks_the_right_threshold(submitted: dict) -> str:
    """The rule on MADE_UP validation sets, with a fresh seed: NotYet unless every answer flags
    what the right threshold flags (the run's lowest threshold is accepted, with a note)."""
    seed = secrets.randbits(32)
    rng = np.random.default_rng(seed)
    rows, wrong, low_in_run = [], 0, False
    for near, run in MADE_UP:
        labels, p, right, below = made_up_validation_set(rng, near, run)
        assert math.isclose(right, _right_threshold(labels, p))  # the set is what it says
        answer = _rule(submitted, labels, p)
        ok = below < answer <= right + 1e-6  # float32 rounding of `right` is fine
        wrong += not ok
        low_in_run |= ok and run and answer < right - 1e-6
        rows.append(f"{answer:.3f} {'ok' if ok else 'wrong'} (right {right:.3f})")
    if wrong:
        raise NotYet(
            f"on {len(MADE_UP)} made-up validation sets (seed {seed}) choose_threshold returned "
            + "; ".join(rows)
            + f". The right answer is the highest threshold whose sensitivity is >= {TARGET} "
            f"(the default target): any threshold above the next lower NORMAL probability and "
            "at most the right one counts. Compute it from the labels and probabilities given"
        )
    note = (
        "; in the set with a run of PNEUMONIA around the answer your rule chose the run's lowest "
        "threshold (roc_curve drops intermediate ones unless drop_intermediate=False): "
        "accepted, it clears the same NORMAL images"
        if low_in_run
        else ""
    )
    return f"right on {len(MADE_UP)} made-up validation sets (seed {seed}){note}"


@EX09.check(
    f"choose_threshold returns the highest threshold whose sensitivity is >= {TARGET}, on "
    f"{len(MADE_UP)} made-up validation sets whose right thresholds differ "
    f"({min(MADE_UP)[0]} to {max(MADE_UP)[0]})",
    points=2,
    needs=("choose_threshold",),
    hint="Walk the thresholds from high to low and stop at the first whose sensitivity reaches "
    "target: roc_curve(labels, p, drop_intermediate=False) lists them. A number fixed in advance "
    "(or one that barely depends on the data) fits one set only.",
)
def _ex09_rule(submitted: dict) -> str:
    return _tracks_the_right_threshold(submitted)


@lru_cache(maxsize=1)
def _exercise_splits() -> dict[str, tuple[torch.Tensor, np.ndarray]]:
    """The exercise's own validation and test images, rebuilt exactly as the exercise builds them.

    Same stand-in (write_medical_standin with its defaults), same validation split of the
    training folder (`split_by_patient`, 20 %, seed 0: one image per patient here, so a plain
    stratified split). Returns {"val" | "test": (inputs, labels)}.
    """
    transform = transforms_for("efficientnet_lite0", image_size=IMAGE_SIZE)
    with tempfile.TemporaryDirectory() as folder:
        root = write_medical_standin(Path(folder) / "xray_standin")
        out = {}
        for split in ("train", "test"):
            dataset = datasets.ImageFolder(root / split, transform=transform)
            out[split] = (torch.stack([image for image, _ in dataset]), np.array(dataset.targets))
            if split == "train":
                paths = [str(Path(path).relative_to(root)) for path, _ in dataset.samples]
    inputs, targets = out.pop("train")
    val = split_by_patient(paths, targets, val_fraction=0.2)["val"]
    out["val"] = (inputs[val], targets[val])
    return out


def _on_exercise(submitted: dict, split: str) -> tuple[np.ndarray, np.ndarray]:
    """(labels, P(PNEUMONIA)) of the model on the exercise's "val" or "test" images."""
    if _xray_root() is not None:
        logits, labels = _real_outputs(submitted["model"], split, _image_size(submitted))
        return labels.numpy(), _p_pneumonia(logits)
    inputs, labels = _exercise_splits()[split]
    return labels, _p_pneumonia(model_outputs(submitted["model"], inputs))


def _threshold(submitted: dict) -> float:
    threshold = float(submitted["threshold"])
    if not 0 < threshold < 1:
        raise NotYet(f"threshold={threshold}: a probability strictly between 0 and 1")
    return threshold


def _held_out_rates(submitted: dict) -> tuple[tuple[float, float], str]:
    """(sensitivity, specificity) on images the learner's threshold was not chosen on, and how.

    Stand-in: cross-fitted on the grader's 400 images. Real X-rays: test/ at the threshold.
    """
    if _xray_root() is None:
        rates, thresholds = _cross_fitted(submitted)
        return rates, f"(stand-in; thresholds {thresholds[0]:.2f} and {thresholds[1]:.2f})"
    threshold = _threshold(submitted)
    labels, p = _on_exercise(submitted, "test")
    rates = sensitivity_specificity(labels, (p >= threshold).astype(int))
    return rates, f"({len(labels)} test X-rays in {_xray_root()}, threshold {threshold:.3f})"


def _floor(rate: str) -> float:
    return FLOORS["stand-in" if _xray_root() is None else "real"][rate]


def _floors_shown(rate: str) -> str:
    """'>= 0.7 (>= 0.6 on real X-rays)': the FLOORS of `rate`, for a check's title."""
    stand_in, real = FLOORS["stand-in"][rate], FLOORS["real"][rate]
    return f">= {stand_in}" + ("" if real == stand_in else f" (>= {real} on real X-rays)")


def _cross_fitted(submitted: dict) -> tuple[tuple[float, float], list[float]]:
    """(sensitivity, specificity) on the grader's 400 images; each half is thresholded by the
    rule applied to the other half. Also returns the two thresholds."""
    logits, labels = heldout_outputs(submitted["model"], EX09_HELDOUT, per_class=EX09_PER_CLASS)
    p, labels = _p_pneumonia(logits), labels.numpy()
    half = EX09_PER_CLASS // 2  # labels are 200 NORMAL then 200 PNEUMONIA
    halves = [np.r_[0:half, 2 * half : 3 * half], np.r_[half : 2 * half, 3 * half : 4 * half]]
    thresholds = [_uses_its_data(submitted, labels[h], p[h]) for h in halves]
    predicted = np.zeros(len(p), dtype=int)
    for chosen_on, scored_on in ((0, 1), (1, 0)):
        predicted[halves[scored_on]] = p[halves[scored_on]] >= thresholds[chosen_on]
    return sensitivity_specificity(labels, predicted, positive=1), thresholds


@EX09.check(
    "your threshold is choose_threshold's answer on your validation split, not on the test set",
    points=1,
    needs=("model", "choose_threshold", "threshold"),
    hint="Call your rule on the validation labels and probabilities and keep its answer; the test "
    "set is used once, afterwards, to report.",
)
def _ex09_chosen_on_validation(submitted: dict) -> str:
    if _xray_root() is None:  # the grader's own images: does the rule compute from its data?
        logits, labels = heldout_outputs(submitted["model"], EX09_HELDOUT, per_class=EX09_PER_CLASS)
        _uses_its_data(submitted, labels.numpy(), _p_pneumonia(logits))
    else:
        _uses_its_data(submitted, *_on_exercise(submitted, "val"))
    threshold = float(submitted["threshold"])
    on_val = _rule(submitted, *_on_exercise(submitted, "val"))
    if abs(threshold - on_val) <= SAME:
        return f"{threshold:.3f}, chosen on the validation split of {_graded_on()}"
    on_test = _rule(submitted, *_on_exercise(submitted, "test"))
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
    f"sensitivity (PNEUMONIA found) {_floors_shown('sensitivity')} on images your threshold was "
    f"not chosen on (stand-in: the grader's {2 * EX09_PER_CLASS}, each half at the threshold your "
    "rule picks on the other half; "
    "TLCOURSE_XRAY_DIR: its test/ at your threshold)",
    points=3,
    needs=("model", "choose_threshold", "threshold"),
    hint="Missing a sick patient costs most: class weights in training, and a rule that aims "
    "high on validation (a screening test: miss at most 2 in 100).",
)
def _ex09_sensitivity(submitted: dict) -> str:
    (sensitivity, _), how = _held_out_rates(submitted)
    return at_least(sensitivity, _floor("sensitivity"), "sensitivity", how)


@EX09.check(
    f"specificity (NORMAL cleared) {_floors_shown('specificity')} on the same images",
    points=2,
    needs=("model", "choose_threshold", "threshold"),
    hint="A threshold near 0 finds every case but clears nobody: look at both rates on validation.",
)
def _ex09_specificity(submitted: dict) -> str:
    (_, specificity), how = _held_out_rates(submitted)
    return at_least(specificity, _floor("specificity"), "specificity", how)


@EX09.check(
    "the sensitivity and specificity you report match your model at your threshold on the "
    f"exercise's test folder (within {TOLERANCE})",
    points=2,
    needs=("model", "threshold", "sensitivity", "specificity"),
    hint="Measure once on the test set: tl.sensitivity_specificity of the test labels and the "
    "predictions at your threshold.",
)
def _ex09_reported(submitted: dict) -> str:
    threshold = _threshold(submitted)
    labels, p = _on_exercise(submitted, "test")
    sensitivity, specificity = sensitivity_specificity(labels, (p >= threshold).astype(int))
    of = f"your model on the test images of {_graded_on()}"
    return "; ".join(
        [
            agrees(submitted["sensitivity"], sensitivity, "sensitivity", of=of),
            agrees(submitted["specificity"], specificity, "specificity", of=of),
        ]
    )
