"""Data for the exercises and the grader's own held-out images, kept apart by construction.

Of the 1,000 silhouettes per animal class, the first 800 are the *practice pool* (exercises
train on them) and the last 200 are the *grader pool*: checks measure your model on those,
images your code never saw. Also the offline stand-in for the medical case study (exercise 9).

Example:
    >>> images, labels, names = practice_data(["Cat", "Dog"], per_class=50)
"""

from __future__ import annotations

import secrets
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


def _grader_images(classes: list[str], per_class: int) -> tuple[np.ndarray, np.ndarray]:
    """The grader pool's first `per_class` silhouettes of each class, exactly as shipped.

    Private on purpose: checks grade on `heldout_images`, which perturbs these with a seed drawn
    fresh for every `check()` call, so finding an image in `tl.load_animals()` does not help.
    """
    images, index = _by_class()
    chosen = [index[c][PRACTICE_PER_CLASS : PRACTICE_PER_CLASS + per_class] for c in classes]
    return images[np.concatenate(chosen)], np.repeat(np.arange(len(classes)), per_class)


# Drawn anew by `clear_outputs()` (the start of every `check()` call): the perturbation of the
# held-out images is the same for every check of one call and different for the next call.
_GRADING_SEED = [secrets.randbits(63)]
CHANGED = 0.05  # share of each image's non-black pixels made one grey level darker


def perturb(images: np.ndarray, seed: int) -> np.ndarray:
    """Each (28, 28) uint8 image with a random 5 % of its non-black pixels one grey level darker.

    Invisible to a model (1/255 on a few pixels), but no image equals its shipped original, so
    looking the graded image up in `tl.load_animals()` finds nothing. Stronger changes were
    measured and rejected: a 1 px shift with noise of 3 grey levels cut an honest exercise-9
    model's specificity from 0.865 to 0.56-0.76 and exercise 7's weighted Sheep recall from
    about 0.75 to 0.39-0.51; a shift alone still cost exercise 9 0.12-0.17. (A *nearest*-image
    lookup finds noisy images too: what stops a lookup is that the grader runs the model's own
    layers; see `refuse_replaced_code` and docs/grading.md.)

    Example:
        >>> int(perturb(np.full((1, 28, 28), 255, np.uint8), seed=1).min())
        254
    """
    rng = np.random.default_rng(seed)
    out = images.copy()
    for image in out:
        lit = np.flatnonzero(image)
        if len(lit):
            chosen = rng.choice(lit, max(1, round(CHANGED * len(lit))), replace=False)
            image.flat[chosen] -= 1
    return out


