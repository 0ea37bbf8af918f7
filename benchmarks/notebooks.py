"""Goal 5: the whole notebook suite runs under nbval in <= 300 s (each notebook <= 60 s).

Runs exactly what `make nbval` runs for notebooks/ (pytest --nbval-lax --nbval-current-env with
the sanitize file) as a child process, reads per-cell times from its JUnit XML, and keeps the
run's peak memory for goal 7 (`benchmarks/memory.py`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import xml.etree.ElementTree as ElementTree
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from matplotlib.figure import Figure

from benchmarks.common import ChildRun, Goal, Section, at_most, run_child, save_figure

TOTAL_GOAL = 300.0
NOTEBOOK_GOAL = 60.0
ROOT = Path(__file__).resolve().parents[1]
QUICK_NOTEBOOKS = ["notebooks/00_setup_check.ipynb"]  # the smallest: checks that parsing works


@dataclass
class CellTime:
    notebook: str  # file name, e.g. "01_pretrained_models.ipynb"
    cell: str  # nbval's test name, e.g. "Cell 3"
    seconds: float
    failed: bool


_LAST: dict[str, ChildRun] = {}  # the latest nbval run, for the memory benchmark


def parse_junit(path: Path) -> list[CellTime]:
    """Per-cell times from pytest's JUnit XML (one <testcase> per notebook cell)."""
    cells = []
    for case in ElementTree.parse(path).getroot().iter("testcase"):
        # classname is the path with "/" as ".": "notebooks.01_pretrained_models.ipynb"
        notebook = case.get("classname", "").removesuffix(".ipynb").rsplit(".", 1)[-1]
        failed = any(child.tag in ("failure", "error") for child in case)
        cells.append(
            CellTime(f"{notebook}.ipynb", case.get("name", ""), float(case.get("time", 0)), failed)
        )
    return cells


def run_nbval(paths: list[str]) -> tuple[ChildRun, list[CellTime]]:
    """Run nbval on `paths` (relative to the repository) as a child process; peak RSS measured."""
    with tempfile.TemporaryDirectory() as folder:
        junit = Path(folder) / "nbval.xml"
        command = [
            sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--nbval-lax",
            "--nbval-current-env", "--nbval-sanitize-with", "tests/nbval_sanitize.cfg",
            f"--junitxml={junit}", *paths,
        ]  # fmt: skip
        env = {**os.environ, "TLCOURSE_OFFLINE": "1"}
        child = run_child(command, env=env, cwd=ROOT)
        cells = parse_junit(junit) if junit.exists() else []
    _LAST["run"] = child
    return child, cells


def last_run() -> ChildRun | None:
    """The ChildRun of the latest `run_nbval` in this process (None if none ran)."""
    return _LAST.get("run")


def notebook_paths(quick: bool) -> list[str]:
    if quick:
        return QUICK_NOTEBOOKS
    return sorted(str(p.relative_to(ROOT)) for p in (ROOT / "notebooks").glob("*.ipynb"))


def run(quick: bool, out: Path) -> Section:
    paths = notebook_paths(quick)
    child, cells = run_nbval(paths)
    per_notebook: dict[str, list[CellTime]] = defaultdict(list)
    for cell in cells:
        per_notebook[cell.notebook].append(cell)
    section = Section(
        "notebooks",
        "5. Notebook suite under nbval",
        [
            f"`pytest --nbval-lax --nbval-current-env --nbval-sanitize-with "
            f"tests/nbval_sanitize.cfg` on {len(paths)} notebooks "
            f"({'quick mode: only ' + ', '.join(paths) if quick else 'all of notebooks/'}), "
            "one child process, TLCOURSE_OFFLINE=1. Total = wall time of the whole run "
            "(pytest start, kernel starts, all cells); per notebook = sum of its cell times "
            "from the JUnit XML (kernel start-up not included).",
        ],
    )
    failed = sum(cell.failed for cell in cells)
    section.goals.append(
        Goal(
            "whole suite, wall time",
            f"<= {TOTAL_GOAL:.0f} s",
            f"{child.seconds:.0f} s",
            at_most(child.seconds, TOTAL_GOAL) and child.returncode == 0,
            f"{len(per_notebook)} notebooks, {len(cells)} cells, {failed} failed "
            f"(pytest exit {child.returncode})",
        )
    )
    slowest_notebook = max(
        per_notebook.items(), key=lambda item: sum(c.seconds for c in item[1]), default=None
    )
    if slowest_notebook:
        name, its_cells = slowest_notebook
        seconds = sum(c.seconds for c in its_cells)
        section.goals.append(
            Goal(
                "slowest notebook (sum of cells)",
                f"<= {NOTEBOOK_GOAL:.0f} s",
                f"{seconds:.1f} s",
                at_most(seconds, NOTEBOOK_GOAL),
                name,
            )
        )
    rows = []
    for name, its_cells in sorted(per_notebook.items()):
        slowest = max(its_cells, key=lambda c: c.seconds)
        rows.append([name, f"{sum(c.seconds for c in its_cells):.1f}", str(len(its_cells)),
                     f"{slowest.cell} ({slowest.seconds:.1f} s)",
                     str(sum(c.failed for c in its_cells))])  # fmt: skip
    section.tables.append((["notebook", "seconds", "cells", "slowest cell", "failed"], rows))
    if child.returncode != 0:
        section.details = ["nbval output (end):", *child.output_tail.splitlines()[-40:]]
    if per_notebook:
        section.plots.append(_plot(per_notebook, out))
    return section


def _plot(per_notebook: dict[str, list[CellTime]], out: Path) -> str:
    figure = Figure(figsize=(7, 3.5))
    axes = figure.subplots()
    names = sorted(per_notebook)
    totals = [sum(c.seconds for c in per_notebook[n]) for n in names]
    slowest = [max(c.seconds for c in per_notebook[n]) for n in names]
    axes.barh(names, totals, label="all cells")
    axes.barh(names, slowest, label="slowest cell")
    axes.axvline(NOTEBOOK_GOAL, color="red", linestyle="--", label=f"{NOTEBOOK_GOAL:.0f} s")
    axes.invert_yaxis()
    axes.set_xlabel("seconds under nbval")
    axes.set_title("notebook run times")
    axes.legend(fontsize=8)
    return save_figure(figure, out, "bench_notebooks.png")
