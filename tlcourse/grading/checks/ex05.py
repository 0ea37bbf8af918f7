"""Exercise 5: ResNet34 layer3/layer4/fc trainable, lower block LR, BatchNorm, a real step."""

from __future__ import annotations

import copy
import math
from functools import lru_cache

import torch
import torchvision
from torch import nn

from tlcourse.freeze import trainable_names
from tlcourse.grading.checks.common import (
    MODULE,
    listing,
)
from tlcourse.grading.registry import NotYet, Spec, exercise

EX05 = exercise(
    __name__,
    "Fine-tune layer3 + layer4 of ResNet34",
    {
        "model": Spec(MODULE, "your ResNet34 for 10 classes", "model"),
        "optimizer": Spec((torch.optim.Optimizer,), "your optimizer", "optimizer"),
    },
    summary="unfreeze exactly `layer3`, `layer4`, `fc`; lower LR for blocks; BatchNorm",
    weights="ResNet34 random (structure)",
)
BLOCKS = ("layer3", "layer4")


STAGES = ("layer1", "layer2", "layer3", "layer4")


def _resnet34(submitted: dict) -> nn.Module:
    model = submitted["model"]
    stages = [getattr(model, stage, None) for stage in STAGES]
    if any(s is None for s in stages) or not isinstance(getattr(model, "fc", None), nn.Linear):
        raise NotYet("model is not a ResNet (it needs layer1 ... layer4 and an fc Linear)")
    counts = [len(stage) for stage in stages]
    kinds = sorted({type(block).__name__ for stage in stages for block in stage})
    if counts != [3, 4, 6, 3] or kinds != ["BasicBlock"]:
        raise NotYet(
            f"model has {counts} blocks per stage ({', '.join(kinds)}); a ResNet34 has [3, 4, 6, "
            '3] BasicBlocks: start from tl.load_pretrained("resnet34")'
        )
    return model


@lru_cache(maxsize=1)
def pretrained_batchnorms() -> tuple[str, ...]:
    """Every BatchNorm2d layer of a ResNet34, in frozen and unfrozen blocks alike: the course's
    policy keeps all their statistics as pretrained. Names as in `model.named_modules()`.

    Example:
        >>> pretrained_batchnorms()[:3], len(pretrained_batchnorms())
        (('bn1', 'layer1.0.bn1', 'layer1.0.bn2'), 36)
    """
    return tuple(
        name
        for name, module in torchvision.models.resnet34().named_modules()
        if isinstance(module, nn.BatchNorm2d)
    )


@EX05.check(
    "model: ResNet34 with fc = Linear(512, 10)",
    points=1,
    needs=("model",),
    hint="tl.replace_head(model, num_classes=10) or model.fc = nn.Linear(512, 10).",
)
def _ex05_head(submitted: dict) -> str:
    fc = _resnet34(submitted).fc
    if (fc.in_features, fc.out_features) != (512, 10):
        raise NotYet(f"fc is Linear({fc.in_features}, {fc.out_features})")
    return "Linear(512, 10)"


@EX05.check(
    "trainable: every conv of layer3, layer4 and fc; nothing outside them",
    points=3,
    needs=("model",),
    hint="Freeze everything first, then unfreeze the two blocks and fc by name (tl.unfreeze).",
)
def _ex05_trainable(submitted: dict) -> str:
    model = _resnet34(submitted)
    trainable = set(trainable_names(model))
    outside = sorted(n for n in trainable if not n.startswith(("layer3.", "layer4.", "fc.")))
    needed = [
        n for n, m in model.named_modules() if n.startswith(BLOCKS) and isinstance(m, nn.Conv2d)
    ]
    frozen = [n for n in needed if f"{n}.weight" not in trainable]
    frozen += [n for n in ("fc.weight", "fc.bias") if n not in trainable]
    if outside or frozen:
        raise NotYet(listing(("trainable outside layer3/layer4/fc", outside), ("frozen", frozen)))
    return f"{len(trainable)} trainable tensors"


@EX05.check(
    "BatchNorm: every pretrained BatchNorm2d, in layer3/layer4 too, is kept, tracks running "
    "statistics, stays in eval mode (its statistics fixed) in model.train(), and its affine "
    "weights are frozen",
    points=2,
    needs=("model",),
    hint="Keep the pretrained BatchNorm layers (do not replace them or switch off "
    "track_running_stats). Frozen weights do not stop BatchNorm updating running_mean in train "
    "mode: tl.freeze_batchnorm(model) keeps every BatchNorm in eval mode.",
)
def _ex05_batchnorm(submitted: dict) -> str:
    model = copy.deepcopy(
        _resnet34(submitted)
    ).cpu()  # a copy: the learner's model is left as it was
    modules = dict(model.named_modules())
    wanted = pretrained_batchnorms()
    gone = [
        f"{n} is {type(modules[n]).__name__}" if n in modules else f"{n} is missing"
        for n in wanted
        if not isinstance(modules.get(n), nn.BatchNorm2d)
    ]
    if gone:
        raise NotYet(
            f"{len(gone)} of the {len(wanted)} pretrained BatchNorm2d layers were removed or "
            f"replaced ({_few(gone)}): keep them with their ImageNet "
            "statistics and use tl.freeze_batchnorm(model) to keep those statistics fixed"
        )
    untracked = [n for n in wanted if not modules[n].track_running_stats]
    untracked += [n for n in wanted if modules[n].running_mean is None and n not in untracked]
    if untracked:
        raise NotYet(
            f"{len(untracked)} BatchNorm2d layers have no running statistics "
            f"(track_running_stats=False): {_few(untracked)}. They then normalise with each "
            "batch's statistics, not the pretrained ones: leave track_running_stats=True and "
            "use tl.freeze_batchnorm(model)"
        )
    mode: dict[str, bool] = {}

    def record(module: nn.Module, args: tuple) -> None:  # runs after tl.freeze_batchnorm's hook
        mode.setdefault(names[module], module.training)

    names = {modules[n]: n for n in wanted}
    for name in wanted:
        modules[name].register_forward_pre_hook(record)
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 3 + 1)
    after = model.state_dict()
    problems = listing(
        ("not run by model's forward", [n for n in wanted if n not in mode]),
        ("in train mode (batch statistics)", [n for n in wanted if mode.get(n) is True]),
        (
            "running statistics changed",
            [k for k in before if not torch.equal(before[k], after[k])],
        ),
        (
            "affine weights trainable",
            [n for n in wanted if any(p.requires_grad for p in modules[n].parameters())],
        ),
    )
    if problems:
        raise NotYet(f"after model.train() and one forward pass: {problems}")
    return f"all {len(wanted)} BatchNorm2d layers: eval mode, statistics fixed, weights frozen"


def _few(names: list[str]) -> str:
    return ", ".join(names[:3]) + (f" ... ({len(names)} in all)" if len(names) > 3 else "")


@EX05.check(
    "optimizer: exactly the trainable parameters; every LR finite and > 0; layer3/layer4 at a "
    "lower LR than fc",
    points=2,
    needs=("model", "optimizer"),
    hint="One group per learning rate, each a finite number > 0 (fc 1e-3, blocks 1e-4): "
    "tl.param_groups maps name patterns (fc, layer3...) to LRs.",
)
def _ex05_optimizer(submitted: dict) -> str:
    model, optimizer = _resnet34(submitted), submitted["optimizer"]
    names = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        lr = group.get("lr")
        try:
            usable = math.isfinite(float(lr)) and float(lr) > 0
        except (TypeError, ValueError, RuntimeError):  # None, a string, a tensor of many values
            usable = False
        if not usable:
            first = next(iter(group["params"]), None)
            where = group.get("name") or names.get(id(first), "a group")
            raise NotYet(
                f"the group of {where} has learning rate {lr!r}: every learning rate must be a "
                "finite number > 0 (e.g. 1e-3 for fc, 1e-4 for the blocks)"
            )
    lrs = {names.get(id(p), "?"): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    count = sum(len(g["params"]) for g in optimizer.param_groups)
    if set(lrs) != set(trainable_names(model)) or count != len(lrs):
        raise NotYet("the optimizer must hold each trainable parameter once and nothing frozen")
    head = min(lr for n, lr in lrs.items() if n.startswith("fc."))
    body = max((lr for n, lr in lrs.items() if n.startswith(BLOCKS)), default=head)
    if not body < head:
        raise NotYet(f"blocks learn at {body:g}, the head at {head:g}: blocks need a lower LR")
    return f"blocks {body:g} < head {head:g}"


@EX05.check(
    "one training step changes layer3, layer4 and fc, and nothing else",
    points=2,
    needs=("model", "optimizer"),
    hint="A layer trains only if its parameters have requires_grad=True AND are in the optimizer.",
)
def _ex05_step(submitted: dict) -> str:
    model, optimizer = copy.deepcopy(
        (_resnet34(submitted), submitted["optimizer"])
    )  # one copy: shared params
    before = {k: v.clone() for k, v in model.state_dict().items()}
    device = next(model.parameters()).device
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(4, 3, 64, 64, generator=generator).to(device)
    labels = torch.randint(0, 10, (4,), generator=generator).to(device)
    model.train()
    optimizer.zero_grad()
    nn.functional.cross_entropy(model(inputs), labels).backward()
    optimizer.step()
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    outside = sorted(
        k
        for k in moved
        if not k.startswith(BLOCKS + ("fc.",)) and "running" not in k and "num_batches" not in k
    )
    weights = ["layer3.0.conv1.weight", "layer4.2.conv2.weight", "fc.weight"]
    still = [k for k in weights if k not in moved]
    if outside or still:
        raise NotYet(listing(("changed outside the blocks", outside), ("did not change", still)))
    return f"{len(moved)} tensors changed, all in layer3/layer4/fc"
