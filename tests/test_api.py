"""`tl.__all__` is the lessons' API: what notebooks, solutions and the README call as `tl.NAME`.

Plumbing (`resize_once`, `seed_worker`, `weights_file`, ...) stays importable from its module but
is not in `tl.*`, so `dir(tl)` and tab completion show a learner only what the lessons use.
"""

import re
from pathlib import Path

import tlcourse as tl

ROOT = Path(__file__).resolve().parents[1]
LESSON_FILES = sorted(
    [*ROOT.glob("notebooks/*.py"), *ROOT.glob("solutions/*.py"), ROOT / "README.md"]
)
MODULES = {"grading", "models", "data", "device", "train", "report", "inference", "guards"}


def names_the_lessons_call() -> set[str]:
    used = set()
    for path in LESSON_FILES:
        used |= set(re.findall(r"\btl\.([A-Za-z_]\w*)", path.read_text(encoding="utf-8")))
    return used - MODULES - {"__version__", "__all__"}


def test_every_name_a_lesson_calls_is_in_all():
    missing = sorted(names_the_lessons_call() - set(tl.__all__))
    assert not missing, f"lessons call tl.{missing} but tlcourse/__init__.py's __all__ lacks them"


def test_every_name_in_all_is_used_by_a_lesson():
    unused = sorted(set(tl.__all__) - names_the_lessons_call())
    assert not unused, (
        f"tl.__all__ has {unused}, which no notebook, solution or README calls: "
        "import it from its module instead (plumbing leaves the top level)"
    )


def test_all_names_exist_and_plumbing_left_the_top_level():
    assert len(tl.__all__) > 30 and all(hasattr(tl, name) for name in tl.__all__)
    for plumbing in ("resize_once", "load_numpy_pickle", "seed_worker", "weights_file", "to_rgb"):
        assert plumbing not in tl.__all__ and not hasattr(tl, plumbing), plumbing
    from tlcourse.data import resize_once  # still importable from its module
    from tlcourse.models import weights_file

    assert callable(resize_once) and callable(weights_file)
