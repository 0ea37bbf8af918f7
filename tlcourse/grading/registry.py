"""The exercise registry: exercises, their checks (points + hint), and what objects they take.

A check is a small function that recomputes what it needs from the learner's objects and either
returns a short detail ("0.93 on 250 held-out images") or raises `NotYet` with what is wrong.
`call_learner` and `time_limit` turn learner code that raises or hangs into such an answer.
An exercise's id is written once, as its checks module's name (`checks/ex02.py` -> "ex02");
`discover` imports every such module, so there is no list of exercises to keep by hand.

Example (a checks module, tlcourse/grading/checks/ex99.py, passes `__name__`):
    >>> model_spec = Spec((nn.Module,), "Lite0 with a new head", "model")
    >>> EX99 = exercise("checks.ex99", "Freeze and replace the head", {"model": model_spec})
    >>> @EX99.check("only the head trains", points=2, hint="tl.freeze(model) first")
    ... def _(submitted): ...
    >>> EX99.id, EX99.max_points
    ('ex99', 2)
    >>> del EXERCISES["ex99"]  # (an example: the course has no ex99)
"""

from __future__ import annotations

import importlib
import numbers
import pkgutil
import re
import signal
import threading
from collections.abc import Callable, Iterable
from contextlib import contextmanager
from dataclasses import dataclass, field

from tlcourse.grading.ids import exercise_id, exercise_number

TIMEOUT_ENV = "TLCOURSE_CHECK_TIMEOUT"  # seconds one check may take (default 120)


class NotYet(Exception):
    """Raised by a check: the answer is not right yet (the message says what is wrong).

    Example:
        >>> raise NotYet("model has 10 outputs; this task has 2 classes")
        Traceback (most recent call last):
        tlcourse.grading.registry.NotYet: model has 10 outputs; this task has 2 classes
    """


class NotAttempted(Exception):
    """Raised by a check: the learner's code still raises NotImplementedError.

    Example:
        >>> raise NotAttempted("answers has no 'q1' yet")
        Traceback (most recent call last):
        tlcourse.grading.registry.NotAttempted: answers has no 'q1' yet
    """


class CheckTimeout(BaseException):
    """The time limit of one check ran out (BaseException: `except Exception` cannot swallow it).

    Example:
        >>> import time
        >>> with time_limit(0.5):
        ...     time.sleep(5)
        Traceback (most recent call last):
        tlcourse.grading.registry.CheckTimeout: 0.5
    """


@dataclass
class Spec:
    """What an object passed to `check()` must be: accepted types, a description, an example.

    Example:
        >>> Spec((nn.Module,), "Lite0 with its trained head", "model").optional  # required
        False
    """

    types: tuple
    description: str
    example: str
    optional: bool = False


def number(description: str, example: str) -> Spec:
    """The Spec of a number the learner reports (any real number: int, float, numpy float).

    Example:
        >>> number("your test accuracy of model", "test_accuracy").types
        (<class 'numbers.Real'>,)
    """
    return Spec((numbers.Real,), description, example)


@dataclass
class Check:
    """One registered check: its title, points, hint, the objects it needs and its function.

    Example:
        >>> find_exercise("ex10").checks[0].title, find_exercise("ex10").checks[0].points
        ('q1', 1)
    """

    title: str
    points: int
    hint: str
    needs: tuple[str, ...]
    function: Callable[[dict], str | None]


@dataclass
class Exercise:
    """A registered exercise: its id, title, the objects `check()` takes, and its checks.

    Example:
        >>> ex = find_exercise("ex03")
        >>> ex.number, len(ex.checks), ex.max_points
        (3, 5, 10)
    """

    id: str  # "ex03": the name of its checks module
    title: str
    objects: dict[str, Spec]
    module: str = ""  # the checks module that registered it, e.g. "tlcourse.grading.checks.ex03"
    summary: str = ""  # what the learner practises (one line of the exercises/README.md table)
    weights: str = ""  # which pretrained weights it uses (the same table)
    checks: list[Check] = field(default_factory=list)

    @property
    def number(self) -> int:
        return exercise_number(self.id)

    def check(self, title: str, points: int, hint: str, needs: tuple[str, ...] = ()):
        """Decorator: register `function(submitted) -> detail` as one check of this exercise;
        `submitted` is the dict of objects the learner passed to `check()`, by name."""

        def register(function: Callable[[dict], str | None]) -> Callable:
            self.checks.append(Check(title, points, hint, tuple(needs), function))
            return function

        return register

    @property
    def max_points(self) -> int:
        return sum(c.points for c in self.checks)


