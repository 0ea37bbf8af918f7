"""exercises/ is generated from solutions/, blank exercises fail their graded cells, and
`python -m tlcourse check` grades whole notebooks (exit status, not attempted, errors, hangs).

The blank exercises run exactly as a learner runs them (a fresh kernel, top to bottom); their
graded cells are `xfail(strict=True)`: a blank exercise that passed would mean a leaked solution.
"""

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import jupytext
import nbformat
import pytest
from exercise_files import solution_files
from generate_exercises import blank_solutions, generate, stale

from tlcourse.__main__ import main
from tlcourse.grading.ids import exercise_number
from tlcourse.grading.registry import EXERCISES as REGISTERED
from tlcourse.grading.runner import run_notebook

pytestmark = pytest.mark.slow  # kernels, trainings or subprocesses: not in `make check`

ROOT = Path(__file__).resolve().parents[1]
EXERCISES = sorted((ROOT / "exercises").glob("[0-9][0-9]_*.ipynb"))


@pytest.fixture(autouse=True)
def private_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_PROGRESS", str(tmp_path / "progress.json"))
    return tmp_path / "progress.json"


def cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tlcourse", *args],
        capture_output=True,
        text=True,
        env=os.environ | {"PYTHONIOENCODING": "utf-8"},
        timeout=timeout,
        cwd=ROOT,
    )


# ------------------------------------------------------------------------------- generator
def test_marked_blocks_become_not_implemented_at_their_indentation():
    text = (
        "x = 1\n"
        "def f(model):\n"
        "    ### BEGIN SOLUTION: freeze the model\n"
        "    freeze(model)\n"
        "    return model\n"
        "    ### END SOLUTION\n"
        '### BEGIN SOLUTION: set "y"\n'
        "y = 2\n"
        "### END SOLUTION\n"
    )
    assert blank_solutions(text, 7) == (
        "x = 1\n"
        "def f(model):\n"
        '    raise NotImplementedError("Exercise 7: freeze the model")\n'
        "raise NotImplementedError('Exercise 7: set \"y\"')\n"
    )


@pytest.mark.parametrize(
    "text, message",
    [
        ("### BEGIN SOLUTION: a\nx = 1\n", "never closed"),
        ("### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n", "say what to do"),
        ("x = 1\n### END SOLUTION\n", "END SOLUTION without BEGIN"),
        ("### BEGIN SOLUTION: a\n### BEGIN SOLUTION: b\n", "inside another block"),
        ("x = 1\n", "nothing to blank out"),
    ],
)
def test_bad_markers_are_reported_with_file_and_line(text, message):
    with pytest.raises(ValueError, match=message):
        blank_solutions(text, 1, "solutions/01_x.py")


def test_exercises_are_up_to_date_with_solutions():
    problems = stale(ROOT / "solutions", ROOT / "exercises")
    assert not problems, f"{problems}: run `make exercises`"


def test_the_generator_runs_as_a_script_from_any_folder(tmp_path):
    # `make exercises-check` runs tools/generate_exercises.py as a script: its sibling imports
    # (exercise_files, exercises_readme) and its default folders must not depend on pytest or cwd.
    done = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "generate_exercises.py"), "--check"],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_generation_is_byte_for_byte_repeatable(tmp_path):
    first = {p.name: p.read_bytes() for p in generate(ROOT / "solutions", tmp_path / "a")}
    second = {p.name: p.read_bytes() for p in generate(ROOT / "solutions", tmp_path / "b")}
    assert first == second and len(first) == 2 * len(solution_files(ROOT / "solutions")) + 1


def test_exercises_contain_no_solution_code():
    for solution in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.py")):
        exercise = (ROOT / "exercises" / solution.name).read_text()
        assert "### BEGIN SOLUTION" not in exercise and "### END SOLUTION" not in exercise
        blanks = re.findall(r"^\s*raise NotImplementedError\(.Exercise ", exercise, re.M)
        assert len(blanks) == solution.read_text().count("### BEGIN SOLUTION")


# ------------------------------------------------------------- blank exercises, run for real
_RUNS: dict[str, object] = {}


