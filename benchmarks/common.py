"""Shared helpers of the benchmarks: quick mode, interleaved timing, results, machine facts.

Every benchmark module has `run(quick: bool, out: Path) -> Section`; `benchmarks/__main__.py`
collects the sections and `benchmarks/report.py` writes them as markdown.

Example:
    >>> times = interleaved({"a": lambda: 0.1, "b": lambda: 0.2}, rounds=3)
    >>> median(times["b"]) / median(times["a"])
    2.0
"""

from __future__ import annotations

import contextlib
import io
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from torch import nn
from torch.utils.data import DataLoader, Dataset

import tlcourse as tl

QUICK_ENV = "BENCH_QUICK"  # "1": tiny sizes, seconds in all; a smoke test, not the real numbers
THREADS_ENV = "BENCH_THREADS"  # torch threads; unset: torch's default (one per core)
SEED = 0


def quick_mode() -> bool:
    """True when the environment asks for quick mode (`BENCH_QUICK=1`)."""
    return os.environ.get(QUICK_ENV, "") in ("1", "true", "yes")


@dataclass
class Goal:
    """One row of the goals table: what was asked, what was measured, did it pass."""

    name: str  # "fit / bare loop, linear head"
    target: str  # "<= 1.05x"
    measured: str  # "1.02x"
    passed: bool | None  # None: not decided (e.g. a lower bound below the target)
    context: str = ""  # absolute seconds etc.: context only, never the criterion


@dataclass
class Section:
    """The results of one benchmark module, as the report shows them."""

    key: str  # module name, e.g. "loop_overhead"
    title: str
    design: list[str]  # how it was measured (sizes, repeats, what is compared)
    goals: list[Goal] = field(default_factory=list)
    tables: list[tuple[list[str], list[list[str]]]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # observations and proposals (markdown)
    details: list[str] = field(default_factory=list)  # preformatted lines, e.g. a profile
    plots: list[str] = field(default_factory=list)  # file names in docs/
    seconds: float = 0.0  # how long the benchmark itself ran


def at_most(value: float, limit: float) -> bool:
    return value <= limit


def at_least(value: float, limit: float) -> bool:
    return value >= limit


def median(values: list[float]) -> float:
    return statistics.median(values)


def paired_ratio(numerator: list[float], denominator: list[float]) -> float:
    """Median over rounds of numerator[r] / denominator[r]: each ratio compares two runs made
    seconds apart in the same round, so a slow spell of a shared machine cancels out instead of
    landing on one variant's median."""
    return median([a / b for a, b in zip(numerator, denominator, strict=True)])


def interleaved(
    variants: dict[str, Callable[[], float]], rounds: int, warmup: bool = True
) -> dict[str, list[float]]:
    """Run each variant once per round, rotating the order (A B C, B C A, ...), `rounds` times.

    Each callable does its own setup and returns the seconds of the part it times. Interleaving
    spreads slow phases of a shared machine over all variants, so their ratio stays fair. A
    first, untimed round (`warmup`) keeps one-time costs (allocator, kernel selection) out.
    """
    names = list(variants)
    if warmup:
        for name in names:
            variants[name]()
    seconds: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        shift = round_index % len(names)
        for name in names[shift:] + names[:shift]:
            seconds[name].append(variants[name]())
    return seconds


@contextlib.contextmanager
def stopwatch() -> Iterator[dict[str, float]]:
    """`with stopwatch() as watch: ...` then `watch["seconds"]` (perf_counter)."""
    watch = {"seconds": 0.0}
    started = time.perf_counter()
    try:
        yield watch
    finally:
        watch["seconds"] = time.perf_counter() - started


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """Swallow stdout and stderr (progress bars, epoch lines) without a terminal's cost."""
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def machine_facts() -> dict[str, str]:
    """Cores, threads, torch version, load average: the context every number needs."""
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "cpu cores (os.cpu_count)": str(os.cpu_count()),
        "torch threads": str(torch.get_num_threads()),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "device": str(tl.get_device()),
        "load average at start (1/5/15 min)": " / ".join(f"{x:.2f}" for x in load),
    }


