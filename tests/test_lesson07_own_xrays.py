"""Lesson 07 on the learner's own X-rays: TLCOURSE_XRAY_DIR at a folder in the public layout.

The lesson's section 5 runs on whatever folder the learner points it at, so its asserts may only
claim what holds on any data of that shape. The stand-in run (no TLCOURSE_XRAY_DIR) is where the
lesson's measured claims were calibrated; here the same notebook runs under nbval, as CI runs
lessons, on a generated folder in the public set's layout (tests/xray_folder.py: per-patient
file names, grey and RGB JPEGs of mixed sizes, .DS_Store files, a 16-bit PNG, a truncated JPEG)
whose pictures are easy, so the model makes fewer mistakes than the most-wrong gallery shows.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from xray_folder import easy_xrays, write_xray_layout

pytestmark = pytest.mark.slow  # kernels, trainings or subprocesses: not in `make check`

ROOT = Path(__file__).resolve().parents[1]
LESSON = ROOT / "notebooks" / "07_your_own_data.ipynb"
GALLERY = 8  # the lesson's most-wrong gallery shows this many test images


def run_under_nbval(notebook: Path, xray_dir: Path, printed: Path) -> subprocess.CompletedProcess:
    """`pytest --nbval-lax` on the notebook with TLCOURSE_XRAY_DIR set; what its cells print is
    appended to `printed` (tests/nbval_outputs.py)."""
    path = os.pathsep.join(filter(None, [str(ROOT / "tests"), os.environ.get("PYTHONPATH")]))
    env = os.environ | {
        "TLCOURSE_XRAY_DIR": str(xray_dir),
        "TLCOURSE_OFFLINE": "1",
        "NBVAL_OUTPUTS": str(printed),
        "PYTHONPATH": path,
    }
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "nbval_outputs",
               "--nbval-lax", "--nbval-current-env", "--nbval-sanitize-with",
               str(ROOT / "tests" / "nbval_sanitize.cfg"), str(notebook)]  # fmt: skip
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_lesson07_runs_on_own_xrays_where_the_model_makes_fewer_mistakes_than_the_gallery(
    tmp_path,
):
    # 3 PNEUMONIA test pictures with clear lungs: the only mistakes an easy folder leaves
    source = easy_xrays({"train": (30, 60), "test": (15, 30)}, unmarked={"test": 3})
    xray_dir = write_xray_layout(tmp_path, source)
    printed = tmp_path / "printed.txt"
    run = run_under_nbval(LESSON, xray_dir, printed)
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    text = printed.read_text(encoding="utf-8")
    assert f"chest X-rays from {xray_dir}" in text and "STAND-IN" not in text  # the real-data path
    assert "SKIPPED 1 unreadable files" in text  # the truncated JPEG, listed, not a crash
    # split by patient: the folder has 1-3 images per patient, none of them on both sides
    split = re.search(r"train (\d+) images of (\d+) patients, val (\d+) images of (\d+) patients "
                      r"\(none in both\)", text)  # fmt: skip
    assert split, text[-3000:]
    train_images, train_patients, val_images, val_patients = map(int, split.groups())
    assert train_images + val_images == 91 and val_patients < val_images, split[0]  # + 16-bit PNG
    assert 0.1 < val_images / 91 < 0.3, split[0]  # about one fifth
    wrong = re.search(r"the model gets (\d+) of (\d+) test images wrong", text)
    assert wrong, text[-3000:]
    mistakes, images = int(wrong[1]), int(wrong[2])
    assert images == 45 and mistakes < GALLERY, wrong[0]  # the case the gallery's asserts missed
