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
# # 00 · Setup check: is everything ready?
#
# **You will learn:** how to check that PyTorch, the course package `tlcourse` and the
# pretrained weights work on *your* machine, with no internet.
#
# Run each cell with **Shift+Enter**. Every notebook ends its important cells with `assert`s:
# if one fails, the claim in the text above it is not true on your machine, and the message
# says what to fix.

# %%
# %matplotlib inline
import torch
import torchvision

import tlcourse as tl

device = tl.get_device()  # cuda > mps > cpu; set TLCOURSE_DEVICE=cpu to force the CPU
print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, device: {device}")

# %% [markdown]
# ## A real pretrained model, offline
# torchvision downloads its pretrained weights from the internet. The course also ships
# **EfficientNet-Lite0** with its real ImageNet weights inside a pip package, so the
# whole course runs offline. Let us ask it what is in a photo it has never seen.

# %%
model = tl.load_pretrained("efficientnet_lite0").to(device)
photo = tl.sample_photos()["coffee"]  # a real photo shipped with scikit-image, (H, W, 3) uint8
transform = tl.transforms_for(model, image_size=224)
probabilities = tl.predict(model, transform(photo))[0]  # (1000,) ImageNet classes

categories = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
top5 = probabilities.topk(5)
for p, index in zip(top5.values, top5.indices):
    print(f"{categories[index]:<20} {p:.3f}")
assert categories[top5.indices[0]] == "espresso", "the pretrained weights did not load correctly"
# espresso gets 0.945; inference has no randomness, so other machines differ only by float rounding
assert top5.values[0] > 0.9, f"espresso at only {top5.values[0]:.3f}: the preprocessing is off"

# %%
from matplotlib.figure import Figure

figure = Figure(figsize=(9, 3), layout="constrained")
left, right = figure.subplots(1, 2, width_ratios=[1, 1.4])
left.imshow(photo)
left.axis("off")
right.barh([categories[i] for i in top5.indices.flip(0)], top5.values.flip(0))
right.set_xlabel("probability")
figure

# %% [markdown]
# ## Summary
# - `tl.get_device()` picks your fastest device; `tl.load_pretrained` gives real weights offline.
# - The model is sure the photo shows an espresso (its probability is printed in the top-5 above,
#   and asserted above 0.9): it learned that from ImageNet.
#
# **Next:** `01_pretrained_models` explores what a pretrained model is made of.
