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
#   with their per-pixel masks and their boxes;
# - put a small **segmentation head** (torchvision's `LRASPPHead`) on Lite0's intermediate
#   feature maps and score it with the **mean IoU per class**;
# - put a **detector** (torchvision's FCOS with a feature pyramid) on the same maps and score it
#   with the **mean average precision** (mAP) from torchmetrics;
# - measure, at equal seconds, what the pretrained backbone buys over a random one.
#
# The classifier of lessons 01-11 answers *what is in the picture*. Segmentation answers *which
# class is each pixel*, detection *where is each object, and what is it*. Both start from the
# same pretrained backbone: only the head changes.

# %%
# %matplotlib inline
import copy
import time

import numpy as np
import torch
import torch.nn.functional as F
from torchmetrics.detection import MeanAveragePrecision
from torchvision.models.detection import FCOS
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.fcos import FCOSHead
from torchvision.ops import nms

import tlcourse as tl
from tlcourse.efficientnet_lite import efficientnet_lite

tl.seed_everything(0)
device = tl.get_device()
started = time.perf_counter()

# %% [markdown]
# ## 1. Scenes with a free ground truth
# Each scene is a 96 × 96 texture with one to three silhouettes pasted on it, each 24-48 px,
# in a dark or a bright colour. Because we pasted them, we know every animal's pixels (its
# mask) and its box exactly. The training and test scenes are made from **disjoint**
# silhouettes: no animal of a test scene was ever seen in training.

# %%
scenes = tl.load_scenes({"train": 300, "test": 200}, image_size=96, scale=(24, 48), seed=0)
classes = scenes["train"].classes  # 0 = background, 1..10 = the animals
for name, split in scenes.items():
    animals = sum(len(t["labels"]) for t in split.targets)
    print(f"{name:5s}: {len(split)} scenes, {animals} animals, "
          f"{(split.masks > 0).float().mean():.1%} of the pixels are animal")
used = {name: set(np.concatenate(s.sources).tolist()) for name, s in scenes.items()}
assert not used["train"] & used["test"]
assert len(classes) == 11 and classes[0] == "background"

train, test = scenes["train"], scenes["test"]
tl.show_scenes(train.images[:6], train.masks[:6], train.targets[:6], classes,
               title="training scenes: masks (colour) and boxes (the truth we pasted)")

# %% [markdown]
# ## 2. Segmentation: a head on the intermediate maps
# A classifier keeps only Lite0's last, coarsest map (3 × 3 at 96 px). A segmentation head needs
# *where*, so it reads earlier maps: LR-ASPP takes a fine one (`low`, stride 8) for the outlines
# and a coarser one (`high`, stride 16) for *what*, and predicts 11 scores for every pixel of
# the fine map; `tl.Segmenter` scales them up to the image.

# %%
pretrained = tl.load_pretrained("efficientnet_lite0")
backbone = tl.Lite0Maps(pretrained)  # shares pretrained's stages 0-5: no copy
maps = backbone.eval()(train.images[:2])
print({name: tuple(m.shape) for name, m in maps.items()})
assert maps["low"].shape == (2, 40, 12, 12) and maps["high"].shape == (2, 112, 6, 6)
head = tl.segmentation_head(num_classes=len(classes))
print(f"head: {sum(p.numel() for p in head.parameters()):,} parameters; "
      f"backbone: {sum(p.numel() for p in backbone.parameters()):,}")

# %% [markdown]
# **The loop, by hand.** With the backbone frozen, its maps of the training scenes never
# change: compute them once (`tl.cache_maps`) and train only the head on them, as lesson 02 did
# with the classifier's features. The loss is a cross-entropy *per pixel*: scores (N, 11, h, w)
# against the class mask (N, h, w). We compare at 24 × 24 (the mask shrunk by nearest
# neighbour), 16× fewer pixels than 96 × 96 and enough for the loss.

# %%
LOSS_SIZE = 24  # 24 x 24: 16x fewer pixels than 96 x 96
small_masks = F.interpolate(train.masks[:, None].float(), size=LOSS_SIZE, mode="nearest")[:, 0].long()


def pixel_loss(head_scores: torch.Tensor, batch: torch.Tensor) -> torch.Tensor:
    scores = F.interpolate(head_scores, size=(LOSS_SIZE, LOSS_SIZE), mode="bilinear", align_corners=False)
    return F.cross_entropy(scores, small_masks[batch].to(scores.device))  # (N, 11, 24, 24) vs (N, 24, 24)


