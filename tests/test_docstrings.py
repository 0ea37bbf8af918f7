"""Every public function and class in tlcourse/ shows a tiny example, and the examples run
(issue 14, items 2-3; issue 27, item 5).

Top-level modules and the subpackages (tlcourse.grading, tlcourse.grading.checks) are walked.
Each module's `>>>` examples run as doctests (ELLIPSIS, NORMALIZE_WHITESPACE), so an example
whose shown output drifts from the code fails here, naming the example. They run in the module's
own namespace plus a small world (`example_world`): a frozen pretrained EfficientNet-Lite0 with
an untrained 2-class head as `model` (a fresh copy per docstring), tiny Cat/Dog `loaders` at
64 px, the test batch as `images`/`labels`, a `history`... and in a scratch folder holding
copies of exercises/ and solutions/, so files they write land nowhere that matters.
"""

import copy
import doctest
import importlib
import inspect
import pkgutil
import shutil
import warnings
from pathlib import Path

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
import torchvision
from torch import nn
from torch.utils.data import DataLoader

import tlcourse
import tlcourse as tl
from tlcourse.data import resize_once
from tlcourse.grading.registry import EXERCISES

REPO = Path(__file__).resolve().parents[1]


def _module_names() -> list[str]:
    """tlcourse and every module under it, except private ones (__main__ runs the command line)."""
    walked = pkgutil.walk_packages(tlcourse.__path__, prefix="tlcourse.")
    return ["tlcourse"] + [i.name for i in walked if not i.name.rsplit(".", 1)[-1].startswith("_")]


def _public_names() -> list[tuple[str, object]]:
    """(module.name, object) for each public function/class defined in a tlcourse module."""
    found = []
    for module_name in _module_names()[1:]:
        module = importlib.import_module(module_name)
        for name, obj in vars(module).items():
            if name.startswith("_") or not callable(obj):
                continue
            target = inspect.unwrap(obj)  # an @lru_cache function is a function too
            if not (inspect.isfunction(target) or inspect.isclass(target)):
                continue
            if obj.__module__ == module.__name__:  # defined here, not imported
                found.append((f"{module.__name__}.{name}", obj))
    return found


def test_enough_public_names_are_checked():
    # guards against the walk finding nothing (or skipping the subpackages) and the test below
    # passing vacuously
    names = [name for name, _ in _public_names()]
    assert len(names) > 30
    assert any(name.startswith("tlcourse.grading.checks.") for name in names)
    assert any(name.startswith("tlcourse.grading.registry.") for name in names)


def test_every_public_name_has_an_example():
    missing = [name for name, obj in _public_names() if ">>>" not in (obj.__doc__ or "")]
    assert not missing, f"{len(missing)} public names without a `>>>` example: " + ", ".join(
        missing
    )


IMAGE_SIZE = 64  # small and few images: Lite0 runs each batch fast on 2 CPU cores
CLASSES = ["Cat", "Dog"]


@pytest.fixture(scope="module")
def example_world(lite0):
    """What examples may use without building it: built once, copied per docstring."""
    images, labels, animal_classes = tl.load_animals()
    keep = np.isin(labels, [animal_classes.index(name) for name in CLASSES])
    images, labels = images[keep], (labels[keep] == animal_classes.index("Dog")).astype(np.int64)
    transform = tl.transforms_for("efficientnet_lite0", image_size=IMAGE_SIZE)
    splits = {
        split: tl.ImageArrayDataset(
            resize_once(images[index], IMAGE_SIZE), labels[index], list(CLASSES), transform
        )
        for split, index in tl.stratified_split(labels, {"train": 16, "val": 8, "test": 4}).items()
    }
    loaders = tl.make_loaders(splits, batch_size=16)
    test_images, test_labels = next(iter(loaders["test"]))  # (4, 3, 64, 64), (4,)
    model = copy.deepcopy(lite0)  # frozen, untrained head: BatchNorm statistics as pretrained
    tl.freeze(model, verbose=False)
    tl.replace_head(model, num_classes=len(CLASSES), verbose=False)
    pixels = nn.Sequential(nn.Flatten(), nn.Linear(3 * IMAGE_SIZE**2, len(CLASSES)))  # fast
    history = tl.fit(pixels, loaders["train"], loaders["val"], epochs=2, progress=False)
    return {
        "torch": torch,
        "nn": nn,
        "np": np,
        "torchvision": torchvision,
        "tl": tl,
        "Path": Path,
        "DataLoader": DataLoader,
        "device": tl.get_device(),
        "classes": list(CLASSES),
        "splits": splits,
        "dataset": splits["train"],
        "loaders": loaders,
        "loader": loaders["val"],
        "images": test_images,
        "labels": test_labels,
        "image": test_images[0],
        "loss_fn": nn.CrossEntropyLoss(),
        "history": history,  # copied per docstring: examples may change it
        "model": model,  # copied per docstring, with an optimizer over its copy
    }


def _namespace(world: dict) -> dict:
    """The world for one docstring: its own copy of the model, an optimizer, the history."""
    model = copy.deepcopy(world["model"])
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.Adam(trainable, lr=1e-3)
    return world | {
        "model": model,
        "optimizer": optimizer,
        "history": copy.deepcopy(world["history"]),
    }


MODULES = _module_names()


@pytest.mark.parametrize("module_name", MODULES)
def test_examples_run(module_name, example_world, tmp_path, monkeypatch):
    module = importlib.import_module(module_name)
    # examples read the exercises/solutions folders and write files: give them copies in a
    # scratch folder, so nothing they write lands in the repository or the user's home
    for folder in ("exercises", "solutions"):
        shutil.copytree(REPO / folder, tmp_path / folder)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TLCOURSE_PROGRESS", str(tmp_path / "progress.json"))
    for name in ("TLCOURSE_NOTEBOOK", "JPY_SESSION_NAME"):  # attempt_source(): not a notebook
        monkeypatch.delenv(name, raising=False)
    matplotlib.use("Agg")
    exercises = dict(EXERCISES)  # registry examples register (and remove) an exercise
    tests = [t for t in doctest.DocTestFinder().find(module, module_name) if t.examples]
    report: list[str] = []
    runner = doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False
    )
    torch.manual_seed(0)  # examples that draw random weights repeat from run to run
    try:
        with warnings.catch_warnings():  # an example may change the warning filters
            for test in tests:
                test.globs = _namespace(example_world) | vars(module)
                runner.run(test, out=report.append, clear_globs=True)
    finally:
        EXERCISES.clear()
        EXERCISES.update(exercises)
        plt.close("all")
    results = runner.summarize(verbose=False)
    print(f"{module_name}: {results.attempted} examples in {len(tests)} docstrings")
    assert results.failed == 0, "".join(report)
