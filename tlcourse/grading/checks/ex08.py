"""Exercise 8: the checkpoint reloads with weights_only=True; predict_image on new files."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image
from torch import nn

from tlcourse.checkpoint import load_checkpoint, load_model_state
from tlcourse.grading.checks.common import (
    at_least,
    class_order,
)
from tlcourse.grading.data import (
    heldout_batch,
    heldout_images,
    model_outputs,
)
from tlcourse.grading.registry import NotYet, Spec, call_learner, exercise
from tlcourse.models import load_pretrained, replace_head

EX08_CLASSES = ["Cat", "Giraffe", "Sheep"]
ACCURACY_FLOOR = 0.85  # the reloaded model's accuracy on the grader's held-out images
HELDOUT_PER_CLASS = 50  # held-out images of each class the reloaded model is measured on
NEW_PER_CLASS = 4  # new PNG files of each class for predict_image; all but one must agree
EX08 = exercise(
    __name__,
    "Your own data: save, reload, predict",
    {
        "checkpoint_path": Spec((str, os.PathLike), "the file you saved", "checkpoint_path"),
        "predict_image": Spec((Callable,), "your function predict_image(path)", "predict_image"),
    },
    summary="save a checkpoint, reload it safely, predict a new image file",
    weights="Lite0 real",
)


def _reload(path: str | os.PathLike) -> tuple[nn.Module, list[str], int]:
    """Rebuild the model from the checkpoint alone, as a user on another machine would."""
    try:
        checkpoint = load_checkpoint(path)  # torch.load(weights_only=True)
    except (FileNotFoundError, ValueError) as error:
        raise NotYet(str(error)) from None
    missing = [k for k in ("model", "classes", "image_size") if k not in checkpoint]
    if missing:
        raise NotYet(
            f"the checkpoint has no {missing}: "
            "save_checkpoint(path, model, classes=..., image_size=...)"
        )
    classes, size = checkpoint["classes"], checkpoint["image_size"]
    class_order(classes, EX08_CLASSES)
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
    hint="Save the state_dict with the class names and the image size (tl.save_checkpoint takes "
    "them as keywords); torch.save(model) pickles code and is refused.",
)
def _ex08_checkpoint(submitted: dict) -> str:
    _, classes, size = _reload(submitted["checkpoint_path"])
    return f"classes {classes}, {size} px"


@EX08.check(
    f"the reloaded model reaches accuracy >= {ACCURACY_FLOOR} on "
    f"{HELDOUT_PER_CLASS * len(EX08_CLASSES)} held-out images",
    points=3,
    needs=("checkpoint_path",),
    hint="Save the checkpoint after training the head, not before.",
)
def _ex08_accuracy(submitted: dict) -> str:
    model, classes, size = _reload(submitted["checkpoint_path"])
    inputs, labels = heldout_batch(classes, per_class=HELDOUT_PER_CLASS, image_size=size)
    accuracy = float((model_outputs(model, inputs).argmax(1) == labels).float().mean())
    return at_least(accuracy, ACCURACY_FLOOR, context=f"on {len(labels)} held-out images")


@EX08.check(
    f"predict_image(path) on {NEW_PER_CLASS * len(EX08_CLASSES)} new PNG files agrees with the "
    "checkpoint (class, probability)",
    points=4,
    needs=("checkpoint_path", "predict_image"),
    hint="Open with PIL, .convert('RGB'), apply the test transform, softmax, take the top class.",
)
def _ex08_predict(submitted: dict) -> str:
    model, classes, size = _reload(submitted["checkpoint_path"])
    images, _ = heldout_images(classes, per_class=NEW_PER_CLASS)
    inputs, _ = heldout_batch(classes, per_class=NEW_PER_CLASS, image_size=size)
    expected = model_outputs(model, inputs).softmax(1)
    agree = 0
    with tempfile.TemporaryDirectory() as folder:
        for i, image in enumerate(images):
            path = Path(folder) / f"new_{i}.png"
            Image.fromarray(np.asarray(image)).save(path)
            answer = call_learner(submitted["predict_image"], str(path), name="predict_image")
            if not (isinstance(answer, tuple) and len(answer) == 2):
                raise NotYet(f"predict_image returned {answer!r}; want (class_name, probability)")
            name, probability = answer
            index = int(expected[i].argmax())
            if (
                name == classes[index]
                and abs(float(probability) - float(expected[i, index])) < 0.05
            ):
                agree += 1
    if agree < len(images) - 1:
        raise NotYet(
            f"only {agree}/{len(images)} predictions match the checkpoint's (class and probability)"
        )
    return f"{agree}/{len(images)} agree"
