"""The exercise registry: exercises, their checks (points + hint), and what objects they take.

A check is a small function that recomputes what it needs from the learner's objects and either
returns a short detail ("0.93 on 250 held-out images") or raises `NotYet` with what is wrong.
`call_learner` and `time_limit` turn learner code that raises or hangs into such an answer.

Example:
    >>> EX02 = exercise("ex02", "Freeze and replace the head", "02_freeze", {"model": Spec(...)})
    >>> @EX02.check("only the head trains", points=2, hint="tl.freeze(model) first")
    ... def _(objects): ...
"""

from __future__ import annotations

import numbers
import re
import signal
import threading
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field

TIMEOUT_ENV = "TLCOURSE_CHECK_TIMEOUT"  # seconds one check may take (default 120)
REPORT_ENV = "TLCOURSE_CHECK_REPORT"  # set by `python -m tlcourse check`: results as JSON lines


class NotYet(Exception):
    """Raised by a check: the answer is not right yet (the message says what is wrong)."""


class NotAttempted(Exception):
    """Raised by a check: the learner's code still raises NotImplementedError."""


class CheckTimeout(BaseException):
    """The time limit of one check ran out (BaseException: `except Exception` cannot swallow it)."""


@dataclass
class Spec:
    """What an object passed to `check()` must be: accepted types, a description, an example."""

    types: tuple
    description: str
    example: str
    optional: bool = False


def number(description: str, example: str) -> Spec:
    return Spec((numbers.Real,), description, example)


@dataclass
class Check:
    title: str
    points: int
    hint: str
    needs: tuple[str, ...]
    function: Callable[[dict], str | None]


@dataclass
class Exercise:
    id: str
    title: str
    notebook: str  # file stem in solutions/ and exercises/, e.g. "02_feature_extraction"
    objects: dict[str, Spec]
    checks: list[Check] = field(default_factory=list)

    def check(self, title: str, points: int, hint: str, needs: tuple[str, ...] = ()):
        """Decorator: register `function(objects) -> detail` as one check of this exercise."""

        def register(function: Callable[[dict], str | None]) -> Callable:
            self.checks.append(Check(title, points, hint, tuple(needs), function))
            return function

        return register

    @property
    def max_points(self) -> int:
        return sum(c.points for c in self.checks)


EXERCISES: dict[str, Exercise] = {}


def exercise(id: str, title: str, notebook: str, objects: dict[str, Spec]) -> Exercise:
    """Create and register an exercise; add checks with `@EXERCISE.check(...)`."""
    EXERCISES[id] = Exercise(id, title, notebook, objects)
    return EXERCISES[id]


def call_learner(function: Callable, *args, name: str | None = None):
    """Call learner code: NotImplementedError -> NotAttempted, any other error -> NotYet."""
    label = name or getattr(function, "__name__", "your function")
    try:
        return function(*args)
    except NotImplementedError as error:
        raise NotAttempted(str(error) or f"{label}() is not written yet") from None
    except (NotYet, NotAttempted):
        raise
    except Exception as error:
        raise NotYet(f"{label}() raised {type(error).__name__}: {error}") from None


@contextmanager
def time_limit(seconds: float):
    """Raise CheckTimeout after `seconds` (POSIX main thread; elsewhere no limit is enforced)."""
    usable = (
        seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return

    def on_alarm(signum, frame):
        raise CheckTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def find_exercise(name: str) -> Exercise:
    """The registered exercise `name` ("ex03"; "ex3", "3" and "03" work too)."""
    key = str(name).strip().lower()
    number = re.fullmatch(r"(?:ex)?(\d+)", key)
    key = f"ex{int(number.group(1)):02d}" if number else key
    if key not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}: choose one of {', '.join(sorted(EXERCISES))}")
    return EXERCISES[key]
