"""`tl.check(name, **objects)`: run an exercise's checks, print ✅/❌ with points and a hint.

Learner code that raises, is not written yet or hangs becomes a ❌ line, never a grader crash.
Every attempt is recorded in the progress file. In a notebook this is a self-check: it runs in
your kernel, which your code can change. Under `python -m tlcourse check NOTEBOOK` the call only
hands its objects over (tlcourse/grading/submission.py) and the runner's own process runs
`grade()`: that verdict no notebook code can write.

Example:
    >>> tl.check("ex10", answers={})  # prints ✅/❌ per check and a hint; raises until all pass
    Traceback (most recent call last):
    tlcourse.grading.grader.CheckFailed: ex10: 8 of 8 checks not passing yet (0/10 points); ...
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from tlcourse.grading.data import clear_outputs
from tlcourse.grading.hints import next_hints
from tlcourse.grading.progress import attempt_source, is_solution, record_attempt, symbols
from tlcourse.grading.registry import (
    TIMEOUT_ENV,
    Check,
    CheckTimeout,
    Exercise,
    NotAttempted,
    NotYet,
    find_exercise,
    time_limit,
)
from tlcourse.grading.submission import SUBMIT_ENV, save_submission


class CheckFailed(AssertionError):
    """Raised by `check()` when not every check passes, so notebooks and CI see the failure.

    Example:
        >>> check("ex10", answers={})  # prints the report, then raises
        Traceback (most recent call last):
        tlcourse.grading.grader.CheckFailed: ex10: 8 of 8 checks not passing yet (0/10 points); ...
    """

    def __init__(self, message: str, report: Report | None = None):
        super().__init__(message)
        self.report = report  # what was found, check by check

    def _render_traceback_(self) -> list[str]:
        """What Jupyter shows under the report: this one line, not the grader's own code."""
        return [f"\x1b[0;31mCheckFailed\x1b[0m: {self}"]


@dataclass
class Result:
    """One check's outcome: its status, the detail shown after ✅/❌, and the points it earned.

    Example:
        >>> result = Result(find_exercise("ex10").checks[0], "passed", "right")
        >>> result.passed, result.points
        (True, 1)
    """

    check: Check
    status: (
        str  # passed | failed | not attempted | missing | refused | wrong type | timeout | error
    )
    detail: str

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    @property
    def points(self) -> int:
        return self.check.points if self.passed else 0


@dataclass
class Report:
    """What `check()` found: one Result per check; `passed` only if all of them pass.

    Example:
        >>> report = grade("ex10", {"answers": {}})  # check() prints it; returns it if all pass
        >>> report.status, report.points, report.passed
        ('not attempted', 0, False)
    """

    exercise: Exercise
    results: list[Result]
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every registered check ran and passed (an exercise without checks never passes)."""
        return (
            len(self.results) == len(self.exercise.checks) > 0
            and self.exercise.max_points > 0
            and all(r.passed for r in self.results)
        )

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


def _object_problem(
    exercise: Exercise, needs: tuple[str, ...], objects: dict, refused: dict[str, str]
) -> tuple[str, str] | None:
    """(status, message) if an object a check needs is missing, refused, None or mistyped."""
    for name in needs:
        spec = exercise.objects[name]
        if name in refused:
            return "refused", f"`{name}` {refused[name]}"
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


def grade(exercise: str, objects: dict, refused: dict[str, str] | None = None) -> Report:
    """Run every check of `exercise` on `objects`; the Report, never printed, never raising.

    `refused` names objects that could not be handed to the grader, with why (the runner's
    `load_submission`); the checks that need them fail with that reason.

    Example:
        >>> grade("ex10", {"answers": {}}).points
        0
    """
    ex = find_exercise(exercise)
    refused = refused or {}
    seconds = float(os.environ.get(TIMEOUT_ENV, "120"))
    results = []
    clear_outputs()
    try:
        for check_ in ex.checks:
            problem = _object_problem(ex, check_.needs, objects, refused)
            if problem is None:
                results.append(_run(check_, objects, seconds))
            else:
                status, message = problem
                empty = not objects and not refused
                results.append(Result(check_, "not attempted" if empty else status, message))
    finally:
        clear_outputs()  # do not keep the learner's models alive
    report = Report(ex, results)
    unknown = sorted(set(objects) - set(ex.objects))
    if unknown:
        report.notes.append(f"ignored {unknown}; this exercise uses {sorted(ex.objects)}")
    return report


def check(exercise: str, /, **objects) -> Report | None:
    """Grade exercise `exercise` with the learner's objects: prints ✅/❌ per check with points.

    Every check recomputes from the objects (held-out data, requires_grad, weights); reported
    numbers are only compared against the grader's own measurement. Raises `CheckFailed` unless
    every check passes, so a notebook run (nbval, CI) fails too. Results go to the progress file.
    Under `python -m tlcourse check` it only hands the objects to the runner (returns None).

    Example:
        >>> tl.check("ex05", model=model, optimizer=optimizer)  # Lite0: ex05 wants a ResNet34
        Traceback (most recent call last):
        tlcourse.grading.grader.CheckFailed: ex05: 5 of 5 checks not passing yet (0/10 points); ...
    """
    ex = find_exercise(exercise)
    folder = os.environ.get(SUBMIT_ENV)
    if folder:
        paths = [n for n, spec in ex.objects.items() if os.PathLike in spec.types]
        for name in paths:  # the runner's working folder is not the notebook's
            if isinstance(objects.get(name), (str, os.PathLike)):
                objects[name] = os.path.abspath(objects[name])
        save_submission(folder, ex.id, objects)
        print(f"{ex.id}: handed to `tlcourse check`, which grades it in its own process")
        return None
    report = grade(ex.id, objects)
    source = attempt_source()
    if is_solution(source):
        report.notes.append("solution checked (not counted in your progress)")
    print(report.format())
    failed = record_attempt(ex.id, report.status, report.points, ex.max_points, source=source)
    if not report.passed:
        needs = {name for r in report.results if not r.passed for name in r.check.needs}
        for line in next_hints(ex.id, needs, failed, notebook=source):
            print(line)
        failing = sum(not r.passed for r in report.results)
        raise CheckFailed(
            f"{ex.id}: {failing} of {len(report.results)} checks not passing yet "
            f"({report.points}/{ex.max_points} points); see the hint above",
            report,
        )
    return report