def loader(
    dataset: Dataset, batch_size: int = 64, shuffle: bool = False, seed: int = SEED
) -> DataLoader:
    """A DataLoader whose shuffle order depends only on `seed` (same batches in every variant)."""
    return DataLoader(
        dataset, batch_size=batch_size, shuffle=shuffle, generator=tl.make_generator(seed)
    )


def pretrained_lite0(num_classes: int = 10, seed: int = SEED) -> nn.Module:
    """Frozen pretrained EfficientNet-Lite0 with a fresh (seeded) 1280 -> `num_classes` head."""
    model = tl.load_pretrained("efficientnet_lite0")
    tl.freeze(model, verbose=False)
    torch.manual_seed(seed)
    tl.replace_head(model, num_classes=num_classes, verbose=False)
    return model


def plain_log_axis(axis) -> None:
    """Log-scale ticks at 1, 2, 5, 10, 20, ... written as plain numbers (not 10^0, 3x10^1)."""
    axis.set_major_locator(LogLocator(subs=(1, 2, 5)))
    axis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
    axis.set_minor_formatter(NullFormatter())


def save_figure(figure, out: Path, name: str) -> str:
    """Save a matplotlib Figure as out/name (PNG, 100 dpi); returns the file name."""
    out.mkdir(parents=True, exist_ok=True)
    figure.tight_layout()
    figure.savefig(out / name, dpi=100)
    return name


@dataclass
class ChildRun:
    """A finished child process: wall seconds, exit code, peak memory, the end of its output."""

    seconds: float
    returncode: int
    peak_rss_mb: float  # largest single process (the child or a descendant it waited for)
    peak_tree_mb: float | None  # sum over the process tree, sampled every 0.2 s (psutil)
    output_tail: str


# A small Python process that starts the command and reports its peak RSS. Why not `os.wait4`
# on the command directly: a child records its parent's memory when it execs (Linux keeps the
# old high-water mark), so a big benchmark process would inflate every reading.
_LAUNCHER = (
    "import os, subprocess, sys\n"
    "child = subprocess.Popen(sys.argv[2:])\n"
    "_, status, usage = os.wait4(child.pid, 0)\n"
    "open(sys.argv[1], 'w').write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)


def run_child(
    command: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
) -> ChildRun:
    """Run `command`, measuring wall time and peak RSS; returns a ChildRun.

    Peak RSS of the largest process comes from the kernel (`wait4` in a small launcher process:
    it covers the command and the descendants it waited for). The whole tree's sum (e.g. pytest
    + the Jupyter kernel) is sampled with psutil (installed with Jupyter), if it is available.

    Example:
        >>> run_child([sys.executable, "-c", "print('hi')"]).returncode
        0
    """
    try:
        import psutil
    except ImportError:  # optional: the kernel's number is still there
        psutil = None
    with tempfile.TemporaryDirectory() as folder, open(Path(folder) / "log", "w+") as log:
        maxrss_file = Path(folder) / "maxrss"
        started = time.perf_counter()
        launcher = subprocess.Popen(
            [sys.executable, "-c", _LAUNCHER, str(maxrss_file), *command],
            stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd, text=True,
        )  # fmt: skip
        peak_tree, done = [0.0], threading.Event()

        def sample() -> None:  # the launcher's descendants: the command and its children
            root = psutil.Process(launcher.pid)
            while not done.wait(0.2):
                with contextlib.suppress(psutil.Error):
                    total = 0
                    for process in root.children(recursive=True):
                        with contextlib.suppress(psutil.Error):
                            total += process.memory_info().rss
                    peak_tree[0] = max(peak_tree[0], total / 2**20)

        sampler = threading.Thread(target=sample, daemon=True) if psutil else None
        if sampler:
            sampler.start()
        returncode = launcher.wait()
        seconds = time.perf_counter() - started
        done.set()
        if sampler:
            sampler.join()
        log.seek(0)
        tail = log.read()[-3000:]
        maxrss = int(maxrss_file.read_text()) if maxrss_file.exists() else 0
    # ru_maxrss is in KiB on Linux, bytes on macOS
    peak_rss_mb = maxrss / (2**20 if sys.platform == "darwin" else 2**10)
    return ChildRun(seconds, returncode, peak_rss_mb, peak_tree[0] if psutil else None, tail)
