"""Goal 2: a head epoch on cached features is >= 20x faster than one through the frozen backbone.

Both paths compute the same function: the backbone is frozen with BatchNorm kept in eval mode
(`tl.freeze_batchnorm`) and the head's dropout is 0, so the head sees identical features; with
the same initial head, optimizer and batch order, the final accuracies must agree (+- 0.01).
"""

from __future__ import annotations

import copy
from pathlib import Path

import torch
from torch import nn

import tlcourse as tl
from benchmarks.common import (
    SEED,
    Goal,
    Section,
    at_least,
    at_most,
    loader,
    median,
    pretrained_lite0,
    stopwatch,
)

SPEEDUP_GOAL = 20.0
ACCURACY_TOLERANCE = 0.01


def run(quick: bool, out: Path) -> Section:
    sizes = {"train": 128, "test": 128} if quick else {"train": 1000, "test": 500}
    epochs = 2 if quick else 3
    device = tl.get_device()
    splits = tl.load_splits("animals", sizes, image_size=96, seed=SEED)
    model = pretrained_lite0().to(device)
    model.classifier[0].p = 0.0  # dropout off: the cached path has none either
    tl.freeze_batchnorm(model)  # BatchNorm keeps ImageNet statistics in model.train()
    cached_head = copy.deepcopy(model.classifier[1])  # the same initial weights in both paths
    loss_fn = nn.CrossEntropyLoss()

    with stopwatch() as extraction:  # the one-time cost of the cache
        features = {name: tl.extract_features(model, loader(s)) for name, s in splits.items()}
    paths = {  # (model, optimizer, train loader); both loaders shuffle with the same seed
        "cached": (cached_head, loader(features["train"], shuffle=True)),
        "backbone": (model, loader(splits["train"], shuffle=True)),
    }
    optimizers = {
        name: torch.optim.Adam([p for p in net.parameters() if p.requires_grad], lr=1e-3)
        for name, (net, _) in paths.items()
    }
    seconds: dict[str, list[float]] = {name: [] for name in paths}
    for epoch in range(1, epochs + 1):  # interleaved: cached, backbone, cached, backbone, ...
        for name, (net, train_loader) in paths.items():
            with stopwatch() as watch:
                tl.train_one_epoch(
                    net, train_loader, loss_fn, optimizers[name], device, epoch=epoch
                )
            seconds[name].append(watch["seconds"])
    accuracy = {
        "cached": tl.evaluate(cached_head, loader(features["test"]))["accuracy"],
        "backbone": tl.evaluate(model, loader(splits["test"]))["accuracy"],
    }
    weight_gap = (cached_head.weight - model.classifier[1].weight).abs().max().item()

    cached, backbone = median(seconds["cached"]), median(seconds["backbone"])
    speedup = backbone / cached
    gap = abs(accuracy["cached"] - accuracy["backbone"])
    amortised = epochs * backbone / (extraction["seconds"] + epochs * cached)
    section = Section(
        "feature_cache",
        "2. Feature caching: head epoch on cached features vs through the frozen backbone",
        [
            f"EfficientNet-Lite0 (pretrained, frozen, `freeze_batchnorm`, head dropout 0) on "
            f"{sizes['train']} training / {sizes['test']} test animal silhouettes at 96 px, "
            f"batch 64, Adam 1e-3, {epochs} epochs; both paths start from the same head and "
            "shuffle with the same seed, so they see the same batches in the same order.",
            "Epochs alternate between the two paths (cached, backbone, cached, ...); the "
            "speed-up is the ratio of the median epoch times. Extraction (one pass over train "
            "and test) is the cache's one-time cost, shown as context.",
        ],
    )
    section.goals += [
        Goal(
            "cached head epoch speed-up",
            f">= {SPEEDUP_GOAL:.0f}x",
            f"{speedup:.0f}x",
            at_least(speedup, SPEEDUP_GOAL),
            f"backbone epoch {backbone:.2f} s, cached epoch {cached * 1000:.1f} ms",
        ),
        Goal(
            f"same final test accuracy after {epochs} epochs",
            f"+- {ACCURACY_TOLERANCE}",
            f"{gap:.4f}",
            at_most(gap, ACCURACY_TOLERANCE),
            f"cached {accuracy['cached']:.3f}, backbone {accuracy['backbone']:.3f}",
        ),
    ]
    section.tables.append(
        (
            ["path", "median epoch s", "epochs s", "test accuracy"],
            [
                [name, f"{median(values):.4f}", ", ".join(f"{v:.3f}" for v in values),
                 f"{accuracy[name]:.3f}"]
                for name, values in seconds.items()
            ],
        )
    )  # fmt: skip
    section.notes += [
        f"One-time extraction of {sum(sizes.values())} images: {extraction['seconds']:.1f} s. "
        f"Including it, {epochs} cached epochs are {amortised:.1f}x faster than {epochs} "
        "backbone epochs; every further epoch adds to the gap.",
        f"Largest difference between the two trained heads' weights: {weight_gap:.1e} "
        "(0 means bit-identical; anything else is float rounding).",
    ]
    return section
