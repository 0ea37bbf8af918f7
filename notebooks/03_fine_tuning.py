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
# # 03 · Fine-tuning: unfreeze the last blocks, with a smaller learning rate
#
# **You will learn to**
# - unfreeze chosen blocks (`layer4` + `fc` of a ResNet; the last stages of EfficientNet) with a
#   `named_parameters()` loop, then with `tl.unfreeze`;
# - build the optimizer over trainable parameters only, with a *smaller* learning rate, and see
#   what a large one does to pretrained features;
# - give each part its own learning rate (parameter groups) and unfreeze gradually;
# - avoid the BatchNorm pitfall: frozen layers still change their running statistics in `train()`;
# - compare Adam and SGD with momentum on the same budget.
#
# *Fine-tuning* continues training some pretrained layers on the new task. It usually beats
# feature extraction a little — if done gently: the pretrained weights are a good solution
# already, and large updates destroy it.

# %%
# %matplotlib inline
import copy

import torch
import torchvision
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import tlcourse as tl

tl.seed_everything(0)
device = tl.get_device()

# %% [markdown]
# ## 1. Choosing what to train: the syllabus loop, then `tl.unfreeze`

# %%
resnet = torchvision.models.resnet18(weights=None)  # structure demo (real weights: Lite0 below)
resnet.fc = nn.Linear(resnet.fc.in_features, 5)
for name, param in resnet.named_parameters():  # the classic loop: train layer4 and fc only
    param.requires_grad = name.startswith("layer4") or name.startswith("fc")
by_hand = tl.trainable_names(resnet)

tl.freeze(resnet)
tl.unfreeze(resnet, "layer4", "fc")  # the same, by module name
assert tl.trainable_names(resnet) == by_hand
print(len(by_hand), "trainable tensors:", by_hand[:3], "...", by_hand[-2:])

# Optimizer over trainable parameters only, with a small learning rate:
optimizer = torch.optim.Adam(filter(lambda p: p.requires_grad, resnet.parameters()), lr=1e-4)
in_optimizer = sum(p.numel() for group in optimizer.param_groups for p in group["params"])
assert in_optimizer == tl.count_params(resnet)[0]
print(f"optimizer holds {in_optimizer:,} of {tl.count_params(resnet)[1]:,} parameters")

# %% [markdown]
# ## 2. Real fine-tuning, fast
# EfficientNet-Lite0 with real ImageNet weights on the 10 animal silhouettes. We will fine-tune
# `features.7` (the last MBConv stage) and `features.8` (the 1×1 head conv). Everything before
# `features.7` stays frozen, so — as with feature caching — we run it **once** and store its
# output (192 × 3 × 3 per image at 96 px). Training then only runs the small tail.

# %%
splits = tl.load_splits("animals", {"train": 1000, "val": 200, "test": 1000}, image_size=96, seed=0)
loaders = tl.make_loaders(splits, batch_size=64, seed=0)
model = tl.load_pretrained("efficientnet_lite0")
tl.freeze(model)
tl.replace_head(model, num_classes=10)
cached = {name: tl.extract_features(model, loader, layer="features.7") for name, loader in loaders.items()}
print({name: tuple(c.tensors[0].shape) for name, c in cached.items()})

# the rest of the network, sharing its modules (and so its weights) with `model`
tail = nn.Sequential(model.features[7], model.features[8], model.avgpool, nn.Flatten(1), model.classifier)


def loader(name: str) -> DataLoader:
    return DataLoader(cached[name], batch_size=64, shuffle=name == "train", generator=tl.make_generator(0))


# %% [markdown]
# **Stage 1, head only** (feature extraction as in notebook 02; the frozen tail runs once more to
# get the 1280-d head inputs).

# %%
with torch.no_grad():
    body = tail[:-1].eval()
    head_inputs = {n: TensorDataset(body(c.tensors[0]), c.tensors[1]) for n, c in cached.items()}
head = model.classifier
tl.seed_everything(0)
head_history = tl.fit(head, DataLoader(head_inputs["train"], batch_size=64, shuffle=True, generator=tl.make_generator(0)),
                      DataLoader(head_inputs["val"], batch_size=256), epochs=30, lr=1e-3, progress=False)
head_accuracy = tl.evaluate(tail, loader("test"))["accuracy"]
print(f"head only: test accuracy {head_accuracy:.3f}")
after_head = copy.deepcopy(tail.state_dict())  # every experiment below starts from here

# %% [markdown]
# ## 3. Why a smaller learning rate?
# Unfreeze `features.7`, `features.8` and the head. Compare a gentle learning rate (3e-4 for the
# pretrained blocks, 1e-3 for the head) with large ones (1e-2 and 1e-1 for everything), same
# epochs.

