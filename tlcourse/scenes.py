"""Scenes for detection and segmentation: silhouettes pasted on a textured background.

Each scene holds 1-3 animals at random places and sizes, with their exact per-pixel class mask
and boxes in torchvision's detection format. Lesson 12 and exercise 12 use it.

Example:
    >>> scenes = load_scenes({"train": 200, "test": 100}, image_size=96, seed=0)
    >>> scenes["train"].images.shape, scenes["train"].masks.shape
    (torch.Size([200, 3, 96, 96]), torch.Size([200, 96, 96]))
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from tlcourse.data import ANIMAL_CLASSES, load_animals, stratified_split

BACKGROUND = "background"  # class 0 of every mask and of the detectors' labels


@dataclass
class Scenes:
    """Scenes and their truth. `images` (N, 3, H, W) float32 normalised to [-1, 1] like Lite0's
    inputs; `masks` (N, H, W) int64, 0 = background, c + 1 = animal class c; `instances`
    (N, H, W) int64, 0 = background, i + 1 = the i-th animal of the scene; `targets` one dict
    per scene, {"boxes": (k, 4) float32 x0, y0, x1, y1 in pixels with x1, y1 exclusive,
    "labels": (k,) int64 = c + 1}; `sources` the silhouettes' indices in `load_animals()`.

    Example:
        >>> images, labels, _ = load_animals()
        >>> scenes = make_scenes(images[:100], labels[:100], count=10, seed=0)
        >>> len(scenes), scenes.targets[0]["boxes"].shape[1]  # (animals in scene 0, 4)
        (10, 4)
    """

    images: torch.Tensor
    masks: torch.Tensor
    instances: torch.Tensor
    targets: list[dict[str, torch.Tensor]]
    sources: list[np.ndarray]
    classes: list[str]

    def __len__(self) -> int:
        return len(self.images)


def _backgrounds(count: int, size: int, rng: np.random.Generator) -> torch.Tensor:
    """(count, 3, size, size) in [0.3, 0.7]: smooth colour blobs plus fine grain, a texture, not
    a flat colour, so that a plain brightness threshold does not find the animals."""
    coarse = torch.from_numpy(rng.uniform(0.3, 0.7, (count, 3, 6, 6)).astype(np.float32))
    smooth = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=False)
    grain = torch.from_numpy(rng.normal(0.0, 0.04, (count, 3, size, size)).astype(np.float32))
    return (smooth + grain).clamp(0.3, 0.7)


def _place(side: int, size: int, taken: list[tuple[int, int, int]], rng, tries: int = 30):
    """Top-left corner of a side x side square inside the frame that overlaps no square in
    `taken` ((top, left, side) each), or None after `tries` draws."""
    for _ in range(tries):
        top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
        if all(
            top + side <= other_top
            or other_top + other <= top
            or left + side <= other_left
            or other_left + other <= left
            for other_top, other_left, other in taken
        ):
            return top, left
    return None


def make_scenes(
    images: np.ndarray,
    labels: np.ndarray,
    count: int,
    image_size: int = 96,
    animals: tuple[int, int] = (1, 3),
    scale: tuple[int, int] = (24, 48),
    seed: int = 0,
) -> Scenes:
    """`count` scenes from the silhouettes `images` (M, 28, 28) uint8 with class `labels` (M,).

    Each scene gets between `animals[0]` and `animals[1]` silhouettes (fewer when they do not
    fit without overlapping), each resized to a square of `scale[0]`-`scale[1]` px, painted in a
    dark or bright colour and pasted on a mid-tone texture. A pixel belongs to the animal where
    the resized silhouette is at least half bright; the boxes are the masks' exact extents.
    The silhouettes are drawn without replacement until `images` runs out, then reshuffled.

    Example:
        >>> images, labels, _ = load_animals()
        >>> scenes = make_scenes(images[:300], labels[:300], count=100, image_size=96, seed=0)
    """
    rng = np.random.default_rng(seed)
    order, used = rng.permutation(len(images)), 0
    pixels = _backgrounds(count, image_size, rng)
    masks = torch.zeros(count, image_size, image_size, dtype=torch.int64)
    instances = torch.zeros_like(masks)
    targets, sources = [], []
    for n in range(count):
        canvas, taken, picked = pixels[n], [], []
        for _ in range(int(rng.integers(animals[0], animals[1] + 1))):
            side = int(rng.integers(scale[0], scale[1] + 1))
            corner = _place(side, image_size, taken, rng)
            if corner is None:
                continue
            if used == len(order):
                order, used = rng.permutation(len(images)), 0
            index, used = int(order[used]), used + 1
            inside = _paste(canvas, images[index], side, corner, rng)  # (side, side) bool
            window = np.s_[corner[0] : corner[0] + side, corner[1] : corner[1] + side]
            masks[n][window][inside] = int(labels[index]) + 1
            instances[n][window][inside] = len(picked) + 1
            taken.append((*corner, side))
            picked.append(index)
        boxes = [_box(instances[n] == i + 1) for i in range(len(picked))]
        targets.append(
            {
                "boxes": torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4),
                "labels": torch.tensor([int(labels[i]) + 1 for i in picked], dtype=torch.int64),
            }
        )
        sources.append(np.array(picked, dtype=np.int64))
    classes = [BACKGROUND] + list(ANIMAL_CLASSES)
    return Scenes((pixels - 0.5) / 0.5, masks, instances, targets, sources, classes)


def _paste(canvas: torch.Tensor, silhouette: np.ndarray, side: int, corner, rng) -> torch.Tensor:
    """Paint `silhouette` (28, 28) uint8, resized to side x side, into `canvas` (3, H, W) at
    `corner` (top, left) in a dark or bright colour; return where it is at least half bright."""
    alpha = torch.from_numpy(silhouette).float()[None, None] / 255
    alpha = F.interpolate(alpha, size=(side, side), mode="bilinear", antialias=True)[0, 0]
    dark, bright = rng.uniform(0, 0.2, 3), rng.uniform(0.8, 1, 3)
    colour = torch.from_numpy(np.where(rng.random(3) < 0.5, dark, bright)).float()[:, None, None]
    region = canvas[:, corner[0] : corner[0] + side, corner[1] : corner[1] + side]
    region.mul_(1 - alpha).add_(colour * alpha)  # a view: paints the canvas itself
    return alpha >= 0.5


def _box(mask: torch.Tensor) -> list[float]:
    """x0, y0, x1, y1 of a (H, W) bool mask, x1 and y1 one past the last True column and row."""
    rows, columns = mask.any(1).nonzero()[:, 0], mask.any(0).nonzero()[:, 0]
    return [columns[0].item(), rows[0].item(), columns[-1].item() + 1, rows[-1].item() + 1]


def load_scenes(
    sizes: dict[str, int] | None = None,
    image_size: int = 96,
    animals: tuple[int, int] = (1, 3),
    scale: tuple[int, int] = (24, 48),
    seed: int = 0,
    pool: np.ndarray | None = None,
) -> dict[str, Scenes]:
    """Scenes per split, e.g. {"train": 300, "val": 100, "test": 200}, from disjoint silhouettes:
    the 10,000 animals (or the indices `pool` of them) are split first (stratified,
    `animals[1]` per scene), so no silhouette of a test scene ever appears in a training scene.

    Example:
        >>> scenes = load_scenes({"train": 300, "val": 100, "test": 200}, seed=0)
        >>> scenes["test"].classes[:3]
        ['background', 'Bear', 'Bird']
    """
    sizes = sizes or {"train": 300, "val": 100, "test": 200}
    images, labels, _ = load_animals()
    pool = np.arange(len(labels)) if pool is None else np.asarray(pool)
    wanted = {name: n * animals[1] for name, n in sizes.items()}
    if sum(wanted.values()) > len(pool):
        raise ValueError(
            f"{sum(sizes.values())} scenes need up to {sum(wanted.values())} silhouettes; the pool "
            f"has {len(pool)}: ask for fewer scenes"
        )
    pools = {name: pool[p] for name, p in stratified_split(labels[pool], wanted, seed).items()}
    out = {}
    for k, (name, count) in enumerate(sizes.items()):
        pool = pools[name]
        scenes = make_scenes(
            images[pool], labels[pool], count, image_size, animals, scale, seed + k
        )
        scenes.sources = [pool[s] for s in scenes.sources]  # indices into load_animals()
        out[name] = scenes
    return out
