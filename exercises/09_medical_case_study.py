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
# # Exercise 9 · Advanced: the medical case study pipeline
#
# **The syllabus task:** classify chest X-rays as NORMAL or PNEUMONIA with a pretrained model,
# and report **sensitivity** (how many sick patients are found) and **specificity** (how many
# healthy ones are cleared) instead of accuracy alone.
#
# **Honest about the data:** no X-ray data can be downloaded here. If you have the public
# "Chest X-Ray Images (Pneumonia)" set, set `TLCOURSE_XRAY_DIR` to its folder (with
# `train/{NORMAL,PNEUMONIA}` and `test/{NORMAL,PNEUMONIA}`) and the same code runs on it (use
# `IMAGE_SIZE = 224` there and expect minutes). Without it, the code writes an **offline
# stand-in** in the same layout: cat silhouettes play NORMAL and dog silhouettes PNEUMONIA, 1:3
# like the real set. It is *not* medical data; the grader scores the stand-in.
#
# **Which weights are real:** EfficientNet-Lite0 with its real ImageNet weights.

# %%
import os
import tempfile
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets

import tlcourse as tl

tl.seed_everything(0)
device = tl.get_device()
IMAGE_SIZE = tl.grading.IMAGE_SIZE

workdir = tempfile.TemporaryDirectory()
if os.environ.get("TLCOURSE_XRAY_DIR"):
    root = Path(os.environ["TLCOURSE_XRAY_DIR"])
    print(f"real chest X-rays from {root}")
else:
    root = tl.grading.write_medical_standin(Path(workdir.name) / "xray_standin")
    print((root / "README.txt").read_text())

transform = tl.transforms_for("efficientnet_lite0", image_size=IMAGE_SIZE)
train_set = datasets.ImageFolder(root / "train", transform=transform)
test_set = datasets.ImageFolder(root / "test", transform=transform)
assert train_set.classes == ["NORMAL", "PNEUMONIA"], train_set.classes
print("train counts", torch.bincount(torch.tensor(train_set.targets)).tolist(),
      " test counts", torch.bincount(torch.tensor(test_set.targets)).tolist())

# %% [markdown]
# ## 1. Train: frozen pretrained backbone, new 2-class head, class weights
#
# <details><summary>Hint</summary>
#
# The recipe of exercise 3 (`tl.freeze`, `tl.replace_head`, `tl.extract_features`, `tl.fit`),
# with `loss_fn=nn.CrossEntropyLoss(weight=tl.class_weights(train_set.targets))`.
# </details>

# %%
model = tl.load_pretrained("efficientnet_lite0").to(device)
raise NotImplementedError("Exercise 9: freeze model, new 2-class head, train it on cached features with a class-weighted loss")

# %% [markdown]
# ## 2. Sensitivity and specificity at a threshold
#
# The model gives P(PNEUMONIA) per image; you call an image positive from a `threshold` on.
# A lower threshold finds more sick patients (sensitivity up) but clears fewer healthy ones.
#
# <details><summary>Hint</summary>
#
# `tl.sensitivity_specificity(test_labels, (p_pneumonia >= threshold).long())` with the
# positive class 1 (PNEUMONIA).
# </details>

# %%
p_pneumonia = tl.predict(model, DataLoader(test_set, batch_size=160))[:, 1]
test_labels = torch.tensor(test_set.targets)
print("threshold  sensitivity  specificity")
for t in (0.1, 0.3, 0.5, 0.7, 0.9):
    sens, spec = tl.sensitivity_specificity(test_labels, (p_pneumonia >= t).long())
    print(f"{t:9.1f} {sens:12.3f} {spec:12.3f}")
print(f"ROC-AUC {tl.roc_auc(test_labels, torch.stack([1 - p_pneumonia, p_pneumonia], 1)):.3f}")

# %%
raise NotImplementedError("Exercise 9: pick threshold, then compute sensitivity and specificity on the test set")
print(f"threshold {threshold}: sensitivity {sensitivity:.3f}, specificity {specificity:.3f}")

# %% [markdown]
# **Observations to write down:** a missed pneumonia (false negative) is worse than an extra
# check of a healthy patient, so screening favours sensitivity; accuracy hides this, because
# with 3 sick per healthy patient "everyone is sick" already scores 0.75.

# %% [markdown]
# ## Graded cell
# The grader recomputes both rates for your model and threshold on its own stand-in images.

# %% tags=["graded"]
tl.check("ex09", model=model, threshold=threshold, sensitivity=sensitivity, specificity=specificity)
