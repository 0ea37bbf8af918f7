"""Goal 4: at an equal wall-clock budget, transfer beats training from scratch by >= 50 points.

Same architecture (EfficientNet-Lite0, 96 px): pretrained + frozen + a head trained on cached
features, vs random init trained end to end for exactly as many seconds. Plus a data-size sweep.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import nn

import tlcourse as tl
from benchmarks.common import (
    Goal,
    Section,
    at_least,
    loader,
    plain_log_axis,
    pretrained_lite0,
    save_figure,
)

POINTS_GOAL = 0.50
HEAD_EPOCHS = 30  # as in the demo


def transfer(train, test_features, seed: int, device) -> tuple[float, float]:
    """(seconds, test accuracy): load pretrained, extract features once, train the head."""
    started = time.perf_counter()
    tl.seed_everything(seed)
    model = pretrained_lite0(seed=seed).to(device)
    features = tl.extract_features(model, loader(train))
    head = model.classifier[1]
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    train_loader, loss_fn = loader(features, shuffle=True, seed=seed), nn.CrossEntropyLoss()
    for epoch in range(1, HEAD_EPOCHS + 1):
        tl.train_one_epoch(head, train_loader, loss_fn, optimizer, device, epoch=epoch)
    seconds = time.perf_counter() - started
    return seconds, tl.evaluate(head, loader(test_features))["accuracy"]


def scratch(train, test, seed: int, budget: float, device) -> tuple[float, int]:
    """(test accuracy, images seen): random-init Lite0 trained end to end for `budget` seconds."""
    started = time.perf_counter()
    tl.seed_everything(seed)
    model = tl.load_pretrained("efficientnet_lite0", weights=None)
    tl.replace_head(model, num_classes=len(train.classes), verbose=False)
    model.to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn, seen = nn.CrossEntropyLoss(), 0
    train_loader = loader(train, shuffle=True, seed=seed)
    while time.perf_counter() - started < budget:
        for inputs, labels in train_loader:
            loss = loss_fn(model(inputs.to(device)), labels.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            seen += len(labels)
            if time.perf_counter() - started >= budget:
                break
    return tl.evaluate(model, loader(test))["accuracy"], seen


def run(quick: bool, out: Path) -> Section:
    train_size, test_size = (50, 100) if quick else (1000, 500)
    sweep_sizes = [20, 50] if quick else [50, 200, 1000]
    seeds = [0, 1, 2]
    device = tl.get_device()

    def splits(n: int) -> dict:  # test drawn first: the same test images for every n
        return tl.load_splits("animals", {"test": test_size, "train": n}, image_size=96)

    main = splits(train_size)
    test_features = tl.extract_features(pretrained_lite0().to(device), loader(main["test"]))
    rows, gains, sweep = [], [], {}
    for seed in seeds:  # interleaved: transfer then scratch with its time, per seed
        seconds, transfer_accuracy = transfer(main["train"], test_features, seed, device)
        scratch_accuracy, seen = scratch(main["train"], main["test"], seed, seconds, device)
        gains.append(transfer_accuracy - scratch_accuracy)
        rows.append([str(seed), f"{seconds:.1f}", f"{transfer_accuracy:.3f}",
                     f"{scratch_accuracy:.3f}", str(seen), f"{100 * gains[-1]:+.1f}"])  # fmt: skip
        if seed == seeds[0]:
            sweep[train_size] = (transfer_accuracy, scratch_accuracy, seconds)
    for n in sweep_sizes:
        if n not in sweep:
            data = splits(n)
            seconds, transfer_accuracy = transfer(data["train"], test_features, 0, device)
            scratch_accuracy, _ = scratch(data["train"], data["test"], 0, seconds, device)
            sweep[n] = (transfer_accuracy, scratch_accuracy, seconds)
    sweep = {n: sweep[n] for n in sorted(sweep)}

    gain, worst = statistics.mean(gains), min(gains)
    section = Section(
        "transfer_vs_scratch",
        "4. Transfer vs scratch at an equal wall-clock budget",
        [
            f"EfficientNet-Lite0 at 96 px, {train_size} training / {test_size} test animal "
            f"silhouettes, seeds {seeds}. Transfer: load the pretrained weights, extract "
            f"features once, train the linear head {HEAD_EPOCHS} epochs (Adam 1e-3, batch 64); "
            "its wall time is the budget. Scratch: the same architecture from random init, "
            "trained end to end (Adam 1e-3, batch 64) until the same number of seconds has "
            "passed. Test evaluation is outside both budgets.",
            f"Data-size sweep: the same with {sweep_sizes} training images (seed 0), same test.",
        ],
    )
    section.goals.append(
        Goal(
            "transfer - scratch accuracy, mean of 3 seeds",
            f">= +{100 * POINTS_GOAL:.0f} points",
            f"{100 * gain:+.1f} points",
            at_least(gain, POINTS_GOAL),
            f"worst seed {100 * worst:+.1f} points; budget {rows[0][1]} s (seed 0)",
        )
    )
    section.tables.append(
        (["seed", "budget s", "transfer acc", "scratch acc", "scratch images seen", "points"],
         rows)
    )  # fmt: skip
    section.tables.append(
        (
            ["training images", "budget s", "transfer acc", "scratch acc"],
            [[str(n), f"{s:.1f}", f"{t:.3f}", f"{r:.3f}"] for n, (t, r, s) in sweep.items()],
        )
    )
    section.plots.append(_plot(sweep, out))
    return section


def _plot(sweep: dict[int, tuple[float, float, float]], out: Path) -> str:
    figure = Figure(figsize=(6, 3.5))
    axes = figure.subplots()
    sizes = list(sweep)
    axes.plot(sizes, [sweep[n][0] for n in sizes], marker="o", label="transfer (pretrained)")
    axes.plot(sizes, [sweep[n][1] for n in sizes], marker="s", label="scratch, same seconds")
    axes.axhline(0.1, color="grey", linestyle=":", label="chance (10 classes)")
    axes.set_xscale("log")
    plain_log_axis(axes.xaxis)
    axes.set_xticks(sizes, [str(n) for n in sizes])
    axes.set_ylim(0, 1)
    axes.set_xlabel("training images")
    axes.set_ylabel("test accuracy")
    axes.set_title("transfer vs scratch at equal wall-clock time")
    axes.legend(fontsize=8)
    return save_figure(figure, out, "bench_transfer_vs_scratch.png")
