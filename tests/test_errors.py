"""Issue 8: every bad input ends in a short message naming the problem and the fix; no lost work.

docs/errors.md is the table (input -> message -> test); test_errors_table_names_real_tests keeps
it honest. Faults (Ctrl-C, resume, OOM) and security scans are at the end of this file.
"""

import ast
import json
import os
import pickle
import re
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import blob_loaders, blobs, small_net
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets

import tlcourse as tl
from tlcourse.data import load_numpy_pickle

REPO = Path(__file__).resolve().parents[1]


class TinyNet(nn.Module):
    """A classifier with a torchvision-style `fc` head: cheap to build in every case."""

    def __init__(self, classes: int = 3):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
        self.fc = nn.Linear(8, classes)

    def forward(self, x):
        return self.fc(self.body(x))


class OpensAFile:
    """A pickle that runs code on load: it would create the file `marker`."""

    def __init__(self, marker: Path):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_image(path: Path, mode: str = "RGB", size: tuple[int, int] = (20, 16)) -> Path:
    """A random image saved in `mode` ("RGB", "L", "RGBA", "P", "I;16") at path (W, H = size)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(len(str(path)))
    rgb = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 4096, (size[1], size[0]), dtype=np.uint16))
    elif mode == "RGBA":
        alpha = np.full((size[1], size[0], 1), 255, dtype=np.uint8)
        alpha[0, 0] = 0  # one fully transparent pixel
        image = Image.fromarray(np.concatenate([rgb, alpha], axis=2))
    else:
        image = Image.fromarray(rgb).convert(mode)
    image.save(path)
    return path


def truncated_image(path: Path) -> Path:
    write_image(path, size=(64, 64))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])
    return path


def saved_tiny(tmp_path: Path, classes: int = 5) -> Path:
    return tl.save_checkpoint(tmp_path / "tiny.pt", TinyNet(classes))


# ----------------------------------------------------------------------------------------------
# One row of docs/errors.md each: (what the learner does) -> (exception, message it must contain)
# Each case gets a `Case` with tmp_path and monkeypatch.
# ----------------------------------------------------------------------------------------------


class Case:
    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
        self.tmp, self.monkeypatch = tmp_path, monkeypatch


def _folder(c: Case, layout: dict[str, str]) -> Path:
    """Build root/<relative path> files: "png" = an image, "txt" = text, "dir" = an empty folder."""
    root = c.tmp / "data"
    root.mkdir()
    for relative, kind in layout.items():
        if kind == "png":
            write_image(root / relative)
        elif kind == "dir":
            (root / relative).mkdir(parents=True)
        else:
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text("hello")
    return root


def _two_devices(c: Case):
    model = small_net()
    model[3] = nn.Linear(16, 3, device="meta")  # a new head made on another device
    return tl.evaluate(model, DataLoader(blobs(8), batch_size=4))


def _cuda_env(c: Case):
    c.monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # any machine: no CUDA
    c.monkeypatch.setenv("TLCOURSE_DEVICE", "cuda")
    return tl.get_device()


def _fit(model, loader=None, **kwargs):
    loader = blob_loaders()["train"] if loader is None else loader
    return tl.fit(model, loader, progress=False, **kwargs)


INT_HINT = r"must be an int \(e\.g\. num_classes=5\)"
LAYOUT = r"expected layout root/<class>/<image>"
CASES = [
    # --- models -------------------------------------------------------------------------------
    (
        "unknown-model",
        lambda c: tl.load_pretrained("resnet-18"),
        ValueError,
        r"unknown model 'resnet-18': did you mean resnet18",
    ),
    (
        "unknown-weights",
        lambda c: tl.load_pretrained("resnet18", weights="IMAGENET"),
        ValueError,
        r"resnet18 has no weights 'IMAGENET'; choose one of DEFAULT, IMAGENET1K_V1",
    ),
    *[
        (
            f"num-classes-{bad}",
            lambda c, bad=bad: tl.replace_head(TinyNet(), bad),
            ValueError,
            rf"num_classes={bad}: need at least 2 classes \(a binary task uses num_classes=2",
        )
        for bad in (0, 1, -3)
    ],
    *[
        (
            f"num-classes-{bad}",
            lambda c, bad=bad: tl.replace_head(TinyNet(), bad),
            TypeError,
            rf"num_classes={bad}: {INT_HINT}",
        )
        for bad in (2.5, None)
    ],
    (
        "head-not-found",
        lambda c: tl.replace_head(nn.Sequential(nn.Linear(3, 3)), 2),
        ValueError,
        r"cannot find the head of Sequential.*Its top-level modules are: 0\. "
        r"Replace the last layer by hand",
    ),
    (
        "unfreeze-no-match",
        lambda c: tl.unfreeze(TinyNet(), "fc2", verbose=False),
        ValueError,
        r"unfreeze: pattern 'fc2' matches no parameter\. Did you mean fc\? "
        r"Top-level modules: body, fc",
    ),
    (
        "freeze-not-a-module",
        lambda c: tl.freeze("resnet18"),
        TypeError,
        r"freeze\(\) expects an nn\.Module \(a model\), got str",
    ),
    (
        "checkpoint-other-architecture",
        lambda c: tl.load_checkpoint(saved_tiny(c.tmp), small_net()),
        ValueError,
        r"checkpoint does not fit Sequential: 4 keys missing \(e\.g\. \['0\.weight'.*"
        r"a different architecture\? Build the model the checkpoint was saved from",
    ),
    (
        "checkpoint-other-num-classes",
        lambda c: tl.load_checkpoint(saved_tiny(c.tmp, classes=5), TinyNet(classes=3)),
        ValueError,
        r"fc\.weight: checkpoint \(5, 8\) vs model \(3, 8\).*a different num_classes\? "
        r"call replace_head\(model, num_classes=\.\.\.\) before loading",
    ),
    (
        "checkpoint-not-a-checkpoint",
        lambda c: (
            (c.tmp / "notes.pt").write_text("hello") and tl.load_checkpoint(c.tmp / "notes.pt")
        ),
        ValueError,
        r"notes\.pt is not a PyTorch checkpoint \(not a torch\.save archive\)",
    ),
    (
        "checkpoint-truncated",
        lambda c: (
            (c.tmp / "cut.pt").write_bytes(saved_tiny(c.tmp).read_bytes()[:300])
            and tl.load_checkpoint(c.tmp / "cut.pt")
        ),
        ValueError,
        r"cut\.pt is not a PyTorch checkpoint",
    ),
    (
        "checkpoint-missing",
        lambda c: tl.load_checkpoint(c.tmp / "missing.pt"),
        FileNotFoundError,
        r"no checkpoint at .*missing\.pt: check the path \(cwd is ",
    ),
    (
        "checkpoint-runs-code",
        lambda c: (
            torch.save({"model": OpensAFile(c.tmp / "pwned")}, c.tmp / "evil.pt")
            or tl.load_checkpoint(c.tmp / "evil.pt")
        ),
        ValueError,
        r"evil\.pt was refused by weights_only=True: it contains Python objects.*"
        r"Only load files you trust",
    ),
    (
        "package-pickle-runs-code",
        lambda c: (
            (c.tmp / "evil.pkl").write_bytes(pickle.dumps(OpensAFile(c.tmp / "pwned")))
            and load_numpy_pickle(c.tmp / "evil.pkl")
        ),
        pickle.UnpicklingError,
        r"refusing to load (builtins|io)\.open: only numpy arrays",
    ),
    # --- data ---------------------------------------------------------------------------------
    (
        "labels-outside-classes",
        lambda c: tl.ImageArrayDataset(np.zeros((3, 8, 8), np.uint8), [0, 1, 5], ["a", "b"]),
        ValueError,
        r"labels must be in \[0, 2\) for 2 classes; found \[5\]",
    ),
    (
        "labels-outside-head",
        lambda c: _fit(small_net(classes=2), epochs=1),
        ValueError,
        r"label 2 is outside \[0, 2\) but the model has 2 outputs: "
        r"use replace_head\(model, num_classes=\.\.\.\)",
    ),
    (
        "images-labels-lengths",
        lambda c: tl.ImageArrayDataset(np.zeros((3, 8, 8), np.uint8), [0, 1], ["a", "b"]),
        ValueError,
        r"3 images but 2 labels: they must match",
    ),
    (
        "empty-dataset",
        lambda c: tl.ImageArrayDataset(np.zeros((0, 8, 8), np.uint8), [], ["a", "b"]),
        ValueError,
        r"empty dataset: 0 images given; pass at least one image per class",
    ),
    (
        "folder-missing",
        lambda c: tl.load_imagefolder(c.tmp / "chest_xray" / "train"),
        FileNotFoundError,
        rf"image folder .*chest_xray/train does not exist \(cwd is .*\): check the path; {LAYOUT}",
    ),
    (
        "folder-is-a-file",
        lambda c: tl.load_imagefolder(write_image(c.tmp / "one.png")),
        NotADirectoryError,
        r"one\.png is a file: pass the folder laid out as root/<class>/<image>",
    ),
    (
        "folder-without-class-folders",
        lambda c: tl.load_imagefolder(_folder(c, {"a.png": "png", "b.png": "png"})),
        ValueError,
        rf"data has no class folders: {LAYOUT}",
    ),
    (
        "folder-of-splits",
        lambda c: tl.load_imagefolder(
            _folder(c, {"train/cat/a.png": "png", "val/cat/b.png": "png"})
        ),
        ValueError,
        r"data holds split folders \(train, val\), not classes: "
        r"pass one split, e\.g\. .*data/train",
    ),
    (
        "folder-without-images",
        lambda c: tl.load_imagefolder(_folder(c, {"cat/a.txt": "txt", "dog": "dir"})),
        ValueError,
        rf"no readable images in .*data \(class folders: cat, dog; 1 files skipped\): {LAYOUT}",
    ),
    (
        "folder-empty-class",
        lambda c: tl.load_imagefolder(_folder(c, {"cat/a.png": "png", "dog": "dir"})),
        ValueError,
        r"class folder\(s\) without readable images: .*data/dog\. Add images, remove the folder, "
        r"or pass allow_empty=True",
    ),
    (
        "split-too-large",
        lambda c: tl.stratified_split(np.arange(10) % 2, {"train": 20}),
        ValueError,
        r"asked for 20 samples in \{'train': 20\} but the dataset has 10: ask for fewer",
    ),
    (
        "unknown-dataset",
        lambda c: tl.load_splits("cifar"),
        ValueError,
        r"unknown dataset 'cifar': choose one of animals, digits",
    ),
    # --- training -----------------------------------------------------------------------------
    *[
        (
            f"epochs-{bad}",
            lambda c, bad=bad: _fit(small_net(), epochs=bad),
            ValueError,
            rf"epochs={bad}: must be a whole number >= 1",
        )
        for bad in (0, -1, 2.5)
    ],
    (
        "everything-frozen",
        lambda c: _fit(tl.freeze(small_net(), verbose=False), epochs=1),
        ValueError,
        r"nothing to train: every parameter is frozen\. Call tl\.unfreeze\(model, \.\.\.\) "
        r"or tl\.replace_head\(\.\.\.\) first",
    ),
    (
        "empty-train-loader",
        lambda c: _fit(small_net(), DataLoader(blobs(4), batch_size=8, drop_last=True), epochs=1),
        ValueError,
        r"the training loader is empty \(0 batches\): check len\(dataset\) and batch_size",
    ),
    (
        "empty-eval-loader",
        lambda c: tl.evaluate(small_net(), DataLoader(blobs(4), batch_size=8, drop_last=True)),
        ValueError,
        r"evaluate: the loader is empty \(0 batches\): check len\(dataset\)",
    ),
    (
        "model-on-two-devices",
        _two_devices,
        ValueError,
        r"the model's weights are on 2 devices \(0\.weight on cpu, 3\.weight on meta\): "
        r"call model\.to\(device\) after changing its layers",
    ),
    (
        "device-cuda-without-cuda",
        _cuda_env,
        ValueError,
        r"TLCOURSE_DEVICE=cuda, but CUDA is not available on this machine: use cpu or auto",
    ),
    (
        "device-unknown",
        lambda c: tl.get_device("gpu0"),
        ValueError,
        r"device='gpu0': unknown device; use one of cpu, cuda, cuda:N, mps, auto",
    ),
]


@pytest.mark.parametrize(
    "action, error, message", [case[1:] for case in CASES], ids=[case[0] for case in CASES]
)
def test_bad_input(action, error, message, tmp_path, monkeypatch):
    with pytest.raises(error, match=message) as raised:
        action(Case(tmp_path, monkeypatch))
    assert len(str(raised.value)) < 400, "messages stay short"
    assert not (tmp_path / "pwned").exists(), "a crafted pickle ran code"


# ----------------------------------------------------------------------------------------------
# load_imagefolder: convert what can be read, skip and report what cannot, work like torchvision
# ----------------------------------------------------------------------------------------------


def test_imagefolder_converts_skips_and_reports(tmp_path, capsys):
    root = tmp_path / "train"
    write_image(root / "cat" / "colour.png")
    grey = write_image(root / "cat" / "grey.png", "L")
    alpha = write_image(root / "cat" / "alpha.png", "RGBA")
    write_image(root / "dog" / "palette.png", "P")
    deep = write_image(root / "dog" / "xray16.png", "I;16")
    write_image(root / "dog" / "nested" / "photo.jpg")
    (root / "dog" / "notes.txt").write_text("not an image")
    (root / "dog" / "zero.png").write_bytes(b"")
    truncated_image(root / "dog" / "cut.png")
    (root / "dog" / ".DS_Store").write_bytes(b"\0junk")  # hidden files and folders are ignored
    (root / ".ipynb_checkpoints").mkdir()

    dataset = tl.load_imagefolder(root)

    assert dataset.classes == ["cat", "dog"] and dataset.class_to_idx == {"cat": 0, "dog": 1}
    assert len(dataset) == 6 and dataset.targets == [0, 0, 0, 1, 1, 1]
    reasons = {Path(path).name: reason for path, reason in dataset.skipped}
    assert reasons.pop("zero.png") == "empty file (0 bytes)"
    assert reasons.pop("notes.txt") == "not an image PIL can read"
    assert reasons.pop("cut.png").startswith("truncated or corrupt image (image file is truncated")
    assert not reasons
    line = capsys.readouterr().out
    assert line.count("\n") == 1 and "load_imagefolder: 6 images in 2 classes from" in line
    # Pillow >= 10 opens the 16-bit PNG as "I;16", older Pillow as "I" (16/32-bit)
    assert re.search(r"converted to RGB: 1 16(/32)?-bit grey, 1 grey, 1 palette, 1 RGBA", line)
    assert "SKIPPED 3 unreadable files (see dataset.skipped), e.g." in line

    images = {Path(path).name: dataset[i][0] for i, (path, _) in enumerate(dataset.samples)}
    assert all(image.mode == "RGB" for image in images.values())
    grey_rgb, grey_l = np.asarray(images["grey.png"]), np.asarray(Image.open(grey))
    assert all(np.array_equal(grey_rgb[..., k], grey_l) for k in range(3))
    assert np.asarray(images["alpha.png"])[0, 0].tolist() == [255, 255, 255]  # transparent: white
    assert np.array_equal(
        np.asarray(images["alpha.png"])[1:], np.asarray(Image.open(alpha))[1:, :, :3]
    )
    deep_rgb = np.asarray(images["xray16.png"])
    assert deep_rgb.max() == 255 and deep_rgb.mean() > 60  # clipping would give almost all 255
    assert "xray16.png" in repr(dataset.samples) and str(deep) in dict(dataset.samples)


def test_imagefolder_matches_torchvision_on_a_clean_tree(tmp_path, capsys):
    images, labels, classes = tl.load_animals()
    pick = np.arange(0, 10_000, 1000)[:6]
    folder = tl.write_imagefolder(tmp_path, images[pick], labels[pick], classes)
    ours, theirs = tl.load_imagefolder(folder, verbose=False), datasets.ImageFolder(folder)
    assert capsys.readouterr().out == ""  # verbose=False and nothing skipped: silent
    assert ours.classes == theirs.classes and ours.class_to_idx == theirs.class_to_idx
    assert ours.samples == theirs.samples and ours.targets == theirs.targets
    assert np.array_equal(np.asarray(ours[0][0]), np.asarray(theirs[0][0].convert("RGB")))
    assert "6 images, 6 classes, 0 skipped" in repr(ours)


@pytest.mark.parametrize("train", [False, True])
def test_imagefolder_images_smaller_than_the_crop(tmp_path, train, capsys):
    write_image(tmp_path / "a" / "tiny.png", size=(20, 12))  # far smaller than 96 px
    write_image(tmp_path / "b" / "tiny.png", "L", size=(7, 9))
    transform = tl.transforms_for("efficientnet_lite0", train=train, image_size=96)
    dataset = tl.load_imagefolder(tmp_path, transform)
    batch, labels = next(iter(DataLoader(dataset, batch_size=2)))
    assert batch.shape == (2, 3, 96, 96) and labels.tolist() == [0, 1]
    assert batch.dtype == torch.float32 and -1 <= batch.min() < batch.max() <= 1


def test_imagefolder_allow_empty_keeps_the_class_and_warns(tmp_path, capsys):
    write_image(tmp_path / "cat" / "a.png")
    (tmp_path / "dog").mkdir()
    with pytest.warns(UserWarning, match=r"class folder\(s\) without images kept: .*dog"):
        dataset = tl.load_imagefolder(tmp_path, allow_empty=True)
    assert dataset.classes == ["cat", "dog"] and dataset.targets == [0]


# ----------------------------------------------------------------------------------------------
# Devices: fit moves model and batches; evaluate/predict follow the model or move it when asked
# ----------------------------------------------------------------------------------------------


def test_evaluate_and_predict_follow_the_model_or_a_given_device():
    model, loader = small_net(), DataLoader(blobs(16), batch_size=8)
    expected = tl.evaluate(model, loader)
    assert tl.evaluate(model, loader, device="cpu") == expected
    assert torch.equal(
        tl.predict(model, blobs(4).tensors[0], device="cpu"), tl.predict(model, blobs(4).tensors[0])
    )
    with pytest.raises(ValueError, match="device='tpu': unknown device"):
        tl.predict(model, blobs(4).tensors[0], device="tpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_model_on_cuda_data_on_cpu_just_works():
    tl.seed_everything(0)
    model, loaders = small_net().to("cuda"), blob_loaders()  # CPU batches
    on_cuda = tl.evaluate(model, loaders["val"])
    assert tl.predict(model, blobs(4).tensors[0]).device.type == "cpu"
    assert tl.evaluate(model, loaders["val"], device="cpu") == pytest.approx(on_cuda)
    assert next(model.parameters()).device.type == "cpu"  # moved, like fit does
    tl.fit(model, loaders["train"], epochs=1, device="cuda", progress=False)
    assert next(model.parameters()).device.type == "cuda"


# ----------------------------------------------------------------------------------------------
# Faults: out of memory, Ctrl-C then resume, resume restores optimizer + scheduler + RNG + epoch
# ----------------------------------------------------------------------------------------------


class OutOfMemoryAt(nn.Module):
    """small_net whose n-th forward raises CUDA's out-of-memory error (on any machine)."""

    def __init__(self, at_call: int):
        super().__init__()
        self.net, self.calls, self.at_call = small_net(), 0, at_call

    def forward(self, x):
        self.calls += 1
        if self.calls == self.at_call:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return self.net(x)


