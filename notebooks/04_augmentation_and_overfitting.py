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
# # 04 · Overfitting, augmentation, learning rate and regularisation
#
# **You will learn to**
# - recognise overfitting in the curves (train keeps improving, validation gets worse) and stop
#   early, keeping the best weights;
# - augment images with `torchvision.transforms.v2` (crop, flip, rotation, brightness, noise) and
#   measure what it buys on a tiny training set;
# - choose a learning rate with a short sweep, and decay it with a scheduler;
# - regularise a head with dropout and weight decay.
#
# The setting that makes these matter: **only 10 training images per class** (100 in all).

# %%
# %matplotlib inline
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import ConcatDataset, DataLoader, TensorDataset
from torchvision.transforms import v2

import tlcourse as tl

tl.seed_everything(0)
device = tl.get_device()
IMAGE_SIZE = 96

splits = tl.load_splits("animals", {"train": 100, "val": 500, "test": 1000}, image_size=IMAGE_SIZE, seed=0)
loaders = tl.make_loaders(splits, batch_size=50, seed=0)
classes = splits["train"].classes
model = tl.load_pretrained("efficientnet_lite0")
tl.freeze(model)
tl.replace_head(model, num_classes=10)
features = {name: tl.extract_features(model, loader) for name, loader in loaders.items()}
print({name: len(f) for name, f in features.items()}, "cached 1280-d feature vectors")


def feature_loader(dataset, shuffle=False):
    return DataLoader(dataset, batch_size=50, shuffle=shuffle, generator=tl.make_generator(0))


def new_head(hidden=512, dropout=0.0) -> nn.Module:
    tl.seed_everything(0)
    layers = [nn.Linear(1280, hidden), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else [])
    return nn.Sequential(*layers, nn.Linear(hidden, 10))


# %% [markdown]
# ## 1. Overfitting, made visible
# An MLP head with 660 k parameters and 100 examples: it can memorise them. Train long, without
# early stopping or best-weights restore, and watch both curves.

# %%
head = new_head()
history = tl.fit(head, feature_loader(features["train"], True), feature_loader(features["val"]),
                 epochs=150, lr=1e-3, restore_best=False, progress=False)
best = min(range(150), key=lambda e: history.val_loss[e])
print(f"train accuracy {history.train_accuracy[-1]:.2f}, train loss {history.train_loss[-1]:.4f}")
print(f"val loss: lowest {history.val_loss[best]:.3f} at epoch {best + 1}, {history.val_loss[-1]:.3f} at the end")
assert history.train_accuracy[-1] == 1.0  # memorised
assert history.val_loss[-1] > 1.1 * history.val_loss[best]  # ... while validation loss climbs
history.plot(title="100 training images: the curves diverge")

# %% [markdown]
# The training loss keeps falling towards 0; the validation loss bottoms out and rises again —
# the model grows over-confident on what it memorised. **Early stopping** ends training when
# validation accuracy has not improved for `patience` epochs, and `restore_best` puts back the
# weights of the best epoch.

# %%
head = new_head()
early = tl.fit(head, feature_loader(features["train"], True), feature_loader(features["val"]),
               epochs=150, lr=1e-3, patience=15, progress=False)
print(early.stop_reason, "| epochs run:", len(early.train_loss), "| best epoch:", early.best_epoch)
val_now = tl.evaluate(head, feature_loader(features["val"]))["accuracy"]
assert early.stop_reason.startswith("early stopping") and len(early.train_loss) < 150
assert val_now == max(early.val_accuracy)  # the best weights are back
print(f"val accuracy of the restored model: {val_now:.3f}")

# %% [markdown]
# ## 2. Augmentation
# More *varied* training images without collecting any: random crops, flips, small rotations,
# brightness changes and noise, drawn anew each time. Label-preserving for animal silhouettes.

# %%
augment = v2.Compose([
    v2.RandomResizedCrop(IMAGE_SIZE, scale=(0.6, 1.0), antialias=True),
    v2.RandomHorizontalFlip(),
    v2.RandomRotation(15),
    v2.ColorJitter(brightness=0.4, contrast=0.4),
    v2.ToDtype(torch.float32, scale=True),
    v2.GaussianNoise(sigma=0.05),
    v2.Normalize([0.5] * 3, [0.5] * 3),  # Lite models expect [-1, 1]
])
raw = tl.ImageArrayDataset(splits["train"].images, splits["train"].labels, classes,
                           transform=v2.Compose([v2.RGB(), v2.Resize(IMAGE_SIZE, antialias=True)]))
image, label = raw[3]
examples = torch.stack([augment(image) for _ in range(16)])
tl.show_images(tl.to_displayable(examples), [label] * 16, classes, title="16 random augmentations of one image")

# %% [markdown]
# With a frozen backbone we can still cache: push each training image through `augment` 10 times,
# once, and train the head on the 1,000 augmented feature vectors ("offline augmentation").

# %%
tl.seed_everything(0)
augmented = tl.ImageArrayDataset(splits["train"].images, splits["train"].labels, classes,
                                 transform=v2.Compose([v2.RGB(), v2.Resize(IMAGE_SIZE, antialias=True), augment]))
