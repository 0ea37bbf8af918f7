"""Benchmarks: is the course fast? Ratios measured side by side in one run.

`make bench` (= `python -m benchmarks`) runs every benchmark and writes `docs/benchmarks.md` plus
PNG plots in `docs/`. `BENCH_QUICK=1` runs tiny sizes in seconds (a smoke test, not the numbers).

Example:
    $ BENCH_QUICK=1 .venv/bin/python -m benchmarks --only loop_overhead
"""
