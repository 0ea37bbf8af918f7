"""Checks of exercises 3, 6, 7, 8 and 9: trained models, measured by the grader itself.

Every number is recomputed on the grader pool (images no exercise trains on); a number the
learner reports only has to agree with that measurement, so pasted results fail.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import Sampler, WeightedRandomSampler

from tlcourse.checkpoint import load_checkpoint, load_model_state
from tlcourse.grading.data import (
    changed_tensors,
    heldout_batch,
    heldout_data,
    heldout_outputs,
    measured_accuracy,
    model_outputs,
    pretrained_lite0_state,
)
from tlcourse.grading.registry import NotYet, Spec, call_learner, exercise, number
from tlcourse.metrics import classification_metrics, sensitivity_specificity
from tlcourse.models import get_head, load_pretrained, replace_head

MODULE = (nn.Module,)
TOLERANCE = 0.1  # reported vs measured: the learner's test images are not the grader's


def _agrees(reported: float, measured: float, what: str) -> str:
    if abs(float(reported) - measured) > TOLERANCE:
        raise NotYet(
            f"you report {what} {float(reported):.3f} but the grader measures {measured:.3f} "
            "for the model you passed: report what your model really does"
        )
    return f"{float(reported):.3f} vs {measured:.3f}"


def _pretrained_backbone(model: nn.Module, what: str) -> str:
    """The model is Lite0 whose every tensor but the head equals the ImageNet weights."""
    head = get_head(model)[0]
    changed = changed_tensors(model, pretrained_lite0_state(), skip=head)
    if changed:
        raise NotYet(
            f"{what}: {len(changed)} pretrained tensors changed or missing, e.g. {changed[:2]} "
            "(BatchNorm statistics change if you train a frozen model in train mode)"
        )
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    if any(not n.startswith(head + ".") for n in trainable):
        raise NotYet(f"{what}: only the head should be trainable, found {trainable[:3]}")
    return head


def _classes(given: object, expected: list[str]) -> list[str]:
    if not isinstance(given, (list, tuple)) or sorted(given) != sorted(expected):
        raise NotYet(f"class_names should be the dataset's classes {sorted(expected)}, got {given}")
    return list(given)


# ------------------------------------------- exercise 3: VGG16 recipe on your own ImageFolder
EX03_CLASSES = ["Bird", "Cat", "Elephant", "Giraffe", "Zebra"]
EX03 = exercise(
    "ex03",
    "VGG16 feature extraction on your ImageFolder",
    "03_vgg16_custom_dataset",
    {
        "vgg": Spec(MODULE, "VGG16 with a new classifier[6]", "vgg"),
        "model": Spec(MODULE, "Lite0 with its trained head", "model"),
        "class_names": Spec((list, tuple), "train_set.classes", "train_set.classes"),
        "accuracy": number("your test accuracy of model", "test_accuracy"),
    },
)


@EX03.check(
    "vgg: VGG16 whose classifier[6] is Linear(4096, 5), logits (2, 5)",
    points=2,
    needs=("vgg",),
    hint="vgg.classifier[6] = nn.Linear(4096, len(train_set.classes)).",
)
def _ex03_vgg_head(o: dict) -> str:
    vgg = o["vgg"]
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
def _ex03_vgg_frozen(o: dict) -> str:
    trainable = [n for n, p in o["vgg"].named_parameters() if p.requires_grad]
    if sorted(trainable) != ["classifier.6.bias", "classifier.6.weight"]:
        raise NotYet(f"trainable: {trainable[:4]} ({len(trainable)}); want classifier.6 only")
    return "classifier.6 only"


@EX03.check(
    "model: Lite0 backbone keeps its pretrained weights; only the head is trainable",
    points=2,
    needs=("model",),
    hint="tl.freeze(model), tl.replace_head(...), then train the head on cached features.",
)
def _ex03_backbone(o: dict) -> str:
    return _pretrained_backbone(o["model"], "model") + " trained, backbone untouched"


@EX03.check(
    "model: accuracy >= 0.85 on 250 held-out images the grader loads itself",
    points=3,
    needs=("model", "class_names"),
    hint="Train the new head on the cached features for ~20 epochs (lr 3e-3) at 48 px.",
)
def _ex03_accuracy(o: dict) -> str:
    classes = _classes(o["class_names"], EX03_CLASSES)
    accuracy, n = measured_accuracy(o["model"], classes)
    if accuracy < 0.85:
        raise NotYet(f"{accuracy:.3f} on {n} held-out images (an untrained head gets ~0.2)")
    return f"{accuracy:.3f} on {n} images"


@EX03.check(
    "the accuracy you report matches the grader's measurement (within 0.1)",
    points=1,
    needs=("model", "class_names", "accuracy"),
    hint="Report tl.evaluate(model, test_loader)['accuracy'] of the model you pass.",
)
def _ex03_reported(o: dict) -> str:
    accuracy, _ = measured_accuracy(o["model"], _classes(o["class_names"], EX03_CLASSES))
    return _agrees(o["accuracy"], accuracy, "accuracy")


# --------------------------------------------------------- exercise 6: scratch vs transfer
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
    _pretrained_backbone(o["transfer_model"], "transfer_model")
    accuracy, n = measured_accuracy(o["transfer_model"], EX06_CLASSES, what="transfer_model")
    if accuracy < 0.75:
        raise NotYet(f"{accuracy:.3f} on {n} held-out images")
    return f"{accuracy:.3f}"


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
        details.append(_agrees(o[f"{kind}_accuracy"], measured, f"{kind}_accuracy"))
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
    if transfer - scratch < 0.15:
        raise NotYet(f"transfer {transfer:.3f} vs scratch {scratch:.3f}")
    return f"transfer {transfer:.3f} vs scratch {scratch:.3f}"


# ------------------------------------------------------------ exercise 7: class imbalance
EX07_CLASSES, EX07_MINORITY = ["Cow", "Sheep"], 1  # 300 cows, 10 sheep in the training set
EX07 = exercise(
    "ex07",
    "Class imbalance: class weights or a sampler",
    "07_class_imbalance",
    {
        "model": Spec(MODULE, "Lite0 with the head trained on the imbalanced data", "model"),
        "loss_fn": Spec(MODULE, "the loss you trained with", "loss_fn"),
        "sampler": Spec((Sampler,), "your sampler, if you used one", "sampler", optional=True),
        "minority_recall": number("your test recall of Sheep", "minority_recall"),
        "macro_f1": number("your test macro-F1", "macro_f1"),
    },
)


def _ex07_metrics(model: nn.Module) -> tuple[float, float]:
    logits, labels = heldout_outputs(model, EX07_CLASSES, per_class=100)
    probabilities = logits.softmax(1)
    if probabilities.shape[1] != 2:
        raise NotYet(f"model has {probabilities.shape[1]} outputs; want 2 (Cow, Sheep)")
    report = classification_metrics(labels, probabilities, EX07_CLASSES)
    return report["per_class"]["Sheep"]["recall"], report["macro_f1"]


@EX07.check(
    "a remedy is used: the loss weights Sheep up, or a sampler draws rare samples more often",
    points=2,
    needs=("loss_fn", "sampler"),
    hint="loss_fn = nn.CrossEntropyLoss(weight=tl.class_weights(train_labels)), "
    "or sampler = tl.balanced_sampler(train_labels).",
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
    hint="Without a remedy the model calls almost every Sheep a Cow.",
)
def _ex07_recall(o: dict) -> str:
    recall, _ = _ex07_metrics(o["model"])
    if recall < 0.6:
        raise NotYet(f"Sheep recall {recall:.3f}")
    return f"{recall:.3f}"


@EX07.check(
    "macro-F1 >= 0.78 on the same images",
    points=3,
    needs=("model",),
    hint="Macro-F1 averages both classes equally: the rare one counts as much as the common one.",
)
def _ex07_f1(o: dict) -> str:
    _, f1 = _ex07_metrics(o["model"])
    if f1 < 0.78:
        raise NotYet(f"macro-F1 {f1:.3f}")
    return f"{f1:.3f}"


@EX07.check(
    "the recall and macro-F1 you report match the grader's (within 0.1)",
    points=2,
    needs=("model", "minority_recall", "macro_f1"),
    hint="Compute them with tl.classification_metrics on your balanced test set.",
)
def _ex07_reported(o: dict) -> str:
    recall, f1 = _ex07_metrics(o["model"])
    return "; ".join(
        [_agrees(o["minority_recall"], recall, "recall"), _agrees(o["macro_f1"], f1, "macro-F1")]
    )


# ------------------------------------------ exercise 8: your own data, save, load, predict
EX08_CLASSES = ["Cat", "Giraffe", "Sheep"]
EX08 = exercise(
    "ex08",
    "Your own data: save, reload, predict",
    "08_own_data_inference",
    {
        "checkpoint_path": Spec((str, os.PathLike), "the file you saved", "checkpoint_path"),
        "predict_image": Spec((Callable,), "your function predict_image(path)", "predict_image"),
    },
)


def _reload(path: str | os.PathLike) -> tuple[nn.Module, list[str], int]:
    """Rebuild the model from the checkpoint alone, as a user on another machine would."""
    try:
        checkpoint = load_checkpoint(path)  # torch.load(weights_only=True)
    except (FileNotFoundError, ValueError) as error:
        raise NotYet(str(error)) from None
    missing = [k for k in ("model", "classes", "image_size") if k not in checkpoint]
    if missing:
        raise NotYet(f"the checkpoint has no {missing}: save_checkpoint(path, model, classes=...)")
    classes, size = checkpoint["classes"], checkpoint["image_size"]
    _classes(classes, EX08_CLASSES)
    if not isinstance(size, int) or not 16 <= size <= 512:
        raise NotYet(f"image_size={size!r} in the checkpoint: save the int you trained with")
    model = load_pretrained("efficientnet_lite0")
    replace_head(model, num_classes=len(classes), verbose=False)
    try:
        load_model_state(model, checkpoint["model"])
    except ValueError as error:
        raise NotYet(f"a fresh Lite0 + head cannot load it: {error}") from None
    return model, list(classes), size


@EX08.check(
    "the checkpoint loads with weights_only=True and has model, classes, image_size",
    points=3,
    needs=("checkpoint_path",),
    hint="tl.save_checkpoint(path, model, classes=train_set.classes, image_size=IMAGE_SIZE) "
    "saves a state_dict; torch.save(model) pickles code and is refused.",
)
def _ex08_checkpoint(o: dict) -> str:
    _, classes, size = _reload(o["checkpoint_path"])
    return f"classes {classes}, {size} px"


@EX08.check(
    "the reloaded model reaches accuracy >= 0.85 on 150 held-out images",
    points=3,
    needs=("checkpoint_path",),
    hint="Save the checkpoint after training the head, not before.",
)
def _ex08_accuracy(o: dict) -> str:
    model, classes, size = _reload(o["checkpoint_path"])
    inputs, labels = heldout_batch(classes, per_class=50, image_size=size)
    accuracy = float((model_outputs(model, inputs).argmax(1) == labels).float().mean())
    if accuracy < 0.85:
        raise NotYet(f"{accuracy:.3f} on {len(labels)} held-out images")
    return f"{accuracy:.3f}"


@EX08.check(
    "predict_image(path) on 12 new PNG files agrees with the checkpoint (class, probability)",
    points=4,
    needs=("checkpoint_path", "predict_image"),
    hint="Open with PIL, .convert('RGB'), apply the test transform, softmax, take the top class.",
)
def _ex08_predict(o: dict) -> str:
    model, classes, size = _reload(o["checkpoint_path"])
    images, _ = heldout_data(classes, per_class=4)
    inputs, _ = heldout_batch(classes, per_class=4, image_size=size)
    expected = model_outputs(model, inputs).softmax(1)
    agree = 0
    with tempfile.TemporaryDirectory() as folder:
        for i, image in enumerate(images):
            path = Path(folder) / f"new_{i}.png"
            Image.fromarray(np.asarray(image)).save(path)
            answer = call_learner(o["predict_image"], str(path), name="predict_image")
            if not (isinstance(answer, tuple) and len(answer) == 2):
                raise NotYet(f"predict_image returned {answer!r}; want (class_name, probability)")
            name, probability = answer
            index = int(expected[i].argmax())
            if (
                name == classes[index]
                and abs(float(probability) - float(expected[i, index])) < 0.05
            ):
                agree += 1
    if agree < 11:
        raise NotYet(f"only {agree}/12 predictions match the checkpoint's (class and probability)")
    return f"{agree}/12 agree"


# ---------------------------------- exercise 9: the medical case study (offline stand-in)
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
    if sensitivity < 0.9:
        raise NotYet(f"sensitivity {sensitivity:.3f}")
    return f"{sensitivity:.3f}"


@EX09.check(
    "specificity (NORMAL cleared) >= 0.7 on the same images",
    points=3,
    needs=("model", "threshold"),
    hint="A threshold near 0 finds every case but clears nobody: check both rates.",
)
def _ex09_specificity(o: dict) -> str:
    _, specificity = _ex09_rates(o)
    if specificity < 0.7:
        raise NotYet(f"specificity {specificity:.3f}")
    return f"{specificity:.3f}"


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
            _agrees(o["sensitivity"], sensitivity, "sensitivity"),
            _agrees(o["specificity"], specificity, "specificity"),
        ]
    )
