"""Write exercises/ from solutions/: every marked solution block becomes a NotImplementedError.

In `solutions/NN_name.py` the learner's part sits between `### BEGIN SOLUTION: <what to do>`
and `### END SOLUTION`; the exercise gets `raise NotImplementedError("Exercise N: <what to do>")`
at the same indentation. Hint 1 of each section stays in the exercise; Hints 2 and 3 go to
exercises/hints.json, which the grader reads after failed attempts (see
`tlcourse.grading.hints`). Both the `.py` and the `.ipynb` (no outputs, fixed cell ids) are
written, and the table of exercises/README.md from the registry (see exercises_readme.py).
Repository tooling, not part of the installed package.

    python tools/generate_exercises.py            # = make exercises
    python tools/generate_exercises.py --check    # exit 1 if exercises/ is out of date (CI)
"""

from __future__ import annotations

import argparse
import filecmp
import hashlib
import json
import re
import sys
import tempfile
from pathlib import Path

from exercise_files import ROOT, SOLUTIONS, solution_files
from exercises_readme import readme_problems, shown, write_readme

from tlcourse.grading.hints import HINTS_FILE, split_hints, write_hints
from tlcourse.grading.ids import exercise_id, exercise_number

BEGIN = re.compile(r"^(?P<indent>\s*)### BEGIN SOLUTION(?::\s*(?P<task>.*\S))?\s*$")
END = re.compile(r"^\s*### END SOLUTION\s*$")


def blank_solutions(text: str, number: int, source: str = "<text>") -> str:
    """The exercise version of a solution script: marked blocks -> raise NotImplementedError.

    Example:
        >>> blank_solutions("x = 1\\n### BEGIN SOLUTION: set y\\ny = 2\\n### END SOLUTION\\n", 3)
        'x = 1\\nraise NotImplementedError("Exercise 3: set y")\\n'
    """
    lines, inside = [], False
    for line_number, line in enumerate(text.splitlines(), start=1):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if inside:
                raise ValueError(f"{source}:{line_number}: BEGIN SOLUTION inside another block")
            if not begin["task"]:
                raise ValueError(
                    f"{source}:{line_number}: say what to do: '### BEGIN SOLUTION: <the task>'"
                )
            task = f"Exercise {number}: {begin['task']}"
            message = repr(task) if '"' in task else json.dumps(task, ensure_ascii=False)
            lines.append(f"{begin['indent']}raise NotImplementedError({message})")
            inside = True
        elif end:
            if not inside:
                raise ValueError(f"{source}:{line_number}: END SOLUTION without BEGIN SOLUTION")
            inside = False
        elif not inside:
            lines.append(line)
    if inside:
        raise ValueError(f"{source}: a BEGIN SOLUTION block is never closed")
    if text.count("### BEGIN SOLUTION") == 0:
        raise ValueError(f"{source}: no '### BEGIN SOLUTION: ...' block: nothing to blank out")
    return "\n".join(lines) + "\n"


def to_ipynb(script: str, stem: str) -> str:
    """The .ipynb text of a percent script: no outputs, cell ids fixed by position (stable diff).

    Example:
        >>> json.loads(to_ipynb("# %%\\nx = 1\\n", "03_vgg16"))["cells"][0]["source"]
        ['x = 1']
    """
    import jupytext

    notebook = jupytext.reads(script, fmt="py:percent")
    for index, cell in enumerate(notebook.cells):
        cell.id = hashlib.sha1(f"{stem}:{index}".encode()).hexdigest()[:8]
    return jupytext.writes(notebook, fmt="ipynb")


def generate(solutions: Path, exercises: Path) -> list[Path]:
    """Write exercises/NN_name.{py,ipynb} for every solutions/NN_name.py; returns the paths.

    Example:
        >>> generate(Path("solutions"), Path("exercises"))[0]
        PosixPath('exercises/01_load_and_inspect.py')
    """
    exercises.mkdir(parents=True, exist_ok=True)
    written, hints = [], {}
    for solution in solution_files(solutions).values():
        number = exercise_number(solution.name)
        shown, hints[exercise_id(number)] = split_hints(solution.read_text(encoding="utf-8"))
        script = blank_solutions(shown, number, str(solution))
        for suffix, text in ((".py", script), (".ipynb", to_ipynb(script, solution.stem))):
            target = exercises / f"{solution.stem}{suffix}"
            target.write_text(text, encoding="utf-8")
            written.append(target)
    if not written:
        raise ValueError(f"no solutions/NN_name.py files in {solutions}")
    write_hints(exercises / HINTS_FILE, hints)  # Hints 2 and 3, shown after failed attempts
    return [*written, exercises / HINTS_FILE]


def stale(solutions: Path, exercises: Path) -> list[str]:
    """Files of `exercises` that differ from a fresh generation (changed, missing or extra),
    and README.md's table if it differs from the registry (or a solution has no checks).

    Example:
        >>> stale(Path("solutions"), Path("exercises"))  # up to date
        []
    """
    with tempfile.TemporaryDirectory() as folder:
        fresh = generate(solutions, Path(folder))
        names = {p.name for p in fresh}
        problems = [
            f"{shown(exercises / p.name)}: "
            + ("differs" if (exercises / p.name).exists() else "missing")
            for p in fresh
            if not (exercises / p.name).exists()
            or not filecmp.cmp(p, exercises / p.name, shallow=False)
        ]
    extra = [
        p
        for p in sorted(exercises.glob("[0-9][0-9]_*"))
        if p.suffix in (".py", ".ipynb", ".json") and p.name not in names
    ]
    extra_problems = [f"{shown(p)}: has no solution (delete it)" for p in extra]
    return problems + extra_problems + readme_problems(solutions, exercises / "README.md")


def main(argv: list[str] | None = None) -> int:
    """The command line: write exercises/ and its README table, or with `--check` only list
    what is stale. Returns the exit status: 0 done/up to date, 1 stale, 2 bad input.

    Example:
        >>> main(["--check"])  # = make exercises-check; prints nothing when up to date
        0
    """
    parser = argparse.ArgumentParser(prog="python tools/generate_exercises.py")
    parser.add_argument("--solutions", type=Path, default=SOLUTIONS)
    parser.add_argument("--exercises", type=Path, default=ROOT / "exercises")
    parser.add_argument("--check", action="store_true", help="only report stale files (exit 1)")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = stale(args.solutions, args.exercises)
            for problem in problems:
                print(problem)
            if problems:
                print("exercises/ is out of date: run `make exercises` and commit the result")
            return 1 if problems else 0
        for path in generate(args.solutions, args.exercises):
            print(f"wrote {shown(path)}")
        readme = args.exercises / "README.md"
        changed = write_readme(args.solutions, readme)
        print(f"{'wrote' if changed else 'unchanged'} {shown(readme)}")
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
