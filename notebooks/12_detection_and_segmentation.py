# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: -all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 12 · One backbone, three tasks: segmentation and detection on a pretrained Lite0
#
# **You will learn to**
# - build scenes with an exact ground truth for free: animals pasted at random places and sizes,
#   with their per-pixel masks and boxes;
# - put a small **segmentation head** (torchvision's `LRASPPHead`, the head of
#   LR-ASPP MobileNetV3) on Lite0's intermediate feature maps, and score it with the **mean IoU
#   per class**;
# - race a frozen pretrained backbone (its features cached once), the same backbone fine-tuned,
#   and a random one, for the same number of seconds.
#
# DRAFT (issue 28 prototype): the detection part follows.

# %%
# %matplotlib inline
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn
from torchvision.models.segmentation.lraspp import LRASPPHead

import tlcourse as tl
from tlcourse.efficientnet_lite import efficientnet_lite
from tlcourse.scenes import load_scenes

tl.seed_everything(0)
device = tl.get_device()
SEEDS = (0, 1, 2)
started = time.perf_counter()

# %% [markdown]
# ## 1. Scenes with a free ground truth
# Each scene is a 96 × 96 texture with one to three silhouettes pasted on it, each 24-48 px,
# in a dark or bright colour. Because we pasted them, we know every animal's pixels (the mask)
# and its box exactly. The training, validation and test scenes are made from **disjoint**
# silhouettes: no animal of a test scene was ever seen in training.

# %%
scenes = load_scenes({"train": 300, "val": 100, "test": 200}, image_size=96, seed=0)
classes = scenes["train"].classes  # 0 = background, 1..10 = the animals
for name, split in scenes.items():
    animals = sum(len(t["labels"]) for t in split.targets)
    print(f"{name:5s}: {len(split)} scenes, {animals} animals, "
          f"{(split.masks > 0).float().mean():.1%} of the pixels are animal")
used = {name: set(np.concatenate(s.sources).tolist()) for name, s in scenes.items()}
assert not used["train"] & used["test"] and not used["train"] & used["val"]

COLOURS = np.random.default_rng(0).uniform(0.2, 1, (len(classes), 3))  # one colour per class
COLOURS[0] = 0


