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
    """Run the pipeline, print a summary table, save PNGs + a checkpoint in `out`."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    seed_everything(seed)
    device = distributed.setup(get_device(device))  # under torchrun: join the process group
    rows: list[
        tuple[str, int, float, float | None]
    ] = []  # stage, trainable params, seconds, test accuracy
    clock = time.perf_counter()

    def record(stage: str, model: nn.Module, accuracy: float | None = None) -> None:
        nonlocal clock
        rows.append((stage, count_params(model)[0], time.perf_counter() - clock, accuracy))
        clock = time.perf_counter()

    splits = load_splits(
        "animals", sizes or {"train": 1000, "val": 200, "test": 1000}, image_size, seed=seed
    )
    classes = splits["train"].classes
    loaders = make_loaders(splits, batch_size=64, seed=seed)
    model = load_pretrained("efficientnet_lite0").to(device)
    record("load pretrained EfficientNet-Lite0 + data", model)

    freeze(model, verbose=False)
    replace_head(model, num_classes=len(classes), verbose=False)
    record("freeze all, replace head (1280 -> 10)", model)

    # One pass of the frozen layers over every image: activations at the input of features[CUT].
    activations = {
        name: extract_features(model, loader, layer=f"features.{CUT}")
        for name, loader in loaders.items()
    }
    tail = nn.Sequential(
        *model.features[CUT:], model.avgpool, nn.Flatten(1), model.classifier
    )  # shares weights
    body = tail[:-1].eval()  # frozen layers between the cache and the head: run once more, cheaply
    with torch.no_grad():
        features = {
            name: TensorDataset(body(a.tensors[0].to(device)).cpu(), a.tensors[1])
            for name, a in activations.items()
        }
    record(f"cache features ({sum(len(s) for s in splits.values())} images, 1 pass)", model)

    head = model.classifier
    head_history = fit(
        head,
        _loader(features["train"], True, seed),
        _loader(features["val"], False, seed),
        epochs=head_epochs,
        lr=1e-3,
        device=device,
        progress=progress,
    )
    head_accuracy = evaluate(head, _loader(features["test"], False, seed))["accuracy"]
    record(f"train head on cached features ({head_epochs} epochs)", model, head_accuracy)

    unfreeze(model, f"features.{CUT}", f"features.{CUT + 1}", verbose=False)
    freeze_batchnorm(model)  # the course's BatchNorm policy: ImageNet statistics stay (lesson 03)
    optimizer = torch.optim.Adam(param_groups(model, {"classifier": 1e-3, "features": 1e-4}))
    tune_history = fit(
        tail,
        _loader(activations["train"], True, seed),
        _loader(activations["val"], False, seed),
        epochs=finetune_epochs,
        optimizer=optimizer,
        device=device,
        progress=progress,
    )
    record(f"fine-tune last blocks, LR 1e-4 / head 1e-3 ({finetune_epochs} epochs)", model)
    if not distributed.is_main():  # DDP: the other processes helped train; rank 0 reports
        return {"head_accuracy": head_accuracy, "rows": rows, "out": out}

    test = evaluate(model, loaders["test"])["accuracy"]  # the full model on real held-out images
    record("evaluate full fine-tuned model on test images", model, test)

    picks = range(0, len(splits["test"]), max(len(splits["test"]) // 16, 1))[:16]  # all 10 classes
    images = torch.stack([splits["test"][i][0] for i in picks])  # (16, 3, H, W), normalised
    labels = [splits["test"][i][1] for i in picks]
    probabilities = predict(model, images)
    confidence, predicted = probabilities.max(1)
    record("predict 16 new images", model)

    plot_history(
        head_history,
        tune_history,
        labels=["head", "fine-tune"],
        title="EfficientNet-Lite0 on animal silhouettes",
    ).savefig(out / "curves.png", dpi=100)
    show_images(
        to_displayable(images),
        labels,
        classes,
        predicted,
        confidence,
        title=f"predictions (test accuracy {test:.3f})",
    ).savefig(out / "predictions.png", dpi=100)
    save_checkpoint(
        out / "model.pt",
        model,
        classes=classes,
        image_size=image_size,
        model_name="efficientnet_lite0",
    )
    results = {
        "head_accuracy": head_accuracy,
        "finetuned_accuracy": test,
        "device": str(device),
        "world_size": distributed.world_size(),
        "stages": [dict(zip(("stage", "trainable", "seconds", "test_accuracy"), r)) for r in rows],
    }
    (out / "results.json").write_text(json.dumps(results, indent=2))
    _print_table(rows, device, out)
    return {
        "head_accuracy": head_accuracy,
        "finetuned_accuracy": test,
        "rows": rows,
        "out": out,
        "seconds": sum(r[2] for r in rows),
    }


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
