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
# # 08 · A tour of backbones: ResNet, VGG, DenseNet, MobileNet, EfficientNet
#
# **You will learn to**
# - find the head of each family by hand and with `tl.get_head`, and see exactly what
#   `tl.replace_head` changes;
# - compare the families on what you can measure on your own machine: parameters and forward time
#   per image at the course's image size — and, where real weights exist offline, accuracy as a
#   frozen feature extractor;
# - pick a backbone for a task;
# - reuse the same recipe beyond classification: object detection with Faster R-CNN, and (in a
#   sketch) text classification with a pretrained language model.
#
# **Honest note on weights.** The course runs offline, and torchvision's pretrained weights are a
# download, so ResNet, VGG, DenseNet, MobileNet and torchvision's EfficientNet are built here
# with `weights=None` — *random* weights. That is fine for structure, parameter counts and speed
# (they do not depend on the weights), but **not** for accuracy: accuracy is measured only for the
# EfficientNet-Lite family, whose real ImageNet weights ship with the course.

# %%
# %matplotlib inline
import time

import numpy as np
import pandas as pd
import torch
import torchvision
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.flop_counter import FlopCounterMode
from torchvision.models.detection import fasterrcnn_mobilenet_v3_large_320_fpn
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor
from torchvision.ops import FrozenBatchNorm2d

import tlcourse as tl

tl.seed_everything(0)
device = tl.get_device()
IMAGE_SIZE = 96
print(f"torchvision {torchvision.__version__}, {torch.get_num_threads()} CPU threads, device {device}")

# %% [markdown]
# ## 1. Where is the head? By hand first
# Every family ends in a classifier, but each stores it under a different name.

# %%
families = {
    "ResNet": "resnet18",
    "VGG": "vgg16",
    "DenseNet": "densenet121",
    "MobileNet": "mobilenet_v3_large",
    "EfficientNet": "efficientnet_b0",
}
models = {name: torchvision.models.get_model(name, weights=None).eval() for name in families.values()}
by_hand = {
    "resnet18": models["resnet18"].fc,  # one Linear after global average pooling
    "vgg16": models["vgg16"].classifier[6],  # the last of three Linear layers
    "densenet121": models["densenet121"].classifier,  # one Linear
    "mobilenet_v3_large": models["mobilenet_v3_large"].classifier[3],  # Linear, Hardswish, Dropout, Linear
    "efficientnet_b0": models["efficientnet_b0"].classifier[1],  # Dropout, Linear
}
for name, layer in by_hand.items():
    print(f"{name:<20} {layer}")

# %% [markdown]
# `tl.get_head` finds the same layer for any torchvision classifier (it looks under `fc`,
# `classifier`, `heads`, `head` for the last `Linear`/`Conv2d`):

# %%
in_features = {}
for name, model in models.items():
    path, head = tl.get_head(model)
    in_features[name] = head.in_features  # length of the feature vector the head reads
    print(f"{name:<20} model.{path:<14} in {head.in_features:>5} -> out {head.out_features}")
    assert head is by_hand[name]
assert min(in_features.values()) == in_features["resnet18"] == 512  # the shortest feature vector
assert max(in_features.values()) == in_features["vgg16"] == 4096  # VGG's head reads 4096 numbers

# %% [markdown]
# ## 2. What `replace_head` changes
# Only that one layer: a fresh `Linear(in_features, num_classes)` in its place. Everything before
# it — including VGG's two big hidden layers — stays as it was. The parameter count drops by
# `(in_features + 1) × (1000 − num_classes)`: weights and biases (asserted below).

# %%
rows = []
for family, name in families.items():
    model = models[name]
    path, old = tl.get_head(model)
    before = tl.count_params(model)[1]
    new = tl.replace_head(model, num_classes=10, verbose=False)
    after = tl.count_params(model)[1]
    assert after == before - old.in_features * (1000 - 10) - (1000 - 10)  # weights and biases
    assert tl.get_head(model)[1] is new and new.out_features == 10
    rows.append({"family": family, "model": name, "head": f"model.{path}",
                 "replace_head(…, 10)": f"Linear({old.in_features}→1000) → Linear({old.in_features}→10)",
                 "params (M)": after / 1e6, "head params": new.weight.numel() + new.bias.numel()})
pd.DataFrame(rows).round(2)

