"""Graduated hints (tlcourse/grading/hints.py): the exercise shows Hint 1 (the idea); the grader
shows Hint 2 (the API) after the first failed attempt and Hint 3 (the code) after the second,
for the sections whose objects failed, in `tl.check` and in `python -m tlcourse check`."""

import json
from pathlib import Path

import nbformat
import pytest

import tlcourse as tl
from tlcourse.__main__ import main
from tlcourse.grading.grader import CheckFailed
from tlcourse.grading.hints import next_hints, split_hints

ROOT = Path(__file__).resolve().parent.parent

SOLUTION = """# %% [markdown]
# ## 1. Build `model`
#
# <details><summary>Hint 1 (the idea)</summary>
#
# The idea.
# </details>
#
# <details><summary>Hint 2 (the API)</summary>
#
# `tl.load_pretrained`.
# </details>
#
# <details><summary>Hint 3 (the code)</summary>
#
# ```python
# model = tl.load_pretrained(...)
# ```
# </details>

# %%
### BEGIN SOLUTION: build the model
model = tl.load_pretrained("efficientnet_lite0")
### END SOLUTION

# %% [markdown]
# ## 2. Write `f`
#
# <details><summary>Hint 1 (the idea)</summary>
#
# Another idea.
# </details>
#
# <details><summary>Hint 2 (the API)</summary>
#
# `len`.
# </details>

# %%
def f(x):
    ### BEGIN SOLUTION: return the length
    return len(x)
    ### END SOLUTION


# %% tags=["graded"]
tl.check("ex99", model=model, f=f)
"""


def test_the_exercise_keeps_hint_1_and_the_grader_gets_the_others():
    shown, sections = split_hints(SOLUTION)
    assert shown.count("Hint 1 (the idea)") == 2 and "The idea." in shown
    assert "Hint 2" not in shown.replace("shows Hint 2", "") and "Hint 3 (the code)</" not in shown
    assert "`tl.load_pretrained`." not in shown and "model = tl.load_pretrained(...)" not in shown
    assert shown.count("*Stuck?* Run the graded cell") == 2
    assert [(s["section"], s["objects"], sorted(s["hints"])) for s in sections] == [
        ("1. Build `model`", ["model"], ["2", "3"]),
        ("2. Write `f`", ["f"], ["2"]),
    ]
    assert sections[0]["hints"]["3"] == "```python\nmodel = tl.load_pretrained(...)\n```"


def test_an_unclosed_hint_names_its_section():
    with pytest.raises(ValueError, match="never closed.*Build"):
        split_hints(SOLUTION.replace("# ```\n# </details>", "# ```"))


@pytest.fixture
def hints_here(tmp_path, monkeypatch):
    """A hints.json for the made-up exercise ex99, found in the working folder."""
    _, sections = split_hints(SOLUTION)
    (tmp_path / "hints.json").write_text(json.dumps({"ex99": sections}), encoding="utf-8")
    monkeypatch.chdir(tmp_path)


def test_each_failed_attempt_unlocks_one_level(hints_here):
    assert next_hints("ex99", {"model"}, failed_attempts=0) == []
    first = "\n".join(next_hints("ex99", {"model"}, failed_attempts=1))
    assert "Hint 2 (the API)" in first and "`tl.load_pretrained`." in first
    assert "Hint 3" in first.splitlines()[0]  # says what the next failure shows
    assert "tl.load_pretrained(...)" not in first and "`len`" not in first  # only model's section
    second = "\n".join(next_hints("ex99", {"model"}, failed_attempts=2))
    assert "Hint 3 (the code)" in second and "model = tl.load_pretrained(...)" in second
    assert next_hints("ex99", {"model"}, failed_attempts=7)[1:] == second.splitlines()[1:]
    # a section with only Hint 2 keeps showing it; no match shows every section
    assert "`len`" in "\n".join(next_hints("ex99", {"f"}, failed_attempts=3))
    both = "\n".join(next_hints("ex99", {"unknown"}, failed_attempts=1))
    assert "`tl.load_pretrained`." in both and "`len`" in both


def test_every_exercise_section_hides_hints_2_and_3_until_they_are_earned():
    hints = json.loads((ROOT / "exercises" / "hints.json").read_text(encoding="utf-8"))
    for path in sorted((ROOT / "exercises").glob("[0-9][0-9]_*.py")):
        text = path.read_text(encoding="utf-8")
        assert "Hint 2 (" not in text.replace("shows Hint 2 (the API)", ""), path.name
        assert "Hint 3 (" not in text.replace("another Hint 3 (the code)", ""), path.name
        solution = (ROOT / "solutions" / path.name).read_text(encoding="utf-8")
        exercise = f"ex{path.name[:2]}"
        assert len(hints[exercise]) == solution.count("Hint 2 (the API)"), exercise
        for section in hints[exercise]:
            assert section["objects"], (exercise, section["section"])  # tied to graded objects
            assert sorted(section["hints"]) == ["2", "3"], (exercise, section["section"])


@pytest.fixture
def private_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_PROGRESS", str(tmp_path / "progress.json"))
    monkeypatch.setenv("TLCOURSE_CHECK_TIMEOUT", "30")


def wrong_extractor(model, num_classes):
    return model  # forgets to freeze and to replace the head


def test_tl_check_shows_hint_2_then_hint_3(private_progress, capsys):
    model = tl.load_pretrained("efficientnet_lite0")
    outputs = []
    for _ in range(2):
        with pytest.raises(CheckFailed):
            tl.check("ex02", make_feature_extractor=wrong_extractor, model=model)
        outputs.append(capsys.readouterr().out)
    assert "Hint 2 (the API)" in outputs[0] and "Hint 3 (the code)" not in outputs[0]
    assert "Next hints, unlocked by 2 failed attempts" in outputs[1]
    assert "Hint 3 (the code)" in outputs[1] and "```python" in outputs[1]


@pytest.mark.slow  # a Jupyter kernel
def test_the_runner_shows_the_next_hint_too(private_progress, tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    sources = (
        "import tlcourse as tl",
        "def make_feature_extractor(model, num_classes):\n    return model",
        'model = tl.load_pretrained("efficientnet_lite0")',
        'tl.check("ex02", make_feature_extractor=make_feature_extractor, model=model)',
    )
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    nb.cells[-1].metadata["tags"] = ["graded"]
    path = tmp_path / "02_mine.ipynb"
    nbformat.write(nb, path)
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "Next hints, unlocked by 1 failed attempt" in out and "Hint 2 (the API)" in out, out
