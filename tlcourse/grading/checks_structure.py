"""Checks of exercises 1, 2, 4 and 5: model structure, freezing, head surgery, optimizers.

Each check rebuilds what it needs (fresh models the learner never saw, the real pretrained
weights) and inspects `requires_grad`, shapes, weights and optimizer groups directly.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torchvision
from torch import nn

from tlcourse.freeze import matches
from tlcourse.grading.data import changed_tensors, model_outputs, pretrained_lite0_state
from tlcourse.grading.registry import NotYet, Spec, call_learner, exercise
from tlcourse.models import get_head, load_pretrained

MODULE = (nn.Module,)
FUNCTION = (Callable,)


def _trainable(model: nn.Module) -> list[str]:
    return [name for name, p in model.named_parameters() if p.requires_grad]


def _expect_trainable(model: nn.Module, expected: list[str], what: str) -> None:
    trainable = _trainable(model)
    if sorted(trainable) != sorted(expected):
        extra = [n for n in trainable if n not in expected]
        missing = [n for n in expected if n not in trainable]
        raise NotYet(
            f"{what}: only {expected} should be trainable; "
            + _listing(("also trainable", extra), ("frozen", missing))
        )


def _listing(*parts: tuple[str, list[str]]) -> str:
    """'also trainable: a, b, c ... (60 in all)' for the non-empty lists only."""
    return "; ".join(
        f"{label}: {', '.join(names[:3])}{f' ... ({len(names)} in all)' if len(names) > 3 else ''}"
        for label, names in parts
        if names
    )


# ---------------------------------------------------------------- exercise 1: load and inspect
EX01 = exercise(
    "ex01",
    "Load a pretrained model and find its head",
    "01_load_and_inspect",
    {
        "model": Spec(MODULE, "the pretrained EfficientNet-Lite0", "model"),
        "head_info": Spec(FUNCTION, "your function head_info(model) -> dict", "head_info"),
    },
)


def _info(head_info: Callable, model: nn.Module, name: str) -> str:
    path, layer = get_head(model)  # the trusted reference
    expected = {
        "path": path,
        "in_features": layer.in_features,
        "num_params": sum(p.numel() for p in model.parameters()),
    }
    got = call_learner(head_info, model, name="head_info")
    if not isinstance(got, dict):
        raise NotYet(f"head_info({name}) returned {type(got).__name__}; return a dict")
    wrong = {k: got.get(k) for k in expected if got.get(k) != expected[k]}
    if wrong:
        raise NotYet(f"head_info({name}) is wrong for {sorted(wrong)}: got {wrong}")
    return f"{name}: {expected['path']}, {expected['in_features']} in, {expected['num_params']:,}"


@EX01.check(
    "model has the real pretrained ImageNet weights of EfficientNet-Lite0",
    points=2,
    needs=("model",),
    hint="model = tl.load_pretrained('efficientnet_lite0') loads them; do not change the model.",
)
def _ex01_weights(o: dict) -> str:
    changed = changed_tensors(o["model"], pretrained_lite0_state())
    if changed:
        raise NotYet(f"{len(changed)} tensors differ from the pretrained ones, e.g. {changed[:2]}")
    return f"all {len(pretrained_lite0_state())} tensors match"


@EX01.check(
    "head_info finds the head of EfficientNet-Lite0",
    points=2,
    needs=("head_info",),
    hint="tl.get_head(model) returns (path, layer); count with p.numel() over model.parameters().",
)
def _ex01_lite(o: dict) -> str:
    return _info(o["head_info"], load_pretrained("efficientnet_lite0", weights=None), "lite0")


@EX01.check(
    "head_info finds the head of VGG16 and ResNet18",
    points=3,
    needs=("head_info",),
    hint="The head is the last nn.Linear: classifier[6] in VGG16, fc in ResNet18.",
)
def _ex01_syllabus(o: dict) -> str:
    details = [
        _info(o["head_info"], torchvision.models.get_model(n), n) for n in ("resnet18", "vgg16")
    ]
    return "; ".join(details)


@EX01.check(
    "head_info works on a model it has never seen",
    points=3,
    needs=("head_info",),
    hint="Compute from the model you are given (no hard-coded numbers or names).",
)
def _ex01_unseen(o: dict) -> str:
    model = torchvision.models.mobilenet_v3_small(num_classes=7)
    return _info(o["head_info"], model, "a MobileNetV3 with 7 classes")


# --------------------------------------------------- exercise 2: freeze and replace the head
EX02 = exercise(
    "ex02",
    "Feature extraction: freeze, replace the head",
    "02_freeze_and_replace_head",
    {
        "make_feature_extractor": Spec(
            FUNCTION,
            "your function make_feature_extractor(model, num_classes)",
            "make_feature_extractor",
        ),
        "model": Spec(MODULE, "your ResNet18 for 5 classes", "model"),
    },
)


def _apply(function: Callable, model: nn.Module, num_classes: int) -> nn.Module:
    result = call_learner(function, model, num_classes, name="make_feature_extractor")
    if not isinstance(result, nn.Module):
        raise NotYet(f"make_feature_extractor returned {type(result).__name__}; return the model")
    return result


def _head_outputs(model: nn.Module, num_classes: int, what: str) -> None:
    logits = model_outputs(model, torch.randn(2, 3, 64, 64), what)
    if logits.shape != (2, num_classes):
        raise NotYet(
            f"{what} gives logits {tuple(logits.shape)} for 2 images; want (2, {num_classes})"
        )


@EX02.check(
    "model: a ResNet18 whose only trainable parameters are fc.weight and fc.bias",
    points=2,
    needs=("model",),
    hint="Freeze first (tl.freeze or requires_grad_(False)), then replace fc: a new layer trains.",
)
def _ex02_model_frozen(o: dict) -> str:
    names = [n for n, _ in o["model"].named_children()]
    if names[:2] != ["conv1", "bn1"] or "fc" not in names:
        raise NotYet(f"model is not a ResNet (top-level modules {names})")
    _expect_trainable(o["model"], ["fc.weight", "fc.bias"], "model")
    return "fc only"


@EX02.check(
    "model: 5 outputs (logits of shape (2, 5) for 2 images)",
    points=2,
    needs=("model",),
    hint="The new head is nn.Linear(512, 5): tl.replace_head(model, num_classes=5).",
)
def _ex02_model_shape(o: dict) -> str:
    _head_outputs(o["model"], 5, "model")
    return "(2, 5)"


@EX02.check(
    "make_feature_extractor on pretrained Lite0: backbone unchanged, only the new head trains",
    points=3,
    needs=("make_feature_extractor",),
    hint="Change the model you are given in place (freeze, replace head) and return it.",
)
def _ex02_lite(o: dict) -> str:
    model = _apply(o["make_feature_extractor"], load_pretrained("efficientnet_lite0"), 3)
    head = get_head(model)[0]
    changed = changed_tensors(model, pretrained_lite0_state(), skip=head)
    if changed:
        raise NotYet(f"{len(changed)} pretrained tensors changed, e.g. {changed[:2]}")
    _expect_trainable(model, [f"{head}.weight", f"{head}.bias"], "Lite0")
    _head_outputs(model, 3, "Lite0")
    return f"{head} -> 3 classes"


@EX02.check(
    "make_feature_extractor on a fresh ResNet18 with 7 classes",
    points=3,
    needs=("make_feature_extractor",),
    hint="Use the num_classes argument, and keep the weights of the model you are given.",
)
def _ex02_resnet(o: dict) -> str:
    torch.manual_seed(7)
    original = torchvision.models.resnet18()
    before = {k: v.clone() for k, v in original.state_dict().items()}
    model = _apply(o["make_feature_extractor"], original, 7)
    changed = changed_tensors(model, before, skip="fc.")
    if changed:
        raise NotYet(f"{len(changed)} backbone tensors changed (a new model?), e.g. {changed[:2]}")
    _expect_trainable(model, ["fc.weight", "fc.bias"], "ResNet18")
    _head_outputs(model, 7, "ResNet18")
    return "fc -> 7 classes"


# ------------------------------------------------ exercise 4: optimizer with parameter groups
EX04 = exercise(
    "ex04",
    "Optimizer: trainable parameters, head/body LRs",
    "04_optimizer_param_groups",
    {
        "make_optimizer": Spec(FUNCTION, "your function make_optimizer(model)", "make_optimizer"),
        "model": Spec(MODULE, "the partly frozen Lite0 of the notebook", "model"),
        "optimizer": Spec((torch.optim.Optimizer,), "your optimizer for model", "optimizer"),
    },
)
HEAD_LR, BODY_LR = 1e-3, 1e-4


def _check_groups(model: nn.Module, optimizer: torch.optim.Optimizer, what: str) -> str:
    if not isinstance(optimizer, torch.optim.Optimizer):
        raise NotYet(f"{what}: expected a torch.optim optimizer, got {type(optimizer).__name__}")
    names = {id(p): n for n, p in model.named_parameters()}
    lr_of: dict[str, list[float]] = {}
    for group in optimizer.param_groups:
        for p in group["params"]:
            lr_of.setdefault(names.get(id(p), "<not in the model>"), []).append(group["lr"])
    trainable = set(_trainable(model))
    frozen = sorted(n for n in lr_of if n not in trainable)
    missing = sorted(trainable - set(lr_of))
    twice = sorted(n for n, lrs in lr_of.items() if len(lrs) > 1)
    if frozen or missing or twice:
        raise NotYet(
            f"{what}: the optimizer must hold each trainable parameter once and nothing frozen; "
            + _listing(("frozen but in it", frozen), ("missing", missing), ("twice", twice))
        )
    head = get_head(model)[0]
    wrong = {
        n: lrs[0]
        for n, lrs in lr_of.items()
        if abs(lrs[0] - (HEAD_LR if matches(n, head) else BODY_LR)) > 1e-12
    }
    if wrong:
        raise NotYet(f"{what}: wrong learning rates {dict(list(wrong.items())[:3])}")
    return f"{what}: {len(lr_of)} tensors"


@EX04.check(
    "optimizer: exactly the trainable parameters of model, head at 1e-3, the rest at 1e-4",
    points=4,
    needs=("model", "optimizer"),
    hint="tl.param_groups(model, {head_path: HEAD_LR}, default_lr=BODY_LR) skips frozen ones.",
)
def _ex04_notebook(o: dict) -> str:
    return _check_groups(o["model"], o["optimizer"], "optimizer")


def _resnet_layer4() -> nn.Module:
    model = torchvision.models.resnet18(num_classes=4)
    for name, p in model.named_parameters():
        p.requires_grad = name.startswith(("layer4.", "fc."))
    return model


def _lite_head_only() -> nn.Module:
    model = load_pretrained("efficientnet_lite0", weights=None)
    model.requires_grad_(False)
    model.classifier[1] = nn.Linear(1280, 3)
    return model


@EX04.check(
    "make_optimizer works on models it has never seen (ResNet18 layer4+fc; a head-only Lite0)",
    points=6,
    needs=("make_optimizer",),
    hint="Find the head with tl.get_head(model); put only p.requires_grad parameters in groups.",
)
def _ex04_function(o: dict) -> str:
    details = []
    for what, build in (("ResNet18", _resnet_layer4), ("head-only Lite0", _lite_head_only)):
        model = build()
        optimizer = call_learner(o["make_optimizer"], model, name="make_optimizer")
        details.append(_check_groups(model, optimizer, what))
    return "; ".join(details)


# ------------------------------------- exercise 5: fine-tune the last two blocks of ResNet34
EX05 = exercise(
    "ex05",
    "Fine-tune layer3 + layer4 of ResNet34",
    "05_finetune_resnet34",
    {
        "model": Spec(MODULE, "your ResNet34 for 10 classes", "model"),
        "optimizer": Spec((torch.optim.Optimizer,), "your optimizer", "optimizer"),
    },
)
BLOCKS = ("layer3", "layer4")


def _resnet34(o: dict) -> nn.Module:
    model = o["model"]
    if len(getattr(model, "layer3", [])) != 6 or not isinstance(
        getattr(model, "fc", None), nn.Linear
    ):
        raise NotYet("model is not a ResNet34 (it needs layer3 with 6 blocks and fc)")
    return model


@EX05.check(
    "model: ResNet34 with fc = Linear(512, 10)",
    points=1,
    needs=("model",),
    hint="tl.replace_head(model, num_classes=10) or model.fc = nn.Linear(512, 10).",
)
def _ex05_head(o: dict) -> str:
    fc = _resnet34(o).fc
    if (fc.in_features, fc.out_features) != (512, 10):
        raise NotYet(f"fc is Linear({fc.in_features}, {fc.out_features})")
    return "Linear(512, 10)"


@EX05.check(
    "trainable: every conv of layer3, layer4 and fc; nothing outside them",
    points=3,
    needs=("model",),
    hint="tl.freeze(model) then tl.unfreeze(model, 'layer3', 'layer4', 'fc').",
)
def _ex05_trainable(o: dict) -> str:
    model = _resnet34(o)
    trainable = set(_trainable(model))
    outside = sorted(n for n in trainable if not n.startswith(("layer3.", "layer4.", "fc.")))
    needed = [
        n for n, m in model.named_modules() if n.startswith(BLOCKS) and isinstance(m, nn.Conv2d)
    ]
    frozen = [n for n in needed if f"{n}.weight" not in trainable]
    frozen += [n for n in ("fc.weight", "fc.bias") if n not in trainable]
    if outside or frozen:
        raise NotYet(_listing(("trainable outside layer3/layer4/fc", outside), ("frozen", frozen)))
    return f"{len(trainable)} trainable tensors"


@EX05.check(
    "BatchNorm: running statistics of the frozen layers stay fixed in model.train()",
    points=2,
    needs=("model",),
    hint="Frozen weights do not stop BatchNorm updating running_mean in train mode: "
    "tl.freeze_batchnorm(model) keeps every BatchNorm in eval mode.",
)
def _ex05_batchnorm(o: dict) -> str:
    model = copy.deepcopy(_resnet34(o)).cpu()
    before = {k: v.clone() for k, v in model.state_dict().items() if "running" in k}
    model.train()
    with torch.no_grad():
        model(torch.randn(4, 3, 64, 64, generator=torch.Generator().manual_seed(0)) * 3 + 1)
    after = model.state_dict()
    moved = [k for k in before if not k.startswith(BLOCKS) and not torch.equal(before[k], after[k])]
    if moved:
        raise NotYet(f"{len(moved)} running statistics of frozen layers changed, e.g. {moved[:2]}")
    return "frozen BatchNorm statistics unchanged"


@EX05.check(
    "optimizer: exactly the trainable parameters; layer3/layer4 at a lower LR than fc",
    points=2,
    needs=("model", "optimizer"),
    hint="tl.param_groups(model, {'fc': 1e-3, 'layer3': 1e-4, 'layer4': 1e-4}).",
)
def _ex05_optimizer(o: dict) -> str:
    model, optimizer = _resnet34(o), o["optimizer"]
    names = {id(p): n for n, p in model.named_parameters()}
    lrs = {names.get(id(p), "?"): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    count = sum(len(g["params"]) for g in optimizer.param_groups)
    if set(lrs) != set(_trainable(model)) or count != len(lrs):
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
def _ex05_step(o: dict) -> str:
    model, optimizer = copy.deepcopy((_resnet34(o), o["optimizer"]))  # one copy: shared params
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
        raise NotYet(_listing(("changed outside the blocks", outside), ("did not change", still)))
    return f"{len(moved)} tensors changed, all in layer3/layer4/fc"
