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
# # Exercise 4 · An optimizer over the trainable parameters, with two learning rates
#
# **You practise:** building an optimizer that only holds parameters that train, with a larger
# learning rate for the new head than for the pretrained layers you unfroze (discriminative
# learning rates, via *parameter groups*).
#
# **Which weights are real:** EfficientNet-Lite0 with its real ImageNet weights. The grader
# also calls your function on models it builds itself (a ResNet18, a head-only Lite0).

# %%
import torch

import tlcourse as tl

tl.seed_everything(0)
HEAD_LR, BODY_LR = 1e-3, 1e-4  # new head: learns fast; unfrozen pretrained layers: gently

model = tl.load_pretrained("efficientnet_lite0")
tl.freeze(model)
tl.unfreeze(model, "features.7", "features.8")  # the last MBConv stage and the 1x1 head conv
tl.replace_head(model, num_classes=5)

# %% [markdown]
# ## 1. `make_optimizer(model)`
#
# Return an optimizer (Adam, AdamW or SGD) whose parameter groups hold **every trainable
# parameter exactly once and no frozen one**: the head's parameters at `HEAD_LR`, all other
# trainable ones at `BODY_LR`. Find the head from the model (it is `fc` in a ResNet).
#
# <details><summary>Hint 1 (the idea)</summary>
#
# Keep only the parameters that train, and split them in two groups: the head's (their names
# start with the head's path and a dot, e.g. `fc.`) and all others. An optimizer accepts a list of groups, each with
# its own learning rate.
# </details>
#
# *Stuck?* Run the graded cell: after a failed attempt its report shows Hint 2 (the API),
# after another Hint 3 (the code).


# %%
def make_optimizer(model):
    raise NotImplementedError("Exercise 4: trainable parameters only: the head at HEAD_LR, every other trainable one at BODY_LR")


optimizer = make_optimizer(model)
for group in optimizer.param_groups:
    print(f"lr {group['lr']:g}: {sum(p.numel() for p in group['params']):,} parameter values")

# %% [markdown]
# ## 2. One step: the frozen layers stay exactly where they were

# %%
first_conv = model.features[0][0].weight.clone()
last_stage = model.features[7][0].block[0][0].weight.clone()
loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 48, 48)), torch.tensor([0, 1, 2, 3]))
optimizer.zero_grad()
loss.backward()
optimizer.step()
assert torch.equal(first_conv, model.features[0][0].weight), "a frozen layer changed"
assert not torch.equal(last_stage, model.features[7][0].block[0][0].weight), "features.7 did not train"
print("frozen stem unchanged, features.7 updated")

# %% [markdown]
# ## Graded cell

# %% tags=["graded"]
tl.check("ex04", make_optimizer=make_optimizer, model=model, optimizer=optimizer)
