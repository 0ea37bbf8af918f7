"""Offline data loads safely (restricted unpickler), stratified splits, ImageFolder round trip."""

import pickle

import numpy as np
import pytest
import torch
from torchvision import datasets

import tlcourse as tl
from tlcourse.data import ANIMAL_CLASSES, load_digits, load_numpy_pickle, resize_once


class RunsCode:
    def __reduce__(self):
        return (print, ("this pickle runs code",))


def test_animals_are_real_balanced_silhouettes():
    images, labels, classes = tl.load_animals()
    assert images.shape == (10_000, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [1000] * 10 and classes[0] == "Bear"
    assert images.max() == 255 and 0.05 < (images > 127).mean() < 0.6  # white shapes on black


def test_restricted_unpickler_refuses_code(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(RunsCode()))
    with pytest.raises(pickle.UnpicklingError, match="refusing to load builtins.print"):
        load_numpy_pickle(path)
    good = tmp_path / "good.pkl"
    good.write_bytes(pickle.dumps(np.arange(6).reshape(2, 3)))
    assert load_numpy_pickle(good).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_stratified_split_is_disjoint_balanced_and_seeded():
    labels = np.repeat(np.arange(4), 50)
    splits = tl.stratified_split(labels, {"train": 100, "val": 40, "test": 60}, seed=0)
    assert [len(v) for v in splits.values()] == [100, 40, 60]
    assert len(set(np.concatenate(list(splits.values())))) == 200
    assert np.bincount(labels[splits["train"]]).tolist() == [25] * 4
    again = tl.stratified_split(labels, {"train": 100, "val": 40, "test": 60}, seed=0)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)
    with pytest.raises(ValueError, match="asked for 300"):
        tl.stratified_split(labels, {"train": 300})


def test_load_splits_gives_normalised_3_channel_tensors():
    splits = tl.load_splits("animals", {"train": 50, "test": 30}, image_size=64)
    image, label = splits["train"][0]
    assert image.shape == (3, 64, 64) and image.dtype == torch.float32
    assert -1.0 <= image.min() < 0 < image.max() <= 1.0  # Lite normalisation: [-1, 1]
    assert isinstance(label, int) and splits["test"].classes == ANIMAL_CLASSES
    augmented = tl.load_splits("animals", {"train": 50}, image_size=64, augment=True)["train"]
    assert not torch.equal(augmented[0][0], augmented[0][0])  # random each time


@pytest.mark.parametrize(("size", "model"), [(96, "efficientnet_lite0"), (20, "resnet18")])
def test_resized_once_splits_yield_the_same_tensors_as_resizing_every_time(size, model):
    split = tl.load_splits("animals", {"test": 40}, image_size=size, model_or_name=model)["test"]
    images, labels, classes = tl.load_animals()
    assert split.images.shape[1:] == (size, size)
    originals = images[tl.stratified_split(labels, {"test": 40}, seed=0)["test"]]
    per_epoch = tl.ImageArrayDataset(originals, split.labels, classes, split.transform)
    for index in range(len(split)):
        assert torch.equal(split[index][0], per_epoch[index][0])
    rgb = np.stack([originals[:3]] * 3, axis=-1)  # (3, 28, 28, 3): the colour path
    assert resize_once(rgb, size).shape == (3, size, size, 3)
    assert np.array_equal(resize_once(rgb, size)[..., 0], resize_once(originals[:3], size))


def test_imagenet_normalisation_for_torchvision_models():
    transform = tl.transforms_for("resnet18", image_size=32)
    white = transform(np.full((40, 40, 3), 255, dtype=np.uint8))
    assert torch.allclose(
        white[:, 0, 0],
        (1 - torch.tensor(tl.data.IMAGENET_MEAN)) / torch.tensor(tl.data.IMAGENET_STD),
    )


def test_imagefolder_round_trip(tmp_path):
    images, labels, classes = tl.load_animals()
    pick = np.arange(0, 10_000, 500)  # 2 images of each class
    folder = tl.write_imagefolder(tmp_path, images[pick], labels[pick], classes, split="train")
    dataset = datasets.ImageFolder(folder)
    assert dataset.classes == sorted(classes) and len(dataset) == 20
    assert tl.write_imagefolder(tmp_path, images[:3], labels[:3], classes, "val").name == "val"
    assert datasets.ImageFolder(tmp_path / "val").classes == ["Bear"]  # no empty class folders
    image, label = dataset[0]
    assert dataset.classes[label] == "Bear" and np.array_equal(np.asarray(image)[..., 0], images[0])


def test_dataset_validation():
    images = np.zeros((3, 8, 8), dtype=np.uint8)
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        tl.ImageArrayDataset(images, np.array([0, 1]), ["a", "b"])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\).*found \[5\]"):
        tl.ImageArrayDataset(images, np.array([0, 1, 5]), ["a", "b"])
    with pytest.raises(ValueError, match="unknown dataset 'cifar'"):
        tl.load_splits("cifar")


def test_class_weights_and_balanced_sampler():
    labels = np.array([0] * 90 + [1] * 10)
    assert tl.class_weights(labels).tolist() == pytest.approx([100 / 180, 100 / 20])
    drawn = np.array(list(tl.balanced_sampler(labels, seed=0)))
    assert 0.35 < (labels[drawn] == 1).mean() < 0.65  # the 10 % class is now about half
    with pytest.raises(ValueError, match=r"classes \[2\] have no samples"):
        tl.class_weights(labels, num_classes=3)


def test_loaders_with_workers_repeat_exactly():
    splits = {
        "train": tl.load_splits("animals", {"train": 40}, image_size=32, augment=True)["train"]
    }

    def first_batch():
        return next(iter(tl.make_loaders(splits, batch_size=8, num_workers=2, seed=3)["train"]))

    (a, la), (b, lb) = first_batch(), first_batch()
    assert torch.equal(a, b) and torch.equal(la, lb)


def test_digits_and_photos_are_available_offline():
    images, labels, classes = load_digits()
    assert images.shape == (5000, 28, 28) and len(classes) == 10
    photos = tl.sample_photos()
    assert {"chelsea", "coffee", "rocket"} <= set(photos) and photos["coffee"].shape[-1] == 3