def race(model: tl.Segmenter, seed: int, lr: float, cached: dict | None = None,
         seconds: float = float("inf"), steps: int | None = None) -> tuple[int, float]:
    """Train for `steps` steps or `seconds` on the clock: the head alone on `cached` maps, else
    backbone and head together through the whole backbone. Returns (steps, seconds) taken."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=lr, weight_decay=1e-4)
    generator, taken, begin = torch.Generator().manual_seed(seed), 0, time.perf_counter()
    model.train()
    while time.perf_counter() - begin < seconds and taken != steps:
        for batch in torch.randperm(len(train), generator=generator).split(32):
            if cached is not None:
                maps = {name: m[batch] for name, m in cached.items()}
            else:
                maps = model.backbone(train.images[batch].to(device))
            loss = pixel_loss(model.head(maps), batch)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            taken += 1
            if time.perf_counter() - begin >= seconds or taken == steps:
                break
    return taken, time.perf_counter() - begin


# %% [markdown]
# **The race.** Three runners get the same seconds on the clock, each with a new head. The
# budget is measured on your machine, so the race is fair on a fast and a slow one alike: it
# is the time the fine-tuned runner takes for `FINE_TUNE_STEPS` steps.
# - *fine-tuned pretrained*: backbone and head train together (BatchNorm kept in eval mode, the
#   policy of lesson 03), every step through the backbone; it runs first and sets the budget;
# - *random*: the same, from random weights, for the same seconds;
# - *frozen pretrained*: its clock first pays for caching the backbone's maps of the training
#   scenes, then only the head trains, many epochs on the cache, until the same seconds are
#   spent (the maps are the same for every seed: we compute them once and charge their seconds
#   to every frozen runner).
#
# The clock stops while we score the test scenes. Three seeds per runner.

# %%
FINE_TUNE_STEPS, SEEDS = 7, (0, 1, 2)
LEARNING_RATES = {"fine-tuned pretrained": 3e-3, "random": 3e-3, "frozen pretrained": 1e-2}
frozen_backbone = tl.Lite0Maps(copy.deepcopy(pretrained)).requires_grad_(False).to(device)
begin = time.perf_counter()
cached = tl.cache_maps(frozen_backbone, train.images)
cache_seconds = time.perf_counter() - begin
print(f"caching the maps of {len(train)} scenes: {cache_seconds:.1f} s")
results, budgets = {name: [] for name in LEARNING_RATES}, []
for seed in SEEDS:
    for name, lr in LEARNING_RATES.items():
        tl.seed_everything(seed)
        if name == "frozen pretrained":
            backbone = frozen_backbone
        else:
            source = efficientnet_lite(0) if name == "random" else copy.deepcopy(pretrained)
            backbone = tl.Lite0Maps(source)
            if name == "fine-tuned pretrained":
                tl.freeze_batchnorm(backbone)
        model = tl.Segmenter(backbone, tl.segmentation_head(len(classes))).to(device)
        if name == "fine-tuned pretrained":
            steps, budget = race(model, seed, lr, steps=FINE_TUNE_STEPS)
            budgets.append(budget)
        elif name == "random":
            steps, _ = race(model, seed, lr, seconds=budget)
        else:
            steps, _ = race(model, seed, lr, cached, seconds=max(budget - cache_seconds, 0))
        miou, per_class = tl.mean_iou(tl.segment(model, test.images), test.masks, len(classes))
        results[name].append(miou)
        print(f"seed {seed}  {name:22s} {steps:4d} steps in {budget:.1f} s  test mIoU {miou:.3f}")
        if name == "frozen pretrained" and seed == 0:
            segmenter, frozen_per_class = model, per_class

# %%
summary = {name: (np.mean(v), np.std(v, ddof=1)) for name, v in results.items()}
for name, (mean, spread) in summary.items():
    print(f"{name:22s} mean IoU {mean:.3f} ± {spread:.3f} over {len(SEEDS)} seeds")
print("per class (frozen pretrained, seed 0):",
      ", ".join(f"{c} {iou:.2f}" for c, iou in zip(classes[1:], frozen_per_class)))
# measured over seeds 0-4 (budget: 7 fine-tuning steps, 2.8-3.4 s): frozen 0.256 ± 0.024
# (0.22-0.28), fine-tuned 0.011 ± 0.004, random 0.000: the gap of 0.245 is 6 standard
# deviations of a single seed above the asserted 0.1
for other in ("fine-tuned pretrained", "random"):
    assert summary["frozen pretrained"][0] > summary[other][0] + 0.1, summary

# %% [markdown]
# In these seconds the frozen pretrained backbone leads the mean IoU by the margin printed above
# (asserted: at least 0.1): its clock bought many cheap head steps on cached maps (the step
# counts are printed above), while the other two runners paid for every step through the whole
# backbone and barely left their start. The per-class line shows which animals the head tells
# apart best.
#
# **What the head sees.** The truth (top) and the frozen runner's prediction (bottom) on test
# scenes it never saw:

# %%
predicted = tl.segment(segmenter, test.images[:6])
tl.show_scenes(test.images[:6], test.masks[:6], class_names=classes, title="truth")

# %%
tl.show_scenes(test.images[:6], predicted, class_names=classes,
               title="frozen pretrained backbone + LR-ASPP head")

# %% [markdown]
# ## 3. Detection: FCOS on the same backbone
# A detector predicts boxes and a class for each. torchvision's detection models take a
# *backbone with a feature pyramid* (`BackboneWithFPN`): it reads Lite0's stride-8 and stride-16
# maps (stages 3 and 5, as above) and mixes them into maps of 64 channels at three scales. On
# those, FCOS's head predicts, at every position, a class score, a box and a "centredness".
#
# Two policies from lesson 03 carry over:
# - a pretrained backbone that is frozen keeps its BatchNorm in eval mode (torchvision's own
#   detection models replace it with `FrozenBatchNorm2d` for the same reason: batches of a few
#   scenes give poor batch statistics);
# - the optimizer gets the parameters that train, nothing else.
#
# The detector normalises its inputs itself (`image_mean`, `image_std`); our scenes are already
# normalised for Lite0, so we pass 0 and 1. In training mode it takes a list of images *and*
# their targets and returns a dict of losses; in eval mode it returns boxes, labels and scores.

# %%
SIZE = 96


def detector(source: torch.nn.Module, frozen: bool) -> FCOS:
    if frozen:
        tl.freeze_batchnorm(source)
        source.requires_grad_(False)
    body = BackboneWithFPN(source.features, return_layers={"3": "0", "5": "1"},
                           in_channels_list=[40, 112], out_channels=64)
    return FCOS(body, num_classes=len(classes), min_size=SIZE, max_size=SIZE,
                image_mean=[0.0] * 3, image_std=[1.0] * 3,
                anchor_generator=AnchorGenerator(((8,), (16,), (32,)), ((1.0,),) * 3),
                head=FCOSHead(64, 1, num_classes=len(classes), num_convs=2),
                detections_per_img=10, score_thresh=0.2)


model = detector(copy.deepcopy(pretrained), frozen=True).train()
losses = model(list(train.images[:4]), train.targets[:4])
print({name: round(value.item(), 3) for name, value in losses.items()})
trainable, total = tl.count_params(model)
print(f"trainable {trainable:,} of {total:,} (the pyramid and the head)")
assert not any(p.requires_grad for p in model.backbone.body.parameters())


def train_detector(model: FCOS, seed: int, seconds: float = float("inf"),
                   steps: int | None = None) -> tuple[int, float]:
    """Train for `steps` steps or `seconds` on the clock; returns (steps, seconds) taken."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3,
                                  weight_decay=1e-4)
    generator, taken, begin = torch.Generator().manual_seed(seed), 0, time.perf_counter()
    model.to(device).train()
    while time.perf_counter() - begin < seconds and taken != steps:
        for batch in torch.randperm(len(train), generator=generator).split(16):
            images = [train.images[i].to(device) for i in batch]
            targets = [{k: v.to(device) for k, v in train.targets[i].items()} for i in batch]
            loss = sum(model(images, targets).values())  # training mode: a dict of losses
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            taken += 1
            if time.perf_counter() - begin >= seconds or taken == steps:
                break
    return taken, time.perf_counter() - begin


