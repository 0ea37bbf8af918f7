"""Your own images on disk: read an ImageFolder tree safely, or write one from arrays.

`load_imagefolder` decodes every file once, so a truncated JPEG or a stray `.DS_Store` is
reported up front (and skipped), not found in epoch 3; grey, palette, RGBA and 16-bit images
(X-rays) become RGB. `write_imagefolder` lays out arrays the way `torchvision.datasets.ImageFolder`
reads them.

Example:
    >>> images, labels, classes = tl.load_animals()
    >>> few = stratified_split(labels, {"few": 30})["few"]  # 3 images a class
    >>> folder = write_imagefolder("data", images[few], labels[few], classes)
    >>> train = load_imagefolder(folder, tl.transforms_for("efficientnet_lite0"))
    load_imagefolder: 30 images in 10 classes from data/train...
"""

from __future__ import annotations

import re
import warnings
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from sklearn.model_selection import StratifiedGroupKFold
from torch.utils.data import Dataset

from tlcourse.data import stratified_split


def write_imagefolder(
    root: str | Path,
    images: np.ndarray,
    labels: np.ndarray,
    classes: list[str],
    split: str = "train",
) -> Path:
    """Write images as PNGs in the layout `torchvision.datasets.ImageFolder` reads.

    Result: root/split/<class>/<index>.png. Returns root/split.

    Example:
        >>> images, labels = np.zeros((4, 28, 28), np.uint8), np.array([0, 0, 1, 1])
        >>> folder = write_imagefolder("data", images, labels, ["cat", "dog"], split="train")
        >>> folder, sorted(path.name for path in (folder / "dog").iterdir())
        (PosixPath('data/train'), ['00002.png', '00003.png'])
    """
    folder = Path(root) / split
    for label in sorted(
        set(np.asarray(labels).tolist())
    ):  # no empty folders: ImageFolder rejects them
        (folder / classes[label]).mkdir(parents=True, exist_ok=True)
    for index, (image, label) in enumerate(zip(images, labels)):
        Image.fromarray(np.asarray(image, dtype=np.uint8)).save(
            folder / classes[label] / f"{index:05d}.png"
        )
    return folder


IMAGEFOLDER_LAYOUT = "root/<class>/<image> (e.g. data/train/cat/001.png, data/train/dog/002.jpg)"
SPLIT_NAMES = {"train", "val", "valid", "validation", "test"}
MODE_NAMES = {
    "L": "grey",
    "LA": "grey+alpha",
    "P": "palette",
    "1": "black/white",
    "I;16": "16-bit grey",
    "I": "16/32-bit grey",  # Pillow < 10 opens a 16-bit grey PNG as "I" (32-bit integers)
}


def to_rgb(image: Image.Image) -> Image.Image:
    """Any PIL image as 8-bit RGB: grey is repeated, transparency is laid on white.

    16-bit grey (common for X-rays) is scaled by its maximum into 0-255; a plain
    `convert("RGB")` would clip it to almost all white.

    Example:
        >>> to_rgb(Image.fromarray(np.zeros((8, 8), np.uint16))).mode  # a 16-bit grey X-ray
        'RGB'
    """
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        array = np.asarray(image, dtype=np.float32)
        image = Image.fromarray((array * (255 / max(float(array.max()), 1.0))).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
        image = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", image.size, "white"), image)
    return image.convert("RGB")


def _check_image(path: Path) -> tuple[str | None, str]:
    """(PIL mode, "") if the whole file decodes, else (None, why it cannot be used)."""
    if path.stat().st_size == 0:
        return None, "empty file (0 bytes)"
    try:
        with Image.open(path) as image:
            image.load()  # a full decode: Image.verify() misses truncated JPEGs
            return image.mode, ""
    except UnidentifiedImageError:
        return None, "not an image PIL can read"
    except Image.DecompressionBombError as error:
        return None, f"too large to decode safely ({error})"
    except (OSError, SyntaxError, ValueError) as error:
        return None, f"truncated or corrupt image ({error})"


class ImageFolderDataset(Dataset):
    """Checked ImageFolder: items are (transform(RGB PIL image), class index). See load_imagefolder.

    Attributes like torchvision's ImageFolder: classes, class_to_idx, samples [(path, index)],
    targets; plus skipped [(path, reason)] for files that could not be read.

    Example:
        >>> images, labels = np.zeros((4, 28, 28), np.uint8), np.array([0, 0, 1, 1])
        >>> folder = write_imagefolder("pets", images, labels, ["cat", "dog"])
        >>> train = load_imagefolder(folder, tl.transforms_for("efficientnet_lite0"), verbose=False)
        >>> image, label = train[0]
        >>> image.shape, train.classes[label], train.skipped
        (torch.Size([3, 96, 96]), 'cat', [])
    """

    def __init__(self, root: Path, classes: list[str], samples, skipped, transform=None):
        self.root, self.classes, self.transform = root, classes, transform
        self.class_to_idx = {name: index for index, name in enumerate(classes)}
        self.samples, self.skipped = samples, skipped
        self.imgs = samples  # torchvision's older name
        self.targets = [target for _, target in samples]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int):
        path, target = self.samples[index]
        with Image.open(path) as image:
            image = to_rgb(image)
        return (self.transform(image) if self.transform else image), target

    def __repr__(self) -> str:
        return (
            f"ImageFolderDataset({str(self.root)!r}: {len(self)} images, "
            f"{len(self.classes)} classes, {len(self.skipped)} skipped)"
        )


