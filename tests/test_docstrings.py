"""Every public function and class in tlcourse/ shows a tiny example (issue 14, items 2-3).

Top-level modules and the subpackages (tlcourse.grading, tlcourse.grading.checks) are walked.
The examples need models and data, so they are read, not run: this only checks that each
docstring has a `>>>` line.
"""

import importlib
import inspect
import pkgutil

import tlcourse


def _public_names() -> list[tuple[str, object]]:
    """(module.name, object) for each public function/class defined in a tlcourse module."""
    found = []
    for info in pkgutil.walk_packages(tlcourse.__path__, prefix="tlcourse."):
        if info.name.rsplit(".", 1)[-1].startswith("_"):  # __main__ would run the command line
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if name.startswith("_") or not callable(obj):
                continue
            target = inspect.unwrap(obj)  # an @lru_cache function is a function too
            if not (inspect.isfunction(target) or inspect.isclass(target)):
                continue
            if obj.__module__ == module.__name__:  # defined here, not imported
                found.append((f"{module.__name__}.{name}", obj))
    return found


def test_enough_public_names_are_checked():
    # guards against the walk finding nothing (or skipping the subpackages) and the test below
    # passing vacuously
    names = [name for name, _ in _public_names()]
    assert len(names) > 30
    assert any(name.startswith("tlcourse.grading.checks.") for name in names)
    assert any(name.startswith("tlcourse.grading.registry.") for name in names)


def test_every_public_name_has_an_example():
    missing = [name for name, obj in _public_names() if ">>>" not in (obj.__doc__ or "")]
    assert not missing, f"{len(missing)} public names without a `>>>` example: " + ", ".join(
        missing
    )
