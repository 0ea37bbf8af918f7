"""The floors run catches code newer than a floor: a scratch copy of lesson 00 with one planted
cell calling `torch.accelerator` (new in torch 2.6; pyproject.toml's floor is older) fails under
`.venv-floors`, exactly as `make test-floors` runs lessons, and passes under the newest versions.

`make test-floors` runs this file after building `.venv-floors` (TLCOURSE_FLOORS_PYTHON names its
Python); elsewhere it is skipped, since there is no floors environment to run the copy in.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
FLOORS_PYTHON = os.environ.get("TLCOURSE_FLOORS_PYTHON")
PLANTED = "print(torch.accelerator.is_available())  # planted: torch.accelerator is torch>=2.6"
NEWER_THAN = Version("2.6")  # torch.accelerator's first release

pytestmark = [
    pytest.mark.slow,  # two kernels
    pytest.mark.skipif(not FLOORS_PYTHON, reason="run by `make test-floors` (no floors venv)"),
]


def torch_version(python: str) -> Version:
    ask = "import torch; print(torch.__version__.split('+')[0])"
    out = subprocess.run([python, "-c", ask], capture_output=True, text=True, check=True)
    return Version(out.stdout.strip())


def run_lesson(python: str, notebook: Path) -> subprocess.CompletedProcess:
    """The notebook under nbval with `python`, as `make test-floors` runs lessons."""
    sanitize = str(ROOT / "tests" / "nbval_sanitize.cfg")
    nbval = ["--nbval-lax", "--nbval-current-env", "--nbval-sanitize-with", sanitize]
    command = [python, "-m", "pytest", "-p", "no:cacheprovider", *nbval, "--rootdir", str(ROOT),
               str(notebook)]  # fmt: skip
    env = os.environ | {"TLCOURSE_OFFLINE": "1"}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


def test_floors_run_fails_on_a_planted_api_newer_than_the_torch_floor(tmp_path):
    floor = torch_version(FLOORS_PYTHON)
    assert floor < NEWER_THAN, (
        f"the floors venv has torch {floor}: torch.accelerator exists there, so this plant no "
        f"longer tests anything; plant an API newer than the new floor"
    )
    lesson = json.loads((ROOT / "notebooks" / "00_setup_check.ipynb").read_text(encoding="utf-8"))
    lesson["cells"].append({"cell_type": "code", "execution_count": None, "id": "planted",
                            "metadata": {}, "outputs": [], "source": [PLANTED]})  # fmt: skip
    copy = tmp_path / "00_planted.ipynb"
    copy.write_text(json.dumps(lesson), encoding="utf-8")

    at_floors = run_lesson(FLOORS_PYTHON, copy)
    report = at_floors.stdout[-4000:] + at_floors.stderr[-1000:]
    assert at_floors.returncode == 1, report  # 1: tests failed (not a crash or no tests)
    assert "1 failed" in at_floors.stdout, report  # the planted cell, and only it
    assert "has no attribute 'accelerator'" in at_floors.stdout, report

    if torch_version(sys.executable) >= NEWER_THAN:  # the test's own (newest) environment
        newest = run_lesson(sys.executable, copy)
        assert newest.returncode == 0, newest.stdout[-4000:]  # the plant itself is valid code
