"""tl.segmentation (lesson 12, exercise 12): mean IoU against scikit-learn, shapes, shared
weights, plain errors; tl.show_scenes draws what it is given; load_scenes' pool."""

import numpy as np
import pytest
import torch
import torchvision
from sklearn.metrics import jaccard_score

import tlcourse as tl
from tlcourse.data import load_animals
from tlcourse.scenes import make_scenes


def test_mean_iou_equals_scikit_learns_jaccard_per_class():
    generator = torch.Generator().manual_seed(0)
    masks = torch.randint(0, 4, (5, 16, 16), generator=generator)
    predicted = torch.where(torch.rand(5, 16, 16, generator=generator) < 0.6, masks, 2)
    miou, per_class = tl.mean_iou(predicted, masks, num_classes=4)
    expected = jaccard_score(masks.flatten(), predicted.flatten(), labels=[1, 2, 3], average=None)
    np.testing.assert_allclose(per_class, expected)
    assert miou == pytest.approx(expected.mean())


def test_mean_iou_is_one_for_a_perfect_prediction_and_refuses_mismatched_shapes():
    masks = torch.tensor([[0, 1, 2, 2]])
    assert tl.mean_iou(masks, masks, 3)[0] == 1.0
    with pytest.raises(ValueError, match="predicted"):
        tl.mean_iou(masks[:, :3], masks, 3)


def test_lite0_maps_share_the_classifiers_layers_and_give_stride_8_and_16():
    model = tl.load_pretrained("efficientnet_lite0")
    backbone = tl.Lite0Maps(model)
    assert backbone.low[0] is model.features[0] and backbone.high[-1] is model.features[5]
    segmenter = tl.Segmenter(backbone, tl.segmentation_head(num_classes=11)).eval()
    with torch.no_grad():
        maps = backbone(torch.zeros(2, 3, 64, 64))
        scores = segmenter(torch.zeros(2, 3, 64, 64))
    assert maps["low"].shape == (2, 40, 8, 8) and maps["high"].shape == (2, 112, 4, 4)
    assert scores.shape == (2, 11, 64, 64)
    assert tl.segment(segmenter, torch.zeros(3, 3, 64, 64)).shape == (3, 64, 64)


def test_cache_maps_equals_the_backbone_in_eval_mode():
    backbone = tl.Lite0Maps(tl.load_pretrained("efficientnet_lite0"))
    images = torch.randn(6, 3, 32, 32)
    cached = tl.cache_maps(backbone.train(), images, batch_size=4)
    assert not backbone.training  # cached in eval mode: BatchNorm statistics untouched
    with torch.no_grad():
        direct = backbone(images)
    for name in ("low", "high"):
        torch.testing.assert_close(cached[name], direct[name])


def test_plain_errors_for_a_wrong_backbone_or_too_few_classes():
    with pytest.raises(TypeError, match="EfficientNet-Lite"):
        tl.Lite0Maps(torchvision.models.resnet18())
    with pytest.raises(ValueError, match="num_classes=1: need at least 2"):
        tl.segmentation_head(num_classes=1)


def test_show_scenes_draws_a_box_and_a_label_per_target():
    scenes = make_scenes(*load_animals()[:2], count=3, image_size=64, scale=(16, 32), seed=0)
    figure = tl.show_scenes(scenes.images, scenes.masks, scenes.targets, scenes.classes)
    boxes = sum(len(t["labels"]) for t in scenes.targets)
    assert sum(len(ax.patches) for ax in figure.axes) == boxes
    names = [text.get_text() for ax in figure.axes for text in ax.texts]
    labels = [int(c) for target in scenes.targets for c in target["labels"]]
    assert sorted(names) == sorted(scenes.classes[c] for c in labels)


def test_load_scenes_draws_only_from_the_pool_and_refuses_too_small_a_pool():
    pool = np.arange(0, 10_000, 7)
    scenes = tl.load_scenes({"train": 20, "test": 10}, image_size=64, scale=(16, 32), pool=pool)
    used = {int(s) for split in scenes.values() for picked in split.sources for s in picked}
    assert used <= set(pool.tolist())
    with pytest.raises(ValueError, match="ask for fewer scenes"):
        tl.load_scenes({"train": 20}, pool=np.arange(30))