def load_imagefolder(
    root: str | Path, transform=None, *, allow_empty: bool = False, verbose: bool = True
) -> ImageFolderDataset:
    """Read an ImageFolder tree once, checking every file; unreadable files are skipped and listed.

    Every file under root/<class>/ (sub-folders too; names starting with "." are ignored) is
    decoded with PIL once, so a bad file fails here, not in epoch 3. Grey, palette, RGBA and 16-bit
    images become RGB. Non-images, truncated and empty files go to `dataset.skipped` as
    (path, reason) and the printed summary line says so. A class folder with no readable image is
    an error (its class index would silently shift); `allow_empty=True` keeps it with a warning.

    Args:
        root: the folder holding one sub-folder per class.
        transform: applied to each RGB PIL image, e.g. `transforms_for(model, image_size=96)`
            (it resizes before cropping, so images smaller than the crop work).
        allow_empty: keep class folders without readable images (warns) instead of raising.
        verbose: print the summary line (always printed when files were skipped).

    Example:
        >>> from tlcourse.grading.data import write_medical_standin  # chest X-ray layout
        >>> root = write_medical_standin("chest_xray", {"train": 10})  # the real set has 5216
        >>> train = load_imagefolder("chest_xray/train", tl.transforms_for("efficientnet_lite0"))
        load_imagefolder: 40 images in 2 classes from chest_xray/train...
    """
    root = Path(root)
    classes = _class_folders(root)
    samples, skipped, modes, empty = _scan(root, classes)
    if not samples:
        raise ValueError(
            f"no readable images in {root} (class folders: {', '.join(classes)}; "
            f"{len(skipped)} files skipped): expected layout {IMAGEFOLDER_LAYOUT}"
        )
    if empty and not allow_empty:
        raise ValueError(
            f"class folder(s) without readable images: {', '.join(empty)}. Add images, remove "
            "the folder, or pass allow_empty=True to keep the class with no samples"
        )
    if empty:
        warnings.warn(f"class folder(s) without images kept: {', '.join(empty)}", stacklevel=2)
    dataset = ImageFolderDataset(root, classes, samples, skipped, transform)
    if verbose or skipped:
        print(_imagefolder_summary(dataset, modes))
    return dataset


def _class_folders(root: Path) -> list[str]:
    """The sorted class folder names under `root`; a clear error if root is not such a folder."""
    if not root.exists():
        raise FileNotFoundError(
            f"image folder {root} does not exist (cwd is {Path.cwd()}): check the path; "
            f"expected layout {IMAGEFOLDER_LAYOUT}"
        )
    if not root.is_dir():
        raise NotADirectoryError(
            f"{root} is a file: pass the folder laid out as {IMAGEFOLDER_LAYOUT}"
        )
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not classes:
        raise ValueError(f"{root} has no class folders: expected layout {IMAGEFOLDER_LAYOUT}")
    if {name.lower() for name in classes} <= SPLIT_NAMES:
        raise ValueError(
            f"{root} holds split folders ({', '.join(classes)}), not classes: pass one split, "
            f"e.g. {root / classes[0]}, laid out as {IMAGEFOLDER_LAYOUT}"
        )
    return classes


