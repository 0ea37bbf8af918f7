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
# # Exercise 1 · Load a pretrained model and find its head
#
# **You practise:** loading a model with pretrained weights, finding its classification *head*
# (the last layer: the one you replace for a new task) and counting parameters.
#
# **Which weights are real:** EfficientNet-Lite0 has its *real* ImageNet weights (they ship in a
# pip package, no internet needed). VGG16 and ResNet18 are built here with *random* weights:
# where the head sits does not depend on the weights.
#
# Replace every `raise NotImplementedError(...)` with your code, then run the graded cell at the
# end. From a terminal: `python -m tlcourse check exercises/01_load_and_inspect.ipynb`.

# %%
import torchvision

import tlcourse as tl

# %% [markdown]
# ## 1. Load EfficientNet-Lite0 with its pretrained ImageNet weights
#
# <details><summary>Hint 1 (the idea)</summary>
#
# A pretrained model is an architecture plus the weights it learned on ImageNet. The course
# loads both for you, offline, from the model's name alone.
# </details>
#
# <details><summary>Hint 2 (the API)</summary>
#
# `tl.load_pretrained` takes that name as a string, spelled as in the course (lower case,
# underscores).
# </details>
#
# <details><summary>Hint 3 (the code)</summary>
#
# ```python
# # one call: the model's name as a string, lower case with underscores
# # ("efficientnet_" and its variant: lite0, lite1 or lite2; here the smallest)
# model = tl.load_pretrained(...)
# ```
# </details>

# %%
### BEGIN SOLUTION: load EfficientNet-Lite0 with its pretrained weights into `model`
model = tl.load_pretrained("efficientnet_lite0")
### END SOLUTION
print(type(model).__name__)


# %% [markdown]
# ## 2. Write `head_info(model)`
#
# Return a dict with `"path"` (the dotted name of the head layer, e.g. `"fc"`), `"in_features"`
# (the size of the feature vector the head receives) and `"num_params"` (all parameter values of
# the whole model). It must work for **any** torchvision classifier: the grader also calls it on
# models you have not seen, so compute everything from `model`.
#
# <details><summary>Hint 1 (the idea)</summary>
#
# The head is the last layer, the one that turns the feature vector into class scores: find
# it in the model, then read how many inputs it takes. The parameter count is the number of
# values in every weight and bias tensor of the model, added up.
# </details>
#
# <details><summary>Hint 2 (the API)</summary>
#
# `tl.get_head` gives you two things about the head (look at its docstring); an `nn.Linear`
# keeps its input size in an attribute; `Tensor.numel()` counts the values of one tensor, and
# `model.parameters()` yields them all.
# </details>
#
# <details><summary>Hint 3 (the code)</summary>
#
# ```python
# def head_info(model):
#     path, layer = tl.get_head(model)
#     num_params = sum(... for p in model.parameters())  # the values in each tensor
#     return {"path": path, "in_features": ..., "num_params": num_params}
# ```
# </details>


# %%
def head_info(model):
    ### BEGIN SOLUTION: return {"path": ..., "in_features": ..., "num_params": ...} computed from model
    path, layer = tl.get_head(model)
    num_params = sum(p.numel() for p in model.parameters())
    return {"path": path, "in_features": layer.in_features, "num_params": num_params}
    ### END SOLUTION


print(head_info(model))

# %% [markdown]
# ## 3. Where is the head of VGG16 and of ResNet18?
# Built with `weights=None` (random weights): only their structure matters here.

# %%
for name in ("vgg16", "resnet18"):
    info = head_info(torchvision.models.get_model(name, weights=None))
    print(f"{name:<9} head {info['path']:<13} receives {info['in_features']:>5} features, "
          f"{info['num_params']:,} parameters")

# %% [markdown]
# ## Graded cell
# The grader compares your model with the real pretrained weights and calls `head_info` on
# EfficientNet-Lite0, VGG16, ResNet18 and a model it builds itself.

# %% tags=["graded"]
tl.check("ex01", model=model, head_info=head_info)
