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
# # Exercise 11 · Find the learning rate, then train with it
#
# **You practise:** the learning-rate range test of lesson 10: run `tl.lr_find`, read a rate off
# its curve with a rule you write yourself, and train a head with PyTorch's `OneCycleLR` at
# that rate.
#
# **Which weights are real:** EfficientNet-Lite0 with its real ImageNet weights, frozen; only
# the new head trains, on cached features. The grader measures your model on 250 held-out
# images it loads itself, calls your rule on loss curves it makes up, and checks that the rate
# you trained with is the one your rule read off your own range test — not a number typed in.
# It also checks that the range test is yours, run over the exercise's batches (it runs one
# itself and compares where the loss blows up), and that the scheduler stepped once per batch,
# with an optimizer step each time, to the end of the cycle.

# %%
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import tlcourse as tl

tl.seed_everything(0)
CLASSES = ["Bird", "Cat", "Elephant", "Giraffe", "Zebra"]
IMAGE_SIZE = tl.grading.IMAGE_SIZE  # 48 px: the size the grader measures at

images, labels, names = tl.grading.practice_data(CLASSES, per_class=100)
dataset = tl.ImageArrayDataset(images, labels, names, tl.transforms_for("efficientnet_lite0", image_size=IMAGE_SIZE))
model = tl.load_pretrained("efficientnet_lite0")
tl.freeze(model)
tl.replace_head(model, num_classes=len(CLASSES))
head = model.classifier[1]  # the new Linear(1280, 5): the only part that trains
features = tl.extract_features(model, DataLoader(dataset, batch_size=100))  # (500, 1280), once
train_loader = DataLoader(features, batch_size=32, shuffle=True, generator=tl.make_generator(0))

# %% [markdown]
# ## 1. A rule that reads a learning rate off a range test
#
# `choose_lr(lrs, losses)` gets the rates a range test tried (growing) and the smoothed losses
# it measured, and returns **one rate where the loss is still falling**: not where it is flat
# (too small to learn), not at its minimum or beyond (on the edge of blowing up). The grader
# calls it on curves it makes up, with their fall at different rates: a fixed number fails.
#
# <details><summary>Hint 1 (the idea)</summary>
#
# Two classic rules: the rate where the loss falls fastest (the steepest slope against the
# logarithm of the rate), looked for *before* the minimum; or the rate at the minimum divided
# by 10. Either is fine. Leave out the first 10 points: the smoothed loss is still warming up
# there, and one lucky batch over a tiny step of the rate looks like a steep fall.
# </details>
#
# *Stuck?* Run the graded cell: after a failed attempt its report shows Hint 2 (the API),
# after another Hint 3 (the code).


# %%
def choose_lr(lrs, losses):
    raise NotImplementedError("Exercise 11: return a learning rate where the loss falls fastest, before its minimum (skip the first 10 points)")


demo_lrs = list(np.logspace(-6, -4.5, 10)) + [1e-4, 1e-3, 1e-2, 1e-1, 1.0]  # growing, distinct
demo_losses = [2.3] * 10 + [2.3, 2.2, 1.2, 0.9, 5.0]  # ten warm-up points, then a fall at 1e-2
print(choose_lr(demo_lrs, demo_losses))  # 0.01: steepest just before the minimum at 0.1

# %% [markdown]
# ## 2. The range test, and the rate your rule reads off it
# Run `tl.lr_find` on `head` (a *fresh* head: the range test starts from it and puts it back
# afterwards) with the batches of `train_loader` and an Adam optimizer over the head's
# parameters; then `lr = choose_lr(...)` on what it measured.
#
# <details><summary>Hint 1 (the idea)</summary>
#
# A range test trains the head once over the batches while it raises the learning rate a little
# at every step, and records the (smoothed) loss at each rate. It needs the part that trains, the
# batches, and an optimizer over that part's parameters. Then your rule from section 1 reads one
# rate off the rates and losses it recorded.
# </details>
#
# *Stuck?* Run the graded cell: after a failed attempt its report shows Hint 2 (the API),
# after another Hint 3 (the code).

# %%
raise NotImplementedError("Exercise 11: run tl.lr_find on head with an Adam optimizer, then lr = choose_lr(finder.lrs, finder.losses)")
print(f"{len(finder.lrs)} batches, from {finder.lrs[0]:.0e} to {finder.lrs[-1]:.2g}; your rule: {lr:.2g} "
      f"(tl.lr_find's own suggestion: {finder.suggestion:.2g})")
finder.plot()

# %% [markdown]
# ## 3. Train the head with one-cycle at that rate
# `OneCycleLR` raises the rate from `max_lr / 25` to `max_lr` over the first 30 % of the steps,
# then anneals it to almost zero; it changes the rate every batch, so the loop below calls
# `scheduler.step()` after each `optimizer.step()`. Build `optimizer` (Adam over the head's
# parameters) and `scheduler` (`max_lr=lr`, one step per batch for `EPOCHS` epochs).
#
# <details><summary>Hint 1 (the idea)</summary>
#
# One-cycle steers the learning rate of an optimizer over the head's parameters: it needs the
# peak rate (the one your rule read off the range test) and how many times it will be stepped in
# all: once per batch, for every batch of every epoch.
# </details>
#
# *Stuck?* Run the graded cell: after a failed attempt its report shows Hint 2 (the API),
# after another Hint 3 (the code).

# %%
EPOCHS = 20
raise NotImplementedError("Exercise 11: optimizer = Adam over head's parameters; scheduler = OneCycleLR with max_lr=lr and one step per batch of EPOCHS epochs")
head.train()
for epoch in range(EPOCHS):
    for inputs, targets in train_loader:
        loss = F.cross_entropy(head(inputs), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        scheduler.step()  # one-cycle: a new rate every batch
print(f"last batch loss {loss.item():.3f}; the rate now {optimizer.param_groups[0]['lr']:.1e} (peak {lr:.2g})")

# %% [markdown]
# ## Graded cell

# %% tags=["graded"]
tl.check("ex11", choose_lr=choose_lr, finder=finder, lr=lr, optimizer=optimizer, scheduler=scheduler, model=model)
