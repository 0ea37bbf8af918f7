"""Your progress through the exercises: a small JSON file in your user data folder.

`tl.check(...)` records every attempt; `python -m tlcourse progress` prints the table. The file
lives in `platformdirs.user_data_dir("tlcourse")` unless `TLCOURSE_PROGRESS` names another path.
A damaged file is moved aside with a message and a fresh one started: progress never crashes.
`symbols()` picks ✅/❌ or plain ASCII for this console (the grader's report uses it too).

Example:
    >>> failed = record_attempt("ex03", "passed", 10, 10)  # failed attempts so far: 0
    >>> print(format_progress())
    exercise title status points last attempt (UTC)
    ...
    ex03 VGG16 feature extraction on your ImageFolder ... passed 10/10 ...
    ...
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from tlcourse.grading.registry import EXERCISES

PROGRESS_ENV = "TLCOURSE_PROGRESS"
NOTEBOOK_ENV = "TLCOURSE_NOTEBOOK"  # set by `tlcourse check` for its kernel: the graded notebook


def attempt_source() -> str | None:
    """The notebook `tl.check` runs in, if it can be told: `tlcourse check` says so in
    TLCOURSE_NOTEBOOK, JupyterLab in JPY_SESSION_NAME, VS Code in `__vsc_ipynb_file__`.

    Example:
        >>> attempt_source()  # None here; in JupyterLab e.g. '/home/ada/exercises/03_….ipynb'
    """
    for name in (NOTEBOOK_ENV, "JPY_SESSION_NAME"):
        if os.environ.get(name):
            return os.environ[name]
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return (shell.user_ns.get("__vsc_ipynb_file__") if shell is not None else None) or None


def is_solution(source: str | None) -> bool:
    """True for a notebook in a `solutions/` folder (the answer key, not the learner's work).

    Without a known notebook, a kernel started in `solutions/` (nbval, `jupyter execute`) counts.

    Example:
        >>> is_solution("solutions/05_finetune_resnet34.ipynb"), is_solution("exercises/05_….ipynb")
        (True, False)
    """
    folder = Path(source).expanduser().parent if source else Path.cwd()
    return folder.name == "solutions"


def symbols() -> tuple[str, str]:
    """✅/❌ where the console can print them, else plain ASCII (old Windows consoles).

    Example:
        >>> symbols() in [("✅", "❌"), ("[ok]", "[x]")]  # the 2nd where the console cannot
        True
    """
    try:
        "✅❌".encode(getattr(sys.stdout, "encoding", None) or "ascii")
        return "✅", "❌"
    except (UnicodeEncodeError, LookupError):
        return "[ok]", "[x]"


def progress_path() -> Path:
    """The progress file: `$TLCOURSE_PROGRESS`, else <user data dir>/tlcourse/progress.json.

    Example:
        >>> progress_path().name  # on Linux: ~/.local/share/tlcourse/progress.json
        'progress.json'
    """
    override = os.environ.get(PROGRESS_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("tlcourse", appauthor=False)) / "progress.json"


def _valid(data: object) -> bool:
    return (
        isinstance(data, dict)
        and isinstance(data.get("exercises"), dict)
        and all(isinstance(entry, dict) for entry in data["exercises"].values())
        and isinstance(data.get("solution_checks", {}), dict)
    )


def load_progress(path: str | Path | None = None) -> dict:
    """{"version": 1, "exercises": {id: entry}}; a damaged file is set aside, never fatal.

    Example:
        >>> load_progress("no/such/progress.json")
        {'version': 1, 'exercises': {}}
    """
    path = Path(path) if path else progress_path()
    empty = {"version": 1, "exercises": {}}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return empty
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        return _set_aside(path, f"{type(error).__name__}: {error}", empty)
    if not _valid(data):
        return _set_aside(path, "unexpected content", empty)
    return data


def _set_aside(path: Path, reason: str, empty: dict) -> dict:
    backup = path.with_name(f"{path.name}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}")
    try:
        os.replace(path, backup)
        kept = f"kept a copy at {backup}"
    except OSError as error:
        kept = f"could not move it aside ({error})"
    print(
        f"tlcourse: the progress file {path} was unreadable ({reason}); {kept} and started a "
        "new one. Your exercises are not affected: re-run a check to record it again.",
        file=sys.stderr,
    )
    return empty


def record_attempt(
    exercise: str,
    status: str,
    points: int,
    max_points: int,
    path: str | Path | None = None,
    source: str | None = None,
) -> int:
    """Store one attempt (atomic write). A read-only or full disk prints a warning, never raises.
    Returns how many attempts at this exercise have failed so far, this one included (0 for a
    solution notebook): the grader unlocks the next hint by it.

    `source` is the graded notebook (default: `attempt_source()`). A check of a notebook in
    `solutions/` goes to "solution_checks": shown, never counted as the learner's work.

    Example:
        >>> record_attempt("ex03", "passed", 10, 10)  # what tl.check("ex03", ...) does
        0
        >>> load_progress()["exercises"]["ex03"]["status"]
        'passed'
    """
    path = Path(path) if path else progress_path()
    data = load_progress(path)
    source = source or attempt_source()
    when = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if is_solution(source):
        data.setdefault("solution_checks", {})[exercise] = {
            "status": status, "points": points, "max_points": max_points,
            "last_attempt": when, "notebook": source or str(Path.cwd()),
        }  # fmt: skip
        _write(path, data)
        return 0
    entry = data["exercises"].get(exercise, {})
    best = max(points, int(entry.get("best_points", 0) or 0))
    failed = int(entry.get("failed_attempts", 0) or 0) + (status != "passed")
    data["exercises"][exercise] = {
        "status": "passed" if entry.get("status") == "passed" else status,
        "points": points,
        "best_points": best,
        "max_points": max_points,
        "attempts": int(entry.get("attempts", 0) or 0) + 1,
        "failed_attempts": failed,
        "last_attempt": when,
        "notebook": source,
    }
    _write(path, data)
    return failed


def _write(path: Path, data: dict) -> None:
    temporary = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary.write_text(json.dumps(data, indent=1, sort_keys=True), encoding="utf-8")
        os.replace(temporary, path)
    except OSError as error:
        print(f"tlcourse: could not save progress to {path}: {error}", file=sys.stderr)


def format_progress(path: str | Path | None = None) -> str:
    """The progress table: every exercise, its status, best points and last attempt.

    Example:
        >>> print(format_progress())  # = python -m tlcourse progress
        exercise title status points last attempt (UTC)
        ex01 Load a pretrained model and find its head ...
        ...
        Progress file: ...progress.json (set TLCOURSE_PROGRESS to use another)
    """
    path = Path(path) if path else progress_path()
    data = load_progress(path)
    entries = data["exercises"]
    ok, bad = symbols()
    rows = [f"{'exercise':<9} {'title':<48} {'status':<16} {'points':>7}  last attempt (UTC)"]
    total = best_total = passed = 0
    for key, ex in sorted(EXERCISES.items()):
        entry = entries.get(key, {})
        status = entry.get("status", "to do")
        mark = ok if status == "passed" else (bad if entry else "·")
        best = int(entry.get("best_points", 0) or 0)
        when = str(entry.get("last_attempt", ""))[:16].replace("T", " ")
        rows.append(
            f"{key:<9} {ex.title[:48]:<48} {mark} {status:<14} {best:>3}/{ex.max_points:<3}  {when}"
        )
        total, best_total, passed = total + ex.max_points, best_total + best, passed + (mark == ok)
    rows.append(f"\n{passed}/{len(EXERCISES)} exercises passed, {best_total}/{total} points.")
    solutions = data.get("solution_checks", {})
    if solutions:
        shown = ", ".join(
            f"{key} {entry.get('points', 0)}/{entry.get('max_points', '?')}"
            for key, entry in sorted(solutions.items())
        )
        rows.append(f"Solutions checked (not counted): {shown}")
    rows.append(f"Progress file: {path} (set {PROGRESS_ENV} to use another)")
    return "\n".join(rows)