def _scan(root: Path, classes: list[str]) -> tuple[list, list, Counter, list[str]]:
    """Decode every file under root/<class>/ once.

    Returns samples [(path, class index)], skipped [(path, reason)], a Counter of the PIL modes
    read, and the class folders without a readable image.
    """
    samples, skipped, modes, empty = [], [], Counter(), []
    for index, name in enumerate(classes):
        found = 0
        for path in sorted((root / name).rglob("*")):
            if not path.is_file() or any(p.startswith(".") for p in path.relative_to(root).parts):
                continue
            mode, reason = _check_image(path)
            if mode is None:
                skipped.append((str(path), reason))
                continue
            samples.append((str(path), index))
            modes[mode] += 1
            found += 1
        if not found:
            empty.append(str(root / name))
    return samples, skipped, modes, empty


def _imagefolder_summary(dataset: ImageFolderDataset, modes: Counter) -> str:
    line = f"load_imagefolder: {len(dataset)} images in {len(dataset.classes)} classes"
    line += f" from {dataset.root}"
    converted = [f"{n} {MODE_NAMES.get(m, m)}" for m, n in sorted(modes.items()) if m != "RGB"]
    if converted:
        line += "; converted to RGB: " + ", ".join(converted)
    if dataset.skipped:
        path, reason = dataset.skipped[0]
        line += (
            f"; SKIPPED {len(dataset.skipped)} unreadable files (see dataset.skipped), "
            f"e.g. {path}: {reason}"
        )
    return line


# The public "Chest X-Ray Images (Pneumonia)" set names each file after its patient:
# PNEUMONIA person12_virus_3.jpeg, person12_bacteria_7.jpeg; NORMAL IM-0048-0001.jpeg,
# NORMAL2-IM-0427-0001.jpeg (patient, then image number).
PATIENT_NAME = re.compile(r"^(person\d+)_[A-Za-z]+_\d+\.|^((?:NORMAL2-)?IM-\d+)-\d+\.")


def patient_id(path: str | Path) -> str:
    """The patient an X-ray file belongs to, read from the public set's file name.

    A name without a patient in it (e.g. the stand-in's `00012.png`) gives the whole path: that
    image is its own patient.

    Example:
        >>> patient_id("train/PNEUMONIA/person12_virus_3.jpeg")
        'person12'
        >>> patient_id("train/NORMAL/IM-0048-0001.jpeg"), patient_id("NORMAL2-IM-0427-0001.jpeg")
        ('IM-0048', 'NORMAL2-IM-0427')
        >>> patient_id("train/NORMAL/00012.png")
        'train/NORMAL/00012.png'
    """
    match = PATIENT_NAME.match(Path(path).name)
    return next(group for group in match.groups() if group) if match else str(path)


def split_by_patient(
    paths: Sequence[str | Path],
    labels: Sequence[int] | np.ndarray,
    val_fraction: float = 0.2,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """{"train": indices, "val": indices}: no patient on both sides, the class mix kept.

    Patients come from the file names (`patient_id`). Several images of one patient would
    otherwise land on both sides, and validation would score the model on patients it trained on.
    When every image is its own patient, this is `stratified_split` with `val_fraction` of the
    images (rounded down) in "val"; otherwise scikit-learn's `StratifiedGroupKFold` keeps each
    patient's images together and "val" is one of its round(1 / val_fraction) folds.

    Example:
        >>> from tlcourse.grading.data import write_medical_standin  # chest X-ray layout
        >>> root = write_medical_standin("chest_xray", {"train": 10})
        >>> train = load_imagefolder("chest_xray/train", verbose=False)
        >>> parts = split_by_patient([path for path, _ in train.samples], train.targets)
        >>> {patient_id(train.samples[i][0]) for i in parts["val"]}.isdisjoint(
        ...     {patient_id(train.samples[i][0]) for i in parts["train"]})
        True
    """
    labels = np.asarray(labels)
    if len(paths) != len(labels):
        raise ValueError(f"{len(paths)} paths but {len(labels)} labels: give one label per path")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction={val_fraction}: want a share between 0 and 1, e.g. 0.2")
    patients = np.array([patient_id(path) for path in paths])
    n = len(labels)
    if len(set(patients.tolist())) == n:  # one image per patient: a plain stratified split
        n_val = int(n * val_fraction + 1e-9)
        parts = stratified_split(labels, {"train": n - n_val, "val": n_val}, seed=seed)
    else:
        folds = StratifiedGroupKFold(
            max(2, round(1 / val_fraction)), shuffle=True, random_state=seed
        )
        train, val = next(folds.split(np.zeros(n), labels, groups=patients))
        parts = {"train": np.sort(train), "val": np.sort(val)}
    shared = set(patients[parts["train"]].tolist()) & set(patients[parts["val"]].tolist())
    assert not shared, f"patients on both sides: {sorted(shared)[:5]}"
    return parts
