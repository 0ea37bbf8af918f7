"""Where each exercise's files sit in the repository: solutions/NN_name.py and its checks module.

Only the repository tooling (tools/generate_exercises.py, tools/exercises_readme.py) and the tests
use these paths; the installed grader knows exercises by id alone (tlcourse.grading.ids).

Example:
    >>> solution_files(SOLUTIONS)["ex03"].name, checks_file("ex3").name
    ('03_vgg16_custom_dataset.py', 'ex03.py')
"""

from __future__ import annotations

import os
from pathlib import Path

from tlcourse.grading import checks
from tlcourse.grading.ids import exercise_id

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"  # NN_name.py (+ .ipynb), one per exercise
CHECKS = Path(checks.__file__).resolve().parent  # exNN.py, one per exercise


def solution_files(solutions: Path) -> dict[str, Path]:
    """{"ex03": solutions/03_vgg16_custom_dataset.py, ...}; ValueError if two share a number.

    Example:
        >>> solution_files(SOLUTIONS)["ex03"].name
        '03_vgg16_custom_dataset.py'
    """
    found: dict[str, Path] = {}
    for path in sorted(Path(solutions).glob("[0-9][0-9]_*.py")):
        key = exercise_id(path.name)
        if key in found:
            raise ValueError(f"{found[key]} and {path} are both exercise {key}: renumber one")
        found[key] = path
    return found


def checks_file(name: str | int | os.PathLike) -> Path:
    """Where the checks of exercise `name` live: tlcourse/grading/checks/ex03.py.

    Example:
        >>> checks_file("ex3").name
        'ex03.py'
    """
    return CHECKS / f"{exercise_id(name)}.py"