# %%
def fine_tune(lrs: dict, epochs: int = 5, optimizer_class=torch.optim.Adam, **options) -> tuple:
    tail.load_state_dict(after_head)
    tl.freeze(model, verbose=False)
    tl.unfreeze(model, *lrs, verbose=False)
    tl.seed_everything(0)
    optimizer = optimizer_class(tl.param_groups(model, lrs), **options)
    history = tl.fit(tail, loader("train"), loader("val"), epochs=epochs, optimizer=optimizer, progress=False)
    return history, tl.evaluate(tail, loader("test"))["accuracy"]


gentle = {"classifier": 1e-3, "features.7": 3e-4, "features.8": 3e-4}
gentle_history, gentle_accuracy = fine_tune(gentle)
large = {lr: fine_tune({"classifier": lr, "features.7": lr, "features.8": lr}) for lr in (1e-2, 1e-1)}
large_history, large_accuracy = large[1e-1]
print(f"head only {head_accuracy:.3f} | fine-tuned with LR 3e-4: {gentle_accuracy:.3f}, "
      f"1e-2: {large[1e-2][1]:.3f}, 1e-1: {large[1e-1][1]:.3f}")
tl.plot_history(gentle_history, large_history, labels=["LR 3e-4 (blocks)", "LR 1e-1"])

# %%
assert gentle_accuracy >= head_accuracy, "fine-tuning should not lose to the head alone"
assert large_accuracy < large[1e-2][1] < gentle_accuracy, "larger learning rates should hurt more"
print(f"the large learning rate costs {100 * (gentle_accuracy - large_accuracy):.1f} accuracy points")

# %% [markdown]
# The first large steps push the pretrained weights far from the solution ImageNet training found;
# the training loss still goes down (the model memorises the 1,000 images) but held-out accuracy
# suffers. The gentle run keeps the features and adapts them slightly.
#
# `tl.param_groups` builds what PyTorch calls *parameter groups*: one learning rate per part of
# the network (*discriminative learning rates*). Raw PyTorch:

# %%
groups = [
    {"params": model.classifier.parameters(), "lr": 1e-3},
    {"params": list(model.features[7].parameters()) + list(model.features[8].parameters()), "lr": 3e-4},
]
raw = torch.optim.Adam(groups)
library = torch.optim.Adam(tl.param_groups(model, {"classifier": 1e-3, "features": 3e-4}))
assert [g["lr"] for g in raw.param_groups] == [g["lr"] for g in library.param_groups]
print([(g.get("name"), g["lr"], sum(p.numel() for p in g["params"])) for g in library.param_groups])

# %% [markdown]
# ## 4. Gradual unfreezing
# Instead of unfreezing everything at once: train the head, then also the last block, then one
# more, each stage a couple of epochs with a small learning rate (the ULMFiT recipe). Later stages
# start from earlier ones. The thawed blocks keep their BatchNorm statistics fixed
# (`tl.freeze_batchnorm`, explained in section 5), so each stage starts exactly where the last
# one ended.

# %%
tail.load_state_dict(after_head)
stages = {"+ features.8": ["classifier", "features.8"], "+ features.7": ["classifier", "features.8", "features.7"]}
stage_accuracy = {"head (stage 1)": head_accuracy}
for stage, parts in stages.items():
    tl.freeze(model, verbose=False)
    tl.unfreeze(model, *parts, verbose=False)
    handles = tl.freeze_batchnorm(model)  # BN layers: eval mode, affine weights frozen
    tl.seed_everything(0)
    optimizer = torch.optim.Adam(tl.param_groups(model, {part: 3e-4 for part in parts}))
    tl.fit(tail, loader("train"), loader("val"), epochs=2, optimizer=optimizer, progress=False)
    for handle in handles:
        handle.remove()
    stage_accuracy[stage] = tl.evaluate(tail, loader("test"))["accuracy"]
    print(f"{stage:<14} trainable {tl.count_params(model)[0]:>9,}  test accuracy {stage_accuracy[stage]:.3f}")

figure = Figure(figsize=(6, 3), layout="constrained")
ax = figure.subplots()
ax.bar(list(stage_accuracy), list(stage_accuracy.values()), color=["grey", "tab:blue", "tab:green"])
ax.set_ylim(0.85, 0.95)
ax.set_ylabel("test accuracy")
ax.set_title("gradual unfreezing")
figure

# %%
assert max(stage_accuracy["+ features.8"], stage_accuracy["+ features.7"]) > head_accuracy