def test_cuda_out_of_memory_stops_with_advice_and_keeps_the_best_weights(capsys):
    tl.seed_everything(0)
    loaders = blob_loaders()
    per_epoch = len(loaders["train"]) + len(loaders["val"])
    model = OutOfMemoryAt(at_call=per_epoch + 3)  # in epoch 2, batch 3
    history = tl.fit(model, loaders["train"], loaders["val"], epochs=5, lr=1e-2, progress=False)
    advice = "out of memory: use a smaller batch_size or image_size, or amp=True"
    assert history.stop_reason.startswith(advice) and advice in capsys.readouterr().out
    assert len(history.val_accuracy) == 1 and history.best_epoch == 1
    assert tl.evaluate(model.net, loaders["val"])["accuracy"] == history.val_accuracy[0]


def _sgd_run(epochs, seed_model=0, **kwargs):
    """fit small_net with SGD + momentum + StepLR (state worth restoring); returns all three."""
    model = small_net(seed=seed_model)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    loaders = blob_loaders()
    history = tl.fit(
        model,
        loaders["train"],
        loaders["val"],
        epochs=epochs,
        optimizer=optimizer,
        scheduler=scheduler,
        restore_best=False,
        progress=False,
        **kwargs,
    )
    return model, optimizer, scheduler, history


