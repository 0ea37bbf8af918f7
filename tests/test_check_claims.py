"""tools/check_claims.py (run by `make lint`): a number in a lesson's prose that no nearby code
prints, asserts or computes fails the lint, and so does a development note."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "check_claims.py"
spec = importlib.util.spec_from_file_location("check_claims", SCRIPT)
check_claims = importlib.util.module_from_spec(spec)
sys.modules["check_claims"] = check_claims  # dataclasses look their module up
spec.loader.exec_module(check_claims)

LESSON = """# ---
# jupyter:
#   kernelspec:
#     name: python3
# ---

# %% [markdown]
# # 42 · A planted lesson
# We train on 300 images at 96 px, as lesson 03 did.

# %%
IMAGE_SIZE = 96
images = 300
accuracy = 0.9
print(f"accuracy {accuracy:.3f}")
assert accuracy > 0.75  # 5 seeds: 0.88-0.90 (spread 0.02)

# %% [markdown]
# ## 2. What the numbers say
# The head reaches 0.9 (printed above), well above the floor of 0.75 that the assert checks.
# {planted}
# Names are not claims: ResNet-18, VGG16, `Linear(1280, 10)`, fp16, section 4, in 2019,
# doi:10.17632/x.2.
#
# **Try next:** 30 images per class instead of 300.
"""


def plant(tmp_path: Path, sentence: str) -> Path:
    path = tmp_path / "42_planted.py"
    path.write_text(LESSON.replace("{planted}", sentence), encoding="utf-8")
    return path


def test_supported_numbers_pass(tmp_path):
    path = plant(tmp_path, "Five seeds moved it by 0.02 at most.")
    assert check_claims.check_notebook(path) == []


def test_a_planted_number_fails_with_file_line_and_number(tmp_path):
    path = plant(
        tmp_path, "A random-weight ResNet-18 reached 0.33 here (not run in this notebook)."
    )
    findings = check_claims.check_notebook(path)
    assert [(f.line, f.number) for f in findings] == [(21, "0.33")]
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert f"{path}:21: 0.33" in result.stdout


def test_a_development_note_fails(tmp_path):
    path = plant(tmp_path, "On this machine it is fast.")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), str(path)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "this machine" in result.stdout


def test_the_allowlist_absorbs_one_finding_even_when_lines_shift(tmp_path):
    finding = check_claims.Finding("notebooks/42.py", 30, "0.33", "text")
    left, unused = check_claims.apply_allowlist([finding], ["notebooks/42.py:21:0.33"])
    assert left == [] and unused == []
    left, unused = check_claims.apply_allowlist([finding, finding], ["notebooks/42.py:21:0.33"])
    assert left == [finding]
    left, unused = check_claims.apply_allowlist([], ["notebooks/42.py:21:0.33"])
    assert unused == ["notebooks/42.py:21:0.33"]


def test_the_course_passes():
    result = subprocess.run(
        [sys.executable, str(SCRIPT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout
