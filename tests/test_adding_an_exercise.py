"""An exercise lives in three places: a solution notebook, a checks module, tests.

The checks module is discovered by its name, the id `exNN` is derived from the file names, and
exercises/ (README table included) is generated: a made-up exercise 99 shows it, end to end,
without a line changed anywhere else. Also: every solution has a checks module and back, and
the message names the missing file.
"""

import shutil
import sys
from pathlib import Path

import pytest
from exercise_files import SOLUTIONS, checks_file, solution_files
from exercises_readme import unpaired
from generate_exercises import main as generate_main

import tlcourse as tl
from tlcourse.grading import checks, registry
from tlcourse.grading.ids import exercise_id, exercise_number
from tlcourse.grading.progress import format_progress
from tlcourse.grading.registry import EXERCISES, discover, find_exercise

ROOT = Path(__file__).resolve().parents[1]

NEW_CHECKS = '''"""Exercise 99, made up by a test: add two numbers."""

from tlcourse.grading.checks.common import FUNCTION
from tlcourse.grading.registry import NotYet, Spec, call_learner, exercise

EX99 = exercise(
    __name__,
    "Add two numbers",
    {"add": Spec(FUNCTION, "your function add(a, b)", "add")},
    summary="a tiny exercise a test made up",
    weights="none",
)


@EX99.check("add(2, 2) is 4", points=10, needs=("add",), hint="return a + b")
def _ex99_add(submitted: dict) -> str:
    if call_learner(submitted["add"], 2, 2) != 4:
        raise NotYet("add(2, 2) is not 4")
    return "4"
'''
NEW_SOLUTION = """# %% [markdown]
# # Exercise 99: add two numbers

# %%
import tlcourse as tl


def add(a, b):
    ### BEGIN SOLUTION: return the sum of a and b
    return a + b
    ### END SOLUTION


# %% tags=["graded"]
tl.check("ex99", add=add)
"""


@pytest.fixture(autouse=True)
def private_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_PROGRESS", str(tmp_path / "progress.json"))
    monkeypatch.delenv("TLCOURSE_SUBMIT_DIR", raising=False)


@pytest.fixture
def course(tmp_path):
    """A copy of solutions/*.py and exercises/README.md to generate into."""
    (tmp_path / "solutions").mkdir()
    (tmp_path / "exercises").mkdir()
    for solution in solution_files(ROOT / "solutions").values():
        shutil.copy(solution, tmp_path / "solutions")
    shutil.copy(ROOT / "exercises" / "README.md", tmp_path / "exercises")
    return tmp_path


@pytest.fixture
def extra_checks_folder(tmp_path, monkeypatch):
    """A second folder of the checks package: its exNN.py files are discovered like the real ones.

    Afterwards the registry and sys.modules are as before.
    """
    folder = tmp_path / "more_checks"
    folder.mkdir()
    monkeypatch.setattr(checks, "__path__", [*checks.__path__, str(folder)])
    exercises, modules = dict(EXERCISES), set(sys.modules)
    yield folder
    for name in set(sys.modules) - modules:
        if name.startswith(f"{checks.__name__}."):
            del sys.modules[name]
            delattr(checks, name.rpartition(".")[2])
    EXERCISES.clear()
    EXERCISES.update(exercises)


def repository_state() -> dict[str, bytes]:
    """Every file of the places an exercise must not need touched (besides its own three)."""
    paths = [
        ROOT / "exercises" / "README.md",
        *sorted((ROOT / "tlcourse" / "grading").rglob("*.py")),
        *sorted((ROOT / "tools").glob("*.py")),
    ]
    return {str(p): p.read_bytes() for p in paths}


def test_a_new_exercise_needs_only_its_solution_and_its_checks(course, extra_checks_folder, capsys):
    untouched = repository_state()
    (extra_checks_folder / "ex99.py").write_text(NEW_CHECKS)  # place 2: the checks module
    (course / "solutions" / "99_add_numbers.py").write_text(NEW_SOLUTION)  # place 1: the solution

    assert "tlcourse.grading.checks.ex99" in discover(checks.__name__, checks.__path__)
    assert find_exercise("99").title == "Add two numbers" and EXERCISES["ex99"].max_points == 10
    assert exercise_id(course / "exercises" / "99_add_numbers.ipynb") == "ex99"

    arguments = ["--solutions", str(course / "solutions"), "--exercises", str(course / "exercises")]
    assert generate_main(arguments) == 0, capsys.readouterr()
    blank = (course / "exercises" / "99_add_numbers.py").read_text()
    assert 'raise NotImplementedError("Exercise 99: return the sum of a and b")' in blank
    assert (course / "exercises" / "99_add_numbers.ipynb").is_file()
    readme = (course / "exercises" / "README.md").read_text()
    assert "| 99 | `99_add_numbers` | a tiny exercise a test made up | none | 1 | 10 |" in readme
    assert '**99 · Add two numbers** · `tl.check("ex99", ...)`' in readme
    assert "- [10] add(2, 2) is 4" in readme
    assert readme.startswith("# Exercises\n") and "**How grading works.**" in readme  # prose kept
    assert generate_main([*arguments, "--check"]) == 0, capsys.readouterr()

    report = tl.check("ex99", add=lambda a, b: a + b)
    assert report.passed and report.points == 10
    assert "ex99" in format_progress() and "Add two numbers" in format_progress()
    assert repository_state() == untouched  # place 3, the tests, is this file


def test_every_solution_has_a_checks_module_and_back():
    assert unpaired(ROOT / "solutions") == []
    assert sorted(EXERCISES) == sorted(solution_files(ROOT / "solutions"))
    for key, exercise in EXERCISES.items():
        assert sys.modules[exercise.module].__file__ == str(checks_file(key)), key
        assert exercise.id == exercise_id(solution_files(SOLUTIONS)[key]) == key


def test_a_solution_without_checks_names_the_file_to_add(course, capsys):
    (course / "solutions" / "99_orphan.py").write_text(NEW_SOLUTION)
    missing = (
        "99_orphan.py: no checks module registers ex99: "
        "add tlcourse/grading/checks/ex99.py (EX = exercise(__name__, ...)"
    )
    assert [missing in problem for problem in unpaired(course / "solutions")] == [True]
    arguments = ["--solutions", str(course / "solutions"), "--exercises", str(course / "exercises")]
    assert generate_main([*arguments, "--check"]) == 1
    assert missing in capsys.readouterr().out
    assert generate_main(arguments) == 2  # make exercises refuses to write a table without it
    assert missing in capsys.readouterr().err


def test_checks_without_a_solution_name_the_file_to_add(course):
    (course / "solutions" / "10_concepts.py").unlink()
    assert unpaired(course / "solutions") == [
        f"tlcourse/grading/checks/ex10.py: registers ex10 but {course / 'solutions'}/ has no "
        "10_<name>.py: add the solution notebook"
    ]


def test_a_checks_module_that_registers_nothing_is_an_error(extra_checks_folder):
    (extra_checks_folder / "ex98.py").write_text('"""Forgot exercise(__name__, ...)."""\n')
    with pytest.raises(ImportError, match=r"checks\.ex98 registers no exercise: call exercise"):
        discover(checks.__name__, checks.__path__)


def test_two_modules_cannot_register_one_id():
    with pytest.raises(ValueError, match="both register ex03: rename one"):
        registry.exercise("somewhere.else.ex03", "A second exercise 3", {})


@pytest.mark.parametrize(
    "spelling",
    [
        3,
        "3",
        "03",
        "ex3",
        " EX03",
        "03_vgg16_custom_dataset",
        "exercises/03_vgg16_custom_dataset.ipynb",
        "tlcourse.grading.checks.ex03",
    ],
)
def test_every_spelling_of_an_id_maps_to_one(spelling):
    assert exercise_id(spelling) == "ex03" and exercise_number(spelling) == 3
    assert find_exercise(spelling).id == "ex03"
    assert solution_files(SOLUTIONS)["ex03"].stem == "03_vgg16_custom_dataset"


def test_a_name_that_is_no_exercise_says_how_to_write_one(tmp_path):
    with pytest.raises(ValueError, match="'vgg' names no exercise: write ex03, 3 or 03_<name>"):
        exercise_id("vgg")
    (tmp_path / "03_a.py").write_text("")
    (tmp_path / "03_b.py").write_text("")
    with pytest.raises(ValueError, match="03_b.py are both exercise ex03: renumber one"):
        solution_files(tmp_path)
