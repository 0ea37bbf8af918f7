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
# # Exercise 2 · Feature extraction: freeze a model, replace its head
#
# **You practise:** the feature-extraction recipe. Freeze every pretrained weight, then put a
# new, trainable layer where the head was: only that layer learns your task.
#
# **Which weights are real:** ResNet18 loads with *random* weights here (offline its pretrained
# weights are not available; you will see a loud warning saying so). The structure is what this
# exercise is about. The grader also runs your function on EfficientNet-Lite0 with its *real*
# ImageNet weights and checks that every one of them stays exactly as it was.

# %%
import torch

import tlcourse as tl

# %% [markdown]
# ## 1. `make_feature_extractor(model, num_classes)`
#
# Freeze all parameters of `model`, replace its head by a new layer with `num_classes`
# outputs, and return the model. Change the model you are given (do not load a new one).
#
# Errata you may meet online: `model.fc.requires_grad = True` only sets a plain Python attribute
# on the module and trains nothing: `requires_grad` belongs to each *parameter*.
#
# <details><summary>Hint 1 (the idea)</summary>
#
# Two steps, in this order: switch off gradients for every parameter the model has now; then
# put a new layer where the head was. A layer you create is trainable, so it is the only part
# that learns. Freezing after the replacement would freeze the new head too.
# </details>
#
# <details><summary>Hint 2 (the API)</summary>
#
# `tl.freeze` does the first step and `tl.replace_head` (see its `num_classes` argument) the
# second. By hand: each parameter's `requires_grad`, and a new `torch.nn.Linear` whose input
# size is the old head's `in_features`. Return the model you changed.
# </details>
#
# <details><summary>Hint 3 (the code)</summary>
#
# ```python
# def make_feature_extractor(model, num_classes):
#     tl.freeze(...)  # first: every parameter the model has now
#     tl.replace_head(..., num_classes=num_classes)  # then: a new, trainable head
#     return model
# ```
# </details>


# %%
def make_feature_extractor(model, num_classes):
    ### BEGIN SOLUTION: freeze every parameter, replace the head for num_classes outputs, return the model
    tl.freeze(model)
    tl.replace_head(model, num_classes=num_classes)
    return model
    ### END SOLUTION


# %% [markdown]
# ## 2. A ResNet18 for 5 classes (random weights offline: read the warning)

# %%
model = make_feature_extractor(tl.load_pretrained("resnet18"), num_classes=5)
print("trainable:", tl.trainable_names(model))
print("logits:", tuple(model(torch.randn(2, 3, 64, 64)).shape))

# %% [markdown]
# ## Graded cell
# The grader inspects `requires_grad` and the output shape of your model, and calls your
# function on a pretrained EfficientNet-Lite0 (3 classes) and a fresh ResNet18 (7 classes).

# %% tags=["graded"]
tl.check("ex02", make_feature_extractor=make_feature_extractor, model=model)