def _same_run(a, b):
    (model_a, opt_a, sched_a, hist_a), (model_b, opt_b, sched_b, hist_b) = a, b
    assert {k: v for k, v in asdict(hist_a).items() if k != "seconds"} == {
        k: v for k, v in asdict(hist_b).items() if k != "seconds"
    }
    assert all(
        torch.equal(x, y)
        for x, y in zip(model_a.state_dict().values(), model_b.state_dict().values())
    )
    momenta_a = [s["momentum_buffer"] for s in opt_a.state_dict()["state"].values()]
    momenta_b = [s["momentum_buffer"] for s in opt_b.state_dict()["state"].values()]
    assert len(momenta_a) == 4 and all(torch.equal(x, y) for x, y in zip(momenta_a, momenta_b))
    assert opt_a.param_groups[0]["lr"] == opt_b.param_groups[0]["lr"] == 0.1 * 0.5**4
    assert sched_a.state_dict() == sched_b.state_dict()


def test_resume_restores_optimizer_scheduler_rng_and_epoch(tmp_path):
    tl.seed_everything(0)
    full = _sgd_run(epochs=4)
    tl.seed_everything(0)
    _sgd_run(epochs=2, checkpoint=tmp_path / "ckpt.pt")
    saved = tl.load_checkpoint(tmp_path / "ckpt.pt")
    assert saved["epoch"] == 2 and saved["scheduler"]["last_epoch"] == 2
    tl.seed_everything(123)  # a fresh process: other RNG state, other initial weights
    resumed = _sgd_run(epochs=4, seed_model=5, resume_from=tmp_path / "ckpt.pt")
    assert full[3].lr == [0.1, 0.05, 0.025, 0.0125]
    _same_run(resumed, full)


