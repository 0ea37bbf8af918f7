"""`python -m tlcourse check NOTEBOOK`: run an exercise notebook headless and grade it.

The notebook runs top to bottom in a fresh kernel (nbclient) with a time limit per cell. Every
`tl.check(...)` in it reports to a temporary file; a cell that raises, is not attempted yet
(NotImplementedError) or runs too long becomes a clear ❌ line. Exit status 0 only when every
graded cell ran and every check passed.

Example:
    $ python -m tlcourse check exercises/02_freeze_and_replace_head.ipynb
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tlcourse.grading.ids import exercise_id
from tlcourse.grading.progress import NOTEBOOK_ENV, is_solution, record_attempt, symbols
from tlcourse.grading.registry import EXERCISES, REPORT_ENV, find_exercise

CELL_TIMEOUT = 300  # seconds one cell may run before the runner stops the notebook
RUN_TIMEOUT = 1800  # seconds the whole notebook may run (`tlcourse check --timeout`)


@dataclass
class CellProblem:
    """A cell that did not run cleanly: where it is, whether it is graded, what went wrong.

    Example:
        >>> run_notebook("exercises/10_concepts.ipynb").problems[0].kind
        'not attempted'
    """

    index: int  # 1-based position among the notebook's cells
    graded: bool
    kind: str  # "not attempted" | "error" | "timeout" | "kernel died"
    message: str


@dataclass
class NotebookRun:
    """What happened when a notebook ran: problems per cell and the reports of tl.check().

    Example:
        >>> run = run_notebook("exercises/10_concepts.ipynb")  # the blank exercise
        >>> run.exercise, run.graded_cells, run.passed
        ('ex10', 1, False)
    """

    path: Path
    exercise: str | None
    graded_cells: int
    problems: list[CellProblem] = field(default_factory=list)
    reports: list[dict] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return (
            self.graded_cells > 0
            and not self.problems
            and len(self.reports) >= self.graded_cells
            and all(r["status"] == "passed" for r in self.reports)
        )


def _exercise_of(path: Path, sources: list[str]) -> str | None:
    for source in sources:
        found = re.search(r"check\(\s*['\"](ex\d+)['\"]", source)
        if found:
            return exercise_id(found.group(1))
    try:
        key = exercise_id(path.name)
    except ValueError:
        return None
    return key if key in EXERCISES else None


def _problem(index: int, cell, earlier: bool) -> CellProblem | None:
    graded = "graded" in cell.metadata.get("tags", [])
    for output in cell.get("outputs", []):
        if output.get("output_type") != "error":
            continue
        name, value = output.get("ename", ""), output.get("evalue", "")
        if name == "NotImplementedError":
            return CellProblem(index, graded, "not attempted", value or "a blank to fill in")
        if name == "CheckFailed":
            return None  # tl.check already reported it, with points and a hint
        if name == "NameError" and earlier:
            return CellProblem(index, graded, "follows", value)
        line = next(iter(cell.source.strip().splitlines()), "")
        return CellProblem(index, graded, "error", f"{name}: {value} (cell starts `{line[:60]}`)")
    return None


def run_notebook(
    path: str | Path, timeout: float = CELL_TIMEOUT, total: float = RUN_TIMEOUT
) -> NotebookRun:
    """Execute the notebook in a fresh kernel; never raises for problems in the learner's code.

    It runs whatever code the notebook holds, with your rights: grade untrusted submissions in a
    container or a throwaway account. A cell may run `timeout` s, the whole notebook `total` s.

    Example:
        >>> run_notebook("exercises/10_concepts.ipynb", timeout=60).problems[0].index
        2
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(path)
    notebook = nbformat.read(path, as_version=4)
    code = [c for c in notebook.cells if c.cell_type == "code"]
    graded = sum("graded" in c.metadata.get("tags", []) for c in code)
    run = NotebookRun(path, _exercise_of(path, [c.source for c in code]), graded)
    client = NotebookClient(
        notebook,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent.resolve())}},
    )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as folder:
        report_file = Path(folder) / "reports.jsonl"
        env = os.environ | {REPORT_ENV: str(report_file), "MPLBACKEND": "agg"}
        env[NOTEBOOK_ENV] = str(path.resolve())  # tl.check records which notebook it graded
        _run_cells(client, notebook, run, env, timeout, total)
        if report_file.exists():
            lines = report_file.read_text(encoding="utf-8").splitlines()
            run.reports = [json.loads(line) for line in lines if line.strip()]
    run.seconds = time.perf_counter() - started
    return run


