"""Goal 1: `tl.fit` costs at most 5 % more than a bare hand-written PyTorch loop.

Two workloads, both on cached activations as in `tlcourse/demo.py`: fine-tuning the tail of
EfficientNet-Lite0 (`features.7` onwards, the realistic course case) and a linear head on cached
1280-d features (the worst case: tiny batches of work, so per-batch overhead dominates).
"""

from __future__ import annotations

import copy
import cProfile
import pstats
from pathlib import Path

import torch
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import TensorDataset

import tlcourse as tl
from benchmarks.common import (
    SEED,
    Goal,
    Section,
    at_most,
    interleaved,
    loader,
    median,
    paired_ratio,
    pretrained_lite0,
    quiet,
    save_figure,
    stopwatch,
)

GOAL = 1.05
CUT = 7  # as in the demo: features[:7] frozen and cached, features[7:] fine-tuned


def bare_loop(model, train_loader, val_loader, optimizer, epochs: int, device) -> list[float]:
    """What a learner writes by hand: train, then validate, each epoch; returns val accuracies."""
    loss_fn = nn.CrossEntropyLoss()
    accuracies = []
    for _ in range(epochs):
        model.train()
        total_loss, correct, seen = 0.0, 0, 0
        for inputs, labels in train_loader:
            inputs, labels = inputs.to(device), labels.to(device)
            logits = model(inputs)
            loss = loss_fn(logits, labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * len(labels)
            correct += (logits.argmax(1) == labels).sum().item()
            seen += len(labels)
        model.eval()
        val_loss, val_correct, val_seen = 0.0, 0, 0
        with torch.inference_mode():
            for inputs, labels in val_loader:
                inputs, labels = inputs.to(device), labels.to(device)
                logits = model(inputs)
                val_loss += loss_fn(logits, labels).item() * len(labels)
                val_correct += (logits.argmax(1) == labels).sum().item()
                val_seen += len(labels)
        accuracies.append(val_correct / val_seen)
    return accuracies


def _workloads(quick: bool):
    """{name: (make_model_and_optimizer, {"train", "val"} cached datasets, epochs)}."""
    sizes = {"train": 128, "val": 64} if quick else {"train": 1000, "val": 200}
    splits = tl.load_splits("animals", sizes, image_size=96, seed=SEED)
    model = pretrained_lite0()
    activations = {
        name: tl.extract_features(model, loader(split), layer=f"features.{CUT}")
        for name, split in splits.items()
    }  # (N, 192, 3, 3) at 96 px
    body = nn.Sequential(*model.features[CUT:], model.avgpool, nn.Flatten(1)).eval()
    with torch.no_grad():
        features = {
            name: TensorDataset(body(a.tensors[0]), a.tensors[1]) for name, a in activations.items()
        }  # (N, 1280)

    def tail():
        full = copy.deepcopy(model)
        tl.unfreeze(full, f"features.{CUT}", f"features.{CUT + 1}", "classifier", verbose=False)
        groups = tl.param_groups(full, {"classifier": 1e-3, "features": 1e-4})
        net = nn.Sequential(*full.features[CUT:], full.avgpool, nn.Flatten(1), full.classifier)
        return net, torch.optim.Adam(groups)

    def head():
        net = copy.deepcopy(model.classifier[1])  # Linear(1280, 10), trainable
        net.requires_grad_(True)
        return net, torch.optim.Adam(net.parameters(), lr=1e-3)

    return {
        "tail (features.7 -> head)": (tail, activations, 1 if quick else 3),
        "linear head (1280-d)": (head, features, 3 if quick else 30),
    }


def _variants(make, data, epochs: int, device):
    def run(kind: str) -> float:
        torch.manual_seed(SEED)
        net, optimizer = make()
        net.to(device)  # fit would move it; the bare loop expects it there
        train, val = loader(data["train"], shuffle=True), loader(data["val"])
        with quiet(), stopwatch() as watch:
            if kind == "bare":
                bare_loop(net, train, val, optimizer, epochs, device)
            else:
                tl.fit(
                    net,
                    train,
                    val,
                    epochs=epochs,
                    optimizer=optimizer,
                    device=device,
                    progress=kind == "fit, progress=True",
                )
        return watch["seconds"]

    kinds = ["bare", "fit, progress=False", "fit, progress=True"]
    return {kind: (lambda kind=kind: run(kind)) for kind in kinds}


def _profile_difference(make, data, epochs: int, device) -> list[str]:
    """What tl.fit runs that the bare loop does not: cProfile of both, per-function differences.

    Call counts are exact; seconds are cProfile's (inflated by profiling, noisy when shared).
    """
    stats = {}
    for kind in ("bare", "fit", "bare", "fit"):  # the first two warm up, the last two count
        net, optimizer = make()
        net.to(device)
        train, val = loader(data["train"], shuffle=True), loader(data["val"])
        profiler = cProfile.Profile()
        with quiet():
            if kind == "bare":
                profiler.runcall(bare_loop, net, train, val, optimizer, epochs, device)
            else:
                profiler.runcall(
                    tl.fit, net, train, val, epochs=epochs, optimizer=optimizer, device=device,
                    progress=False,
                )  # fmt: skip
        stats[kind] = pstats.Stats(profiler)
    bare, fit = stats["bare"].stats, stats["fit"].stats
    rows = []
    for key, (_, calls, own, _, _) in fit.items():
        bare_calls, _, bare_own, _, _ = bare.get(key, (0, 0, 0.0, 0.0, None))[:5]
        if calls > bare_calls:
            filename, _, function = key
            rows.append((own - bare_own, calls - bare_calls, f"{Path(filename).name}:{function}"))
    rows.sort(reverse=True)

    def own(table, names: tuple[str, ...]) -> float:  # Python time in the loop bodies themselves
        return sum(row[2] for (_, _, function), row in table.items() if function in names)

    lines = [
        f"profiled totals: bare {stats['bare'].total_tt:.3f} s, fit {stats['fit'].total_tt:.3f} s",
        f"loop bodies' own time: bare_loop {own(bare, ('bare_loop',)):.4f} s, tl.fit + "
        f"train_one_epoch + evaluate {own(fit, ('fit', 'train_one_epoch', 'evaluate')):.4f} s",
        "functions tl.fit calls more often than the bare loop (extra own time, extra calls):",
    ]
    return lines + [
        f"  {where}: {extra:+.4f} s, +{calls} calls" for extra, calls, where in rows[:10]
    ]


def run(quick: bool, out: Path) -> Section:
    device = tl.get_device()
    section = Section(
        "loop_overhead",
        "1. Loop overhead: tl.fit vs a bare loop",
        [
            "Same model, cached data, optimizer (fresh copy each run), epochs and batch order; "
            "validation every epoch in both. The bare loop is the hand-written loop a tutorial "
            "shows (forward, loss, backward, step, loss/accuracy sums; validation loss and "
            "accuracy under inference_mode). `tl.fit` adds its checks (finite loss, label "
            "range), best-weights copy, history and, with progress=True, a tqdm bar and one "
            "line per epoch, at most one every `LINE_SECONDS` = 0.5 s plus the last (written "
            "to an in-memory buffer: terminal speed is not measured).",
            "Variants run interleaved with a rotating order; a ratio is the median over rounds "
            "of fit / bare within each round (paired: a slow spell of the machine hits both).",
        ],
    )
    rounds = {
        "tail (features.7 -> head)": 2 if quick else 9,
        "linear head (1280-d)": 3 if quick else 25,
    }
    rows, medians = [], {}
    for name, (make, data, epochs) in _workloads(quick).items():
        times = interleaved(_variants(make, data, epochs, device), rounds[name])
        bare = median(times["bare"])
        medians[name] = {kind: median(values) for kind, values in times.items()}
        for kind in ("fit, progress=False", "fit, progress=True"):
            ratio = paired_ratio(times[kind], times["bare"])
            section.goals.append(
                Goal(
                    f"{kind} / bare loop, {name}",
                    f"<= {GOAL:.2f}x",
                    f"{ratio:.3f}x",
                    at_most(ratio, GOAL),
                    f"bare {bare:.3f} s, fit {medians[name][kind]:.3f} s "
                    f"(medians; ratio = median of {rounds[name]} per-round ratios, "
                    f"epochs={epochs})",
                )
            )
        rows.append(
            [name, str(epochs), str(len(data["train"]))]
            + [f"{medians[name][k]:.3f}" for k in times]
            + [f"{min(times['bare']):.3f} - {max(times['bare']):.3f}"]
        )
        spread = (max(times["bare"]) - min(times["bare"])) / 2 / bare
        section.notes.append(
            f"{name}: the bare loop alone varies by +-{spread:.1%} around its median over the "
            "rounds (paired ratios cancel much of that, not all)."
        )
        if any(g.passed is False for g in section.goals if name in g.name):
            section.details.append(f"Profile, {name} (the goal was missed):")
            section.details += _profile_difference(make, data, epochs, device)
    section.tables.append(
        (
            [
                "workload",
                "epochs",
                "train samples",
                "bare s",
                "fit s",
                "fit+progress s",
                "bare range s",
            ],
            rows,
        )
    )
    section.plots.append(_plot(medians, out))
    return section


def _plot(medians: dict[str, dict[str, float]], out: Path) -> str:
    figure = Figure(figsize=(7, 3))
    axes = figure.subplots()
    kinds = list(next(iter(medians.values())))
    width = 0.8 / len(kinds)
    for i, kind in enumerate(kinds):
        ratios = [values[kind] / values["bare"] for values in medians.values()]
        axes.bar([j + i * width for j in range(len(medians))], ratios, width, label=kind)
    axes.axhline(GOAL, color="red", linestyle="--", label=f"goal {GOAL}x")
    axes.set_xticks([j + width for j in range(len(medians))], list(medians))
    axes.set_ylabel("time / bare loop")
    axes.set_title("tl.fit overhead (median, lower is better)")
    axes.legend(fontsize=8)
    return save_figure(figure, out, "bench_loop_overhead.png")
