"""Graded exercises: `tl.check("ex03", ...)`, your progress file, and the notebook runner.

Checks recompute everything from the objects you pass (the grader's own held-out images,
`requires_grad`, weights compared to the pretrained ones), so a pasted number or an untrained
model cannot pass. `python -m tlcourse check exercises/03_….ipynb` runs a whole notebook;
`python -m tlcourse progress` shows what is done.

Example:
    >>> tl.check("ex10", answers={})  # prints ✅/❌ per check and a hint; raises until all pass
    Traceback (most recent call last):
    tlcourse.grading.grader.CheckFailed: ex10: 8 of 8 checks not passing yet (0/10 points); ...
"""

from tlcourse.grading import checks  # noqa: F401  (finds and registers every exercise)
from tlcourse.grading.data import (
    IMAGE_SIZE,
    practice_data,
    practice_scenes,
    write_medical_standin,
)
from tlcourse.grading.grader import CheckFailed, Report, check
from tlcourse.grading.ids import exercise_id
from tlcourse.grading.progress import format_progress, load_progress, progress_path
from tlcourse.grading.registry import EXERCISES, find_exercise

__all__ = [
    "EXERCISES",
    "IMAGE_SIZE",
    "CheckFailed",
    "Report",
    "check",
    "exercise_id",
    "find_exercise",
    "format_progress",
    "load_progress",
    "practice_data",
    "practice_scenes",
    "progress_path",
    "write_medical_standin",
]
