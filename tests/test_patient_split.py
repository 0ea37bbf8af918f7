"""split_by_patient: the validation split for real X-rays keeps each patient on one side.

The public "Chest X-Ray Images (Pneumonia)" set names files after patients (person12_virus_3.jpeg,
IM-0048-0001.jpeg, NORMAL2-IM-0427-0001.jpeg; tests/xray_folder.py writes the same names). Lesson
07, solutions/09 and the ex09 grader split with this one function.
"""

from pathlib import Path

import numpy as np
import pytest
from xray_folder import patient_names

import tlcourse as tl
from tlcourse.imagefolder import patient_id, split_by_patient


def public_layout(normal: int, pneumonia: int, seed: int = 0) -> tuple[list[str], np.ndarray]:
    """Paths and labels of a train/ folder in the public naming, 1-3 images per patient."""
    rng = np.random.default_rng(seed)
    names0, next_patient = patient_names("NORMAL", normal, 1, rng)
    names1, _ = patient_names("PNEUMONIA", pneumonia, next_patient, rng)
    paths = [f"train/NORMAL/{n}" for n in names0] + [f"train/PNEUMONIA/{n}" for n in names1]
    return paths, np.r_[np.zeros(normal, dtype=int), np.ones(pneumonia, dtype=int)]


def test_patient_id_reads_the_public_names():
    assert patient_id("chest_xray/train/PNEUMONIA/person12_virus_3.jpeg") == "person12"
    assert patient_id(Path("person12_bacteria_7.jpeg")) == "person12"
    assert patient_id("person120_bacteria_7.jpeg") == "person120"  # not person12
    assert patient_id("train/NORMAL/IM-0048-0001.jpeg") == "IM-0048"
    assert patient_id("NORMAL2-IM-0427-0001.jpeg") == "NORMAL2-IM-0427"
    # no patient in the name: each image is its own patient, even with the same name elsewhere
    assert patient_id("train/NORMAL/00012.png") != patient_id("train/PNEUMONIA/00012.png")
    assert patient_id("train/PNEUMONIA/person_16bit.png") == "train/PNEUMONIA/person_16bit.png"


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_no_patient_on_both_sides_and_the_class_mix_is_kept(seed):
    paths, labels = public_layout(300, 900, seed=seed)
    patients = np.array([patient_id(p) for p in paths])
    assert len(set(patients)) < len(paths) / 1.5  # several images per patient: a real test
    parts = split_by_patient(paths, labels, seed=seed)
    train, val = parts["train"], parts["val"]
    assert set(patients[train]).isdisjoint(patients[val])
    assert sorted(np.r_[train, val]) == list(range(len(paths)))  # every image, once
    assert 0.15 < len(val) / len(paths) < 0.25  # about one fifth
    assert abs(labels[val].mean() - 0.75) < 0.05  # stratified: 1 : 3 like the folder
    # a plain image-by-image split of the same folder puts patients on both sides
    plain = tl.stratified_split(labels, {"train": len(labels) - 240, "val": 240}, seed=seed)
    assert not set(patients[plain["train"]]).isdisjoint(patients[plain["val"]])


def test_one_image_per_patient_gives_the_image_split_unchanged():
    # the offline stand-in: file names carry no patient, so its split (and numbers) stay as before
    labels = np.r_[np.zeros(100, dtype=int), np.ones(300, dtype=int)]
    paths = [
        f"train/{'NORMAL' if y == 0 else 'PNEUMONIA'}/{i:05d}.png" for i, y in enumerate(labels)
    ]
    parts = split_by_patient(paths, labels)
    before = tl.stratified_split(labels, {"train": 320, "val": 80})
    assert all(np.array_equal(parts[k], before[k]) for k in ("train", "val"))
    keep = list(range(60)) + list(range(100, 280))  # exercise 9's stand-in: 60 : 180
    sixty = split_by_patient([paths[i] for i in keep], labels[keep])
    assert len(sixty["val"]) == 48  # 20 % of 240, as stratified_split(n - n // 5, n // 5)


def test_bad_input_is_refused():
    with pytest.raises(ValueError, match="labels"):
        split_by_patient(["a.png", "b.png"], [0])
    with pytest.raises(ValueError, match="val_fraction"):
        split_by_patient(["a.png", "b.png"], [0, 1], val_fraction=1.5)
