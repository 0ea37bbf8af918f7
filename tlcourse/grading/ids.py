"""Exercise ids, written once: "ex03" <-> 03_vgg16_custom_dataset <-> its files.

The id is the checks module's name (`tlcourse/grading/checks/ex03.py`); the notebook is the one
`solutions/03_*.py` (and the generated `exercises/03_*.py`). Every other spelling a learner or a
file name uses (3, "03", "ex3", a notebook's path) maps onto the id through `exercise_id`.

Example:
    >>> exercise_id("exercises/03_vgg16_custom_dataset.ipynb"), checks_file("ex03").name
    ('ex03', 'ex03.py')
"""

from __future__ import annotations

import os
import re
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
SOLUTIONS = PACKAGE.parents[1] / "solutions"  # NN_name.py (+ .ipynb), one per exercise
CHECKS = PACKAGE / "checks"  # exNN.py, one per exercise
# "ex03", "ex3", "3", "03_vgg16_custom_dataset(.py)", "tlcourse.grading.checks.ex03"
SPELLINGS = re.compile(r"(?:.*\.)?ex(?P<module>\d+)|(?P<file>\d+)(?:_.*)?")


def exercise_id(name: str | int | os.PathLike) -> str:
    """The one spelling of an exercise's id, "ex03", from any other; ValueError if none.

    Example:
        >>> [exercise_id(n) for n in (3, " EX3", "solutions/03_vgg16.py", "checks.ex03")]
        ['ex03', 'ex03', 'ex03', 'ex03']
    """
    found = SPELLINGS.fullmatch(Path(str(name).strip()).name.lower())
    if not found:
        raise ValueError(f"{name!r} names no exercise: write ex03, 3 or 03_<name>")
    return f"ex{int(found['module'] or found['file']):02d}"


def exercise_number(name: str | int | os.PathLike) -> int:
    """3 for "ex03" (and every other spelling exercise_id accepts).

    Example:
        >>> exercise_number("03_vgg16_custom_dataset")
        3
    """
    return int(exercise_id(name)[2:])


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
