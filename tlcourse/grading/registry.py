"""The grader's core: exercises, their checks (points + hint), and `check()` that runs them.

A check is a small function that recomputes what it needs from the learner's objects and either
returns a short detail ("0.93 on 250 held-out images") or raises `NotYet` with what is wrong.
Learner code that raises, is not written yet or hangs becomes a ❌ line, never a grader crash.

Example:
    >>> tl.check("ex02", make_feature_extractor=make_feature_extractor, model=model)
"""

from __future__ import annotations

import json
import numbers
import os
import re
import signal
import sys
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


class CheckFailed(AssertionError):
    """Raised by `check()` when not every check passes, so notebooks and CI see the failure."""

    def __init__(self, message: str, report: Report | None = None):
        super().__init__(message)
        self.report = report  # what was found, check by check


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


@dataclass
class Result:
    check: Check
    status: str  # passed | failed | not attempted | missing | wrong type | timeout | error
    detail: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def points(self) -> int:
        return self.check.points if self.passed else 0


@dataclass
class Report:
    """What `check()` found: one Result per check; `passed` only if all of them pass."""

    exercise: Exercise
    results: list[Result]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def points(self) -> int:
        return sum(r.points for r in self.results)

    @property
    def status(self) -> str:
        if self.passed:
            return "passed"
        if all(r.status in ("not attempted", "missing") for r in self.results):
            return "not attempted"
        return "in progress"

    def format(self) -> str:
        ok, bad = symbols()
        lines, previous = [f"{self.exercise.id} · {self.exercise.title}"], None
        for r in self.results:
            mark = ok if r.passed else bad
            label = "" if r.status in ("passed", "failed") else f"{r.status}: "
            text = "(same as above)" if r.detail == previous and not r.passed else r.detail
            detail = f" — {label}{text}" if text or label else ""
            lines.append(f"  {mark} [{r.points}/{r.check.points}] {r.check.title}{detail}")
            previous = r.detail
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"Score {self.points}/{self.exercise.max_points}")
        failing = [r for r in self.results if not r.passed]
        if failing:
            lines.append(f"Hint ({failing[0].check.title}): {failing[0].check.hint}")
        else:
            lines.append("All checks pass. Well done!")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "exercise": self.exercise.id,
            "status": self.status,
            "points": self.points,
            "max_points": self.exercise.max_points,
            "results": [
                {"title": r.check.title, "status": r.status, "points": r.points, "detail": r.detail}
                for r in self.results
            ],
        }


def symbols() -> tuple[str, str]:
    """✅/❌ where the console can print them, else plain ASCII (old Windows consoles)."""
    try:
        "✅❌".encode(getattr(sys.stdout, "encoding", None) or "ascii")
        return "✅", "❌"
    except (UnicodeEncodeError, LookupError):
        return "[ok]", "[x]"


def find_exercise(name: str) -> Exercise:
    """The registered exercise `name` ("ex03"; "ex3", "3" and "03" work too)."""
    key = str(name).strip().lower()
    number = re.fullmatch(r"(?:ex)?(\d+)", key)
    key = f"ex{int(number.group(1)):02d}" if number else key
    if key not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}: choose one of {', '.join(sorted(EXERCISES))}")
    return EXERCISES[key]


def _object_problem(
    exercise: Exercise, needs: tuple[str, ...], objects: dict
) -> tuple[str, str] | None:
    """(status, message) if an object a check needs is missing, None or of the wrong type."""
    for name in needs:
        spec = exercise.objects[name]
        value = objects.get(name)
        if value is None and spec.optional:
            continue
        if name not in objects or value is None:
            return "missing", (
                f"`{name}` ({spec.description}) was not given: "
                f'call tl.check("{exercise.id}", {name}={spec.example}, ...)'
            )
        wrong_bool = isinstance(value, bool) and bool not in spec.types
        if wrong_bool or not isinstance(value, spec.types):
            wanted = " or ".join(t.__name__ for t in spec.types)
            fix = " (use .item() to get a Python number)" if hasattr(value, "item") else ""
            return "wrong type", (
                f"`{name}` should be a {wanted} ({spec.description}), got "
                f"{type(value).__name__} {_short(value)}{fix}"
            )
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


def _run(check_: Check, objects: dict, seconds: float) -> Result:
    try:
        with time_limit(seconds):
            detail = check_.function(objects)
        return Result(check_, "passed", detail or "")
    except NotYet as error:
        return Result(check_, "failed", str(error))
    except NotAttempted as error:
        return Result(check_, "not attempted", str(error))
    except NotImplementedError as error:
        return Result(check_, "not attempted", f"{error} (your code raises NotImplementedError)")
    except CheckTimeout:
        return Result(
            check_, "timeout", f"stopped after {seconds:g} s (an endless loop? too much work?)"
        )
    except Exception as error:  # learner objects can break in any way: report, never crash
        return Result(check_, "error", f"{type(error).__name__}: {error}")


def check(exercise: str, /, **objects) -> Report:
    """Grade exercise `exercise` with the learner's objects: prints ✅/❌ per check with points.

    Every check recomputes from the objects (held-out data, requires_grad, weights); reported
    numbers are only compared against the grader's own measurement. Raises `CheckFailed` unless
    every check passes, so a notebook run (nbval, CI) fails too. Results go to the progress file.

    Example:
        >>> tl.check("ex05", model=model, optimizer=optimizer)
    """
    from tlcourse.grading import progress
    from tlcourse.grading.data import clear_outputs

    ex = find_exercise(exercise)
    seconds = float(os.environ.get(TIMEOUT_ENV, "120"))
    results = []
    clear_outputs()
    try:
        for check_ in ex.checks:
            problem = _object_problem(ex, check_.needs, objects)
            if problem is None:
                results.append(_run(check_, objects, seconds))
            else:
                status, message = problem
                results.append(Result(check_, "not attempted" if not objects else status, message))
    finally:
        clear_outputs()  # do not keep the learner's models alive
    report = Report(ex, results)
    unknown = sorted(set(objects) - set(ex.objects))
    if unknown:
        report.notes.append(f"ignored {unknown}; this exercise uses {sorted(ex.objects)}")
    print(report.format())
    progress.record_attempt(ex.id, report.status, report.points, ex.max_points)
    _append_report(report)
    if not report.passed:
        failing = sum(not r.passed for r in results)
        raise CheckFailed(
            f"{ex.id}: {failing} of {len(results)} checks not passing yet "
            f"({report.points}/{ex.max_points} points); see the hint above",
            report,
        )
    return report


def _append_report(report: Report) -> None:
    """For `python -m tlcourse check`: one JSON line per check() call in the notebook's kernel."""
    path = os.environ.get(REPORT_ENV)
    if path:
        with open(path, "a", encoding="utf-8") as file:
            file.write(json.dumps(report.to_json()) + "\n")