# %% [markdown]
# ## 3. Speed on your machine
# Forward time per image at 96 px, 4 images per batch, in `torch.inference_mode()`, the better of
# 2 runs after a warm-up. These are *your* numbers: they depend on the CPU, the thread count and
# what else runs. Next to them, a number that does not depend on the machine: the multiply-adds
# one image needs (counted by `torch.utils.flop_counter`; 1 multiply-add = 2 FLOPs). The
# real-weight EfficientNet-Lite models join the table here.

# %%
def ms_per_image(model: nn.Module, image_size: int = IMAGE_SIZE, batch: int = 4, repeats: int = 2) -> float:
    inputs = torch.randn(batch, 3, image_size, image_size, device=device)
    model.eval().to(device)
    with torch.inference_mode():
        model(inputs)  # warm-up: memory allocation, kernel selection
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            model(inputs)
            times.append(time.perf_counter() - started)
    return 1000 * min(times) / batch


def gmacs_per_image(model: nn.Module, image_size: int = IMAGE_SIZE) -> float:
    # no_grad, not inference_mode: PyTorch 2.4's counter sees no operation in inference mode
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(torch.randn(1, 3, image_size, image_size, device=device))
    return counter.get_total_flops() / 2e9  # FLOPs -> billions of multiply-adds


lite = {f"efficientnet_lite{v}": tl.load_pretrained(f"efficientnet_lite{v}") for v in (0, 1, 2)}
for name, model in lite.items():
    tl.replace_head(model, num_classes=10, verbose=False)
    rows.append({"family": "EfficientNet-Lite", "model": name, "head": "model.classifier.1",
                 "replace_head(…, 10)": "Linear(1280→1000) → Linear(1280→10)",
                 "params (M)": tl.count_params(model)[1] / 1e6, "head params": 1280 * 10 + 10})
models |= lite
table = pd.DataFrame(rows).set_index("model")
table["GMACs / image"] = [gmacs_per_image(models[name]) for name in table.index]
table["ms / image"] = [ms_per_image(models[name]) for name in table.index]
table["weights here"] = ["real ImageNet" if name in lite else "random (offline)" for name in table.index]
table[["family", "params (M)", "GMACs / image", "ms / image", "weights here"]].round(3)

# %%
# Parameters and multiply-adds are properties of the architecture: the same on every machine.
assert table.loc["vgg16", "params (M)"] > 20 * table.loc["mobilenet_v3_large", "params (M)"]
assert table.loc["efficientnet_lite0", "params (M)"] < table.loc["efficientnet_lite2", "params (M)"]
assert table.loc["densenet121", "params (M)"] < table.loc["resnet18", "params (M)"]
# Milliseconds are shown, not asserted: on a busy 2-core CPU this table once read VGG16 403 ms,
# MobileNetV3 1234 ms, DenseNet121 2941 ms — the order of the multiply-adds below turned upside
# down. "VGG16 is slow" is asserted through its multiply-adds.
assert table.loc["densenet121", "GMACs / image"] > 1.3 * table.loc["resnet18", "GMACs / image"]
assert table.loc["vgg16", "GMACs / image"] > 20 * table.loc["mobilenet_v3_large", "GMACs / image"]

# %% [markdown]
# Parameters and speed are related, but not the same thing. VGG16 is big *and* slow. DenseNet121
# has fewer parameters than ResNet-18 but needs more multiply-adds per image: its many layers reuse
# (concatenate) earlier feature maps, which costs computation, not weights (all three asserted
# above). MobileNet and EfficientNet are built for phones: depthwise convolutions keep both
# numbers small. Milliseconds on a busy or different machine can reorder entries — even far-apart
# ones, when other programs compete for the cores; multiply-adds cannot.

# %%
figure = Figure(figsize=(10, 4), layout="constrained")
params_ax, speed_ax = figure.subplots(1, 2, sharey=True)
names = list(table.index)
colors = ["tab:green" if name in lite else "tab:grey" for name in names]
params_ax.barh(names, table["params (M)"], color=colors)
params_ax.set(xlabel="parameters (millions)", title="size")
params_ax.invert_yaxis()
speed_ax.barh(names, table["ms / image"], color=colors)
speed_ax.set(xlabel=f"ms per image at {IMAGE_SIZE} px (your machine)", title="forward time")
figure.suptitle("green: real pretrained weights offline; grey: structure only (random weights)")
figure

