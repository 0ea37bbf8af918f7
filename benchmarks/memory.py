"""Goal 7: peak memory (RSS) of `python -m tlcourse demo` <= 2 GB; and of the whole nbval run.

Each runs as a child process: the kernel's peak RSS of the largest process (`os.wait4`) and,
with psutil, the sampled peak of the whole process tree (pytest + Jupyter kernel).
The nbval numbers come from the run of `benchmarks/notebooks.py` when it ran in this process.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from benchmarks import notebooks
from benchmarks.common import Goal, Section, at_most, run_child

DEMO_GOAL_MB = 2048.0
QUICK_DEMO = (
    "from tlcourse.demo import run_demo; run_demo(head_epochs=2, finetune_epochs=1, "
    "out={out!r}, sizes={{'train': 100, 'val': 50, 'test': 100}})"
)


def _mb(value: float | None) -> str:
    return "n/a (no psutil)" if value is None else f"{value:.0f} MB"


def run(quick: bool, out: Path) -> Section:
    env = {**os.environ, "TLCOURSE_OFFLINE": "1"}
    with tempfile.TemporaryDirectory() as folder:
        command = [sys.executable, "-m", "tlcourse", "demo", "--out", folder]
        if quick:  # the same pipeline on tiny sizes (the CLI has no size flag)
            command = [sys.executable, "-c", QUICK_DEMO.format(out=folder)]
        demo = run_child(command, env=env, cwd=notebooks.ROOT)
    nbval = notebooks.last_run()
    if nbval is None:  # e.g. `--only memory`: run the suite here
        nbval, _ = notebooks.run_nbval(notebooks.notebook_paths(quick))
    section = Section(
        "memory",
        "7. Memory: peak RSS",
        [
            "Child processes, TLCOURSE_OFFLINE=1. 'Largest process' is the kernel's maximum "
            "resident set size of the child or any descendant it waited for (`os.wait4`, "
            "ru_maxrss); 'process tree' is the sum of RSS over the child and all its "
            "descendants, sampled every 0.2 s with psutil (shared pages counted per process, "
            "so it over-estimates).",
            "Demo: `python -m tlcourse demo` with its defaults"
            + (" except quick mode: `run_demo` on 100/50/100 images, 2+1 epochs" if quick else "")
            + f". nbval: the run of benchmark 5 ({'quick: one notebook' if quick else 'all'}).",
        ],
    )
    section.goals.append(
        Goal(
            "demo peak RSS",
            f"<= {DEMO_GOAL_MB / 1024:.0f} GB",
            f"{demo.peak_rss_mb:.0f} MB",
            at_most(demo.peak_rss_mb, DEMO_GOAL_MB) and demo.returncode == 0,
            f"{demo.seconds:.0f} s, exit {demo.returncode}",
        )
    )
    section.tables.append(
        (
            ["run", "largest process", "process tree (sampled)", "seconds", "exit"],
            [
                ["python -m tlcourse demo", _mb(demo.peak_rss_mb), _mb(demo.peak_tree_mb),
                 f"{demo.seconds:.0f}", str(demo.returncode)],
                ["nbval notebooks/", _mb(nbval.peak_rss_mb), _mb(nbval.peak_tree_mb),
                 f"{nbval.seconds:.0f}", str(nbval.returncode)],
            ],
        )
    )  # fmt: skip
    if demo.returncode != 0:
        section.details = ["demo output (end):", *demo.output_tail.splitlines()[-30:]]
    return section