def test_ctrl_c_then_resume_equals_an_uninterrupted_run(tmp_path, capsys):
    tl.seed_everything(0)
    full = _sgd_run(epochs=4)
    batches = len(blob_loaders()["train"]) + len(blob_loaders()["val"])
    calls = 0

    def interrupt_in_epoch_3(logits, labels):
        nonlocal calls
        calls += 1
        if calls == 2 * batches + 2:
            raise KeyboardInterrupt
        return nn.functional.cross_entropy(logits, labels)

    tl.seed_everything(0)
    stopped = _sgd_run(epochs=4, checkpoint=tmp_path / "ckpt.pt", loss_fn=interrupt_in_epoch_3)
    assert stopped[3].stop_reason == "interrupted (Ctrl-C) after 2 epochs"
    assert "interrupted (Ctrl-C) after 2 epochs" in capsys.readouterr().out
    tl.seed_everything(7)
    resumed = _sgd_run(epochs=4, seed_model=3, resume_from=tmp_path / "ckpt.pt")
    _same_run(resumed, full)


# ----------------------------------------------------------------------------------------------
# Security: torch.load always weights_only=True; no eval/exec; the demo writes only in --out
# ----------------------------------------------------------------------------------------------

SKIP_DIRS = {"__pycache__", "build", "dist", "node_modules", "tlcourse_demo"}


