"""Exercise 7: the remedy changes the result, measured here against the grader's plain baseline.

The grader does not take the loss or the sampler on trust: it trains heads of its own on the
exercise's training images (300 cows, 10 sheep; the same frozen Lite0 features), once with a plain
loss and once with the learner's `loss_fn` and `sampler`, and measures both - and the learner's
model - on its own held-out images (perturbed afresh for every `check()` call). A weighted loss
that was never used, or a model trained without a remedy, does not beat the plain baseline.
"""

from __future__ import annotations

import copy
from functools import lru_cache

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler, TensorDataset, WeightedRandomSampler

from tlcourse.data import ImageArrayDataset, make_generator, transforms_for
from tlcourse.features import extract_features
from tlcourse.grading.checks.common import MODULE, TOLERANCE, agrees, at_least
from tlcourse.grading.data import (
    IMAGE_SIZE,
    cached_outputs,
    heldout_batch,
    heldout_outputs,
    model_outputs,
    practice_data,
)
from tlcourse.grading.registry import NotYet, Spec, exercise, number
from tlcourse.metrics import classification_metrics

EX07_CLASSES, EX07_MINORITY = ["Cow", "Sheep"], 1  # 300 cows, 10 sheep in the training set
PER_CLASS = 200  # held-out images per class: the grader's whole pool (200 cows, 200 sheep)
SEEDS = (0, 1, 2)  # the grader's heads: each trained with these seeds, their metrics averaged
# Measured on the grader's 400 images, training seeds 0-5 (the learner's) vs the grader's plain
# baseline (mean of SEEDS), perturbation seeds 100-104 (see REMEDY_GAIN's comment for the numbers).
REMEDY_GAIN = 0.08  # Sheep recall above plain: remedies gain >= 0.125, plain reruns <= 0.045
RECALL_FLOOR = 0.6  # on top of the gain: a floor of its own, the solution scores ~0.75
F1_FLOOR = 0.78  # macro-F1: plain ~0.80, class weights ~0.86 (plain may pass this one alone)
FIX = (
    "weight the loss (nn.CrossEntropyLoss(weight=tl.class_weights(train_labels))) or draw the "
    "rare images more often (sampler=tl.balanced_sampler(train_labels)), and pass what you used"
)
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
    """Sheep recall and macro-F1 on the grader's 400 balanced held-out images."""
    return _metrics(*heldout_outputs(model, EX07_CLASSES, per_class=PER_CLASS))


@lru_cache(maxsize=1)
def _backbone() -> nn.Module:
    """Pretrained Lite0, frozen, with a 2-class head: the grader's own feature extractor."""
    from tlcourse.freeze import freeze
    from tlcourse.models import load_pretrained, replace_head

    model = load_pretrained("efficientnet_lite0")
    freeze(model, verbose=False)
    replace_head(model, num_classes=2, verbose=False)
    return model.eval()


@lru_cache(maxsize=1)
def _exercise_images() -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray, np.ndarray]:
    """The exercise's images and its train (300 cows, 10 sheep) and test (90 + 90) indices."""
    images, labels, names = practice_data(EX07_CLASSES, per_class=400)
    cows, sheep = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    train = np.concatenate([cows[:300], sheep[:10]])
    test = np.concatenate([cows[300:390], sheep[300:390]])
    return images, labels, names, train, test


def _dataset(index: np.ndarray) -> ImageArrayDataset:
    images, labels, names, _, _ = _exercise_images()
    transform = transforms_for("efficientnet_lite0", image_size=IMAGE_SIZE)
    return ImageArrayDataset(images[index], labels[index], names, transform)


@lru_cache(maxsize=1)
def _train_features() -> TensorDataset:
    """Frozen Lite0 features of the exercise's 310 training images, in the exercise's order."""
    return extract_features(_backbone(), DataLoader(_dataset(_exercise_images()[3]), 155))


@lru_cache(maxsize=1)
def _exercise_test() -> tuple[torch.Tensor, np.ndarray]:
    """The exercise's own balanced test images (90 cows, 90 sheep), built as the exercise does."""
    dataset = _dataset(_exercise_images()[4])
    return torch.stack([image for image, _ in dataset]), dataset.labels


def _heldout_features() -> tuple[torch.Tensor, torch.Tensor]:
    """Frozen Lite0 features of this `check()` call's held-out images (the learner's model sees
    the same perturbed images through `heldout_outputs`)."""

    def compute() -> tuple[torch.Tensor, torch.Tensor]:
        inputs, labels = heldout_batch(EX07_CLASSES, PER_CLASS)
        features = extract_features(_backbone(), DataLoader(TensorDataset(inputs, labels), 200))
        return features.tensors[0], labels

    return cached_outputs(_backbone(), ("ex07 features",), compute)


def _head_metrics(loss_fn: nn.Module | None = None, sampler: Sampler | None = None):
    """(Sheep recall, macro-F1) on the held-out images of heads the grader trains as the exercise
    does (Adam lr 3e-3, 50 epochs, batches of 64), averaged over SEEDS; plain if no loss/sampler."""
    features, labels = _heldout_features()
    train = _train_features()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a (1280, 2) head: one thread is 10x faster on a busy CPU
    try:
        return _train_heads(train, features, labels, loss_fn, sampler)
    finally:
        torch.set_num_threads(threads)


