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
# # Exercise 6 · Scratch vs transfer at the same time budget
#
# **You practise:** the syllabus comparison, done fairly: the *same* architecture
# (EfficientNet-Lite0), the same data, the same wall-clock budget; once starting from random
# weights, once from the *real* pretrained ImageNet weights. You hand both trained models and
# your measured times to the grader, which re-evaluates both models itself.

# %%
import time

import torch
from torch import nn
from torch.utils.data import DataLoader

import tlcourse as tl

tl.seed_everything(0)
device = tl.get_device()
IMAGE_SIZE = tl.grading.IMAGE_SIZE
CLASSES = ["Bear", "Bird", "Elephant", "Giraffe", "Horse"]

images, labels, names = tl.grading.practice_data(CLASSES, per_class=60)
split = tl.stratified_split(labels, {"train": 200, "test": 100})
transform = tl.transforms_for("efficientnet_lite0", image_size=IMAGE_SIZE)
train_set = tl.ImageArrayDataset(images[split["train"]], labels[split["train"]], names, transform)
test_set = tl.ImageArrayDataset(images[split["test"]], labels[split["test"]], names, transform)
train_loader = DataLoader(train_set, batch_size=32, shuffle=True, generator=tl.make_generator(0))
test_loader = DataLoader(test_set, batch_size=100)

# %% [markdown]
# ## 1. Transfer: pretrained Lite0, frozen, new head trained on cached features (timed)
#
# <details><summary>Hint</summary>
#
# The recipe of exercise 3: `tl.freeze`, `tl.replace_head`, `tl.extract_features`, `tl.fit`
# on the features (about 20 epochs, lr 3e-3).
# </details>

# %%
start = time.perf_counter()
### BEGIN SOLUTION: transfer_model = pretrained Lite0, frozen, new head trained on cached features
transfer_model = tl.load_pretrained("efficientnet_lite0").to(device)
tl.freeze(transfer_model, verbose=False)
head = tl.replace_head(transfer_model, num_classes=len(CLASSES), verbose=False)
features = tl.extract_features(transfer_model, DataLoader(train_set, batch_size=100))
feature_loader = DataLoader(features, batch_size=32, shuffle=True, generator=tl.make_generator(0))
tl.fit(head, feature_loader, epochs=20, lr=3e-3, device=device, progress=False)
### END SOLUTION
transfer_seconds = time.perf_counter() - start
print(f"transfer trained in {transfer_seconds:.1f} s")

# %% [markdown]
# ## 2. Scratch: the same architecture from random weights, trained for the same time
#
# Build Lite0 with `weights=None`, give it a new head, and train *all* of it batch by batch
# until `transfer_seconds` have passed (check the clock after every batch).
#
# <details><summary>Hint</summary>
#
# `tl.load_pretrained("efficientnet_lite0", weights=None)`; an Adam optimizer over all its
# parameters; a `while` loop over `train_loader` that stops when
# `time.perf_counter() - start >= transfer_seconds`.
# </details>

# %%
start = time.perf_counter()
### BEGIN SOLUTION: scratch_model = Lite0 with weights=None + new head, all of it trained until transfer_seconds have passed
scratch_model = tl.load_pretrained("efficientnet_lite0", weights=None).to(device)
tl.replace_head(scratch_model, num_classes=len(CLASSES), verbose=False)
optimizer = torch.optim.Adam(scratch_model.parameters(), lr=1e-3)
scratch_model.train()
while time.perf_counter() - start < transfer_seconds:
    for inputs, targets in train_loader:
        loss = nn.functional.cross_entropy(scratch_model(inputs.to(device)), targets.to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if time.perf_counter() - start >= transfer_seconds:
            break
### END SOLUTION
scratch_seconds = time.perf_counter() - start
print(f"scratch trained for {scratch_seconds:.1f} s")

# %% [markdown]
# ## 3. Compare on the test set

# %%
transfer_accuracy = tl.evaluate(transfer_model, test_loader)["accuracy"]
scratch_accuracy = tl.evaluate(scratch_model, test_loader)["accuracy"]
print(f"{'':9} {'seconds':>8} {'test accuracy':>14}")
print(f"{'scratch':9} {scratch_seconds:8.1f} {scratch_accuracy:14.3f}")
print(f"{'transfer':9} {transfer_seconds:8.1f} {transfer_accuracy:14.3f}")
print(f"chance level: {1 / len(CLASSES):.2f}")

# %% [markdown]
# ## Graded cell
# The grader re-measures both models on its own images: the claim "transfer wins at the same
# budget" must hold for the models you pass, not for numbers you type.

# %% tags=["graded"]
tl.check(
    "ex06",
    scratch_model=scratch_model,
    transfer_model=transfer_model,
    scratch_seconds=scratch_seconds,
    transfer_seconds=transfer_seconds,
    scratch_accuracy=scratch_accuracy,
    transfer_accuracy=transfer_accuracy,
)
