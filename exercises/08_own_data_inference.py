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
# # Exercise 8 · Your own data: ImageFolder, save, reload, predict a new image
#
# **You practise:** the end of every real project: save the trained model as a checkpoint (the
# weights plus what you need to use them: class names, image size), load it again in a fresh
# model the safe way (`weights_only=True`), and predict the class of a new image file.
#
# **Which weights are real:** EfficientNet-Lite0 with its real ImageNet weights.
# **Your own photos:** the grader checks a model of the three silhouette classes written below
# (Cat, Giraffe, Sheep), so grade that one first. Then lay your photos out as
# `my_data/train/<class name>/*.jpg`, set `train_dir = Path("my_data/train")` and run again:
# everything above the graded cell works on them. (A broken file stops plain `ImageFolder` when
# it is read; `tl.load_imagefolder` from lesson 07 checks every file first and lists what it skips.)

# %%
import tempfile
from pathlib import Path

from PIL import Image
from torch.utils.data import DataLoader
from torchvision import datasets

import tlcourse as tl

tl.seed_everything(0)
device = tl.get_device()
IMAGE_SIZE = tl.grading.IMAGE_SIZE
CLASSES = ["Cat", "Giraffe", "Sheep"]

images, labels, names = tl.grading.practice_data(CLASSES, per_class=45)
split = tl.stratified_split(labels, {"train": 120, "new": 15})
workdir = tempfile.TemporaryDirectory()
root = Path(workdir.name)
tl.write_imagefolder(root / "data", images[split["train"]], labels[split["train"]], names, "train")
train_dir = root / "data" / "train"  # your own photos: Path("my_data/train"), see above
transform = tl.transforms_for("efficientnet_lite0", image_size=IMAGE_SIZE)
train_set = datasets.ImageFolder(train_dir, transform=transform)
print(train_set.classes, train_set.class_to_idx, len(train_set), "images")

# %% [markdown]
# ## 1. Train (the recipe of exercise 3)

# %%
model = tl.load_pretrained("efficientnet_lite0").to(device)
tl.freeze(model, verbose=False)
head = tl.replace_head(model, num_classes=len(train_set.classes))
features = tl.extract_features(model, DataLoader(train_set, batch_size=120))
feature_loader = DataLoader(features, batch_size=32, shuffle=True, generator=tl.make_generator(0))
history = tl.fit(head, feature_loader, epochs=20, lr=3e-3, device=device, progress=False)
print(f"train accuracy {history.train_accuracy[-1]:.3f}")

# %% [markdown]
# ## 2. Save a checkpoint: weights + class names + image size
#
# Save the `state_dict` (tensors only), never the whole model object: loading a pickled object
# runs code, and `torch.load(weights_only=True)` refuses it.
#
# <details><summary>Hint 1 (the idea)</summary>
#
# A checkpoint is a dict: the weights as a `state_dict` (tensors only) plus, under their own
# keys, the class names in index order and the image size — everything a colleague needs to use
# the weights without your notebook. The grader reads the keys `model`, `classes` and
# `image_size` (lesson 07 keeps the image size inside its transform settings instead: either
# works for you, but here use these three keys).
# </details>
#
# *Stuck?* Run the graded cell: after a failed attempt its report shows Hint 2 (the API),
# after another Hint 3 (the code).

# %%
checkpoint_path = root / "animals.pt"
raise NotImplementedError("Exercise 8: save model to checkpoint_path with its classes and image_size")
print(f"saved {checkpoint_path.stat().st_size / 1e6:.1f} MB")

# %% [markdown]
# ## 3. Load it back into a fresh model, as a colleague on another machine would
#
# <details><summary>Hint 1 (the idea)</summary>
#
# The file holds weights, not a model. Build the same architecture first — the backbone and a
# head with as many outputs as there are saved class names — then copy the weights in, and
# switch to evaluation mode.
# </details>
#
# *Stuck?* Run the graded cell: after a failed attempt its report shows Hint 2 (the API),
# after another Hint 3 (the code).


# %%
def load_for_inference(path):
    raise NotImplementedError("Exercise 8: return (model in eval mode, class names, image size) rebuilt from the checkpoint alone")


restored, classes, image_size = load_for_inference(checkpoint_path)
print(classes, image_size)

# %% [markdown]
# ## 4. Predict the class of a new image file
#
# <details><summary>Hint 1 (the idea)</summary>
#
# Do to the new file exactly what was done to the training images: open it, make it 3-channel,
# apply the same (non-augmenting) transform at the saved image size, run the model on a batch of
# one, and turn the scores into probabilities; the largest names the class.
# </details>
#
# *Stuck?* Run the graded cell: after a failed attempt its report shows Hint 2 (the API),
# after another Hint 3 (the code).


# %%
def predict_image(path):
    raise NotImplementedError("Exercise 8: open the image file, transform it, return (class name, probability) from `restored`")


for i, index in enumerate(split["new"][:5]):
    path = root / f"new_{i}.png"
    Image.fromarray(images[index]).save(path)
    name, probability = predict_image(path)
    print(f"{path.name}: {name} ({probability:.2f}), truly {names[labels[index]]}")

# %% [markdown]
# ## Graded cell
# The grader reloads your checkpoint itself with `weights_only=True`, measures it on held-out
# images, and calls `predict_image` on image files it writes.

# %% tags=["graded"]
tl.check("ex08", checkpoint_path=checkpoint_path, predict_image=predict_image)