def _project_files(*suffixes: str):
    for folder, dirs, files in os.walk(REPO):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".") and d not in SKIP_DIRS and not d.endswith(".egg-info")
        ]
        yield from (Path(folder) / f for f in files if f.endswith(suffixes))


def _python_source(path: Path) -> str:
    if path.suffix != ".ipynb":
        return path.read_text(encoding="utf-8")
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    code = ["".join(c["source"]) for c in cells if c["cell_type"] == "code"]
    # IPython magics and shell lines are not Python: blank them, keep the line numbers
    return "\n".join(re.sub(r"(?m)^\s*[%!].*$", "", cell) for cell in code)


def unsafe_torch_loads(source: str) -> list[str]:
    """Every `torch.load(...)` without a literal `weights_only=True`, as 'line N'."""
    try:
        tree = ast.parse(source)
    except SyntaxError:  # a file mid-edit: fall back to text, each call up to its closing ")"
        calls = re.findall(r"torch\.load\((?:[^()]|\([^()]*\))*\)", source)
        return [f"text {call[:60]}" for call in calls if "weights_only=True" not in call]
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "torch":
            bad += [
                f"line {node.lineno}: from torch import load"
                for a in node.names
                if a.name == "load"
            ]
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "load"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == "torch"
        ):
            safe = any(
                (
                    k.arg == "weights_only"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value is True
                )
                # the runner's own unpickler (tlcourse/grading/submission.py): it builds only
                # classes of torch, torchvision, numpy and tlcourse; tests/test_grading_runner
                # shows it refuses a notebook's class and os.system
                or (
                    k.arg == "pickle_module"
                    and isinstance(k.value, ast.Name)
                    and k.value.id == "_RestrictedPickle"
                )
                for k in node.keywords
            )
            bad += [] if safe else [f"line {node.lineno}"]
    return bad


