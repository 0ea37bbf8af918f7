"""Exercise ids, written once: "ex03" <-> 3 <-> 03_vgg16_custom_dataset.

The id is the checks module's name (`tlcourse/grading/checks/ex03.py`); the notebook is the one
`solutions/03_*.py` (and the generated `exercises/03_*.py`). Every other spelling a learner or a
file name uses (3, "03", "ex3", a notebook's path) maps onto the id through `exercise_id`.
Where those files sit in the repository is tooling's business: tools/exercise_files.py.

Example:
    >>> exercise_id("exercises/03_vgg16_custom_dataset.ipynb"), exercise_number("ex03")
    ('ex03', 3)
"""

from __future__ import annotations

import os
import re
from pathlib import Path

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
