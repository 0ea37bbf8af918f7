"""Data for the exercises and the grader's own held-out images, kept apart by construction.

Of the 1,000 silhouettes per animal class, the first 800 are the *practice pool* (exercises
train on them) and the last 200 are the *grader pool*: checks measure your model on those,
images your code never saw. Also the offline stand-in for the medical case study (exercise 9).

Example:
    >>> images, labels, names = practice_data(["Cat", "Dog"], per_class=50)
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from tlcourse.data import ANIMAL_CLASSES, load_animals, transforms_for
from tlcourse.grading.registry import NotYet
from tlcourse.imagefolder import write_imagefolder

PRACTICE_PER_CLASS = 800  # indices 0-799 of every class; 800-999 belong to the grader
IMAGE_SIZE = 48  # pixels: the exercises train and the grader measures at this size
# Medical stand-in (exercise 9): NOT X-rays. Silhouettes play the two roles, 1 normal : 3 sick.
STANDIN_ROLES = {"NORMAL": "Cat", "PNEUMONIA": "Dog"}
STANDIN_NOTE = (
    "OFFLINE STAND-IN, not medical data: NORMAL = cat silhouettes, PNEUMONIA = dog "
    "silhouettes (animal-shape-mnist), 1 normal : 3 pneumonia by choice, imitating the real "
    "set's train split (1,341 : 3,875, about 1 : 2.9; its test split is 62.5 % pneumonia).\n"
)


@lru_cache(maxsize=1)
def _by_class() -> tuple[np.ndarray, dict[str, np.ndarray]]:
    images, labels, names = load_animals()
    return images, {name: np.flatnonzero(labels == k) for k, name in enumerate(names)}


def _check_classes(classes: list[str]) -> list[str]:
    unknown = [c for c in classes if c not in ANIMAL_CLASSES]
    if unknown or not classes:
        raise ValueError(f"unknown classes {unknown}: choose from {ANIMAL_CLASSES}")
    return list(classes)


def practice_data(
    classes: list[str] | None = None, per_class: int = 100, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """`per_class` seeded random silhouettes of each class from the practice pool.

    Returns (images (N, 28, 28) uint8, labels (N,) in the order of `classes`, class names).

    Example:
        >>> images, labels, names = practice_data(["Cat", "Dog"], per_class=50)
        >>> images.shape, names
        ((100, 28, 28), ['Cat', 'Dog'])
    """
    classes = _check_classes(classes or ANIMAL_CLASSES)
    if not 0 < per_class <= PRACTICE_PER_CLASS:
        raise ValueError(f"per_class={per_class}: must be between 1 and {PRACTICE_PER_CLASS}")
    images, index = _by_class()
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(index[c][:PRACTICE_PER_CLASS], per_class, replace=False) for c in classes]
    labels = np.repeat(np.arange(len(classes)), per_class)
    return images[np.concatenate(chosen)], labels, classes


def heldout_data(classes: list[str], per_class: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """The grader's images: the first `per_class` of each class's grader pool (fixed).

    Example:
        >>> images, labels = heldout_data(["Cat", "Dog"], per_class=50)  # (100, 28, 28), (100,)
    """
    images, index = _by_class()
    chosen = [index[c][PRACTICE_PER_CLASS : PRACTICE_PER_CLASS + per_class] for c in classes]
    return images[np.concatenate(chosen)], np.repeat(np.arange(len(classes)), per_class)


def heldout_batch(classes: list[str], per_class: int = 50, image_size: int = IMAGE_SIZE):
    """Held-out images as a model input (N, 3, S, S) normalised for EfficientNet-Lite + labels.

    Example:
        >>> inputs, labels = heldout_batch(["Cat", "Dog"])
        >>> inputs.shape
        torch.Size([100, 3, 48, 48])
    """
    images, labels = heldout_data(classes, per_class)
    transform = transforms_for("efficientnet_lite0", image_size=image_size)
    grey = torch.from_numpy(images)[:, None].expand(-1, 3, -1, -1)  # (N, 3, 28, 28) uint8
    return torch.stack([transform(image) for image in grey]), torch.from_numpy(labels)


def write_medical_standin(
    root: str | Path, per_split: dict[str, int] | None = None, seed: int = 0
) -> Path:
    """Write the stand-in in the chest X-ray layout: root/{train,test}/{NORMAL,PNEUMONIA}/*.png.

    `per_split` gives the NORMAL count of each split; PNEUMONIA gets 3 times as many.
    A README.txt in `root` says plainly that this is not medical data.

    Example:
        >>> root = write_medical_standin("xray_standin")  # train/: 60 NORMAL, 180 PNEUMONIA
        >>> sorted(p.name for p in (root / "train").iterdir())
        ['NORMAL', 'PNEUMONIA']
    """
    per_split = per_split or {"train": 60, "test": 40}
    root = Path(root)
    images, index = _by_class()
    rng = np.random.default_rng(seed)
    pools = {
        role: rng.permutation(index[a][:PRACTICE_PER_CLASS]) for role, a in STANDIN_ROLES.items()
    }
    start = {"NORMAL": 0, "PNEUMONIA": 0}
    for split, normal in per_split.items():
        picked, labels = [], []
        for label, (role, count) in enumerate({"NORMAL": normal, "PNEUMONIA": 3 * normal}.items()):
            picked.append(pools[role][start[role] : start[role] + count])
            labels += [label] * count
            start[role] += count
        write_imagefolder(
            root, images[np.concatenate(picked)], np.array(labels), list(STANDIN_ROLES), split
        )
    (root / "README.txt").write_text(STANDIN_NOTE, encoding="utf-8")
    return root


@lru_cache(maxsize=1)
def pretrained_lite0_state() -> dict[str, torch.Tensor]:
    """The real ImageNet weights of EfficientNet-Lite0, loaded once: the grader's reference.

    Example:
        >>> len(pretrained_lite0_state())  # weights and BatchNorm statistics
        296
    """
    from tlcourse.models import load_pretrained

    return {k: v.clone() for k, v in load_pretrained("efficientnet_lite0").state_dict().items()}


def changed_tensors(
    model: nn.Module, reference: dict[str, torch.Tensor], skip: str | None = None
) -> list[str]:
    """Names of `model`'s tensors (weights and BatchNorm statistics) that differ from `reference`.

    Names starting with `skip` (the new head) are ignored; a missing tensor counts as changed.

    Example:
        >>> changed_tensors(model, pretrained_lite0_state(), skip="classifier.1")  # frozen Lite0
        []
    """
    state = model.state_dict()
    changed = []
    for name, tensor in reference.items():
        if skip and name.startswith(skip):
            continue
        mine = state.get(name)
        if mine is None or mine.shape != tensor.shape or not torch.equal(mine.cpu(), tensor):
            changed.append(name)
    return changed


def model_outputs(model: nn.Module, inputs: torch.Tensor, what: str = "model") -> torch.Tensor:
    """Logits (N, C) of the learner's model in eval mode on CPU-side `inputs`; restores its mode.

    Any error in the learner's model becomes NotYet with the input shape in the message.

    Example:
        >>> model_outputs(model, heldout_batch(["Cat", "Dog"])[0]).shape  # a 2-class model
        torch.Size([100, 2])
    """
    was_training = model.training
    try:
        device = next(model.parameters()).device
    except StopIteration:
        raise NotYet(f"{what} has no parameters: is it really a model?") from None
    try:
        model.eval()
        with torch.inference_mode():
            logits = torch.cat([model(x.to(device)).float().cpu() for x in inputs.split(125)])
    except Exception as error:
        raise NotYet(
            f"{what} raised {type(error).__name__} on a batch of shape "
            f"{tuple(inputs[:125].shape)}: {error}"
        ) from None
    finally:
        model.train(was_training)
    if logits.ndim != 2 or len(logits) != len(inputs):
        raise NotYet(
            f"{what} returned shape {tuple(logits.shape)}; expected ({len(inputs)}, classes)"
        )
    return logits


_OUTPUTS: dict[tuple, tuple[nn.Module, torch.Tensor, torch.Tensor]] = {}


def clear_outputs() -> None:
    """Forget cached held-out outputs (`check()` calls this before and after grading).

    Example:
        >>> clear_outputs()  # the learner's models are no longer kept alive by the cache
    """
    _OUTPUTS.clear()


def heldout_outputs(
    model: nn.Module, classes: list[str], per_class: int = 50, what: str = "model"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) of `model` on the grader's images, computed once per `check()` call.

    Example:
        >>> logits, labels = heldout_outputs(model, ["Cat", "Dog"])  # (100, 2) and (100,)
    """

    def compute() -> tuple[torch.Tensor, torch.Tensor]:
        inputs, labels = heldout_batch(classes, per_class)
        return model_outputs(model, inputs, what), labels

    return cached_outputs(model, (tuple(classes), per_class), compute)


def cached_outputs(model: nn.Module, key: tuple, compute) -> tuple[torch.Tensor, torch.Tensor]:
    """`compute()` -> (logits, labels) of `model` for `key`, run once per `check()` call.

    Example:
        >>> logits, labels = cached_outputs(model, ("xray", "test"), lambda: outputs_on(folder))
    """
    cached = _OUTPUTS.get((id(model), *key))
    if cached is None or cached[0] is not model:  # holding the model keeps its id unique
        cached = _OUTPUTS[(id(model), *key)] = (model, *compute())
    return cached[1], cached[2]


def measured_accuracy(model: nn.Module, classes: list[str], per_class: int = 50, what="model"):
    """(accuracy, n) of `model` on the grader's held-out images of `classes` (label = position).

    Example:
        >>> accuracy, n = measured_accuracy(model, ["Cat", "Dog"])  # n is 100: 50 per class
    """
    logits, labels = heldout_outputs(model, classes, per_class, what)
    if logits.shape[1] != len(classes):
        raise NotYet(f"{what} has {logits.shape[1]} outputs; this task has {len(classes)} classes")
    return float((logits.argmax(1) == labels).float().mean()), len(labels)
