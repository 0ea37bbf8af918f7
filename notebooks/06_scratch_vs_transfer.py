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
# # 06 · From scratch or transfer? A fair race
#
# **You will learn to**
# - set up a *fair* comparison: the same architecture, the same data, the same wall-clock budget,
#   several seeds — and say exactly what the clock includes;
# - time a training run honestly (the clock stops while we evaluate);
# - plot accuracy against seconds with the mean and the spread over seeds;
# - see how the answer depends on the amount of data.
#
# The syllabus exercise: *"compare training time and accuracy of a model trained from scratch
# versus one using transfer learning"*. Both sides use **EfficientNet-Lite0**: one with random
# weights, trained end to end; one with its real ImageNet weights, frozen, plus a new head.

# %%
# %matplotlib inline
import time

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, Subset

import tlcourse as tl

tl.seed_everything(0)
device = tl.get_device()
IMAGE_SIZE = 64  # small images: a budget of seconds on a laptop CPU
SEEDS = (0, 1, 2)
CHANCE = 0.1  # 10 balanced classes
print(f"device {device}, {torch.get_num_threads()} CPU threads, {IMAGE_SIZE} px")

# %% [markdown]
# ## 1. The data and the rules
# 1,000 training images of the 10 animal silhouettes, 300 held-out test images, 64×64 pixels.
#
# **What the clock counts** (for each seed):
# - *transfer*: one pass of the frozen pretrained network over the 1,000 training images (the
#   feature cache) **plus** every epoch of the new head;
# - *scratch*: every training step of the whole network, from random weights.
#
# **What it does not count**, on either side: loading the images into memory, building the model,
# and evaluating on the test images (we stop the clock for that). The budget is set by transfer:
# scratch gets exactly as many seconds as transfer needed, on the same machine, in the same
# process — so both are slowed equally if the computer is busy.

# %%
splits = tl.load_splits("animals", {"train": 1000, "test": 300}, image_size=IMAGE_SIZE, seed=0)
loaders = tl.make_loaders(splits, batch_size=32, seed=0)
classes = splits["train"].classes
print({name: len(split) for name, split in splits.items()}, "images;", len(classes), "classes")

# %% [markdown]
# ## 2. Transfer: cache the frozen features, train the head
# The frozen backbone gives the same 1280 numbers for an image every time, so it runs once
# (`tl.extract_features`, notebook 02). That pass is the same for every seed: we time it once and
# charge it to every seed. The test images go through it too, but off the clock.

# %%
pretrained = tl.load_pretrained("efficientnet_lite0")
tl.freeze(pretrained)
tl.replace_head(pretrained, num_classes=10)

started = time.perf_counter()
train_features = tl.extract_features(pretrained, loaders["train"])  # ON the clock
extract_seconds = time.perf_counter() - started
test_features = tl.extract_features(pretrained, loaders["test"])  # evaluation: off the clock
test_feature_loader = DataLoader(test_features, batch_size=300)
print(f"feature cache: {len(train_features)} images in {extract_seconds:.1f} s "
      f"({len(train_features) / extract_seconds:.0f} images/s, forward only)")


def run_transfer(seed: int, features, epochs: int = 20, cache_seconds: float = 0.0):
    """Train a fresh linear head on cached features; returns (seconds, test accuracy) per epoch."""
    tl.seed_everything(seed)
    head = nn.Linear(1280, 10)
    train = DataLoader(features, batch_size=32, shuffle=True, generator=tl.make_generator(seed))
    # test features as "validation": only recorded for the curve, never used to pick weights
    history = tl.fit(head, train, test_feature_loader, epochs=epochs, lr=1e-3,
                     restore_best=False, progress=False)
    seconds = cache_seconds + np.cumsum(history.seconds)  # history.seconds includes the tiny eval
    return seconds, np.array(history.val_accuracy)


transfer = {seed: run_transfer(seed, train_features, cache_seconds=extract_seconds) for seed in SEEDS}
for seed, (seconds, accuracy) in transfer.items():
    print(f"transfer, seed {seed}: test accuracy {accuracy[-1]:.3f} after {seconds[-1]:.1f} s")
budget = float(np.mean([seconds[-1] for seconds, _ in transfer.values()]))
print(f"budget for scratch: {budget:.1f} s")

# %% [markdown]
# ## 3. Scratch: the same network, random weights, the same seconds
# `tl.fit` counts epochs, not seconds, so here is the raw PyTorch loop with a stopwatch. The clock
# runs only around training steps; at a few checkpoints it stops, the model is evaluated on the
# test images, and it starts again.