copies = [tl.extract_features(model, DataLoader(augmented, batch_size=100)) for _ in range(10)]
augmented_features = ConcatDataset([features["train"], *copies])
print(len(augmented_features), "training feature vectors (100 originals + 10 augmented copies)")

results = {}
for name, train_set in [("no augmentation", features["train"]), ("augmentation x10", augmented_features)]:
    head = new_head()
    h = tl.fit(head, feature_loader(train_set, True), feature_loader(features["val"]), epochs=40, lr=1e-3, progress=False)
    results[name] = (h, tl.evaluate(head, feature_loader(features["test"]))["accuracy"])
    print(f"{name:<18} test accuracy {results[name][1]:.3f}")
assert results["augmentation x10"][1] > results["no augmentation"][1]
lowest = {name: min(h.val_loss) for name, (h, _) in results.items()}
print("lowest validation loss:", {name: round(v, 3) for name, v in lowest.items()})
assert lowest["augmentation x10"] < lowest["no augmentation"]
tl.plot_history(*(h for h, _ in results.values()), labels=list(results))

# %% [markdown]
# ## 3. Choosing the learning rate
# Too small: nothing happens in the epochs you can afford. Too large: the loss jumps around or
# diverges. A sweep over powers of ten, a few epochs each, on cached features takes seconds.

# %%
sweep = {}
for lr in (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0):
    head = new_head()
    h = tl.fit(head, feature_loader(augmented_features, True), feature_loader(features["val"]), epochs=10, lr=lr, progress=False)
    sweep[lr] = h.val_accuracy[-1]
    print(f"lr {lr:<7g} val accuracy after 10 epochs {sweep[lr]:.3f}")
best_lr = max(sweep, key=sweep.get)
figure = Figure(figsize=(5, 3), layout="constrained")
ax = figure.subplots()
ax.semilogx(list(sweep), list(sweep.values()), "o-")
ax.set(xlabel="learning rate (Adam)", ylabel="val accuracy", title=f"best: {best_lr:g}")
assert best_lr not in (1e-5, 1.0) and sweep[1e-5] < sweep[best_lr] - 0.1
figure

# %% [markdown]
# A **scheduler** lowers the learning rate as training goes on: big steps first, fine steps at the
# end. `tl.fit(..., scheduler=...)` steps it once per epoch; cosine annealing is a good default.

# %%
head = new_head()
optimizer = torch.optim.Adam(head.parameters(), lr=best_lr)
scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=20)
cosine = tl.fit(head, feature_loader(augmented_features, True), feature_loader(features["val"]),
                epochs=20, optimizer=optimizer, scheduler=scheduler, progress=False)
print("learning rate per epoch:", [f"{lr:.1e}" for lr in cosine.lr[::4]], "...")
assert cosine.lr[-1] < cosine.lr[0] / 10
print(f"cosine schedule: test accuracy {tl.evaluate(head, feature_loader(features['test']))['accuracy']:.3f}")

# %% [markdown]
# ## 4. Regularisation: dropout and weight decay
# Dropout zeroes random hidden units during training, so the head cannot rely on any single one;
# weight decay pulls weights towards zero (use `AdamW` for decoupled decay). Both narrow the gap
# between training and validation loss. Back to the 100 original images, 60 epochs, no early stop:

# %%
variants = {"none": (0.0, 0.0), "dropout 0.5": (0.5, 0.0), "weight decay 0.5": (0.0, 0.5), "both": (0.5, 0.5)}
gaps, regularised = {}, {}
for name, (dropout, decay) in variants.items():
    head = new_head(dropout=dropout)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-3, weight_decay=decay)
    h = tl.fit(head, feature_loader(features["train"], True), feature_loader(features["val"]),
               epochs=60, optimizer=optimizer, restore_best=False, progress=False)
    gaps[name] = h.val_loss[-1] - h.train_loss[-1]
    regularised[name] = h
    print(f"{name:<18} train loss {h.train_loss[-1]:.3f}  val loss {h.val_loss[-1]:.3f}  gap {gaps[name]:.3f}  val acc {h.val_accuracy[-1]:.3f}")
assert gaps["both"] < gaps["none"] and gaps["dropout 0.5"] < gaps["none"]
tl.plot_history(regularised["none"], regularised["both"], labels=["none", "dropout + decay"])

# %% [markdown]
# ## Summary
# - Overfitting: training loss → 0 while validation loss rises. Watch both curves; stop early
#   (`patience=`) and keep the best weights (`restore_best=True`, the default in `tl.fit`).
# - Augmentation (`transforms.v2`) makes few images go further; with a frozen backbone you can
#   even cache augmented features.
# - Sweep the learning rate over powers of ten before anything else; add a cosine schedule.
# - Dropout and weight decay shrink the train/validation gap.
#
# **Try next:** 30 instead of 10 images per class — which technique still matters? Add
# `v2.RandomErasing`; try `patience=5`. Next: `05_class_imbalance`.