EXERCISES: dict[str, Exercise] = {}


def exercise(
    module: str, title: str, objects: dict[str, Spec], summary: str = "", weights: str = ""
) -> Exercise:
    """Create and register the exercise of checks module `module` (pass `__name__`).

    Its id comes from the module's name: `checks/ex03.py` registers "ex03". Add checks with
    `@EXERCISE.check(...)`; `summary` and `weights` fill its row of the exercises/README.md table.

    Example:
        >>> vgg = Spec((nn.Module,), "VGG16 with a new head", "vgg")
        >>> EX99 = exercise("checks.ex99", "VGG16 feature extraction", {"vgg": vgg})
        >>> EX99.id, len(EX99.checks)  # add checks with @EX99.check(...)
        ('ex99', 0)
        >>> del EXERCISES["ex99"]  # (an example: the course has no ex99)
    """
    key = exercise_id(module)
    known = EXERCISES.get(key)
    if known is not None and known.module != module:
        raise ValueError(f"{module} and {known.module} both register {key}: rename one")
    EXERCISES[key] = Exercise(key, title, objects, module, summary, weights)
    return EXERCISES[key]


def discover(package: str, path: Iterable[str]) -> list[str]:
    """Import every `exNN` module of `package` (its folder `path`): each registers its exercise.

    Returns the imported module names. A module that registers nothing is an ImportError that
    names it, so a checks file cannot be silently skipped.

    Example:
        >>> from tlcourse.grading import checks
        >>> discover("tlcourse.grading.checks", checks.__path__)[:2]
        ['tlcourse.grading.checks.ex01', 'tlcourse.grading.checks.ex02']
    """
    names = sorted(m.name for m in pkgutil.iter_modules(path) if re.fullmatch(r"ex\d+", m.name))
    for name in names:
        importlib.import_module(f"{package}.{name}")
        if exercise_id(name) not in EXERCISES:
            raise ImportError(
                f"{package}.{name} registers no exercise: call exercise(__name__, ...)"
            )
    return [f"{package}.{name}" for name in names]


def call_learner(function: Callable, *args, name: str | None = None):
    """Call learner code: NotImplementedError -> NotAttempted, any other error -> NotYet.

    Example:
        >>> def make_optimizer(model):
        ...     raise NotImplementedError  # the learner has not written it yet
        >>> optimizer = call_learner(make_optimizer, model, name="make_optimizer")
        Traceback (most recent call last):
        tlcourse.grading.registry.NotAttempted: make_optimizer() is not written yet
    """
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
    """Raise CheckTimeout after `seconds`, and again every second until the block ends, so code
    that swallows it (`except BaseException: pass`, then more work) is stopped too. POSIX main
    thread only; elsewhere no limit is enforced (`tlcourse check` has its own hard limit).

    Example:
        >>> with time_limit(120):  # the grader runs every check like this
        ...     total = sum(range(10))
        >>> total
        45
    """
    usable = (
        seconds > 0
        and hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
    )
    if not usable:
        yield
        return
    active = [True]

    def on_alarm(signum, frame):
        if active[0]:
            raise CheckTimeout(seconds)

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds, 1.0)  # then every 1 s until disarmed
    try:
        yield
    finally:
        active[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def find_exercise(name: str) -> Exercise:
    """The registered exercise `name` ("ex03"; "ex3", "3", "03" and its notebook work too).

    Example:
        >>> find_exercise("03_vgg16_custom_dataset").title
        'VGG16 feature extraction on your ImageFolder'
    """
    try:
        key = exercise_id(name)
    except ValueError:
        key = None
    if key not in EXERCISES:
        raise ValueError(f"unknown exercise {name!r}: choose one of {', '.join(sorted(EXERCISES))}")
    return EXERCISES[key]