def test_the_torch_load_scanner_catches_unsafe_calls():
    assert unsafe_torch_loads("import torch\ntorch.load('m.pt')") == ["line 2"]
    assert unsafe_torch_loads("torch.load(f, weights_only=False)") == ["line 1"]
    assert unsafe_torch_loads("from torch import load") == ["line 1: from torch import load"]
    assert unsafe_torch_loads("torch.load(f, map_location='cpu', weights_only=True)") == []
    assert unsafe_torch_loads("torch.load(f, weights_only=False, pickle_module=pickle)") == [
        "line 1"
    ]
    assert unsafe_torch_loads("torch.load(f, pickle_module=_RestrictedPickle)") == []
    assert unsafe_torch_loads("def broken(:\n torch.load(open('x'))") == [
        "text torch.load(open('x'))"
    ]


def test_every_torch_load_in_the_project_uses_weights_only():
    files = list(_project_files(".py", ".ipynb"))
    assert any(f.name == "checkpoint.py" for f in files) and len(files) > 20
    unsafe = {
        str(f.relative_to(REPO)): bad
        for f in files
        if (bad := unsafe_torch_loads(_python_source(f)))
    }
    assert not unsafe, f"torch.load without weights_only=True (pickled code could run): {unsafe}"


def test_no_eval_or_exec_in_the_package():
    # The grader runs a learner's notebook; its rules are tested by the grading issue.
    found = []
    for path in (REPO / "tlcourse").rglob("*.py"):
        if "grading" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("eval", "exec"):
                found.append(f"{path.relative_to(REPO)}:{node.lineno}")
    assert not found