def blank_run(path: Path):
    """Run each blank exercise once per session (a fresh kernel, as `tlcourse check` does)."""
    if path.name not in _RUNS:
        _RUNS[path.name] = run_notebook(path, timeout=300)
    return _RUNS[path.name]


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
def test_blank_exercise_stops_at_its_first_blank(path):
    run = blank_run(path)
    first = run.problems[0]
    assert first.kind == "not attempted", run.problems
    assert first.message.startswith(f"Exercise {exercise_number(path.name)}: ")


@pytest.mark.parametrize("path", EXERCISES, ids=lambda p: p.stem)
@pytest.mark.xfail(strict=True, raises=AssertionError, reason="a blank exercise must not pass")
def test_blank_exercise_graded_cell(path):
    run = blank_run(path)
    graded_problems = [p for p in run.problems if p.graded]
    assert run.reports and not graded_problems, "graded cell did not run tl.check"
    assert all(r["status"] == "passed" for r in run.reports), "checks fail"


# ------------------------------------------------------------------ `python -m tlcourse check`
def filled_in(exercise: Path, target: Path) -> Path:
    """The exercise with every blank cell replaced by the solution's cell: a learner who got it."""
    notebook = nbformat.read(exercise, as_version=4)
    solution = jupytext.read(ROOT / "solutions" / exercise.with_suffix(".py").name)
    for cell, answer in zip(notebook.cells, solution.cells, strict=True):
        if cell.cell_type == "code" and "raise NotImplementedError(" in cell.source:
            cell.source = answer.source
    nbformat.write(notebook, target)
    return target


@pytest.mark.parametrize("name", ["04_optimizer_param_groups", "10_concepts"])
def test_learner_who_fills_in_the_blanks_passes(name, tmp_path, capsys):
    notebook = filled_in(ROOT / "exercises" / f"{name}.ipynb", tmp_path / f"{name}.ipynb")
    assert main(["check", str(notebook)]) == 0, capsys.readouterr().out
    assert "10/10 points" in capsys.readouterr().out
    assert main(["progress"]) == 0
    total = sum(exercise.max_points for exercise in REGISTERED.values())
    assert f"1/{len(REGISTERED)} exercises passed, 10/{total} points" in capsys.readouterr().out


def test_check_blank_exercise_exits_1_with_not_attempted(private_progress):
    result = cli("check", "exercises/10_concepts.ipynb")
    assert result.returncode == 1
    assert "not attempted: Exercise 10: fill in the answers dict" in result.stdout
    assert "1 graded cell(s) did not reach tl.check" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr
    progress = cli("progress").stdout
    assert "ex10" in progress and "not attempted" in progress


def notebook_with(tmp_path: Path, *sources: str) -> Path:
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    notebook.cells[-1].metadata["tags"] = ["graded"]
    path = tmp_path / "10_mine.ipynb"
    nbformat.write(notebook, path)
    return path


def test_check_learner_exception_is_a_message_not_a_crash(tmp_path, capsys):
    path = notebook_with(
        tmp_path,
        "import tlcourse as tl",
        "answers = {'q1': 1 / 0}",
        'tl.check("ex10", answers=answers)',
    )
    assert main(["check", str(path)]) == 1
    out = capsys.readouterr().out
    assert "cell 2: error: ZeroDivisionError: division by zero" in out
    assert "cell 3 failed only because a cell above did" in out


def test_check_hanging_notebook_is_stopped_at_the_time_limit(tmp_path, capsys):
    path = notebook_with(tmp_path, "while True:\n    pass", 'tl.check("ex10", answers={})')
    started = time.perf_counter()
    assert main(["check", str(path), "--timeout", "3"]) == 1
    assert time.perf_counter() - started < 60
    assert "timeout: still running after 3 s: stopped" in capsys.readouterr().out


def test_check_without_a_notebook_is_a_usage_error(tmp_path, capsys):
    assert main(["check", str(tmp_path / "missing.ipynb")]) == 2
    assert "missing.ipynb: not found" in capsys.readouterr().out
    (tmp_path / "notes.txt").write_text("x")
    assert main(["check", str(tmp_path / "notes.txt")]) == 2
    assert "is not a notebook file" in capsys.readouterr().out


def test_progress_command_survives_a_corrupt_file(private_progress):
    private_progress.write_text("\x00\x01 not json")
    result = cli("progress")
    assert result.returncode == 0, result.stderr
    assert f"0/{len(REGISTERED)} exercises passed" in result.stdout
    assert "was unreadable" in result.stderr