def _run_cells(client, notebook, run: NotebookRun, env: dict, timeout: float, total: float):
    """Every cell in order in one kernel; a timeout or a dead kernel ends the run as a problem."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    index = 0
    try:
        with client.setup_kernel(env=env, stderr=subprocess.DEVNULL):  # no kernel chatter
            deadline = time.perf_counter() + total  # from the kernel's start
            for index, cell in enumerate(notebook.cells, start=1):
                client.timeout = max(round(min(timeout, deadline - time.perf_counter())), 1)
                client.execute_cell(cell, index - 1)
                problem = _problem(index, cell, bool(run.problems))
                if problem:
                    run.problems.append(problem)
    except CellTimeoutError:
        why = (
            "(an endless loop? too much work for the time limit?)"
            if client.timeout >= timeout
            else f"(the whole notebook may run {total:g} s: --timeout)"
        )
        message = f"still running after {client.timeout:.0f} s: stopped {why}"
        run.problems.append(CellProblem(index, False, "timeout", message))
    except DeadKernelError:
        message = "the Python kernel crashed (out of memory?)"
        run.problems.append(CellProblem(index, False, "kernel died", message))


def format_run(run: NotebookRun) -> str:
    """The terminal summary: ✅/❌ per check, then the cells that did not run cleanly.

    Example:
        >>> print(format_run(run).splitlines()[-1])
        ❌ not passing yet
    """
    ok, bad = symbols()
    lines = [f"{run.path.name} ({run.seconds:.0f} s)"]
    for report in run.reports:
        lines.append(f"{report['exercise']}: {report['points']}/{report['max_points']} points")
        for result in report["results"]:
            mark = ok if result["status"] == "passed" else bad
            detail = f" — {result['detail']}" if result["detail"] else ""
            lines.append(f"  {mark} {result['title']}{detail}")
    for p in run.problems:
        where = "graded cell" if p.graded else "cell"
        if p.kind != "follows":
            lines.append(f"  {bad} {where} {p.index}: {p.kind}: {p.message}")
    follows = [str(p.index) for p in run.problems if p.kind == "follows"]
    if follows:
        cells = f"cells {', '.join(follows)}" if len(follows) > 1 else f"cell {follows[0]}"
        lines.append(f"  {bad} {cells} failed only because a cell above did")
    if run.graded_cells == 0:
        lines.append(f"  {bad} this notebook has no cell tagged 'graded': nothing to grade")
    elif len(run.reports) < run.graded_cells:
        lines.append(
            f"  {bad} {run.graded_cells - len(run.reports)} graded cell(s) did not reach tl.check"
        )
    lines.append(f"{ok} passed" if run.passed else f"{bad} not passing yet")
    if is_solution(str(run.path)):
        lines.append("note: solution checked (not counted in your progress)")
    return "\n".join(lines)


def check_notebook(
    path: str | Path, timeout: float = CELL_TIMEOUT, total: float = RUN_TIMEOUT
) -> int:
    """Run and grade one notebook, print the summary. Exit status: 0 all pass, 1 not, 2 bad path.

    Example:
        >>> check_notebook("exercises/10_concepts.ipynb")  # = python -m tlcourse check ...
        1
    """
    path = Path(path)
    if path.suffix != ".ipynb" or not path.is_file():
        print(f"error: {path} is not a notebook file (.ipynb); e.g. exercises/01_….ipynb")
        return 2
    run = run_notebook(path, timeout, total)
    print(format_run(run))
    if run.exercise and not run.reports:  # tl.check never ran: record why
        status = (
            "not attempted" if any(p.kind == "not attempted" for p in run.problems) else "error"
        )
        max_points = find_exercise(run.exercise).max_points
        record_attempt(run.exercise, status, 0, max_points, source=str(path.resolve()))
    return 0 if run.passed else 1