def _listing(*folders: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for folder in folders for p in folder.rglob("*")}


@pytest.mark.slow  # the whole demo, small
def test_demo_writes_only_inside_its_out_folder(tmp_path, monkeypatch, capsys):
    from tlcourse.demo import run_demo

    work, home, temp = tmp_path / "work", tmp_path / "home", tmp_path / "temp"
    for folder in (work, home, temp):
        folder.mkdir()
    (work / "notes.txt").write_text("the learner's own file")
    monkeypatch.chdir(work)
    for name in ("HOME", "XDG_CACHE_HOME", "TORCH_HOME", "MPLCONFIGDIR"):
        monkeypatch.setenv(name, str(home))
    monkeypatch.setattr(tempfile, "tempdir", str(temp))
    before = _listing(work, home, temp)
    sizes = {"train": 60, "val": 20, "test": 20}
    run_demo(2, 1, image_size=32, seed=0, device="cpu", out="run1", sizes=sizes)
    after = _listing(work, home, temp)
    added = sorted(Path(p).relative_to(work).as_posix() for p in set(after) - set(before))
    assert added == [
        "run1",
        "run1/curves.png",
        "run1/model.pt",
        "run1/predictions.png",
        "run1/results.json",
    ]
    assert all(after[p] == mtime for p, mtime in before.items()), "changed a file it did not own"
    assert "saved in run1/" in capsys.readouterr().out


# ----------------------------------------------------------------------------------------------
# docs/errors.md: at least 25 rows, each naming a test that exists
# ----------------------------------------------------------------------------------------------


def test_errors_table_names_real_tests():
    table = (REPO / "docs" / "errors.md").read_text(encoding="utf-8")
    references = re.findall(r"`(tests/[\w/]+\.py)::(\w+)(?:\[([^\]]+)\])?`", table)
    rows = [line for line in table.splitlines() if line.startswith("|") and "`tests/" in line]
    assert len(rows) >= 25 and len(references) >= len(rows)
    ids = {case[0] for case in CASES}
    for file, name, param in references:
        source = (REPO / file).read_text(encoding="utf-8")
        assert f"def {name}(" in source, f"docs/errors.md names {file}::{name}, which is not there"
        if file == "tests/test_errors.py" and name == "test_bad_input":
            assert param in ids, f"docs/errors.md names test_bad_input[{param}]: no such case"
    documented = {param for file, name, param in references if name == "test_bad_input"}
    assert ids <= documented, f"cases missing from docs/errors.md: {sorted(ids - documented)}"
