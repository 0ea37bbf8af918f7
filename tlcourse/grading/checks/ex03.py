"""Exercise 3: VGG16 surgery by inspection; Lite0 accuracy measured on held-out images."""

from __future__ import annotations

import torch
from torch import nn

from tlcourse.grading.checks.common import (
    MODULE,
    TOLERANCE,
    agrees,
    at_least,
    class_order,
    pretrained_backbone,
)
from tlcourse.grading.data import (
    measured_accuracy,
    model_outputs,
)
from tlcourse.grading.registry import NotYet, Spec, exercise, number

EX03_CLASSES = ["Bird", "Cat", "Elephant", "Giraffe", "Zebra"]
ACCURACY_FLOOR = 0.85  # model's accuracy on the grader's held-out images (an untrained head ~0.2)
EX03 = exercise(
    __name__,
    "VGG16 feature extraction on your ImageFolder",
    {
        "vgg": Spec(MODULE, "VGG16 with a new classifier[6]", "vgg"),
        "model": Spec(MODULE, "Lite0 with its trained head", "model"),
        "class_names": Spec((list, tuple), "train_set.classes", "train_set.classes"),
        "accuracy": number("your test accuracy of model", "test_accuracy"),
    },
    summary="ImageFolder dataset; VGG16 `classifier[6]`; train a head on cached features",
    weights="VGG16 random (structure); Lite0 real (accuracy)",
)


@EX03.check(
    "vgg: VGG16 whose classifier[6] is Linear(4096, 5), logits (2, 5)",
    points=2,
    needs=("vgg",),
    hint="Assign a new nn.Linear to vgg.classifier[6]: the old in_features, one output a class.",
)
def _ex03_vgg_head(submitted: dict) -> str:
    vgg = submitted["vgg"]
    convs = [m for m in getattr(vgg, "features", []) if isinstance(m, nn.Conv2d)]
    classifier = getattr(vgg, "classifier", None)
    if len(convs) != 13 or not isinstance(classifier, nn.Sequential) or len(classifier) != 7:
        raise NotYet("vgg is not a VGG16 (13 convs in features, 7 layers in classifier)")
    last = classifier[6]
    if not isinstance(last, nn.Linear) or (last.in_features, last.out_features) != (4096, 5):
        raise NotYet(f"classifier[6] is {last}; want Linear(4096, 5)")
    logits = model_outputs(vgg, torch.randn(2, 3, 32, 32), "vgg")
    if logits.shape != (2, 5):
        raise NotYet(f"vgg gives logits {tuple(logits.shape)}; want (2, 5)")
    return "Linear(4096, 5)"


@EX03.check(
    "vgg: everything frozen except the new classifier[6]",
    points=2,
    needs=("vgg",),
    hint="Freeze all parameters first, then replace classifier[6]: a new layer is trainable.",
)
def _ex03_vgg_frozen(submitted: dict) -> str:
    trainable = [n for n, p in submitted["vgg"].named_parameters() if p.requires_grad]
    if sorted(trainable) != ["classifier.6.bias", "classifier.6.weight"]:
        raise NotYet(f"trainable: {trainable[:4]} ({len(trainable)}); want classifier.6 only")
    return "classifier.6 only"


@EX03.check(
    "model: Lite0 backbone keeps its pretrained weights; only the head is trainable",
    points=2,
    needs=("model",),
    hint="tl.freeze(model), tl.replace_head(...), then train the head on cached features.",
)
def _ex03_backbone(submitted: dict) -> str:
    return pretrained_backbone(submitted["model"], "model") + " trained, backbone untouched"


@EX03.check(
    f"model: accuracy >= {ACCURACY_FLOOR} on 250 held-out images the grader loads itself",
    points=3,
    needs=("model", "class_names"),
    hint="Train the new head on the cached features for ~20 epochs (lr 3e-3) at 48 px.",
)
def _ex03_accuracy(submitted: dict) -> str:
    classes = class_order(submitted["class_names"], EX03_CLASSES)
    accuracy, n = measured_accuracy(submitted["model"], classes)
    return at_least(
        accuracy, ACCURACY_FLOOR, context=f"on {n} held-out images (an untrained head gets ~0.2)"
    )


@EX03.check(
    f"the accuracy you report matches the grader's measurement (within {TOLERANCE})",
    points=1,
    needs=("model", "class_names", "accuracy"),
    hint="Report tl.evaluate(model, test_loader)['accuracy'] of the model you pass.",
)
def _ex03_reported(submitted: dict) -> str:
    accuracy, _ = measured_accuracy(
        submitted["model"], class_order(submitted["class_names"], EX03_CLASSES)
    )
    return agrees(submitted["accuracy"], accuracy, "accuracy")
