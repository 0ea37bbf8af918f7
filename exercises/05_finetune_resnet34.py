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
# # Exercise 5 · Fine-tune the last two convolutional blocks of ResNet34
#
# **You practise:** the standard fine-tuning recipe: unfreeze exactly `layer3`, `layer4` and the
# new `fc`, give the pretrained blocks a *lower* learning rate than the new head, and apply the
# course's BatchNorm policy: every pretrained BatchNorm layer, in frozen *and* unfrozen blocks,
# keeps its ImageNet statistics (eval mode) and its affine weights frozen.
#
# **Which weights are real:** offline, ResNet34 loads with *random* weights (a loud warning says
# so). This exercise is about the structure, which is the same with real weights; the grader
# checks it by inspection and by running one training step itself.

# %%
import torch

import tlcourse as tl

tl.seed_everything(0)
model = tl.load_pretrained("resnet34")  # offline: RANDOM weights, see the warning
print([name for name, _ in model.named_children()])

# %% [markdown]
# ## 1. New head for 10 classes; only `layer3`, `layer4` and `fc` trainable; BatchNorm fixed
#
# Why BatchNorm: `requires_grad = False` stops the *weights* of a BatchNorm layer from
# training, but in `model.train()` it still overwrites its running mean/variance with
# statistics of your batches. Small batches of new data give noisy statistics, so the course
# keeps every pretrained BatchNorm layer in eval mode with frozen affine weights, in the blocks
# you unfreeze too (the Keras guide's advice; lesson 03 measures it).
#
# <details><summary>Hint 1 (the idea)</summary>
#
# Order matters. New head first; then freeze everything (the new head too: the next step
# unfreezes it again, by name); then unfreeze exactly the two blocks and the new head; last, fix every BatchNorm layer (eval mode, affine weights frozen), in the
# blocks you unfroze too, so the ImageNet statistics are kept.
# </details>
#
# *Stuck?* Run the graded cell: after a failed attempt its report shows Hint 2 (the API),
# after another Hint 3 (the code).

# %%
raise NotImplementedError("Exercise 5: replace fc for 10 classes, freeze everything, unfreeze layer3, layer4 and fc, keep BatchNorm in eval mode")
trainable, total = tl.count_params(model)
print(f"trainable {trainable:,} of {total:,}")

# %% [markdown]
# ## 2. The optimizer: `fc` at 1e-3, `layer3` and `layer4` at 1e-4
#
# <details><summary>Hint 1 (the idea)</summary>
#
# One parameter group per learning rate: the new head learns fast, the pretrained blocks you
# unfroze move gently. Frozen parameters do not belong in the optimizer.
# </details>
#
# *Stuck?* Run the graded cell: after a failed attempt its report shows Hint 2 (the API),
# after another Hint 3 (the code).

# %%
raise NotImplementedError("Exercise 5: an optimizer over the trainable parameters: fc at 1e-3, layer3 and layer4 at 1e-4")
print([(group.get("name"), group["lr"]) for group in optimizer.param_groups])

# %% [markdown]
# ## 3. One step on a small batch: what moved?

# %%
before = {name: tensor.clone() for name, tensor in model.state_dict().items()}
model.train()
loss = torch.nn.functional.cross_entropy(model(torch.randn(4, 3, 64, 64)), torch.arange(4))
optimizer.zero_grad()
loss.backward()
optimizer.step()
moved = sorted({n.split(".")[0] for n, t in model.state_dict().items() if not torch.equal(t, before[n])})
print("changed:", moved)
assert moved == ["fc", "layer3", "layer4"], moved

# %% [markdown]
# ## Graded cell

# %% tags=["graded"]
tl.check("ex05", model=model, optimizer=optimizer)
