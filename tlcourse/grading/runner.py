"""`python -m tlcourse check NOTEBOOK`: run an exercise notebook headless and grade it.

The notebook runs top to bottom in a fresh kernel (nbclient) with a time limit per cell. Its
graded cells only hand their objects over (tlcourse/grading/submission.py); the checks then run
here, in the runner's own process, so no notebook code can edit them or write the verdict. A
cell that raises, is not attempted yet (NotImplementedError) or runs too long becomes a clear ❌
line. Exit status 0 only when every graded cell ran, graded this notebook's own exercise, and
every one of its checks passed.

Example:
    $ python -m tlcourse check exercises/02_freeze_and_replace_head.ipynb
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tlcourse.grading.grader import grade
from tlcourse.grading.hints import next_hints
from tlcourse.grading.ids import exercise_id
from tlcourse.grading.progress import (
    NOTEBOOK_ENV,
    PROGRESS_ENV,
    is_solution,
    record_attempt,
    symbols,
)
from tlcourse.grading.registry import EXERCISES, TIMEOUT_ENV, find_exercise
from tlcourse.grading.submission import SUBMIT_ENV, Kernel, load_submission

CELL_TIMEOUT = 300  # seconds one cell may run before the runner stops the notebook
RUN_TIMEOUT = 1800  # seconds the whole notebook may run (`tlcourse check --timeout`)


@dataclass
class CellProblem:
    """A cell that did not run cleanly: where it is, whether it is graded, what went wrong.

    Example:
        >>> problem = CellProblem(2, graded=True, kind="not attempted", message="fill in q1")
        >>> problem.kind, problem.graded
        ('not attempted', True)
    """

    index: int  # 1-based position among the notebook's cells (0: not one cell)
    graded: bool
    kind: str  # "not attempted" | "error" | "timeout" | "kernel died" | "wrong exercise"
    message: str


@dataclass
class NotebookRun:
    """What happened when a notebook ran: problems per cell and the reports of tl.check().

    Example:
        >>> run = NotebookRun(Path("exercises/10_concepts.ipynb"), "ex10", graded_cells=1)
        >>> run.passed  # not before every graded cell has reported a pass
        False
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
    """The notebook's own exercise: from its file name (03_….ipynb), else its tl.check call."""
    try:
        key = exercise_id(path.name)
    except ValueError:
        key = None
    if key in EXERCISES:
        return key
    for source in sources:
        found = re.search(r"check\(\s*['\"](ex\d+)['\"]", source)
        if found:
            return exercise_id(found.group(1))
    return None


class BadNotebook(ValueError):
    """The file is missing or is not a notebook; the message is one line that names it.

    Example:
        >>> raise BadNotebook("exercises/03_x.ipynb: not found")
        Traceback (most recent call last):
        tlcourse.grading.runner.BadNotebook: exercises/03_x.ipynb: not found
    """


def read_notebook(path: Path):
    """The notebook at `path`, or BadNotebook with one line (never nbformat's traceback).

    Example:
        >>> read_notebook(Path("missing.ipynb"))
        Traceback (most recent call last):
        tlcourse.grading.runner.BadNotebook: missing.ipynb: not found
    """
    import nbformat

    if not path.exists():
        raise BadNotebook(f"{path}: not found")
    if path.suffix != ".ipynb" or not path.is_file():
        raise BadNotebook(f"{path} is not a notebook file (.ipynb); e.g. exercises/01_….ipynb")
    try:
        notebook = nbformat.read(path, as_version=4)
        nbformat.validate(notebook)
    except Exception as error:
        first = (str(error).strip().splitlines() or [type(error).__name__])[0][:120]
        raise BadNotebook(
            f"{path} is not a readable notebook ({type(error).__name__}: {first}); open it in "
            "JupyterLab and save it again, or start over from a fresh copy of the exercise"
        ) from None
    return notebook


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
    """Execute the notebook in a fresh kernel, then grade its graded cells' objects here.

    It runs whatever code the notebook holds, with your rights: grade untrusted submissions in a
    container or a throwaway account. A cell may run `timeout` s, the whole notebook `total` s;
    a learner's function called by a check runs under the check's limit (TLCOURSE_CHECK_TIMEOUT).
    Raises BadNotebook for a missing or unreadable file; never for the learner's code.

    Example (starts a Jupyter kernel, 5-20 s, so not run as a doctest; tests/test_exercises.py
    checks this notebook through `python -m tlcourse check`):
        >>> run = run_notebook("exercises/10_concepts.ipynb", timeout=60)  # doctest: +SKIP
        >>> run.exercise, run.graded_cells, run.passed  # doctest: +SKIP
        ('ex10', 1, False)
        >>> run.problems[0].index, run.problems[0].kind  # doctest: +SKIP
        (2, 'not attempted')
    """
    from nbclient import NotebookClient

    path = Path(path)
    notebook = read_notebook(path)
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
        submissions = Path(folder) / "submissions"
        env = os.environ | {SUBMIT_ENV: str(submissions), "MPLBACKEND": "agg"}
        env[NOTEBOOK_ENV] = str(path.resolve())
        env[PROGRESS_ENV] = str(Path(folder) / "kernel-progress.json")  # the runner records
        _run_cells(client, notebook, run, env, timeout, total, submissions)
    run.seconds = time.perf_counter() - started
    return run