def show_scenes(images, masks=None, targets=None, titles=None, columns: int = 6) -> Figure:
    """Scenes with their masks (coloured, half transparent) and boxes (class name on top)."""
    figure = Figure(figsize=(2 * columns, 2.1 * -(-len(images) // columns)), layout="constrained")
    axes = np.atleast_1d(figure.subplots(-(-len(images) // columns), columns)).ravel()
    pictures = tl.to_displayable(images)
    for n, ax in enumerate(axes):
        ax.axis("off")
        if n >= len(images):
            continue
        ax.imshow(pictures[n])
        if masks is not None:
            overlay = np.concatenate([COLOURS[masks[n].numpy()], (masks[n] > 0).numpy()[..., None] * 0.6], -1)
            ax.imshow(overlay)
        for box, label in zip(*(targets[n][k] for k in ("boxes", "labels"))) if targets else ():
            x0, y0, x1, y1 = box.tolist()
            ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0, y1 - y0, fill=False, color=COLOURS[label], lw=1.5))
            ax.text(x0, y0 - 1, classes[label], color=COLOURS[label], fontsize=7, va="bottom")
        if titles is not None:
            ax.set_title(titles[n], fontsize=8)
    return figure


show_scenes(scenes["train"].images[:6], targets=scenes["train"].targets[:6])

# %%
show_scenes(scenes["train"].images[:6], scenes["train"].masks[:6], scenes["train"].targets[:6])

# %% [markdown]
# ## 2. Segmentation: a head on the intermediate features
# A classifier keeps only Lite0's last, coarsest map (3 × 3 at 96 px). A segmentation head needs
# *where*, so it reads earlier maps: LR-ASPP takes a fine one (`low`, stride 8: 40 × 12 × 12)
# for the outlines and a coarse one (`high`, stride 16: 112 × 6 × 6) for *what*; it predicts 11
# scores per pixel of the fine map, which we scale up to 96 × 96.

# %%
class Backbone(nn.Module):
    """Lite0's first stages: image (N, 3, 96, 96) -> {"low": (N, 40, 12, 12), "high": (N, 112, 6, 6)}."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.low, self.high = model.features[:4], model.features[4:6]

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        low = self.low(images)
        return {"low": low, "high": self.high(low)}


def new_head(seed: int) -> nn.Module:
    tl.seed_everything(seed)
    return LRASPPHead(low_channels=40, high_channels=112, num_classes=len(classes), inter_channels=64)


def mean_iou(predictions: torch.Tensor, masks: torch.Tensor) -> tuple[float, np.ndarray]:
    """IoU of each animal class over all pixels of all scenes, and their mean (background left out)."""
    ious = np.array([((predictions == c) & (masks == c)).sum().item()
                     / max(((predictions == c) | (masks == c)).sum().item(), 1) for c in range(1, len(classes))])
    return ious.mean(), ious


pretrained = tl.load_pretrained("efficientnet_lite0")
print({k: tuple(v.shape) for k, v in Backbone(pretrained).eval()(scenes["train"].images[:2]).items()})

# %% [markdown]
# **The race.** Each runner gets the same wall-clock budget `SECONDS`. The frozen runner spends
# part of it computing the backbone's maps of the training scenes once (on its clock); then only
# the head trains, on the cache, many epochs. The fine-tuned and random runners train the
# backbone and the head together, every step through the whole backbone. The clock stops while
# we evaluate.

# %%
SECONDS = 6.0
LOSS_SIZE = 24  # the loss compares scores and truth at 24 x 24: 16x fewer pixels than 96 x 96


def scores(head: nn.Module, features: dict) -> torch.Tensor:
    return F.interpolate(head(features), size=(LOSS_SIZE, LOSS_SIZE), mode="bilinear", align_corners=False)


small_masks = F.interpolate(scenes["train"].masks[:, None].float(), size=LOSS_SIZE, mode="nearest")[:, 0].long()


def race(backbone: nn.Module, head: nn.Module, seed: int, cached: dict | None, budget: float, lr: float):
    """Train `head` (and `backbone` when nothing is cached) for `budget` seconds; return steps."""
    parameters = list(head.parameters()) + (list(backbone.parameters()) if cached is None else [])
    optimizer = torch.optim.AdamW(parameters, lr=lr, weight_decay=1e-4)
    generator, steps, begin = torch.Generator().manual_seed(seed), 0, time.perf_counter()
    head.train(), backbone.train(cached is None)
    while time.perf_counter() - begin < budget:
        for batch in torch.randperm(len(small_masks), generator=generator).split(32):
            features = {k: v[batch] for k, v in cached.items()} if cached else backbone(scenes["train"].images[batch])
            loss = F.cross_entropy(scores(head, features), small_masks[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            steps += 1
            if time.perf_counter() - begin >= budget:
                break
    return steps


@torch.no_grad()
def segment(backbone: nn.Module, head: nn.Module, images: torch.Tensor) -> torch.Tensor:
    backbone.eval(), head.eval()
    return torch.cat([F.interpolate(head(backbone(x)), size=images.shape[-2:], mode="bilinear",
                                    align_corners=False).argmax(1) for x in images.split(100)])


results = {name: [] for name in ("frozen pretrained", "fine-tuned pretrained", "random")}
for seed in SEEDS:
    frozen = Backbone(copy.deepcopy(pretrained)).eval().requires_grad_(False)
    begin = time.perf_counter()
    with torch.no_grad():
        parts = [frozen(x) for x in scenes["train"].images.split(100)]
        cached = {k: torch.cat([p[k] for p in parts]) for k in ("low", "high")}
    cache_seconds = time.perf_counter() - begin
    runners = {"frozen pretrained": (frozen, cached, SECONDS - cache_seconds, 1e-2),
               "fine-tuned pretrained": (Backbone(copy.deepcopy(pretrained)), None, SECONDS, 3e-3),
               "random": (Backbone(efficientnet_lite(0)), None, SECONDS, 3e-3)}
    for name, (backbone, cache, budget, lr) in runners.items():
        if name == "fine-tuned pretrained":
            tl.freeze_batchnorm(backbone)  # lesson 03's policy for a pretrained backbone
        head = new_head(seed)
        steps = race(backbone, head, seed, cache, budget, lr)
        miou, per_class = mean_iou(segment(backbone, head, scenes["test"].images), scenes["test"].masks)
        results[name].append(miou)
        print(f"seed {seed} {name:22s} {steps:4d} steps  test mIoU {miou:.3f}"
              + (f"  (cache {cache_seconds:.1f} s of the {SECONDS:.0f})" if cache else ""))
        if name == "frozen pretrained" and seed == SEEDS[-1]:
            frozen_model = (backbone, head)

# %%
for name, values in results.items():
    print(f"{name:22s} mIoU {np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}  {np.round(values, 3)}")
print(f"elapsed so far {time.perf_counter() - started:.0f} s")

# %%
predicted = segment(*frozen_model, scenes["test"].images[:6])
show_scenes(scenes["test"].images[:6], scenes["test"].masks[:6], titles=["truth"] * 6)

# %%
show_scenes(scenes["test"].images[:6], predicted, titles=["frozen pretrained"] * 6)
