"""Exercise 12: a segmentation head on the frozen pretrained Lite0, measured on fresh scenes."""

from __future__ import annotations

import torch
from torch import nn

from tlcourse.grading.checks.common import MODULE, TOLERANCE, agrees, at_least
from tlcourse.grading.data import (
    cached_outputs,
    changed_tensors,
    heldout_scenes,
    model_outputs,
    pretrained_lite0_state,
    refuse_replaced_code,
)
from tlcourse.grading.registry import NotYet, Spec, exercise, number
from tlcourse.scenes import BACKGROUND
from tlcourse.segmentation import mean_iou

NUM_CLASSES = 11  # background + the 10 animals
SCENES = 100  # scenes the grader makes afresh for every check() call
IOU_FLOOR = 0.15  # mean IoU on those scenes (an untrained head ~0.01, the solution ~0.27)
# Lite0Maps' names for Lite0's stages (a slice of nn.Sequential keeps the indices):
# low = features[:4] -> low.0-3, high = features[4:6] -> high.4-5
STAGES = {f"features.{i}.": f"{'low' if i < 4 else 'high'}.{i}." for i in range(6)}
EX12 = exercise(
    __name__,
    "Segmentation: a head on the frozen pretrained backbone",
    {
        "model": Spec(MODULE, "tl.Segmenter(backbone, head), trained", "model"),
        "miou": number("your mean IoU on your test scenes", "test_miou"),
    },
    summary="LR-ASPP head on Lite0's stride-8/16 maps, trained on cached maps; mean IoU",
    weights="Lite0 real",
)


def _backbone(model: nn.Module) -> nn.Module:
    backbone = getattr(model, "backbone", None)
    head = getattr(model, "head", None)
    if not isinstance(backbone, nn.Module) or not isinstance(head, nn.Module):
        raise NotYet("model has no .backbone and .head: build it as tl.Segmenter(backbone, head)")
    return backbone


def _scores_and_masks(model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """The model's class per pixel on the grader's fresh scenes, and their true masks."""

    def compute() -> tuple[torch.Tensor, torch.Tensor]:
        scenes = heldout_scenes(SCENES)
        scores = model_outputs(model, scenes.images, dense=True)
        if scores.shape != (SCENES, NUM_CLASSES, *scenes.masks.shape[1:]):
            raise NotYet(
                f"model returned {tuple(scores.shape)}; want ({SCENES}, {NUM_CLASSES}, 96, 96): "
                f"a score for {BACKGROUND} and each animal at every pixel"
            )
        return scores.argmax(1), scenes.masks

    return cached_outputs(model, ("ex12 scenes",), compute)


@EX12.check(
    f"model: gives {NUM_CLASSES} scores for every pixel of a 96 x 96 scene",
    points=1,
    needs=("model",),
    hint="tl.Segmenter(backbone, tl.segmentation_head(num_classes=11)) scales the head's scores "
    "up to the image size.",
)
def _ex12_shape(submitted: dict) -> str:
    _backbone(submitted["model"])
    _scores_and_masks(submitted["model"])  # raises NotYet with the shape it got
    return f"({SCENES}, {NUM_CLASSES}, 96, 96) scores"


@EX12.check(
    "model.backbone: Lite0's stages 0-5 with their ImageNet weights, unchanged and frozen",
    points=3,
    needs=("model",),
    hint="tl.Lite0Maps(tl.load_pretrained('efficientnet_lite0')), then .requires_grad_(False); "
    "cache its maps in eval mode (tl.cache_maps) so BatchNorm statistics stay as they were.",
)
def _ex12_backbone(submitted: dict) -> str:
    backbone = _backbone(submitted["model"])
    refuse_replaced_code(backbone, "model.backbone")
    reference = {
        STAGES[prefix] + name[len(prefix) :]: tensor
        for name, tensor in pretrained_lite0_state().items()
        for prefix in STAGES
        if name.startswith(prefix)
    }
    changed = changed_tensors(backbone, reference)
    if changed:
        raise NotYet(
            f"{len(changed)} of the backbone's {len(reference)} tensors are not the ImageNet "
            f"ones, e.g. {changed[:2]}: start from tl.load_pretrained('efficientnet_lite0') and "
            "do not train the backbone (a random one is not pretrained)"
        )
    trainable = [name for name, p in backbone.named_parameters() if p.requires_grad]
    if trainable:
        raise NotYet(f"the backbone has {len(trainable)} trainable tensors, e.g. {trainable[:2]}")
    return f"{len(reference)} tensors equal to ImageNet's, none trainable"


@EX12.check(
    f"model: mean IoU >= {IOU_FLOOR} on {SCENES} scenes the grader makes itself",
    points=4,
    needs=("model",),
    hint="Train the head on the cached maps: per-pixel cross-entropy, AdamW lr 1e-2, about 20 "
    "epochs of 300 scenes.",
)
def _ex12_iou(submitted: dict) -> str:
    _backbone(submitted["model"])
    predicted, masks = _scores_and_masks(submitted["model"])
    miou, _ = mean_iou(predicted, masks, NUM_CLASSES)
    return at_least(miou, IOU_FLOOR, "mean IoU", f"on {SCENES} new scenes (untrained: ~0.01)")


@EX12.check(
    f"the mean IoU you report matches the grader's measurement (within {TOLERANCE})",
    points=2,
    needs=("model", "miou"),
    hint="Report tl.mean_iou(tl.segment(model, test.images), test.masks, 11)[0] of this model.",
)
def _ex12_reported(submitted: dict) -> str:
    _backbone(submitted["model"])
    predicted, masks = _scores_and_masks(submitted["model"])
    return agrees(submitted["miou"], mean_iou(predicted, masks, NUM_CLASSES)[0], "mean IoU")
