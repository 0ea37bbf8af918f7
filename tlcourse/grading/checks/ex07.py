"""Exercise 7: a remedy for imbalance is used; Sheep recall and macro-F1 measured here."""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.utils.data import Sampler, WeightedRandomSampler

from tlcourse.data import ImageArrayDataset, transforms_for
from tlcourse.grading.checks.common import (
    MODULE,
    agrees,
    at_least,
)
from tlcourse.grading.data import (
    IMAGE_SIZE,
    heldout_outputs,
    model_outputs,
    practice_data,
)
from tlcourse.grading.registry import NotYet, Spec, exercise, number
from tlcourse.metrics import classification_metrics

EX07_CLASSES, EX07_MINORITY = ["Cow", "Sheep"], 1  # 300 cows, 10 sheep in the training set
EX07 = exercise(
    __name__,
    "Class imbalance: class weights or a sampler",
    {
        "model": Spec(MODULE, "Lite0 with the head trained on the imbalanced data", "model"),
        "loss_fn": Spec(MODULE, "the loss you trained with", "loss_fn"),
        "sampler": Spec((Sampler,), "your sampler, if you used one", "sampler", optional=True),
        "minority_recall": number("your test recall of Sheep", "minority_recall"),
        "macro_f1": number("your test macro-F1", "macro_f1"),
    },
    summary="class weights or a balanced sampler; minority recall, macro-F1",
    weights="Lite0 real",
)


def _metrics(logits: torch.Tensor, labels) -> tuple[float, float]:
    probabilities = logits.softmax(1)
    if probabilities.shape[1] != 2:
        raise NotYet(f"model has {probabilities.shape[1]} outputs; want 2 (Cow, Sheep)")
    report = classification_metrics(labels, probabilities, EX07_CLASSES)
    return report["per_class"]["Sheep"]["recall"], report["macro_f1"]


def _ex07_metrics(model: nn.Module) -> tuple[float, float]:
    """Sheep recall and macro-F1 on the grader's 200 balanced held-out images."""
    return _metrics(*heldout_outputs(model, EX07_CLASSES, per_class=100))


@lru_cache(maxsize=1)
def _exercise_test() -> tuple[torch.Tensor, np.ndarray]:
    """The exercise's own balanced test images (90 cows, 90 sheep), built as the exercise does."""
    images, labels, names = practice_data(EX07_CLASSES, per_class=400)
    cows, sheep = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    index = np.concatenate([cows[300:390], sheep[300:390]])
    transform = transforms_for("efficientnet_lite0", image_size=IMAGE_SIZE)
    dataset = ImageArrayDataset(images[index], labels[index], names, transform)
    return torch.stack([image for image, _ in dataset]), labels[index]


@EX07.check(
    "a remedy is used: the loss weights Sheep up, or a sampler draws rare samples more often",
    points=2,
    needs=("loss_fn", "sampler"),
    hint="Weight the loss per class (nn.CrossEntropyLoss's weight=, from tl.class_weights) "
    "or draw the rare images more often (tl.balanced_sampler) - one of the two.",
)
def _ex07_remedy(o: dict) -> str:
    weight = getattr(o["loss_fn"], "weight", None)
    if isinstance(weight, torch.Tensor) and weight.numel() == 2:
        ratio = float(weight[EX07_MINORITY] / weight[1 - EX07_MINORITY])
        if ratio >= 5:
            return f"class weights, Sheep x{ratio:.0f}"
    sampler = o.get("sampler")
    if isinstance(sampler, WeightedRandomSampler):
        ratio = float(sampler.weights.max() / sampler.weights.min())
        if ratio >= 5:
            return f"weighted sampler, rare samples x{ratio:.0f}"
    raise NotYet("neither loss_fn weights Sheep >= 5x Cow nor a sampler oversamples it")


@EX07.check(
    "Sheep recall >= 0.6 on 200 balanced held-out images",
    points=3,
    needs=("model",),
    hint="Without a remedy the model calls a third or more of the sheep a Cow: weight or resample.",
)
def _ex07_recall(o: dict) -> str:
    recall, _ = _ex07_metrics(o["model"])
    return at_least(recall, 0.6, "Sheep recall")


@EX07.check(
    "macro-F1 >= 0.78 on the same images",
    points=3,
    needs=("model",),
    hint="Macro-F1 averages both classes equally: the rare one counts as much as the common one.",
)
def _ex07_f1(o: dict) -> str:
    _, f1 = _ex07_metrics(o["model"])
    return at_least(f1, 0.78, "macro-F1")


@EX07.check(
    "the recall and macro-F1 you report match your model on the exercise's test images "
    "(within 0.1)",
    points=2,
    needs=("model", "minority_recall", "macro_f1"),
    hint="Compute them with tl.classification_metrics on your balanced test set.",
)
def _ex07_reported(o: dict) -> str:
    inputs, labels = _exercise_test()
    recall, f1 = _metrics(model_outputs(o["model"], inputs), labels)
    return "; ".join(
        [agrees(o["minority_recall"], recall, "recall"), agrees(o["macro_f1"], f1, "macro-F1")]
    )
