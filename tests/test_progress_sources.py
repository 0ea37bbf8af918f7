"""Progress counts the learner's own attempts; grading a notebook runs its code (and says so)."""

import json
import time
from pathlib import Path

import pytest
from test_exercises import notebook_with
from test_grading import RIGHT as RIGHT_ANSWERS_OF_EX10

import tlcourse as tl
from tlcourse.__main__ import main
from tlcourse.grading import CheckFailed, format_progress, load_progress
from tlcourse.grading.progress import is_solution

pytestmark = pytest.mark.slow  # kernels, trainings or subprocesses: not in `make check`

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def private_progress(tmp_path, monkeypatch):
    path = tmp_path / "progress.json"
    monkeypatch.setenv("TLCOURSE_PROGRESS", str(path))
    for name in ("TLCOURSE_SUBMIT_DIR", "TLCOURSE_NOTEBOOK", "JPY_SESSION_NAME"):
        monkeypatch.delenv(name, raising=False)
    return path


def test_is_solution_looks_at_the_folder(tmp_path, monkeypatch):
    assert is_solution("solutions/05_finetune_resnet34.ipynb")
    assert is_solution(str(ROOT / "solutions" / "10_concepts.ipynb"))
    assert not is_solution("exercises/05_finetune_resnet34.ipynb")
    assert not is_solution(str(tmp_path / "my_copy_of_05.ipynb"))
    monkeypatch.chdir(ROOT / "solutions")  # nbval: the kernel starts in the notebook's folder
    assert is_solution(None)
    monkeypatch.chdir(tmp_path)
    assert not is_solution(None)


def test_checking_a_solution_notebook_is_shown_but_not_counted(private_progress, capsys):
    assert main(["check", str(ROOT / "solutions" / "10_concepts.ipynb")]) == 0
    assert "solution checked (not counted in your progress)" in capsys.readouterr().out
    data = load_progress(private_progress)
    assert data["exercises"] == {} and data["solution_checks"]["ex10"]["points"] == 10
    table = format_progress(private_progress)
    assert "0/" in table.split("exercises passed")[0].splitlines()[-1]
    assert "Solutions checked (not counted): ex10 10/10" in table


def test_tl_check_from_a_solution_or_the_learners_notebook(private_progress, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", str(ROOT / "solutions" / "10_concepts.ipynb"))
    tl.check("ex10", answers=RIGHT_ANSWERS_OF_EX10)  # JupyterLab, the answer key open
    assert load_progress(private_progress)["exercises"] == {}
    monkeypatch.setenv("JPY_SESSION_NAME", str(ROOT / "exercises" / "10_concepts.ipynb"))
    with pytest.raises(CheckFailed):
        tl.check("ex10", answers={})  # the learner's own notebook, not done yet
    entry = load_progress(private_progress)["exercises"]["ex10"]
    assert entry["status"] == "not attempted" and entry["notebook"].endswith("10_concepts.ipynb")
    tl.check("ex10", answers=RIGHT_ANSWERS_OF_EX10)
    assert "1/" in format_progress(private_progress).split("exercises passed")[0].splitlines()[-1]
    saved = json.loads(private_progress.read_text())
    assert set(saved) >= {"exercises", "solution_checks"}


def test_check_help_warns_that_grading_runs_the_notebooks_code(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "executes whatever code the notebook contains" in out and "container" in out
    assert "--timeout" in out and "--cell-timeout" in out


def test_whole_run_timeout_stops_a_notebook_of_slow_cells(tmp_path, capsys):
    path = notebook_with(
        tmp_path, "import time", *["time.sleep(2)"] * 5, 'tl.check("ex10", answers={})'
    )
    started = time.perf_counter()
    assert main(["check", str(path), "--timeout", "3", "--cell-timeout", "100"]) == 1
    assert time.perf_counter() - started < 60
    assert "(the whole notebook may run 3 s: --timeout)" in capsys.readouterr().out
