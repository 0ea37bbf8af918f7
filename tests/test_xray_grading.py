"""Exercise 9 graded on the learner's real X-rays: TLCOURSE_XRAY_DIR in the public set's layout.

No real X-rays exist offline, so each test writes a folder in the exact layout of "Chest X-Ray
Images (Pneumonia)" (chest_xray/{train,val,test}/{NORMAL,PNEUMONIA}/*.jpeg) from the stand-in's
silhouettes, with what real downloads hold (tests/xray_folder.py): per-patient file names, grey
and RGB JPEGs of mixed sizes, stray .DS_Store files, a 16-bit PNG and an unreadable file. The
grader must load it itself and re-measure there.
"""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_grading import (
    ex09_objects,
    grade,
    highest_threshold_reaching,
    lite0_frozen,
    status_of,
    train_head,
)
from torch import nn
from torch.utils.data import DataLoader, Subset
from xray_folder import write_xray_layout

import tlcourse as tl
from tlcourse.grading import CheckFailed
from tlcourse.imagefolder import patient_id, split_by_patient

pytestmark = pytest.mark.slow  # kernels, trainings or subprocesses: not in `make check`

ROOT = Path(__file__).resolve().parents[1]
SOLUTION = ROOT / "solutions" / "09_medical_case_study.ipynb"
BLANK = ROOT / "exercises" / "09_medical_case_study.ipynb"


@pytest.fixture(autouse=True)
def private_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_PROGRESS", str(tmp_path / "progress.json"))
    monkeypatch.delenv("TLCOURSE_SUBMIT_DIR", raising=False)


@pytest.fixture(scope="module")
def xray_dir(tmp_path_factory) -> Path:
    return write_xray_layout(tmp_path_factory.mktemp("xray"))


@pytest.fixture(scope="module")
def xray_run(xray_dir):
    """The solution's steps on the real-layout folder, loaded as the solution loads it."""
    transform = tl.transforms_for("efficientnet_lite0", image_size=tl.grading.IMAGE_SIZE)
    train = tl.load_imagefolder(xray_dir / "train", transform)
    test = tl.load_imagefolder(xray_dir / "test", transform)
    assert len(train.skipped) == 0 and len(test.skipped) == 1  # the broken JPEG
    targets = np.array(train.targets)
    paths = [path for path, _ in train.samples]
    parts = split_by_patient(paths, targets, val_fraction=0.2)  # as the solution and the grader
    patients = {k: {patient_id(paths[i]) for i in index} for k, index in parts.items()}
    assert len(patients["val"]) < len(parts["val"])  # several images per patient: a real test
    assert patients["train"].isdisjoint(patients["val"])
    model = lite0_frozen(2)
    features = tl.extract_features(model, DataLoader(Subset(train, parts["train"]), 120))
    train_head(model, features, loss_fn=nn.CrossEntropyLoss(tl.class_weights(features.tensors[1])))

    def p_of(dataset):
        return tl.predict(model, DataLoader(dataset, batch_size=160))[:, 1].numpy()

    val = (targets[parts["val"]], p_of(Subset(train, parts["val"])))
    return model, val, (np.array(test.targets), p_of(test))


def report_of(**objects):
    try:
        return tl.check("ex09", **objects)
    except CheckFailed as failure:
        return failure.report


def test_solution_objects_pass_on_real_layout_and_the_report_names_the_folder(
    xray_run, xray_dir, monkeypatch
):
    monkeypatch.setenv("TLCOURSE_XRAY_DIR", str(xray_dir))
    objects = ex09_objects(xray_run) | {"image_size": tl.grading.IMAGE_SIZE}
    report = report_of(**objects)
    assert report.passed, [(r.check.title, r.detail) for r in report.results]
    details = " ".join(r.detail for r in report.results)
    assert f"your X-rays in {xray_dir}" in details and "160 test X-rays" in details  # 1 skipped


def test_wrong_models_and_thresholds_fail_on_real_layout(xray_run, xray_dir, monkeypatch):
    monkeypatch.setenv("TLCOURSE_XRAY_DIR", str(xray_dir))
    good = ex09_objects(xray_run)
    untrained = good | {"model": lite0_frozen(2)}  # "did nothing": a fresh head, numbers pasted
    statuses = grade("ex09", **untrained)
    assert status_of(statuses, "you report match") == "failed", statuses
    _, _, (test_labels, test_p) = xray_run
    tuned = ex09_objects(xray_run, threshold=highest_threshold_reaching(test_labels, test_p))
    assert status_of(grade("ex09", **tuned), "not on the test set") == "failed"
    everyone = ex09_objects(xray_run, rule=lambda labels, p: float(np.min(p)) / 2)
    assert status_of(grade("ex09", **everyone), "specificity (NORMAL") == "failed"


def tiny_model() -> nn.Module:
    """Two outputs from the mean colour: enough for the grader to reach the folder checks."""
    torch.manual_seed(0)
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(3, 2))


@pytest.mark.parametrize(
    "damage, message",
    [
        ("no-test", "does not exist"),
        ("renamed", "want ['NORMAL', 'PNEUMONIA']"),
        ("empty-class", "class folder(s) without readable images"),
    ],
)
def test_bad_xray_folders_get_clear_messages(tmp_path, monkeypatch, damage, message):
    root = write_xray_layout(tmp_path)
    if damage == "no-test":
        for path in sorted((root / "test").rglob("*"), reverse=True):
            path.rmdir() if path.is_dir() else path.unlink()
        (root / "test").rmdir()
    elif damage == "renamed":
        for split in ("train", "test"):
            (root / split / "NORMAL").rename(root / split / "healthy")
    else:
        for path in (root / "test" / "PNEUMONIA").iterdir():
            path.unlink()
    monkeypatch.setenv("TLCOURSE_XRAY_DIR", str(root))
    objects = {"model": tiny_model(), "choose_threshold": highest_threshold_reaching,
               "threshold": 0.5, "sensitivity": 0.9, "specificity": 0.7}  # fmt: skip
    report = report_of(**objects)
    assert not report.passed
    details = [r.detail for r in report.results if not r.passed]
    assert any(message in d and "TLCOURSE_XRAY_DIR=" in d for d in details), details


def test_check_command_passes_the_solution_and_fails_the_blank_exercise(xray_dir, tmp_path):
    """What the learner runs: `TLCOURSE_XRAY_DIR=... python -m tlcourse check <notebook>`."""
    env = os.environ | {
        "TLCOURSE_XRAY_DIR": str(xray_dir),
        "TLCOURSE_PROGRESS": str(tmp_path / "progress.json"),
    }
    env.pop("TLCOURSE_SUBMIT_DIR", None)
    runs = {
        path: subprocess.run(
            [sys.executable, "-m", "tlcourse", "check", str(path)],
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
            cwd=ROOT,
        )  # fmt: skip
        for path in (SOLUTION, BLANK)
    }
    solution, blank = runs[SOLUTION], runs[BLANK]
    assert solution.returncode == 0, solution.stdout[-3000:] + solution.stderr[-2000:]
    assert "real chest X-rays from" in solution.stdout or "10/10" in solution.stdout
    assert blank.returncode == 1, blank.stdout[-3000:]