# %% [markdown]
# ## 4. Accuracy as a frozen feature extractor — real weights only
# For the three Lite models, the recipe of notebook 02: freeze, cache features of 300 training and
# 300 test images (10 animal classes, 96 px), train a linear head. One training run is one draw
# (another seed, or another CPU's rounding, moves it: the table shows the lowest and highest of
# the seeds), so each head is trained with 5 seeds on the same cached features and we compare the
# means.
#
# The other families would need their real weights for this to mean anything. With random weights
# it would measure the random initialisation, not the architecture, so we do not run it.

# %%
splits = tl.load_splits("animals", {"train": 300, "test": 300}, image_size=IMAGE_SIZE, seed=0)
loaders = tl.make_loaders(splits, batch_size=100, seed=0)
SEEDS = range(5)


def frozen_accuracies(model: nn.Module) -> list[float]:
    """Test accuracy of a linear head on the frozen model's cached features, one per seed."""
    tl.freeze(model, verbose=False)
    tl.unfreeze(model, "classifier", verbose=False)  # only the new head trains
    features = {name: tl.extract_features(model, loader) for name, loader in loaders.items()}  # once
    head = tl.get_head(model)[1]
    accuracies = []
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a 1280 -> 10 head is too small to share out (see notebook 09)
    for seed in SEEDS:
        tl.seed_everything(seed)
        head.reset_parameters()
        tl.fit(head, DataLoader(features["train"], batch_size=32, shuffle=True, generator=tl.make_generator(seed)),
               None, epochs=30, lr=1e-3, device=device, progress=False)
        accuracies.append(tl.evaluate(head, DataLoader(features["test"], batch_size=300))["accuracy"])
    torch.set_num_threads(threads)
    return accuracies


runs = {name: frozen_accuracies(model) for name, model in lite.items()}
frozen = table.loc[list(lite), ["params (M)", "ms / image"]].copy()
frozen["frozen accuracy (mean of 5)"] = [np.mean(runs[name]) for name in frozen.index]
frozen["lowest"] = [min(runs[name]) for name in frozen.index]
frozen["highest"] = [max(runs[name]) for name in frozen.index]
frozen.round(3)

# %%
mean_accuracy = frozen["frozen accuracy (mean of 5)"]
# Single runs over 15 seeds: Lite0 0.883-0.893, Lite1 0.877-0.900, Lite2 0.843-0.877 (spread 0.034).
# Means of 5 (3 groups of 5 seeds): Lite0 0.887-0.890, Lite1 0.887-0.896, Lite2 0.859-0.861.
assert (mean_accuracy > 0.75).all()  # margin 0.109, 3x the single-run spread
# At 96 px the biggest Lite model buys no real gain over Lite0 (see "How to pick a backbone").
# Lite2 - Lite0 as means of 5: -0.031 to -0.026 (spread 0.005); margin 0.056, 11x the spread.
assert mean_accuracy["efficientnet_lite2"] < mean_accuracy["efficientnet_lite0"] + 0.03

# %% [markdown]
# ## 5. How to pick a backbone
# - **Start small and pretrained.** Prefer a model whose real weights you have (in this course:
#   Lite0) to a "better" architecture you can only initialise randomly: lesson 06 measured how
#   far random weights fall behind, for Lite0 itself. With a frozen backbone and cached
#   features, even a large model is cheap to *train* — but it is still slow to *run*.
# - **Deployment decides speed.** Phone or CPU: MobileNet / EfficientNet(-Lite). A server GPU:
#   ResNet-50 or EfficientNet-B0…B4 are common defaults. VGG is mainly of historical interest:
#   big fully connected layers and many times MobileNetV3's parameters and multiply-adds (over
#   20 times both, asserted in section 3).
# - **Match the input size.** Bigger variants were trained on bigger images than Lite0. At our
#   small 96 px, Lite2's mean is at most 0.03 above Lite0's (asserted in section 4): measure on
#   your data before paying for the larger model.
# - **The head is the easy part.** Every family ends in a `Linear` layer on a feature vector
#   (from 512 numbers for ResNet-18 up to 4096 for VGG16, asserted in section 1);
#   `tl.replace_head` swaps it, whatever it is called.
#
# ## 6. Beyond classification: object detection
# The same recipe — pretrained backbone, new head for your classes, fine-tune — works for
# detection. torchvision's Faster R-CNN has a backbone (here MobileNetV3 + a feature pyramid), a
# region proposal network, and a **box predictor** that scores each proposed box for each class
# and refines its coordinates. To detect your own 2 classes, replace the box predictor
# (3 outputs: background + 2 classes). Offline we build it with `weights=None` and
# `weights_backbone=None`: structure and a forward pass, no pretrained detection. What a
# pretrained backbone buys a detector (and a segmenter) is measured in **lesson 12**: the real
# ImageNet Lite0 under torchvision's FCOS, against a random backbone at equal seconds.

