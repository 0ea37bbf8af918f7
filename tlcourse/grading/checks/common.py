"""Helpers shared by the exercise checks: what trains, short lists, reported vs measured."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from tlcourse.freeze import trainable_names
from tlcourse.grading.data import changed_tensors, pretrained_lite0_state
from tlcourse.grading.registry import NotYet
from tlcourse.models import get_head

MODULE = (nn.Module,)
FUNCTION = (Callable,)
TOLERANCE = 0.1  # reported vs measured: the learner's test images are not the grader's


def expect_trainable(model: nn.Module, expected: list[str], what: str) -> None:
    """Nothing if exactly the parameters `expected` train, else NotYet naming the extra/frozen.

    Example:
        >>> resnet = torchvision.models.resnet18()
        >>> for name, parameter in resnet.named_parameters():
        ...     parameter.requires_grad = name.startswith("fc.")
        >>> expect_trainable(resnet, ["fc.weight", "fc.bias"], "ResNet18")  # only the head: ok
        >>> expect_trainable(resnet, ["fc.weight"], "ResNet18")
        Traceback (most recent call last):
        tlcourse.grading.registry.NotYet: ResNet18: only ['fc.weight'] should be trainable; ...bias
    """
    trainable = trainable_names(model)
    if sorted(trainable) != sorted(expected):
        extra = [n for n in trainable if n not in expected]
        missing = [n for n in expected if n not in trainable]
        raise NotYet(
            f"{what}: only {expected} should be trainable; "
            + listing(("also trainable", extra), ("frozen", missing))
        )


def listing(*parts: tuple[str, list[str]]) -> str:
    """'also trainable: a, b, c ... (60 in all)' for the non-empty lists only.

    Example:
        >>> listing(("also trainable", ["a", "b", "c", "d"]), ("frozen", []))
        'also trainable: a, b, c ... (4 in all)'
    """
    return "; ".join(
        f"{label}: {', '.join(names[:3])}{f' ... ({len(names)} in all)' if len(names) > 3 else ''}"
        for label, names in parts
        if names
    )


def agrees(
    reported: float,
    measured: float,
    what: str,
    tolerance: float = TOLERANCE,
    of: str = "the model you passed",
    fix: str = "report what your model really does",
) -> str:
    """'0.910 vs 0.880' if a number the learner reports is within `tolerance` of the grader's own
    measurement `measured` of the same thing; else NotYet with both numbers and `fix`.

    Every "your reported number matches the grader" check goes through here, so a pasted
    number fails with the same kind of message everywhere.

    Example:
        >>> agrees(0.91, 0.88, "accuracy")
        '0.910 vs 0.880'
    """
    reported = float(reported)
    if not abs(reported - measured) <= tolerance:  # `not <=`: a NaN report fails too
        raise NotYet(
            f"you report {what} {reported:.3f} but the grader measures {measured:.3f} for {of} "
            f"({abs(reported - measured):.3f} apart; at most {tolerance:g} is allowed): {fix}"
        )
    return f"{reported:.3f} vs {measured:.3f}"


def at_least(value: float, floor: float, what: str = "", context: str = "") -> str:
    """The shown value ('sensitivity 0.934') if `value >= floor`, else NotYet with the floor.

    Example:
        >>> at_least(0.91, 0.85, context="on 250 held-out images")
        '0.910 on 250 held-out images'
    """
    shown = " ".join(part for part in (what, f"{value:.3f}", context) if part)
    if value < floor:
        raise NotYet(f"{shown}; needs >= {floor:g}")
    return shown


def pretrained_backbone(model: nn.Module, what: str) -> str:
    """The model is Lite0 whose every tensor but the head equals the ImageNet weights.

    Returns the head's name; NotYet if a backbone tensor changed or a non-head parameter trains.

    Example:
        >>> pretrained_backbone(model, "model")  # tl.freeze(model), then tl.replace_head
        'classifier.1'
    """
    head = get_head(model)[0]
    changed = changed_tensors(model, pretrained_lite0_state(), skip=head)
    if changed:
        raise NotYet(
            f"{what}: {len(changed)} pretrained tensors changed or missing, e.g. {changed[:2]} "
            "(BatchNorm statistics change if you train a frozen model in train mode)"
        )
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    if any(not n.startswith(head + ".") for n in trainable):
        raise NotYet(f"{what}: only the head should be trainable, found {trainable[:3]}")
    return head


def class_order(given: object, expected: list[str]) -> list[str]:
    """`given` as a list if it holds the `expected` class names in any order, else NotYet.

    Example:
        >>> class_order(("Dog", "Cat"), ["Cat", "Dog"])  # the learner's order gives the labels
        ['Dog', 'Cat']
    """
    if not isinstance(given, (list, tuple)) or sorted(given) != sorted(expected):
        raise NotYet(f"class_names should be the dataset's classes {sorted(expected)}, got {given}")
    return list(given)
