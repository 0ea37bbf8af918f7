"""`python -m tlcourse demo`: the whole transfer-learning recipe, headless, in well under a minute.

pretrained EfficientNet-Lite0 (real ImageNet weights) -> freeze -> replace head -> cache features
-> train the head -> unfreeze the last blocks, fine-tune with a lower LR -> evaluate -> predict.

The frozen layers never change, so their outputs are computed ONCE (`extract_features` at the
input of `features.7`); both the head and the fine-tuned last blocks then train on those cached
activations. The final accuracy is measured by the full model on held-out images.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tlcourse import distributed
from tlcourse.checkpoint import save_checkpoint
from tlcourse.data import load_splits, make_loaders
from tlcourse.device import get_device, make_generator, seed_everything
from tlcourse.features import extract_features
from tlcourse.freeze import count_params, freeze, freeze_batchnorm, param_groups, unfreeze
from tlcourse.inference import FrozenForward
from tlcourse.models import load_pretrained, replace_head
from tlcourse.plots import plot_history, show_images, to_displayable
from tlcourse.train import evaluate, fit, predict

# features[:7] stay frozen and are cached; features[7:] (last MBConv stage + head conv) fine-tune
CUT = 7


def _loader(dataset: TensorDataset, shuffle: bool, seed: int) -> DataLoader:
    # Under torchrun each of the N processes takes 64 / N samples per step: the global batch
    # stays 64, so the recipe (learning rates, epochs) needs no change.
    batch_size = 64 // distributed.world_size()
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=make_generator(seed)
    )


def run_demo(
    head_epochs: int = 30,
    finetune_epochs: int = 8,
    image_size: int = 96,
    seed: int = 0,
    device: str | None = None,
    out: str | Path = "tlcourse_demo",
    sizes: dict[str, int] | None = None,
    progress: bool = False,
) -> dict:
    """Run the recipe, print a summary table, save PNGs + a checkpoint in `out`.

    Example:
        >>> sizes = {"train": 60, "val": 20, "test": 20}  # `make demo`: 1000, 200, 1000
        >>> results = run_demo(2, 1, image_size=32, sizes=sizes, out="demo")  # doctest: +ELLIPSIS
        <BLANKLINE>
        tlcourse demo on cpu (torch ..., ... threads)
        stage trainable seconds test acc
        ...
        saved in demo/: curves.png, predictions.png, model.pt, results.json
        >>> 0 <= results["finetuned_accuracy"] <= 1  # the full demo: about 0.9
        True
    """
    seed_everything(seed)
    device = distributed.setup(get_device(device))  # under torchrun: join the process group
    stages = _Stages()  # one table row per step: trainable params, seconds, test accuracy
    options = {"device": device, "progress": progress}

    # 1. load: real ImageNet weights (offline) and the offline animal images
    splits = load_splits(
        "animals", sizes or {"train": 1000, "val": 200, "test": 1000}, image_size, seed=seed
    )
    loaders = make_loaders(splits, batch_size=64, seed=seed)
    model = load_pretrained("efficientnet_lite0").to(device)
    stages.done("load pretrained EfficientNet-Lite0 + data", model)

    # 2. freeze everything, 3. replace the 1000-class ImageNet head with a 10-class one
    freeze(model, verbose=False)
    replace_head(model, num_classes=len(splits["train"].classes), verbose=False)
    stages.done("freeze all, replace head (1280 -> 10)", model)

    # 4. cache: the frozen layers' outputs never change, so compute them once
    activations, features, tail = _cache(model, loaders, device, seed)  # loaders of cached data
    stages.done(f"cache features ({sum(len(s) for s in splits.values())} images, 1 pass)", model)

    # 5. train the head on the cached features
    head = model.classifier
    head_history = fit(
        head, features["train"], features["val"], epochs=head_epochs, lr=1e-3, **options
    )
    head_accuracy = evaluate(head, features["test"])["accuracy"]
    stages.done(f"train head on cached features ({head_epochs} epochs)", model, head_accuracy)

    # 6. fine-tune: thaw the last blocks, train them with a 10x lower learning rate
    unfreeze(model, f"features.{CUT}", f"features.{CUT + 1}", verbose=False)
    freeze_batchnorm(model)  # the course's BatchNorm policy: ImageNet statistics stay (lesson 03)
    optimizer = torch.optim.Adam(param_groups(model, {"classifier": 1e-3, "features": 1e-4}))
    tune_history = fit(
        tail, activations["train"], activations["val"], epochs=finetune_epochs,
        optimizer=optimizer, **options,
    )  # fmt: skip
    stages.done(f"fine-tune last blocks, LR 1e-4 / head 1e-3 ({finetune_epochs} epochs)", model)
    if not distributed.is_main():  # DDP: the other processes helped train; rank 0 reports
        return {"head_accuracy": head_accuracy, "rows": stages.rows, "out": Path(out)}

    # 7. evaluate the whole fine-tuned model on real held-out images
    test = evaluate(model, loaders["test"])["accuracy"]
    stages.done("evaluate full fine-tuned model on test images", model, test)

    # 8. predict: class probabilities for 16 images the model has never seen
    images, labels = _pick_images(splits["test"], 16)
    probabilities = predict(model, images)
    stages.done("predict 16 new images", model)

    results = {"head_accuracy": head_accuracy, "finetuned_accuracy": test}
    figures = {"curves": (head_history, tune_history), "shown": (images, labels, probabilities)}
    _save(Path(out), model, splits["train"].classes, image_size, results, figures, stages, device)
    return results | {"rows": stages.rows, "out": Path(out), "seconds": stages.seconds}


class _Stages:
    """The summary table: each `done` closes a row (stage, trainable params, seconds, accuracy)."""

    def __init__(self):
        self.rows: list[tuple[str, int, float, float | None]] = []
        self.clock = time.perf_counter()

    def done(self, stage: str, model: nn.Module, accuracy: float | None = None) -> None:
        now = time.perf_counter()
        self.rows.append((stage, count_params(model)[0], now - self.clock, accuracy))
        self.clock = now

    @property
    def seconds(self) -> float:
        return sum(row[2] for row in self.rows)


def _cache(model: nn.Module, loaders: dict, device: torch.device, seed: int):
    """One pass of the frozen layers over every image.

    Returns loaders of the activations at the input of features[CUT] (what the fine-tuned tail
    reads) and of the 1280-d features the head reads, and the tail (sharing the model's weights).
    """
    activations = {
        name: extract_features(model, loader, layer=f"features.{CUT}")
        for name, loader in loaders.items()
    }
    tail = nn.Sequential(*model.features[CUT:], model.avgpool, nn.Flatten(1), model.classifier)
    # the frozen layers between the cache and the head, run once more (cheaply: small inputs),
    # the same fast way as extract_features (a copy with BatchNorm folded, channels_last)
    body = FrozenForward(tail[:-1].eval(), device, fold_batchnorm=None)
    with torch.no_grad():
        features = {
            name: TensorDataset(body(a.tensors[0]).float().cpu(), a.tensors[1])
            for name, a in activations.items()
        }

    def as_loaders(datasets: dict) -> dict[str, DataLoader]:
        return {name: _loader(data, name == "train", seed) for name, data in datasets.items()}

    return as_loaders(activations), as_loaders(features), tail


def _pick_images(dataset, count: int) -> tuple[torch.Tensor, list[int]]:
    """`count` test images spread over the (class-sorted) set: all 10 classes appear."""
    picks = range(0, len(dataset), max(len(dataset) // count, 1))[:count]
    images = torch.stack([dataset[i][0] for i in picks])  # (count, 3, H, W), normalised
    return images, [dataset[i][1] for i in picks]


def _save(out: Path, model, classes, image_size, results, figures, stages, device) -> None:
    """Curves, a prediction grid, the checkpoint and results.json in `out`; print the table."""
    out.mkdir(parents=True, exist_ok=True)
    histories, (images, labels, probabilities), rows = (
        figures["curves"],
        figures["shown"],
        stages.rows,
    )
    confidence, predicted = probabilities.max(1)
    title = "EfficientNet-Lite0 on animal silhouettes"
    plot_history(*histories, labels=["head", "fine-tune"], title=title).savefig(
        out / "curves.png", dpi=100
    )
    show_images(
        to_displayable(images),
        labels,
        classes,
        predicted,
        confidence,
        title=f"predictions (test accuracy {results['finetuned_accuracy']:.3f})",
    ).savefig(out / "predictions.png", dpi=100)
    save_checkpoint(
        out / "model.pt",
        model,
        classes=classes,
        image_size=image_size,
        model_name="efficientnet_lite0",
    )
    stages = [dict(zip(("stage", "trainable", "seconds", "test_accuracy"), r)) for r in rows]
    summary = results | {"device": str(device), "world_size": distributed.world_size()}
    (out / "results.json").write_text(json.dumps(summary | {"stages": stages}, indent=2))
    _print_table(rows, device, out)


def _print_table(rows, device: torch.device, out: Path) -> None:
    print(
        f"\ntlcourse demo on {device} (torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads)"
    )
    if distributed.active():
        processes = distributed.world_size()
        print(
            f"DDP world size {processes}: {processes} processes x {64 // processes} "
            f"samples per step (global batch {processes * (64 // processes)})"
        )
    print(f"{'stage':<58} {'trainable':>10} {'seconds':>8} {'test acc':>9}")
    for stage, trainable, seconds, accuracy in rows:
        shown = "-" if accuracy is None else f"{accuracy:.3f}"
        print(f"{stage:<58} {trainable:>10,} {seconds:>8.1f} {shown:>9}")
    print(f"{'total':<58} {'':>10} {sum(r[2] for r in rows):>8.1f}")
    print(f"\nsaved in {out}/: curves.png, predictions.png, model.pt, results.json")