def heldout_images(classes: list[str], per_class: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """The images the grader measures on: its own pool, perturbed afresh for each `check()`.

    Returns (images (N, 28, 28) uint8, labels (N,) = position in `classes`). Not part of the
    public API: exercises train on `practice_data`, which never overlaps the grader's pool.

    Example:
        >>> images, labels = heldout_images(["Cat", "Dog"], per_class=50)  # (100, 28, 28), (100,)
    """
    images, labels = _grader_images(classes, per_class)
    return perturb(images, _GRADING_SEED[0]), labels


def heldout_batch(classes: list[str], per_class: int = 50, image_size: int = IMAGE_SIZE):
    """Held-out images as a model input (N, 3, S, S) normalised for EfficientNet-Lite + labels.

    Example:
        >>> inputs, labels = heldout_batch(["Cat", "Dog"])
        >>> inputs.shape
        torch.Size([100, 3, 48, 48])
    """
    images, labels = heldout_images(classes, per_class)
    transform = transforms_for("efficientnet_lite0", image_size=image_size)
    grey = torch.from_numpy(images)[:, None].expand(-1, 3, -1, -1)  # (N, 3, 28, 28) uint8
    return torch.stack([transform(image) for image in grey]), torch.from_numpy(labels)


def practice_scenes(
    sizes: dict[str, int] | None = None, image_size: int = 96, seed: int = 0
) -> dict:
    """Scenes (lesson 12's `tl.load_scenes`) made only from the practice pool's silhouettes.

    Example:
        >>> scenes = practice_scenes({"train": 300, "test": 100})
        >>> scenes["train"].images.shape, scenes["test"].masks.shape
        (torch.Size([300, 3, 96, 96]), torch.Size([100, 96, 96]))
    """
    from tlcourse.scenes import load_scenes

    _, index = _by_class()
    pool = np.sort(np.concatenate([index[c][:PRACTICE_PER_CLASS] for c in ANIMAL_CLASSES]))
    return load_scenes(sizes or {"train": 300, "test": 100}, image_size, seed=seed, pool=pool)


def heldout_scenes(count: int = 100, image_size: int = 96):
    """Scenes the grader measures segmenters on: the grader pool's silhouettes, pasted at places,
    sizes, colours and textures drawn from this `check()` call's seed (new for every call).

    Example:
        >>> heldout_scenes(10).masks.shape  # never the same scenes twice
        torch.Size([10, 96, 96])
    """
    from tlcourse.scenes import make_scenes

    images, labels = _grader_images(ANIMAL_CLASSES, 200)
    return make_scenes(images, labels, count, image_size, seed=_GRADING_SEED[0])


def write_medical_standin(
    root: str | Path, per_split: dict[str, int] | None = None, seed: int = 0
) -> Path:
    """Write the stand-in in the chest X-ray layout: root/{train,test}/{NORMAL,PNEUMONIA}/*.png.

    `per_split` gives the NORMAL count of each split; PNEUMONIA gets 3 times as many.
    A README.txt in `root` says plainly that this is not medical data.

    Example:
        >>> root = write_medical_standin("xray_standin", {"train": 5})  # 5 NORMAL, 15 PNEUMONIA
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


def _allowed_hooks() -> tuple:
    from tlcourse.freeze import _keep_eval  # tl.freeze_batchnorm's hook: mode only, not outputs

    return (_keep_eval,)


def refuse_replaced_code(model: nn.Module, what: str = "model") -> None:
    """NotYet if `model` (or a submodule) does not run its own class's code: a method such as
    `forward` replaced on the instance, or a forward hook that may change what it returns.

    The grader measures what the model's layers compute; `model.forward = lambda x: ...` (a
    lookup, a hard-coded answer) or a hook that rewrites outputs would measure something else.
    `tl.freeze_batchnorm`'s hook (it keeps BatchNorm in eval mode) is the one hook allowed.

    Example:
        >>> refuse_replaced_code(tl.load_pretrained("efficientnet_lite0"))  # nothing to say
    """
    from torch.nn.modules import module as module_globals

    if module_globals._global_forward_hooks or module_globals._global_forward_pre_hooks:
        raise NotYet(
            "a global forward hook is registered (nn.modules.module.register_module_forward_"
            "hook): remove it, the grader measures the model's own layers"
        )
    allowed = _allowed_hooks()
    for name, module in model.named_modules():
        where = f"{what}.{name}" if name else what
        replaced = [
            key
            for key, value in vars(module).items()
            if callable(value) and callable(getattr(type(module), key, None))
        ]
        if replaced:
            raise NotYet(
                f"{where}.{replaced[0]} was replaced on the instance (not the code of "
                f"{type(module).__name__}): the grader measures the model's own layers; remove "
                f"the assignment and train the model instead"
            )
        hooks = [
            hook
            for hooks in (module._forward_hooks, module._forward_pre_hooks)
            for hook in hooks.values()
            if hook not in allowed
        ]
        if hooks:
            hook = getattr(hooks[0], "__name__", type(hooks[0]).__name__)
            raise NotYet(
                f"{where} carries a forward hook ({hook}) that may change its outputs: remove it "
                "(handle.remove()) before grading; the grader measures the model's own layers"
            )


def changed_tensors(
    model: nn.Module, reference: dict[str, torch.Tensor], skip: str | None = None
) -> list[str]:
    """Names of `model`'s tensors (weights and BatchNorm statistics) that differ from `reference`.

    Names starting with `skip` (the new head) are ignored; a missing tensor counts as changed.

    Example:
        >>> changed_tensors(model, pretrained_lite0_state(), skip="classifier.1")  # frozen Lite0
        []
    """
    refuse_replaced_code(model)
    state = model.state_dict()
    changed = []
    for name, tensor in reference.items():
        if skip and name.startswith(skip):
            continue
        mine = state.get(name)
        if mine is None or mine.shape != tensor.shape or not torch.equal(mine.cpu(), tensor):
            changed.append(name)
    return changed


def model_outputs(
    model: nn.Module, inputs: torch.Tensor, what: str = "model", dense: bool = False
) -> torch.Tensor:
    """Logits (N, C) of the learner's model in eval mode on CPU-side `inputs`; restores its mode.
    With `dense=True`, scores for every pixel: (N, C, H, W) (a segmenter, exercise 12).

    Any error in the learner's model becomes NotYet with the input shape in the message.

    Example:
        >>> inputs, labels = heldout_batch(["Cat", "Dog"], per_class=10)
        >>> model_outputs(model, inputs).shape  # a 2-class model
        torch.Size([20, 2])
    """
    refuse_replaced_code(model, what)
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
    if logits.ndim != (4 if dense else 2) or len(logits) != len(inputs):
        raise NotYet(
            f"{what} returned shape {tuple(logits.shape)}; expected ({len(inputs)}, classes"
            + (", H, W)" if dense else ")")
        )
    return logits


_OUTPUTS: dict[tuple, tuple[nn.Module, torch.Tensor, torch.Tensor]] = {}


def clear_outputs() -> None:
    """Forget cached held-out outputs and draw a new perturbation seed (`check()` calls this
    before and after grading).

    Example:
        >>> clear_outputs()  # the learner's models are no longer kept alive by the cache
    """
    _OUTPUTS.clear()
    _GRADING_SEED[0] = secrets.randbits(63)


def heldout_outputs(
    model: nn.Module, classes: list[str], per_class: int = 50, what: str = "model"
) -> tuple[torch.Tensor, torch.Tensor]:
    """(logits, labels) of `model` on the grader's images, computed once per `check()` call.

    Example:
        >>> logits, labels = heldout_outputs(model, ["Cat", "Dog"], per_class=10)
        >>> logits.shape, labels.shape
        (torch.Size([20, 2]), torch.Size([20]))
    """

    def compute() -> tuple[torch.Tensor, torch.Tensor]:
        inputs, labels = heldout_batch(classes, per_class)
        return model_outputs(model, inputs, what), labels

    return cached_outputs(model, (tuple(classes), per_class), compute)


def cached_outputs(model: nn.Module, key: tuple, compute) -> tuple[torch.Tensor, torch.Tensor]:
    """`compute()` -> (logits, labels) of `model` for `key`, run once per `check()` call.

    Example:
        >>> outputs = lambda: (torch.zeros(4, 2), torch.tensor([0, 0, 1, 1]))  # logits, labels
        >>> logits, labels = cached_outputs(model, ("xray", "test"), outputs)
        >>> cached_outputs(model, ("xray", "test"), lambda: 1 / 0)[1]  # cached: not run again
        tensor([0, 0, 1, 1])
    """
    cached = _OUTPUTS.get((id(model), *key))
    if cached is None or cached[0] is not model:  # holding the model keeps its id unique
        cached = _OUTPUTS[(id(model), *key)] = (model, *compute())
    return cached[1], cached[2]


def measured_accuracy(model: nn.Module, classes: list[str], per_class: int = 50, what="model"):
    """(accuracy, n) of `model` on the grader's held-out images of `classes` (label = position).

    Example:
        >>> accuracy, n = measured_accuracy(model, ["Cat", "Dog"], per_class=10)
        >>> n, 0 <= accuracy <= 1  # default per_class=50: n is 100
        (20, True)
    """
    logits, labels = heldout_outputs(model, classes, per_class, what)
    if logits.shape[1] != len(classes):
        raise NotYet(f"{what} has {logits.shape[1]} outputs; this task has {len(classes)} classes")
    return float((logits.argmax(1) == labels).float().mean()), len(labels)
