"""The floors run's guard: each direct dependency installed at the lowest version
pyproject.toml allows, so `make test-floors` tests the floors and not something newer.

`make test-floors` installs with `uv pip install --resolution lowest-direct`; this script then
asks the floors environment's Python what it got and compares it with each `name>=floor` of
pyproject.toml (dependencies and the dev extra). Exit 1 names every package above its floor
(uv picks a higher version when the floor has no build for that Python: raise the floor).

Usage: python tools/floors.py PATH/TO/FLOORS/bin/python
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: tomli (pytest needs it there) is the same parser
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
ASK = (
    "import importlib.metadata as m, json, sys\n"
    "print(json.dumps({n: m.version(n) for n in sys.argv[1:]}))"
)


def declared_floors(pyproject: Path = ROOT / "pyproject.toml") -> dict[str, str]:
    """{name: floor} of every `name>=floor` requirement (dependencies and the dev extra).

    Example:
        >>> declared_floors()["torch"]  # doctest: +SKIP
        '2.3'
    """
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    floors = {}
    for line in project["dependencies"] + project["optional-dependencies"]["dev"]:
        requirement = Requirement(line)
        lows = [s.version for s in requirement.specifier if s.operator == ">="]
        if not lows:
            raise SystemExit(f"pyproject.toml: {line!r} declares no floor (name>=version)")
        floors[requirement.name] = lows[0]
    return floors


def installed(python: str, names: list[str]) -> dict[str, str]:
    """{name: version} as the environment of `python` reports it."""
    out = subprocess.run([python, "-c", ASK, *names], capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    floors = declared_floors()
    versions = installed(argv[0], list(floors))
    python = subprocess.run([argv[0], "-V"], capture_output=True, text=True).stdout.strip()
    above = []
    print(f"floors run on {python}:")
    for name, floor in floors.items():
        got = versions[name]
        mark = "at the floor" if Version(got) == Version(floor) else "ABOVE the floor"
        print(f"  {name:36s} >= {floor:10s} installed {got:12s} {mark}")
        if Version(got) != Version(floor):
            above.append(f"{name} {got} (floor {floor})")
    if above:
        print(
            "not at their floors (raise the floor in pyproject.toml to what passes): "
            + ", ".join(above),
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
