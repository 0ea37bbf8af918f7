"""`python -m benchmarks [--only NAME,...] [--quick] [--out docs]`: run, then write the report.

Runs the benchmarks 1-7 and 8 (extraction) one after another (each in
this process, except the notebook suite and the demo, which run as child processes so their
memory is their own) and writes `<out>/benchmarks.md` plus `<out>/bench_*.png`. Exit status 1
if a benchmark crashed. `BENCH_THREADS=N` sets torch's thread count (default: torch's own, one
per core).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from pathlib import Path

import torch

from benchmarks.common import QUICK_ENV, THREADS_ENV, Goal, Section, machine_facts, quick_mode
from benchmarks.report import write_report

BENCHMARKS = [
    "loop_overhead",
    "feature_cache",
    "course_vs_tutorial",
    "transfer_vs_scratch",
    "notebooks",
    "data_loading",
    "memory",
    "extraction",
]


def run_one(name: str, quick: bool, out: Path) -> Section:
    """Run benchmarks/<name>.py; a crash becomes a failed section with its traceback."""
    started = time.perf_counter()
    try:
        section = importlib.import_module(f"benchmarks.{name}").run(quick, out)
    except Exception:  # one broken benchmark must not lose the others' numbers
        section = Section(name, f"{BENCHMARKS.index(name) + 1}. {name} (crashed)", [])
        section.goals.append(Goal(name, "runs", "crashed", False, "see the traceback below"))
        section.details = traceback.format_exc().splitlines()
    section.seconds = time.perf_counter() - started
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--only", default="", help=f"comma-separated subset of {BENCHMARKS}")
    parser.add_argument("--quick", action="store_true", help=f"tiny sizes (same as {QUICK_ENV}=1)")
    parser.add_argument("--out", default="docs", help="folder of benchmarks.md and PNGs (docs)")
    args = parser.parse_args(argv)
    quick = args.quick or quick_mode()
    names = [n.strip() for n in args.only.split(",") if n.strip()] or BENCHMARKS
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}: choose from {', '.join(BENCHMARKS)}")
    os.environ.setdefault("TLCOURSE_OFFLINE", "1")  # never try to download weights
    threads = os.environ.get(THREADS_ENV, "")
    if threads:  # e.g. 1 on a shared machine: 2 threads on 2 busy cores run 5-15x slower
        torch.set_num_threads(int(threads))
        os.environ["OMP_NUM_THREADS"] = threads  # the same in the child processes
    out = Path(args.out)
    facts = machine_facts()
    started = time.perf_counter()
    sections = []
    for name in names:
        print(f"[bench] {name} ...", flush=True)
        sections.append(run_one(name, quick, out))
        for goal in sections[-1].goals:
            print(f"[bench]   {goal.name}: {goal.measured} (target {goal.target})", flush=True)
        print(f"[bench]   {sections[-1].seconds:.0f} s", flush=True)
    total = time.perf_counter() - started
    path = write_report(sections, facts, quick, out / "benchmarks.md", total)
    print(f"[bench] wrote {path} ({total:.0f} s)")
    return 1 if any("crashed" in s.title for s in sections) else 0


if __name__ == "__main__":
    sys.exit(main())
