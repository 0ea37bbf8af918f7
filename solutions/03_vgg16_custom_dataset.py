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
# # Exercise 3 · VGG16 feature extraction on your own ImageFolder dataset
#
# **You practise:** the classic recipe on a dataset stored as folders of images: freeze the
# pretrained network, replace the last layer (`classifier[6]` in VGG16) for your classes, train
# only that layer.
#
# **Which weights are real:** offline, VGG16 loads with *random* weights (a loud warning says
# so), so you do the VGG16 surgery for its structure only. Then you apply the same recipe to
# EfficientNet-Lite0, whose *real* ImageNet weights ship with the course, train it, and the
# grader measures its accuracy itself on 250 images your code never sees.

# %%
import tempfile
from pathlib import Path

from torch import nn
from torch.utils.data import DataLoader
from torchvision import datasets

import tlcourse as tl

tl.seed_everything(0)
device = tl.get_device()
IMAGE_SIZE = tl.grading.IMAGE_SIZE  # 48 px: small and fast; the grader measures at this size
CLASSES = ["Bird", "Cat", "Elephant", "Giraffe", "Zebra"]

# %% [markdown]
# ## 1. A custom dataset on disk, in the ImageFolder layout
# `root/train/<class>/*.png` and `root/test/<class>/*.png`: one folder per class.
# `datasets.ImageFolder` numbers the classes in alphabetical order of the folder names.

# %%
images, labels, names = tl.grading.practice_data(CLASSES, per_class=90)
split = tl.stratified_split(labels, {"train": 300, "test": 150})
workdir = tempfile.TemporaryDirectory()  # deleted when the kernel stops
root = Path(workdir.name) / "animals"
for name, index in split.items():
    tl.write_imagefolder(root, images[index], labels[index], names, split=name)

transform = tl.transforms_for("efficientnet_lite0", image_size=IMAGE_SIZE)
train_set = datasets.ImageFolder(root / "train", transform=transform)
test_set = datasets.ImageFolder(root / "test", transform=transform)
print(train_set.classes, len(train_set), "train,", len(test_set), "test images")

# %% [markdown]
# ## 2. The classic recipe on VGG16: freeze, then replace `classifier[6]`
#
# <details><summary>Hint 1 (the idea)</summary>
#
# Freeze everything first, then swap the last layer of the classifier for a new one with one
# output per class of your dataset. The new layer is created trainable; it must take as many
# inputs as the old one did.
# </details>
#
# <details><summary>Hint 2 (the API)</summary>
#
# `tl.freeze`; `vgg.classifier` is an `nn.Sequential` you can index and assign into; the old
# layer's `in_features`, and `train_set.classes` for the number of outputs of a new `nn.Linear`.
# </details>
#
# <details><summary>Hint 3 (the code)</summary>
#
# ```python
# tl.freeze(vgg)  # first: every parameter frozen
# # then a new last layer, created trainable: as many inputs as the old classifier[6] takes
# # (print(vgg.classifier) above shows them), one output per class
# vgg.classifier[6] = nn.Linear(..., len(train_set.classes))
# ```
# </details>

# %%
vgg = tl.load_pretrained("vgg16")  # offline: RANDOM weights, see the warning
print(vgg.classifier)
### BEGIN SOLUTION: freeze every VGG16 parameter, then replace classifier[6] for len(train_set.classes) outputs
tl.freeze(vgg)
vgg.classifier[6] = nn.Linear(4096, len(train_set.classes))
### END SOLUTION
print("trainable:", tl.trainable_names(vgg))

# %% [markdown]
# ## 3. The same recipe with real pretrained weights: EfficientNet-Lite0
#
# The frozen backbone gives the same output for an image in every epoch, so compute its
# features once (`tl.extract_features`) and train the head on them: seconds instead of minutes.
#
# <details><summary>Hint 1 (the idea)</summary>
#
# Freeze the model and give it a new head, as for VGG16. Then run the frozen part over the
# training images once, keep its outputs (the head's inputs), and train only the head on those
# stored feature vectors, shuffled, for a number of epochs.
# </details>
#
# <details><summary>Hint 2 (the API)</summary>
#
# `tl.freeze`; `tl.replace_head` returns the new head; `tl.extract_features(model, loader)`
# returns a dataset of (feature vector, label) pairs; a shuffled `DataLoader` over it and
# `tl.fit` (its `epochs` and `lr` arguments: about 20 epochs at 3e-3) train the head.
# </details>
#
# <details><summary>Hint 3 (the code)</summary>
#
# ```python
# tl.freeze(model)
# head = tl.replace_head(model, num_classes=len(train_set.classes))
# features = tl.extract_features(model, DataLoader(train_set, batch_size=100))
# feature_loader = DataLoader(features, batch_size=32, shuffle=True, generator=tl.make_generator(0))
# tl.fit(..., feature_loader, epochs=20, lr=3e-3, device=device, progress=False)  # train what?
# ```
# </details>

# %%
model = tl.load_pretrained("efficientnet_lite0").to(device)
### BEGIN SOLUTION: freeze model, replace its head, cache the features of train_set, train the head (~20 epochs)
tl.freeze(model)
head = tl.replace_head(model, num_classes=len(train_set.classes))
features = tl.extract_features(model, DataLoader(train_set, batch_size=100))
feature_loader = DataLoader(features, batch_size=32, shuffle=True, generator=tl.make_generator(0))
tl.fit(head, feature_loader, epochs=20, lr=3e-3, device=device, progress=False)
### END SOLUTION

# %%
test_accuracy = tl.evaluate(model, DataLoader(test_set, batch_size=150))["accuracy"]
print(f"test accuracy {test_accuracy:.3f} on {len(test_set)} images")

# %% [markdown]
# ## Graded cell
# The grader checks the VGG16 surgery, that Lite0's backbone still holds the pretrained
# weights, and measures the accuracy of `model` on its own held-out images.

# %% tags=["graded"]
tl.check("ex03", vgg=vgg, model=model, class_names=train_set.classes, accuracy=test_accuracy)