# %%
def run_scratch(seed: int, budget: float, train_loader, checkpoints=(0.5, 1.0)):
    """Train Lite0 from random weights for `budget` seconds; evaluate at fractions of it."""
    tl.seed_everything(seed)
    model = tl.load_pretrained("efficientnet_lite0", weights=None).to(device)  # same architecture
    tl.replace_head(model, num_classes=10, verbose=False)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    elapsed, seen, times, accuracies = 0.0, 0, [], []
    stops = [fraction * budget for fraction in checkpoints]
    while stops:
        for images, labels in train_loader:
            started = time.perf_counter()
            model.train()
            loss = loss_fn(model(images.to(device)), labels.to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            elapsed += time.perf_counter() - started
            seen += len(labels)
            if elapsed >= stops[0]:  # clock stopped: evaluate
                times.append(elapsed)
                accuracies.append(tl.evaluate(model, loaders["test"], device=device)["accuracy"])
                stops.pop(0)
                if not stops:
                    break
    return np.array(times), np.array(accuracies), seen


scratch = {}
for seed in SEEDS:
    scratch[seed] = run_scratch(seed, budget, loaders["train"])
    times, accuracy, seen = scratch[seed]
    print(f"scratch, seed {seed}: {seen} training images seen ({seen / 1000:.1f} epochs) "
          f"in {times[-1]:.1f} s, test accuracy {accuracy[-1]:.3f}")

# %% [markdown]
# Why so few? A training step of the whole network costs a forward **and** a backward pass through
# all 4.6 M parameters; the transfer side pays one forward pass per image, once, and then trains a
# 12,810-parameter head on vectors — milliseconds per epoch.

# %%
scratch_rate = np.mean([seen / times[-1] for times, _, seen in scratch.values()])
print(f"images per second: scratch training {scratch_rate:.0f}, "
      f"transfer feature cache {len(train_features) / extract_seconds:.0f}")
assert len(train_features) / extract_seconds > scratch_rate  # the cache pass is cheaper per image

# %% [markdown]
# ## 4. Accuracy against seconds
# Each line is the mean of 3 seeds, the band their minimum to maximum. The dashed vertical line is
# the budget; the dotted horizontal line is chance (10 %).

# %%
def mean_and_spread(runs: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    stacked = np.stack(runs)
    return stacked.mean(0), stacked.min(0), stacked.max(0)


figure = Figure(figsize=(7, 4), layout="constrained")
ax = figure.subplots()
for name, runs, color in [("transfer (frozen Lite0 + head)", transfer, "tab:green"),
                          ("scratch (Lite0, random init)", scratch, "tab:red")]:
    seconds, _, _ = mean_and_spread([run[0] for run in runs.values()])
    accuracy, low, high = mean_and_spread([run[1] for run in runs.values()])
    ax.plot(seconds, accuracy, "o-", color=color, label=name, markersize=4)
    ax.fill_between(seconds, low, high, color=color, alpha=0.25)
ax.axvspan(0, extract_seconds, color="tab:green", alpha=0.08, label="transfer: feature cache pass")
ax.axvline(budget, color="grey", linestyle="--", label=f"budget {budget:.1f} s")
ax.axhline(CHANCE, color="black", linestyle=":", label="chance")
ax.set(xlabel="training seconds on this machine (evaluation excluded)", ylabel="test accuracy",
       xlim=(0, 1.1 * budget), ylim=(0, 1), title="same network, same 1,000 images, same seconds (3 seeds)")
ax.legend(loc="center right", fontsize=8)
figure

# %%
transfer_final = np.array([accuracy[-1] for _, accuracy in transfer.values()])
scratch_final = np.array([accuracy[-1] for _, accuracy, _ in scratch.values()])
print(f"at the budget: transfer {transfer_final.mean():.3f} ± {transfer_final.std():.3f}, "
      f"scratch {scratch_final.mean():.3f} ± {scratch_final.std():.3f}")
assert transfer_final.min() > scratch_final.max() + 0.3  # every transfer seed beats every scratch seed
assert transfer_final.min() > 0.8
assert min(accuracy[0] for _, accuracy in transfer.values()) > 0.5  # after one head epoch

# %% [markdown]
# Transfer is already far above chance after its first head epoch; scratch, in the same seconds,
# has barely started (count the images it saw, above). That is not a trick of the budget: scratch has to learn edge detectors,
# shapes and parts from 1,000 images, and the pretrained network learned those from 1.3 million.
#
# ## 5. How much data? A sweep over 50, 200 and 1,000 images
# Same rules, with fewer training images (stratified, so 5 and 20 per class). Transfer re-runs its
# feature cache on the subset, on the clock. Scratch gets the **full budget from above** at every
# size — as many passes over the small set as fit — so at small sizes it has *more* time than
# transfer used. Scratch runs one seed per size here to keep the notebook under a minute
# (1,000 images: the 3 seeds above).

# %%
sizes = (50, 200, 1000)
labels = splits["train"].labels
sweep = {"transfer": {}, "scratch": {}}
for size in sizes:
    if size == len(labels):
        sweep["transfer"][size] = transfer_final
        sweep["scratch"][size] = scratch_final
        continue
    subset = Subset(splits["train"], tl.stratified_split(labels, {"subset": size}, seed=0)["subset"])
    started = time.perf_counter()
    features = tl.extract_features(pretrained, DataLoader(subset, batch_size=32))
    cache_seconds = time.perf_counter() - started
    runs = [run_transfer(seed, features, cache_seconds=cache_seconds) for seed in SEEDS]
    sweep["transfer"][size] = np.array([accuracy[-1] for _, accuracy in runs])
    small_loader = DataLoader(subset, batch_size=32, shuffle=True, generator=tl.make_generator(0))
    _, accuracy, seen = run_scratch(0, budget, small_loader, checkpoints=(1.0,))
    sweep["scratch"][size] = accuracy
    print(f"{size:>5} images: transfer {sweep['transfer'][size].mean():.3f} "
          f"in {runs[0][0][-1]:.1f} s | scratch {accuracy[-1]:.3f} in {budget:.1f} s "
          f"({seen / size:.1f} epochs)")

# %%
figure = Figure(figsize=(6, 3.6), layout="constrained")
ax = figure.subplots()
positions = np.arange(len(sizes))
for offset, (name, color) in zip((-0.2, 0.2), [("transfer", "tab:green"), ("scratch", "tab:red")]):
    means = [sweep[name][size].mean() for size in sizes]
    errors = np.clip([[m - sweep[name][s].min() for m, s in zip(means, sizes)],
                      [sweep[name][s].max() - m for m, s in zip(means, sizes)]], 0, None)
    ax.bar(positions + offset, means, width=0.4, color=color, yerr=errors, capsize=3, label=name)
ax.axhline(CHANCE, color="black", linestyle=":", label="chance")
ax.set_xticks(positions, [f"{size} images" for size in sizes])
ax.set(ylabel="test accuracy", ylim=(0, 1), title=f"equal budget ({budget:.1f} s) by data size")
ax.legend(fontsize=8)
figure

# %%
transfer_means = [sweep["transfer"][size].mean() for size in sizes]
assert all(sweep["transfer"][s].mean() > sweep["scratch"][s].mean() + 0.2 for s in sizes)
assert transfer_means[0] < transfer_means[1] < transfer_means[2]  # more data still helps transfer
assert sweep["transfer"][50].mean() > sweep["scratch"][1000].max()  # 50 pretrained > 1000 scratch
print("transfer accuracy by size:", dict(zip(sizes, np.round(transfer_means, 3))))

# %% [markdown]
# What the sweep says:
# - **Little data is where transfer matters most.** With 5 images per class, transfer already
#   beats scratch trained on 20 times more data. Pretrained features carry what a small dataset
#   cannot teach.
# - In this budget scratch gets nowhere at any size: a handful of steps from random weights is
#   not enough to learn edges, shapes and parts (its BatchNorm statistics are not even settled,
#   so it often predicts one class for everything: exactly chance).
# - Transfer keeps improving with more data; its cost grows only with the one forward pass.
# - What this notebook does *not* show: with a large dataset and hours of GPU time, a network
#   trained from scratch can catch up with, or beat, a frozen backbone — especially when the new
#   images look nothing like ImageNet. Fine-tuning (notebook 03) sits between the two.
#
# ## Summary
# - A fair comparison fixes the architecture, the data, the budget and the evaluation, uses
#   several seeds, and states what the clock counts (here: the feature cache is *on* the clock,
#   evaluation is off).
# - At equal seconds, pretrained features + a head beat training from scratch by a wide margin;
#   the margin is largest when data is scarce.
# - `tl.fit` counts epochs; a budget in seconds needs a small raw loop with a stopwatch.
#
# **Try next:** give scratch 10× the budget (`run_scratch(0, 10 * budget, loaders["train"])`) —
# how far does it get? Compare with fine-tuning the last block (notebook 03) on the same clock;
# try `IMAGE_SIZE = 96`. Next: `07_your_own_data`.