# %%
detector = fasterrcnn_mobilenet_v3_large_320_fpn(weights=None, weights_backbone=None)
print([name for name, _ in detector.named_children()])
print(detector.roi_heads.box_predictor)  # COCO: 91 classes, 4 box coordinates per class
in_features = detector.roi_heads.box_predictor.cls_score.in_features
detector.roi_heads.box_predictor = FastRCNNPredictor(in_features, num_classes=3)  # background + 2
print(detector.roi_heads.box_predictor)
try:
    tl.get_head(detector)
except ValueError as error:
    print("tl.get_head is for classifiers:", str(error)[:90], "...")

# %% [markdown]
# In training mode the detector takes images *and* targets (boxes + labels) and returns its losses;
# in eval mode it returns boxes, labels and scores. Freezing the backbone is the same one call.
# BatchNorm follows the course's policy when weights are pretrained: torchvision then builds this
# backbone with `FrozenBatchNorm2d` (ImageNet statistics and affine weights fixed, like
# `tl.freeze_batchnorm`). Built without weights, as here, it has plain `BatchNorm2d`.

# %%
tl.freeze(detector.backbone, verbose=False)
batchnorms = {type(m).__name__ for m in detector.backbone.modules() if isinstance(m, (nn.BatchNorm2d, FrozenBatchNorm2d))}
print("BatchNorm layers in the backbone:", batchnorms)  # weights=None: plain BatchNorm2d
image = torch.rand(3, 240, 320)
target = {"boxes": torch.tensor([[20.0, 30.0, 120.0, 200.0]]), "labels": torch.tensor([1])}
detector.train()
losses = detector([image], [target])
print({name: round(loss.item(), 3) for name, loss in losses.items()})
detector.eval()
with torch.inference_mode():
    detections = detector([image])[0]
print({name: tuple(value.shape) for name, value in detections.items()})
assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
assert detector.roi_heads.box_predictor.cls_score.out_features == 3
assert detections["boxes"].shape[1] == 4 and ((detections["labels"] >= 1) & (detections["labels"] <= 2)).all()

# %% [markdown]
# (With random weights the boxes are meaningless; with `weights="DEFAULT"` online you would
# fine-tune from COCO-pretrained detection weights, exactly as for classification.)
#
# ## 7. Beyond images: fine-tuning a pretrained text model (a sketch)
# Transfer learning is not only for images: text models are fine-tuned the same way. The recipe
# carries over word for word — a
# pretrained body, a new head for your labels, a small learning rate. A sketch with the Hugging
# Face `transformers` library (not installed in this course and not run here; it needs to download
# the model once):
#
# ```python
# from transformers import AutoModelForSequenceClassification, AutoTokenizer
#
# name = "distilbert-base-uncased"
# tokenizer = AutoTokenizer.from_pretrained(name)
# model = AutoModelForSequenceClassification.from_pretrained(name, num_labels=2)  # new head
# tl.freeze(model.distilbert)                   # feature extraction: train the head only ...
# optimizer = torch.optim.AdamW(model.parameters(), lr=2e-5)  # ... or fine-tune all, gently
# batch = tokenizer(["a wonderful film", "a waste of time"], padding=True, return_tensors="pt")
# loss = model(**batch, labels=torch.tensor([1, 0])).loss
# loss.backward(); optimizer.step()
# ```
#
# Images or text: pretrained representation + new head + careful learning rates.
#
# ## Summary
# - Heads: ResNet `fc`, VGG `classifier[6]`, DenseNet `classifier`, MobileNetV3 `classifier[3]`,
#   EfficientNet `classifier[1]`; `tl.get_head` finds them, `tl.replace_head` swaps only that layer.
# - Parameters ≠ speed: measure forward time on your hardware at your image size.
# - Accuracy claims need real weights: here only the EfficientNet-Lite family has them offline.
# - Detection: replace Faster R-CNN's `roi_heads.box_predictor` with `FastRCNNPredictor(in, classes + 1)`.
#
# **Try next:** online, `tl.load_pretrained("resnet50")` gets real weights — add its frozen
# accuracy to the table. Time the models at 224 px; try `torch.set_num_threads(1)`. Compare
# Lite0 and Lite2 at 160 px. Next: `09_scaling_up`.