# %% [markdown]
# On this small task the gain over the head alone is modest — most of the work was done by the
# pretrained features — and thawing more can even cost accuracy: with 1,000 images, more
# trainable weights overfit sooner. Watch the validation numbers and stop thawing when they stop
# improving. Gradual unfreezing matters more when you thaw many blocks of a big model.
#
# ## 5. The BatchNorm pitfall
# `requires_grad = False` stops *gradient* updates. But a BatchNorm layer in `train()` mode also
# updates its `running_mean`/`running_var` from every batch it sees — no gradient involved. Put a
# "frozen" backbone in train mode and its ImageNet statistics drift towards the statistics of your
# data; the head, trained on the original features, then sees different inputs.

# %%
tail.load_state_dict(after_head)  # the head-only model: frozen backbone + trained head
frozen = copy.deepcopy(model)
batchnorms = {n: m for n, m in frozen.features[:7].named_modules() if isinstance(m, nn.BatchNorm2d)}
before = {n: m.running_mean.clone() for n, m in batchnorms.items()}
accuracy_before = tl.evaluate(frozen, loaders["val"])["accuracy"]

frozen.train()  # what a training loop does every epoch
with torch.no_grad():  # not even a backward pass or an optimizer step...
    for step, (images, _) in enumerate(loaders["train"]):
        frozen(images)
        if step == 4:
            break
drift = max((m.running_mean - before[n]).abs().max().item() for n, m in batchnorms.items())
accuracy_drifted = tl.evaluate(frozen, loaders["val"])["accuracy"]
print(f"{len(batchnorms)} frozen BatchNorm layers; running_mean moved by up to {drift:.3f}")
print(f"val accuracy {accuracy_before:.3f} -> {accuracy_drifted:.3f}, without a single optimizer step")
assert drift > 0.01 and accuracy_drifted < accuracy_before - 0.02

# %% [markdown]
# The fix: keep BatchNorm layers in eval mode while the rest trains (`tl.freeze_batchnorm`, which
# also freezes their affine weights). In raw PyTorch: call `model.train()`, then `.eval()` on every
# `nn.BatchNorm2d` — after *every* `model.train()` call.

# %%
fixed = copy.deepcopy(model)
tl.freeze_batchnorm(fixed)
fixed.train()
with torch.no_grad():
    for step, (images, _) in enumerate(loaders["train"]):
        fixed(images)
        if step == 4:
            break
unchanged = all(torch.equal(m.running_mean, before[n]) for n, m in fixed.features[:7].named_modules()
                if isinstance(m, nn.BatchNorm2d))
accuracy_fixed = tl.evaluate(fixed, loaders["val"])["accuracy"]
print(f"with freeze_batchnorm: running stats unchanged: {unchanged}; val accuracy {accuracy_fixed:.3f}")
assert unchanged and accuracy_fixed == accuracy_before

# %% [markdown]
# (Fine-tuned blocks are a different case: when a block is trainable, letting its BatchNorm adapt to
# the new data is usually fine — that is what `fine_tune` above did for `features.7`/`features.8`.)
#
# ## 6. Adam or SGD with momentum?
# The syllabus uses both. Same blocks, same 5 epochs; SGD usually wants a larger learning rate
# than Adam.

# %%
sgd_history, sgd_accuracy = fine_tune({"classifier": 1e-2, "features.7": 1e-3, "features.8": 1e-3},
                                      optimizer_class=torch.optim.SGD, momentum=0.9)
print(f"Adam (1e-3 / 3e-4): {gentle_accuracy:.3f} | SGD momentum 0.9 (1e-2 / 1e-3): {sgd_accuracy:.3f}")
assert min(gentle_accuracy, sgd_accuracy) >= 0.85
tl.plot_history(gentle_history, sgd_history, labels=["Adam", "SGD"])

# %% [markdown]
# ## Summary
# - Unfreeze by name (`layer4`, `fc`, `features.7`), give the optimizer trainable parameters only
#   (`filter(lambda p: p.requires_grad, ...)`).
# - Fine-tune pretrained blocks with a smaller learning rate than a new head; large LRs wipe out what
#   pretraining learned. `tl.param_groups` gives each part its own rate.
# - Gradual unfreezing adds depth stage by stage.
# - Frozen BatchNorm layers still drift in `train()` mode: `tl.freeze_batchnorm`.
# - Caching the frozen part's output makes even fine-tuning fast on a CPU.
#
# **Try next:** cache at `features.6` and unfreeze one more stage; SGD with a cosine schedule
# (`scheduler=torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=5)` in `tl.fit`).
# Then open `04_augmentation_and_overfitting`.
