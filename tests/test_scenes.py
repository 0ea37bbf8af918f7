"""The scene maker of lesson 12: exact boxes, disjoint sources, seeded."""

import numpy as np
import torch
from torchvision.ops import masks_to_boxes

from tlcourse.data import load_animals
from tlcourse.scenes import load_scenes, make_scenes


def _small():
    images, labels, _ = load_animals()
    return images[:60], labels[:60]


def test_boxes_are_the_masks_exact_extents_and_labels_match_the_class_mask():
    images, labels = _small()
    scenes = make_scenes(images, labels, count=20, image_size=64, scale=(16, 32), seed=0)
    assert scenes.images.shape == (20, 3, 64, 64) and scenes.masks.shape == (20, 64, 64)
    assert -1 <= scenes.images.min() and scenes.images.max() <= 1
    for n, target in enumerate(scenes.targets):
        k = len(target["labels"])
        assert 1 <= k <= 3 and target["boxes"].shape == (k, 4)
        assert scenes.instances[n].max() == k
        instance_masks = torch.stack([scenes.instances[n] == i + 1 for i in range(k)])
        # torchvision's masks_to_boxes gives the last column/row itself; ours is one past it
        expected = masks_to_boxes(instance_masks) + torch.tensor([0, 0, 1, 1])
        assert torch.equal(target["boxes"], expected)
        for i in range(k):  # every pixel of an animal carries its class in the class mask
            classes = scenes.masks[n][instance_masks[i]].unique()
            assert classes.tolist() == [target["labels"][i].item()]
            assert target["labels"][i] == labels[scenes.sources[n][i]] + 1
        assert torch.equal(scenes.masks[n] > 0, scenes.instances[n] > 0)


def test_the_splits_draw_on_disjoint_silhouettes():
    scenes = load_scenes({"train": 30, "val": 10, "test": 20}, image_size=64, scale=(16, 32))
    used = {name: set(np.concatenate(s.sources).tolist()) for name, s in scenes.items()}
    assert used["train"] and used["val"] and used["test"]
    assert not used["train"] & used["test"] and not used["train"] & used["val"]
    assert not used["val"] & used["test"]
    images, labels, _ = load_animals()
    first = scenes["test"].targets[0]
    assert first["labels"].tolist() == [labels[i] + 1 for i in scenes["test"].sources[0]]


def test_same_seed_same_scenes_other_seed_other_scenes():
    images, labels = _small()
    a, b = (
        make_scenes(images, labels, count=5, image_size=64, scale=(16, 32), seed=3) for _ in "ab"
    )
    c = make_scenes(images, labels, count=5, image_size=64, scale=(16, 32), seed=4)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert all(torch.equal(x["boxes"], y["boxes"]) for x, y in zip(a.targets, b.targets))
    assert not torch.equal(a.images, c.images)
