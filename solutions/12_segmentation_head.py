# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
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
# # Exercise 12 · A segmentation head on the frozen pretrained backbone
#
# **You practise:** lesson 12's recipe. Take Lite0's intermediate maps as a frozen backbone,
# compute them once for the training scenes, train a small segmentation head on them with a
# per-pixel loss, and measure the mean IoU per class on test scenes.
#
# **Which weights are real:** EfficientNet-Lite0 with its real ImageNet weights. The grader
# checks that your backbone holds exactly those weights and that none of them trains, then
# makes 100 new scenes from animals your code never saw and measures your model on them.

# %%
import torch
import torch.nn.functional as F

import tlcourse as tl

tl.seed_everything(0)
device = tl.get_device()
NUM_CLASSES = 11  # background + 10 animals

scenes = tl.grading.practice_scenes({"train": 300, "test": 100}, image_size=96)
train, test = scenes["train"], scenes["test"]
print(f"{len(train)} training scenes, {len(test)} test scenes; classes {train.classes}")
tl.show_scenes(train.images[:6], train.masks[:6], train.targets[:6], train.classes)

# %% [markdown]
# ## 1. The frozen pretrained backbone and its cached maps
#
# <details><summary>Hint 1 (the idea)</summary>
#
# The segmentation head reads two of Lite0's intermediate maps (stride 8 and 16). The backbone
# keeps its ImageNet weights and does not train, so its maps of the training scenes never change:
# compute them once, in eval mode, and train the head on them.
# </details>
#
# <details><summary>Hint 2 (the API)</summary>
#
# `tl.load_pretrained("efficientnet_lite0")`, `tl.Lite0Maps(model)`, `.requires_grad_(False)`,
# and `tl.cache_maps(backbone, images)` (a dict `{"low": ..., "high": ...}`).
# </details>
#
# <details><summary>Hint 3 (the code)</summary>
#
# ```python
# backbone = tl.Lite0Maps(tl.load_pretrained(...)).requires_grad_(...).to(device)
# cached = tl.cache_maps(backbone, train.images)
# ```
# </details>

# %%
### BEGIN SOLUTION: build the frozen backbone and cache its maps of train.images
backbone = tl.Lite0Maps(tl.load_pretrained("efficientnet_lite0")).requires_grad_(False).to(device)
cached = tl.cache_maps(backbone, train.images)
### END SOLUTION
print({name: tuple(m.shape) for name, m in cached.items()})
assert cached["low"].shape == (len(train), 40, 12, 12)

# %% [markdown]
# ## 2. Train the head on the cached maps
#
# The loss compares the head's scores with the class mask at 24 × 24 (the mask shrunk by
# nearest neighbour): a cross-entropy for every pixel.
#
# <details><summary>Hint 1 (the idea)</summary>
#
# Each step: take a batch of cached maps, run the head, scale its scores to 24 × 24, compute the
# cross-entropy against `small_masks` of the same scenes, and step the optimizer (the head's
# parameters only). About 20 epochs of 300 scenes in batches of 32 are enough.
# </details>
#
# <details><summary>Hint 2 (the API)</summary>
#
# `F.interpolate(scores, size=(24, 24), mode="bilinear", align_corners=False)`,
# `F.cross_entropy(scores, masks)` with scores (N, 11, 24, 24) and masks (N, 24, 24),
# `torch.optim.AdamW(head.parameters(), lr=1e-2)`.
# </details>
#
# <details><summary>Hint 3 (the code)</summary>
#
# ```python
# for epoch in range(20):
#     for batch in torch.randperm(len(train), generator=generator).split(32):
#         maps = {name: m[batch] for name, m in cached.items()}
#         scores = F.interpolate(head(maps), size=(24, 24), mode="bilinear", align_corners=False)
#         loss = F.cross_entropy(scores, small_masks[batch])
#         ...  # zero_grad, backward, step
# ```
# </details>

# %%
small_masks = F.interpolate(train.masks[:, None].float(), size=24, mode="nearest")[:, 0].long()
small_masks = small_masks.to(device)
head = tl.segmentation_head(num_classes=NUM_CLASSES).to(device)
generator = torch.Generator().manual_seed(0)
### BEGIN SOLUTION: train head on the cached maps (per-pixel cross-entropy, about 20 epochs)
optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2, weight_decay=1e-4)
head.train()
for epoch in range(20):
    for batch in torch.randperm(len(train), generator=generator).split(32):
        maps = {name: m[batch] for name, m in cached.items()}
        scores = F.interpolate(head(maps), size=(24, 24), mode="bilinear", align_corners=False)
        loss = F.cross_entropy(scores, small_masks[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
### END SOLUTION
print(f"last batch loss {loss.item():.3f}")

# %% [markdown]
# ## 3. The whole model, and its mean IoU on your test scenes
#
# <details><summary>Hint 1 (the idea)</summary>
#
# Put backbone and head together so the model takes images and gives a score per class for
# every pixel; the predicted class is the highest score; the mean IoU compares it with the
# test masks, class by class (background left out).
# </details>
#
# <details><summary>Hint 2 (the API)</summary>
#
# `tl.Segmenter(backbone, head)`, `tl.segment(model, images)` (classes per pixel) and
# `tl.mean_iou(predicted, masks, num_classes)` (returns the mean and the per-class IoUs).
# </details>
#
# <details><summary>Hint 3 (the code)</summary>
#
# ```python
# model = tl.Segmenter(..., ...)
# test_miou, per_class = tl.mean_iou(tl.segment(model, test.images), test.masks, NUM_CLASSES)
# ```
# </details>

# %%
### BEGIN SOLUTION: model = backbone + head; test_miou = its mean IoU on the test scenes
model = tl.Segmenter(backbone, head)
test_miou, per_class = tl.mean_iou(tl.segment(model, test.images), test.masks, NUM_CLASSES)
### END SOLUTION
print(f"test mean IoU {test_miou:.3f}")
tl.show_scenes(test.images[:6], tl.segment(model, test.images[:6]), class_names=test.classes,
               title="your model's masks on test scenes")

# %% [markdown]
# ## Grade
# The grader checks that your backbone holds the ImageNet weights and none of them trains,
# makes 100 new scenes from animals your code never saw, measures the mean IoU there, and
# compares it with the number you report.

# %% tags=["graded"]
tl.check("ex12", model=model, miou=test_miou)
