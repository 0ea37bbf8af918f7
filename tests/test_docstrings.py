"""Every public function and class in tlcourse/*.py shows a tiny example (issue 14, item 3).

The examples need models and data, so they are read, not run: this only checks that each
docstring has a `>>>` line.
"""

import importlib
import inspect
import pkgutil

import tlcourse


def _public_names() -> list[tuple[str, object]]:
    """(module.name, object) for each public function/class defined in a top-level module."""
    found = []
    for info in pkgutil.iter_modules(tlcourse.__path__):
        if info.ispkg or info.name.startswith("_"):  # grading/ and __main__ are not walked
            continue
        module = importlib.import_module(f"tlcourse.{info.name}")
        for name, obj in vars(module).items():
            if name.startswith("_") or not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if obj.__module__ == module.__name__:  # defined here, not imported
                found.append((f"{module.__name__}.{name}", obj))
    return found


def test_enough_public_names_are_checked():
    # guards against the walk finding nothing and the test below passing vacuously
    assert len(_public_names()) > 30


def test_every_public_name_has_an_example():
    missing = [name for name, obj in _public_names() if ">>>" not in (obj.__doc__ or "")]
    assert not missing, f"{len(missing)} public names without a `>>>` example: " + ", ".join(
        missing
    )