@torch.no_grad()
def mean_average_precision(model: FCOS) -> dict:
    model.eval()
    # COCO's mAP (pycocotools underneath): "map" averages over IoU 0.5, 0.55 ... 0.95
    metric = MeanAveragePrecision(iou_type="bbox")
    for batch in torch.arange(len(test)).split(100):
        found = model([test.images[i].to(device) for i in batch])
        metric.update([{k: v.cpu() for k, v in f.items()} for f in found], [test.targets[i] for i in batch])
    return {k: metric.compute()[k].item() for k in ("map_50", "map")}


# %% [markdown]
# **mAP in one paragraph.** A predicted box *hits* an animal of its class when their
# intersection over union (IoU) is at least 0.5 (each animal counts once). Sort all predictions
# by score; precision and recall along that list give a curve whose area is the *average
# precision* of a class; mAP@0.5 averages it over the classes. COCO's headline number,
# mAP@[.5:.95], averages it again over IoU thresholds 0.5, 0.55 … 0.95: tight boxes score higher.
#
# **The race**: a random backbone trained with the pyramid and the head for `RANDOM_STEPS`
# steps sets the budget; the frozen pretrained backbone (pyramid and head train) gets the same
# seconds on the clock.

# %%
RANDOM_STEPS = 48
detection = {}
for name in ("random", "frozen pretrained"):
    tl.seed_everything(0)
    frozen = name == "frozen pretrained"
    model = detector(copy.deepcopy(pretrained) if frozen else efficientnet_lite(0), frozen)
    if frozen:
        steps, _ = train_detector(model, seed=0, seconds=detection_seconds)
        found_model = model
    else:
        steps, detection_seconds = train_detector(model, seed=0, steps=RANDOM_STEPS)
    detection[name] = mean_average_precision(model)
    print(f"{name:18s} {steps:4d} steps in {detection_seconds:.1f} s  test mAP@0.5 "
          f"{detection[name]['map_50']:.3f}  mAP@[.5:.95] {detection[name]['map']:.3f}")