def _train_heads(train, features, labels, loss_fn, sampler) -> tuple[float, float]:
    results = []
    for seed in SEEDS:
        torch.manual_seed(seed)
        head = nn.Linear(train.tensors[0].shape[1], 2)
        drawn = _grader_sampler(sampler, seed)
        loader = DataLoader(
            train,
            batch_size=64,
            sampler=drawn,
            shuffle=drawn is None,
            generator=make_generator(seed),
        )
        optimizer = torch.optim.Adam(head.parameters(), lr=3e-3)
        criterion = nn.CrossEntropyLoss() if loss_fn is None else loss_fn
        for _ in range(50):
            for inputs, targets in loader:
                loss = criterion(head(inputs), targets)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        with torch.no_grad():
            results.append(_metrics(head(features), labels))
    return tuple(float(np.mean(column)) for column in zip(*results))


def _grader_sampler(sampler: Sampler | None, seed: int) -> Sampler | None:
    """A copy of the learner's sampler that the grader can draw from with its own seed."""
    if sampler is None:
        return None
    size = len(_train_features())
    if isinstance(sampler, WeightedRandomSampler):
        if len(sampler.weights) != size:
            raise NotYet(
                f"your sampler has {len(sampler.weights)} weights; the training set has {size} "
                "images (one weight per image: tl.balanced_sampler(train_labels))"
            )
        return WeightedRandomSampler(
            sampler.weights, sampler.num_samples, sampler.replacement, make_generator(seed)
        )
    return copy.deepcopy(sampler)


def _plain() -> tuple[float, float]:
    """The grader's plain baseline (no remedy), computed once per `check()` call."""
    cached = cached_outputs(
        _backbone(), ("ex07 plain",), lambda: (torch.tensor(_head_metrics()), torch.zeros(0))
    )
    return tuple(float(x) for x in cached[0])


@EX07.check(
    "your remedy works in the grader's hands: a head trained with your loss_fn and sampler finds "
    f"more sheep (Sheep recall >= {REMEDY_GAIN} above plain training, macro-F1 not lower)",
    points=2,
    needs=("loss_fn", "sampler"),
    hint="The grader trains a head with the loss_fn and sampler you pass, on the exercise's 300 "
    "cows and 10 sheep, and compares it with plain training: pass the remedy you really used. "
    "Weight the loss per class (nn.CrossEntropyLoss's weight=, from tl.class_weights) or draw the "
    "rare images more often (tl.balanced_sampler) - one of the two.",
)
def _ex07_remedy(submitted: dict) -> str:
    loss_fn, sampler = submitted["loss_fn"], submitted.get("sampler")
    try:
        loss_fn = copy.deepcopy(loss_fn).to("cpu")
        recall, f1 = _head_metrics(loss_fn, sampler)
    except NotYet:
        raise
    except Exception as error:
        raise NotYet(
            f"training a head with your loss_fn and sampler raised {type(error).__name__}: {error}"
        ) from None
    plain_recall, plain_f1 = _plain()
    shown = (
        f"Sheep recall {recall:.3f} with your remedy vs {plain_recall:.3f} plain, "
        f"macro-F1 {f1:.3f} vs {plain_f1:.3f}"
    )
    if recall < plain_recall + REMEDY_GAIN:
        raise NotYet(f"{shown}: your loss_fn and sampler do not change the result; {FIX}")
    if f1 < plain_f1:
        raise NotYet(f"{shown}: more sheep, but at the cost of too many cows (over-corrected?)")
    return shown


@EX07.check(
    f"your model finds clearly more sheep than plain training (Sheep recall >= {REMEDY_GAIN} "
    f"above the grader's plain head, and >= {RECALL_FLOOR}) on "
    f"{PER_CLASS * len(EX07_CLASSES)} held-out images",
    points=3,
    needs=("model",),
    hint="Without a remedy the model calls a third or more of the sheep a Cow. Pass the model "
    "trained with your remedy (its head, not one trained again with a plain loss afterwards).",
)
def _ex07_recall(submitted: dict) -> str:
    recall, _ = _ex07_metrics(submitted["model"])
    plain_recall, _ = _plain()
    if recall < plain_recall + REMEDY_GAIN:
        raise NotYet(
            f"Sheep recall {recall:.3f}, plain training reaches {plain_recall:.3f}: your model "
            f"does no better than no remedy (needs >= {plain_recall + REMEDY_GAIN:.3f}); train "
            "it with the weighted loss or the balanced sampler"
        )
    return at_least(recall, RECALL_FLOOR, "Sheep recall", f"(plain {plain_recall:.3f})")


@EX07.check(
    f"macro-F1 >= {F1_FLOOR} on the same images, and not below plain training's",
    points=3,
    needs=("model",),
    hint="Macro-F1 averages both classes equally: the rare one counts as much as the common one. "
    "One remedy is enough; both at once over-correct (too many cows called Sheep).",
)
def _ex07_f1(submitted: dict) -> str:
    _, f1 = _ex07_metrics(submitted["model"])
    _, plain_f1 = _plain()
    if f1 < plain_f1:
        raise NotYet(f"macro-F1 {f1:.3f} is below plain training's {plain_f1:.3f}")
    return at_least(f1, F1_FLOOR, "macro-F1", f"(plain {plain_f1:.3f})")


@EX07.check(
    "the recall and macro-F1 you report match your model on the exercise's test images "
    f"(within {TOLERANCE})",
    points=2,
    needs=("model", "minority_recall", "macro_f1"),
    hint="Compute them with tl.classification_metrics on your balanced test set.",
)
def _ex07_reported(submitted: dict) -> str:
    inputs, labels = _exercise_test()
    recall, f1 = _metrics(model_outputs(submitted["model"], inputs), labels)
    return "; ".join(
        [
            agrees(submitted["minority_recall"], recall, "recall"),
            agrees(submitted["macro_f1"], f1, "macro-F1"),
        ]
    )
