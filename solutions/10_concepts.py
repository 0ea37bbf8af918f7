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
# # Exercise 10 · Concepts: transfer learning, feature extraction vs fine-tuning, learning rates
#
# Answer in the `answers` dict below: a letter for q1–q6, `"yes"` or `"no"` for q7, a number for
# q8. The grader compares salted hashes of your answers, so the answers are not written anywhere
# in this notebook or in the grader. Each wrong answer gets a hint.
#
# **q1. What is transfer learning?**
# - a) moving a trained model from the CPU to a GPU
# - b) training one model on several datasets at the same time
# - c) starting a new task from a model trained on another task (e.g. ImageNet) instead of from random weights
# - d) copying the labels of one dataset to another
#
# **q2. Why does an ImageNet model help on a small dataset of animal silhouettes?**
# - a) its early layers detect general patterns (edges, corners, textures, shapes) useful for most images
# - b) ImageNet contains these exact silhouettes
# - c) pretrained models cannot overfit
# - d) its head already knows the new classes
#
# **q3. Feature extraction means:**
# - a) every layer trains with a small learning rate
# - b) the head is frozen and the backbone trains
# - c) the model is trained from scratch on cropped images
# - d) the pretrained layers are frozen and only a new head trains
#
# **q4. Fine-tuning means:**
# - a) only the new head trains
# - b) some or all pretrained layers train too, usually after the head, with a smaller learning rate
# - c) the learning rate is chosen by a grid search
# - d) a big model is compressed into a small one
#
# **q5. Why use a smaller learning rate for pretrained layers when fine-tuning?**
# - a) each epoch runs faster
# - b) large updates would overwrite the useful pretrained features before the new head has settled
# - c) PyTorch refuses large learning rates for pretrained weights
# - d) it needs less memory
#
# **q6. You have 200 labelled images of a task close to ImageNet. The best first step?**
# - a) feature extraction: frozen pretrained backbone + new head
# - b) train the same architecture from scratch
# - c) fine-tune every layer with learning rate 0.1
# - d) wait until you have 100,000 images
#
# **q7.** On a frozen ResNet you run `model.fc.requires_grad = True`. Will `model.fc.weight`
# be updated by the optimizer? (`"yes"` or `"no"`)
#
# **q8.** How many trainable parameter values does a new head `nn.Linear(512, 5)` have?

# %%
import tlcourse as tl

# answers = {"q1": "?", "q2": "?", "q3": "?", "q4": "?", "q5": "?", "q6": "?", "q7": "?", "q8": 0}
### BEGIN SOLUTION: fill in the answers dict: a letter for q1-q6, "yes" or "no" for q7, a number for q8
answers = {"q1": "c", "q2": "a", "q3": "d", "q4": "b", "q5": "b", "q6": "a", "q7": "no", "q8": 2565}
### END SOLUTION

# %% [markdown]
# ## Graded cell

# %% tags=["graded"]
tl.check("ex10", answers=answers)