gain = detection["frozen pretrained"]["map_50"] - detection["random"]["map_50"]
print(f"the pretrained backbone adds {gain:.3f} mAP@0.5 in {detection_seconds:.0f} s")
# measured over seeds 0-4 (budget: 48 random steps, 12.6-15.5 s): frozen 0.456 ± 0.050,
# random 0.057 ± 0.007; the mean gain 0.40 is 4 standard deviations above the asserted 0.2
assert gain > 0.2, detection

# %% [markdown]
# The detector on test scenes: its boxes with their class and score. FCOS keeps the best box of
# each *class* at a place, so one animal can carry two boxes, one per class it might be (the mAP
# above scores them all). For the figure, `torchvision.ops.nms` across classes keeps only the
# highest-scoring box where boxes overlap (IoU above 0.3).

# %%
found_model.eval()
with torch.no_grad():
    found = [{k: v.cpu() for k, v in f.items()} for f in found_model(list(test.images[:6].to(device)))]
shown = [{k: v[nms(f["boxes"], f["scores"], iou_threshold=0.3)] for k, v in f.items()} for f in found]
tl.show_scenes(test.images[:6], targets=shown, class_names=classes,
               title="FCOS on the frozen pretrained Lite0: the best box where boxes overlap")

# %% [markdown]
# ## 4. Where transfer helps most
# The numbers above, side by side:

# %%
print(f"{'task':13s} {'backbone':22s} {'score':>20s}")
for name, (mean, spread) in summary.items():
    print(f"{'segmentation':13s} {name:22s} {'mIoU':>6s} {mean:.3f} ± {spread:.3f}")
for name, scores in detection.items():
    print(f"{'detection':13s} {name:22s} {'mAP@0.5':>9s} {scores['map_50']:.3f}")
print(f"(segmentation: {np.mean(budgets):.1f} s per runner, {len(train)} training scenes; "
      f"detection: {detection_seconds:.1f} s per runner)")
print(f"the whole lesson so far: {time.perf_counter() - started:.0f} s")

# %% [markdown]
# With few scenes and a few seconds, the pretrained backbone's maps already separate animals from
# texture and one animal from another: a head on top learns in seconds what a random backbone
# does not reach in the same time (both gaps asserted above). That is the regime this lesson
# measured, little data and little time, and there the pretrained backbone decides the result.
# Whether a fine-tuned or a random backbone catches up given far more scenes and time, this
# lesson does not measure: measure it before you assume it either way.
#
# ## Summary
# - Dense tasks reuse the classifier's backbone: read its *intermediate* maps (a fine and a
#   coarse one), put a task head on them, keep the rest.
# - Segmentation scores each pixel: a per-pixel cross-entropy to train, the mean IoU per class
#   to report. Detection predicts boxes: the model returns its losses in training mode and
#   boxes in eval mode; report mAP@0.5 and mAP@[.5:.95] from a standard implementation.
# - A frozen backbone's maps can be cached once: its head trains on them in a fraction of the
#   time a full step costs.
#
# **Try next:** give the fine-tuned runner 10× the seconds and see whether it passes the frozen
# one; train the detector on 50 scenes instead of 300; then exercise 12.
