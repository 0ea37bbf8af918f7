"""The benchmark machinery is correct: report writer, interleaving, JUnit parsing, child runs.

No timing is asserted here (numbers depend on the machine); `make bench` measures.
"""

import math
import sys
from pathlib import Path

import pytest

from benchmarks.__main__ import BENCHMARKS
from benchmarks.common import Goal, Section, interleaved, run_child
from benchmarks.course_vs_tutorial import _first_reaching
from benchmarks.extraction import cpu_peak_flops
from benchmarks.notebooks import parse_junit
from benchmarks.report import QUICK_BANNER, render, verdict, write_report


def sections():
    first = Section("loop_overhead", "1. Loop overhead", ["how it was measured"])
    first.goals = [
        Goal("fit / bare", "<= 1.05x", "1.02x", True, "bare 1.0 s"),
        Goal("a | b", "<= 1.05x", "1.20x", False),
    ]
    first.tables = [(["workload", "s"], [["head", "0.5"]])]
    first.plots = ["bench_loop_overhead.png"]
    first.details = ["profile line"]
    second = Section("course_vs_tutorial", "3. Course vs tutorial", ["capped"])
    second.goals = [Goal("sooner", ">= 10x", ">= 4x (lower bound)", None)]
    return [first, second]


def test_report_has_goals_verdicts_tables_and_plots():
    text = render(sections(), {"torch": "2.x", "cpu cores": "2"}, quick=False, total_seconds=42)
    assert QUICK_BANNER not in text
    assert "| torch | 2.x |" in text
    assert "| 1 | fit / bare | <= 1.05x | 1.02x | PASS | bare 1.0 s |" in text
    assert "| 1 | a \\| b | <= 1.05x | 1.20x | FAIL |  |" in text  # a "|" cannot break the table
    assert "| 3 | sooner | >= 10x | >= 4x (lower bound) | n/a |  |" in text
    assert "1 of 3 goals pass." in text
    assert "| workload | s |\n| --- | --- |\n| head | 0.5 |" in text
    assert "![loop_overhead](bench_loop_overhead.png)" in text
    assert "```text\nprofile line\n```" in text
    assert text.index("## 1. Loop overhead") < text.index("## 3. Course vs tutorial")


def test_quick_report_is_marked_and_written(tmp_path):
    path = write_report(sections(), {}, quick=True, path=tmp_path / "d" / "b.md", total_seconds=1)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# Benchmarks") and QUICK_BANNER in text
    assert "BENCH_QUICK=1 make bench" in text


def test_verdict_words():
    assert [verdict(v) for v in (True, False, None)] == ["PASS", "FAIL", "n/a"]


def test_interleaved_rotates_the_order_and_keeps_each_variants_times():
    calls = []

    def variant(name, seconds):
        return lambda: calls.append(name) or seconds

    variants = {"a": variant("a", 1.0), "b": variant("b", 2.0), "c": variant("c", 3.0)}
    times = interleaved(variants, 3)
    assert calls == ["a", "b", "c"] + ["a", "b", "c", "b", "c", "a", "c", "a", "b"]  # warm-up first
    assert times == {"a": [1.0] * 3, "b": [2.0] * 3, "c": [3.0] * 3}


def test_parse_junit_groups_cells_by_notebook(tmp_path):
    xml = tmp_path / "nbval.xml"
    xml.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites><testsuite name="pytest">'
        '<testcase classname="notebooks.01_pretrained_models.ipynb" name="Cell 0" time="1.5"/>'
        '<testcase classname="notebooks.01_pretrained_models.ipynb" name="Cell 1" time="0.25">'
        '<failure message="boom"/></testcase>'
        "</testsuite></testsuites>"
    )
    cells = parse_junit(xml)
    assert [(c.notebook, c.cell, c.seconds, c.failed) for c in cells] == [
        ("01_pretrained_models.ipynb", "Cell 0", 1.5, False),
        ("01_pretrained_models.ipynb", "Cell 1", 0.25, True),
    ]


def test_run_child_reports_exit_code_output_and_memory():
    # The child holds ~200 MB for a moment: its peak RSS must show it.
    code = "import sys; block = b'x' * (200 * 2**20); print('done'); sys.exit(3)"
    child = run_child([sys.executable, "-c", code])
    assert child.returncode == 3
    assert "done" in child.output_tail
    assert child.peak_rss_mb >= 200


def test_run_child_peak_is_the_childs_own_not_its_big_parents():
    # Linux keeps a parent's high-water mark across fork + exec; the launcher must hide it.
    parent_block = b"p" * (400 * 2**20)
    child = run_child([sys.executable, "-c", "block = b'c' * (50 * 2**20)"])
    assert len(parent_block) and 50 <= child.peak_rss_mb < 300


def test_extraction_is_registered_and_its_peak_says_how_it_was_computed():
    assert "extraction" in BENCHMARKS
    points = [(1.0, 0.5), (2.0, 0.7), (3.0, 0.6)]
    assert _first_reaching(points, 0.6) == 2.0 and _first_reaching(points, 0.8) == math.inf
    if not Path("/proc/cpuinfo").exists():
        pytest.skip("no /proc/cpuinfo: the peak is not computed here")
    peak, how = cpu_peak_flops(2)
    assert peak > 0 and "2 threads x" in how and "GFLOP/s" in how
