"""Exercise 12's grader: the solution's recipe passes; an untrained head, a random backbone
passed off as pretrained, a backbone that trained, a pasted number, a model that is not a
segmenter and a replaced forward each fail with a message that names what is wrong."""

import copy

import pytest
import torch
import torch.nn.functional as F
from test_grading import detail, grade, private_progress  # noqa: F401 (autouse fixture)

import tlcourse as tl
from tlcourse.efficientnet_lite import efficientnet_lite
from tlcourse.grading.checks.ex12 import IOU_FLOOR, NUM_CLASSES

pytestmark = pytest.mark.slow  # trains a head on 300 scenes' maps (seconds)

BACKBONE, IOU, REPORTED, SHAPE = "model.backbone", "mean IoU >=", "you report", "scores for every"


def train_head(backbone: torch.nn.Module, train, epochs: int = 20, seed: int = 0):
    """The solution's recipe: the head trained on the backbone's cached maps."""
    tl.seed_everything(seed)
    cached = tl.cache_maps(backbone, train.images)
    masks = F.interpolate(train.masks[:, None].float(), size=24, mode="nearest")[:, 0].long()
    head = tl.segmentation_head(NUM_CLASSES)
    optimizer = torch.optim.AdamW(head.parameters(), lr=1e-2, weight_decay=1e-4)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for batch in torch.randperm(len(train), generator=generator).split(32):
            scores = head({name: m[batch] for name, m in cached.items()})
            scores = F.interpolate(scores, size=(24, 24), mode="bilinear", align_corners=False)
            loss = F.cross_entropy(scores, masks[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return head


@pytest.fixture(scope="module")
def scenes():
    return tl.grading.practice_scenes({"train": 300, "test": 100})


@pytest.fixture(scope="module")
def solved(scenes):
    backbone = tl.Lite0Maps(tl.load_pretrained("efficientnet_lite0")).requires_grad_(False)
    model = tl.Segmenter(backbone, train_head(backbone, scenes["train"]))
    test = scenes["test"]
    miou, _ = tl.mean_iou(tl.segment(model, test.images), test.masks, NUM_CLASSES)
    return {"model": model, "miou": miou}


def test_the_solutions_recipe_passes(solved):
    statuses = grade("ex12", **solved)
    assert set(statuses.values()) == {"passed"}, statuses


def test_practice_scenes_use_no_silhouette_of_the_graders_pool(scenes):
    from tlcourse.grading.data import PRACTICE_PER_CLASS, _by_class

    _, index = _by_class()
    grader = set().union(*(set(i[PRACTICE_PER_CLASS:].tolist()) for i in index.values()))
    used = {int(s) for split in scenes.values() for picked in split.sources for s in picked}
    assert used and not used & grader


def test_an_untrained_head_fails_the_iou_floor(solved):
    model = tl.Segmenter(solved["model"].backbone, tl.segmentation_head(NUM_CLASSES))
    message = detail("ex12", IOU, model=model, miou=0.0)
    assert f"needs >= {IOU_FLOOR:g}" in message, message


def test_a_random_backbone_passed_off_as_pretrained_fails(solved, scenes):
    tl.seed_everything(0)
    backbone = tl.Lite0Maps(efficientnet_lite(0)).requires_grad_(False)
    model = tl.Segmenter(backbone, train_head(backbone, scenes["train"], epochs=2))
    message = detail("ex12", BACKBONE, model=model, miou=solved["miou"])
    assert "not the ImageNet ones" in message and "random one is not pretrained" in message


def test_a_backbone_left_trainable_or_changed_fails(solved):
    model = copy.deepcopy(solved["model"])
    model.backbone.requires_grad_(True)
    assert "trainable tensors" in detail("ex12", BACKBONE, **solved | {"model": model})
    with torch.no_grad():
        model.backbone.high[-1][0].block[0][0].weight.mul_(1.01)  # one conv trained a little
    model.backbone.requires_grad_(False)
    assert "not the ImageNet ones" in detail("ex12", BACKBONE, **solved | {"model": model})


def test_a_pasted_number_fails(solved):
    message = detail("ex12", REPORTED, **solved | {"miou": 0.95})
    assert "you report mean IoU 0.950 but the grader measures" in message, message


def test_a_model_that_is_not_a_segmenter_fails_with_the_fix(solved):
    classifier = tl.load_pretrained("efficientnet_lite0")
    message = detail("ex12", SHAPE, model=classifier, miou=0.3)
    assert "tl.Segmenter(backbone, head)" in message, message
    wrong = tl.Segmenter(solved["model"].backbone, tl.segmentation_head(3))  # 3 classes, not 11
    assert "want (100, 11, 96, 96)" in detail("ex12", SHAPE, model=wrong, miou=0.3)


def test_a_forward_replaced_on_the_instance_is_refused(solved):
    model = copy.deepcopy(solved["model"])
    model.head.forward = lambda maps: torch.zeros(len(maps["low"]), NUM_CLASSES, 12, 12)
    assert "replaced on the instance" in detail("ex12", IOU, **solved | {"model": model})


def test_a_do_nothing_submission_fails_overall(solved):
    """The exercise's setup run, the work skipped: the pretrained backbone with a head that never
    trained, and the solution's number pasted as the report."""
    model = tl.Segmenter(solved["model"].backbone, tl.segmentation_head(NUM_CLASSES))
    statuses = grade("ex12", model=model, miou=solved["miou"])
    failed = [title for title, status in statuses.items() if status != "passed"]
    assert any(IOU in title for title in failed) and any(REPORTED in t for t in failed), statuses
