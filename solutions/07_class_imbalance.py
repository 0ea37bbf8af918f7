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
# # Exercise 7 · Class imbalance: class weights or a balanced sampler
#
# **You practise:** training on imbalanced data (300 cows, only 10 sheep) so that the rare class
# is still found. With a plain loss the model gets every cow right and calls a third or more of
# the sheep "Cow" — the rare class pays for the common one. The grader measures Sheep recall and
# macro-F1 itself on balanced held-out images, and it trains heads of its own on the same 310
# training images, plain and with the `loss_fn` and `sampler` you pass: your remedy, and your
# model, must find clearly more sheep than plain training does.
#
# **Which weights are real:** EfficientNet-Lite0 with its real ImageNet weights (frozen; only a
# new head trains, on cached features).

# %%
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

import tlcourse as tl

tl.seed_everything(0)
device = tl.get_device()
CLASSES = ["Cow", "Sheep"]
transform = tl.transforms_for("efficientnet_lite0", image_size=tl.grading.IMAGE_SIZE)

images, labels, names = tl.grading.practice_data(CLASSES, per_class=400)
cows, sheep = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
train_index = np.concatenate([cows[:300], sheep[:10]])  # imbalanced: 30 cows per sheep
test_index = np.concatenate([cows[300:390], sheep[300:390]])  # balanced test set
train_labels, test_labels = labels[train_index], labels[test_index]
train_set = tl.ImageArrayDataset(images[train_index], train_labels, names, transform)
test_set = tl.ImageArrayDataset(images[test_index], test_labels, names, transform)
print("train counts", np.bincount(train_labels), " test counts", np.bincount(test_labels))

model = tl.load_pretrained("efficientnet_lite0").to(device)
tl.freeze(model, verbose=False)
head = tl.replace_head(model, num_classes=2, verbose=False)
train_features = tl.extract_features(model, DataLoader(train_set, batch_size=155))
test_features = tl.extract_features(model, DataLoader(test_set, batch_size=180))  # (180, 1280)


def train_head(loss_fn, sampler=None):
    """A fresh head trained for 50 epochs on cached features; returns its test metrics."""
    torch.manual_seed(0)
    head.reset_parameters()
    loader = DataLoader(
        train_features, batch_size=64, sampler=sampler, shuffle=sampler is None,
        generator=tl.make_generator(0),
    )
    tl.fit(head, loader, epochs=50, lr=3e-3, loss_fn=loss_fn.to(device), device=device, progress=False)
    probabilities = tl.predict(head, test_features.tensors[0])  # head on cached = whole model
    return tl.classification_metrics(test_labels, probabilities, CLASSES)


# %% [markdown]
# ## 1. Plain training first: every cow right, too many sheep missed

# %%
plain = train_head(nn.CrossEntropyLoss())
print(f"plain: accuracy {plain['accuracy']:.3f}, Sheep recall "
      f"{plain['per_class']['Sheep']['recall']:.3f}, macro-F1 {plain['macro_f1']:.3f}")

# %% [markdown]
# ## 2. Your remedy
#
# **What class weights do.** The "balanced" weights give each class N / (classes × its count):
# Cow 310 / (2 × 300) ≈ 0.517, Sheep 310 / (2 × 10) = 15.5. In the loss, one Sheep mistake then
# costs as much as 30 Cow mistakes — not as much as *all* Cow mistakes: the 10 sheep *together*
# weigh as much as the 300 cows together. Each class, not each image, counts equally.

# %%
weights = tl.class_weights(train_labels)  # (2,): Cow, Sheep
sheep_per_cow = float(weights[1] / weights[0])
print(f"class weights: Cow {weights[0]:.3f}, Sheep {weights[1]:.3f}; "
      f"one Sheep mistake costs as much as {sheep_per_cow:.0f} Cow mistakes")
assert abs(sheep_per_cow - 300 / 10) < 1e-3  # the inverse ratio of the class counts
assert abs(10 * weights[1] - 300 * weights[0]) < 1e-3  # both classes weigh the same in total

# %% [markdown]
# Set `loss_fn` to a class-weighted loss, **or** keep a plain loss and set `sampler` to one that
# draws both classes equally often. Leave the other one as it is (`sampler = None` if you weight
# the loss).
#
# <details><summary>Hint 1 (the idea)</summary>
#
# Either make a rare-class mistake cost more in the loss (weights as above), or let the model see
# Sheep as often as Cow by drawing the rare images more often, with replacement. One of the two
# is enough; both at once over-correct.
# </details>
#
# <details><summary>Hint 2 (the API)</summary>
#
# `nn.CrossEntropyLoss` takes a `weight=` tensor with one number per class; `tl.class_weights`
# computes the balanced ones from the training labels. `tl.balanced_sampler` builds a
# `WeightedRandomSampler` from the same labels, for `train_head`'s `sampler` argument.
# </details>
#
# <details><summary>Hint 3 (the code)</summary>
#
# ```python
# # either a class-weighted loss and no sampler ...
# loss_fn = nn.CrossEntropyLoss(weight=...)  # the balanced weights computed above
# sampler = None
# # ... or a plain nn.CrossEntropyLoss() and sampler = tl.balanced_sampler(...) (never both)
# ```
# </details>

# %%
### BEGIN SOLUTION: set loss_fn (class-weighted) and sampler (or a balanced sampler and a plain loss)
loss_fn = nn.CrossEntropyLoss(weight=weights)
sampler = None
### END SOLUTION
report = train_head(loss_fn, sampler)
minority_recall = report["per_class"]["Sheep"]["recall"]
macro_f1 = report["macro_f1"]
print(f"remedy: accuracy {report['accuracy']:.3f}, Sheep recall {minority_recall:.3f}, "
      f"macro-F1 {macro_f1:.3f}")
print(report["confusion_matrix"])

# %% [markdown]
# ## Graded cell

# %% tags=["graded"]
tl.check(
    "ex07",
    model=model,
    loss_fn=loss_fn,
    sampler=sampler,
    minority_recall=minority_recall,
    macro_f1=macro_f1,
)