def _run_cells(
    client, notebook, run: NotebookRun, env: dict, timeout: float, total: float, submissions
):
    """Every cell in order in one kernel, then the graded objects graded in this process."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    index, usable = 0, True
    with client.setup_kernel(env=env, stderr=subprocess.DEVNULL):  # no kernel chatter
        try:
            deadline = time.perf_counter() + total  # from the kernel's start
            for index, cell in enumerate(list(notebook.cells), start=1):
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
            usable = False
        except DeadKernelError:
            run.problems.append(CellProblem(index, False, "kernel died", _kernel_end(client)))
            usable = False
        seconds = float(os.environ.get(TIMEOUT_ENV, "120"))
        kernel = Kernel(client, notebook, seconds) if usable else None
        _grade_submissions(run, submissions, kernel)


def _grade_submissions(run: NotebookRun, submissions: Path, kernel: Kernel | None) -> None:
    """Grade each graded call's objects in this process; only the notebook's own exercise."""
    if not submissions.is_dir():
        return
    for meta in sorted(submissions.glob("*.json"), key=lambda p: int(p.stem)):
        exercise, objects, refused = load_submission(meta, kernel)
        if exercise != run.exercise:
            own = run.exercise or "no known exercise"
            run.problems.append(
                CellProblem(
                    0,
                    True,
                    "wrong exercise",
                    f'a graded cell calls tl.check("{exercise}"), but this notebook is {own}: '
                    f'grade it with tl.check("{own}", ...)',
                )
            )
            continue
        run.reports.append(grade(exercise, objects, refused).to_json())


def _kernel_end(client) -> str:
    """What is known of a kernel that stopped: its exit code or the signal that ended it."""
    try:
        code = client.km.provisioner.process.poll()
    except Exception:  # another provisioner, or no process handle
        code = None
    if code is None:
        return "the Python kernel stopped; its exit status is not known"
    if code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else "?"
        why = " (the system's out-of-memory killer sends this one)" if name == "SIGKILL" else ""
        return f"the Python kernel was ended by signal {-code} ({name}){why}"
    return f"the Python kernel exited with code {code} (a cell called exit(), sys.exit or os._exit)"


def format_run(run: NotebookRun) -> str:
    """The terminal summary: ✅/❌ per check, then the cells that did not run cleanly.

    Example:
        >>> run = NotebookRun(Path("exercises/10_concepts.ipynb"), "ex10", graded_cells=1)
        >>> run.problems.append(CellProblem(2, True, "not attempted", "fill in q1"))
        >>> print(format_run(run))  # ✅/❌, or [ok]/[x] where the console cannot print them
        10_concepts.ipynb (0 s)
          ... graded cell 2: not attempted: fill in q1
          ... 1 graded cell(s) did not reach tl.check
        ... not passing yet
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
        where = ("graded cell" if p.graded else "cell") + (f" {p.index}" if p.index else "")
        if p.kind != "follows":
            lines.append(f"  {bad} {where}: {p.kind}: {p.message}")
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

    The verdict is recorded in your progress file by this process (what cells write there
    while the notebook runs goes to a throwaway file).

    Example:
        >>> check_notebook("exercises/no_such.ipynb")  # = python -m tlcourse check ...
        error: exercises/no_such.ipynb: not found
        2
    """
    try:
        run = run_notebook(path, timeout, total)
    except BadNotebook as error:
        print(f"error: {error}")
        return 2
    print(format_run(run))
    if run.exercise:
        ex = find_exercise(run.exercise)
        own = [r for r in run.reports if r["exercise"] == ex.id]
        best = max(own, key=lambda r: r["points"], default=None)
        if run.passed:
            status = "passed"
        elif best is not None:
            status = (
                "in progress"
                if best["points"] or best["status"] != "not attempted"
                else best["status"]
            )
        elif any(p.kind == "not attempted" for p in run.problems):
            status = "not attempted"
        else:
            status = "error"
        points = ex.max_points if run.passed else (best["points"] if best else 0)
        source = str(Path(path).resolve())
        failed = record_attempt(ex.id, status, points, ex.max_points, source=source)
        if not run.passed:
            titles = {
                r["title"] for report in own for r in report["results"] if r["status"] != "passed"
            }
            needs = {n for c in ex.checks if c.title in titles or not own for n in c.needs}
            for line in next_hints(ex.id, needs, failed, notebook=source):
                print(line)
    return 0 if run.passed else 1
