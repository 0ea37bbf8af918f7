"""Graduated hints: the notebook shows the idea; each failed attempt unlocks the next hint.

A solution's task section carries up to three hints as collapsible blocks in its markdown:
`<details><summary>Hint 1 (the idea)</summary>`, `Hint 2 (the API)`, `Hint 3 (the code)`.
`make exercises` keeps Hint 1 in the exercise notebook and moves the others to
`exercises/hints.json`, with the objects each section builds (the names its solution blocks
assign, as `tl.check` receives them). After a failed attempt the grader shows, for the sections
whose objects failed, the hint one level above what the learner has seen: Hint 2 after the
first failed attempt, Hint 3 after the second.

Example:
    >>> text, sections = split_hints(Path("solutions/01_load_and_inspect.py").read_text())
    >>> sections[0]["section"], sections[0]["objects"], sorted(sections[0]["hints"])
    ('1. Load EfficientNet-Lite0 with its pretrained ImageNet weights', ['model'], ['2', '3'])
    >>> next_hints("ex01", {"model"}, failed_attempts=1)[0]
    'Next hints, unlocked by 1 failed attempt (another failed attempt shows Hint 3, the code):'
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

HINTS_FILE = "hints.json"
HINT_START = re.compile(
    r"^# <details><summary>Hint (?P<level>\d) \((?P<what>[^)]*)\)</summary>\s*$"
)
HINT_END = re.compile(r"^# </details>\s*$")
HEADING = re.compile(r"^# #{2,3} (?P<title>.+?)\s*$")
UNLOCK = (
    "# *Stuck?* Run the graded cell: after a failed attempt its report shows Hint 2 (the API),"
    "\n# after another Hint 3 (the code)."
)


def _assigned(code: str) -> set[str]:
    """Names a code cell binds at its top level (not inside its functions): assignments, `def`,
    `class`, `for` and `with` targets. A cell that does not parse binds nothing."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return set()
    names, todo = set(), list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
            continue
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.stmt):
                todo.append(child)
            else:
                for n in ast.walk(child):  # `x = `, and `x.fc = ` / `x[k] = ` change x
                    if not isinstance(getattr(n, "ctx", None), ast.Store):
                        continue
                    while isinstance(n, ast.Attribute | ast.Subscript):
                        n = n.value
                    if isinstance(n, ast.Name):
                        names.add(n.id)
    return names


def graded_objects(text: str) -> dict[str, str]:
    """{variable: object name} from the `tl.check("exNN", object=variable, ...)` calls.

    Example:
        >>> graded_objects('tl.check("ex01", model=net, head_info=head_info)')
        {'net': 'model', 'head_info': 'head_info'}
    """
    found = {}
    for line_text in re.findall(r"tl\.check\((?:[^()]|\([^()]*\))*\)", text, re.S):
        try:
            call = ast.parse(line_text).body[0].value
        except (SyntaxError, IndexError, AttributeError):
            continue
        for keyword in call.keywords:
            if keyword.arg and isinstance(keyword.value, ast.Name):
                found[keyword.value.id] = keyword.arg
    return found


def split_hints(text: str) -> tuple[str, list[dict]]:
    """(the exercise's text with Hints 2+ taken out, the sections with their later hints).

    Each section (a `##` heading up to the next): {"section": its title, "objects": the graded
    object names its solution cells bind, "hints": {"2": text, "3": text}}. Hint 1 stays,
    followed by a line saying how the next ones unlock.

    Example:
        >>> solution = Path("solutions/02_freeze_and_replace_head.py").read_text()
        >>> shown, sections = split_hints(solution)
        >>> "Hint 2 (the API)</summary>" in shown, sections[0]["objects"]
        (False, ['make_feature_extractor'])
    """
    objects_of = graded_objects(text)
    kept: list[str] = []
    sections: list[dict] = []
    section: dict = {"section": "", "objects": [], "hints": {}}
    cell: list[str] = []
    level, block = None, []

    def close_cell() -> None:
        code = "\n".join(cell)
        if "### BEGIN SOLUTION" in code:
            bound = _assigned(code)
            section.setdefault("binds", set()).update(bound)
            section.setdefault("code", []).append(code)
            names = {objects_of[n] for n in bound if n in objects_of}
            if not names:  # `tl.freeze(model)`: the objects the solution lines work on
                inside = "\n".join(re.findall(r"### BEGIN SOLUTION.*?### END SOLUTION", code, re.S))
                names = {o for n, o in objects_of.items() if re.search(rf"\b{n}\b", inside)}
            section["objects"] = sorted(set(section["objects"]) | names)
        cell.clear()

    for line in text.splitlines():
        if line.startswith("# %%"):
            close_cell()
        elif heading := HEADING.match(line):
            section = {"section": heading["title"], "objects": [], "hints": {}}
            sections.append(section)
        start = HINT_START.match(line)
        if start and level is not None or line.startswith("# %%") and level is not None:
            raise ValueError(f"a hint block is never closed (</details>) in {section['section']!r}")
        if start:
            level, block = int(start["level"]), []
            if level >= 2:
                if kept and kept[-1] == "#":
                    kept.pop()  # the blank line before a later hint goes with it
                continue
        elif level is not None:
            if HINT_END.match(line):
                if level >= 2:
                    section["hints"][str(level)] = _unquote(block)
                else:
                    kept += [line, "#", *UNLOCK.splitlines()]
                level = None
                continue
            block.append(line)
            if level >= 2:
                continue
        cell.append(line)
        kept.append(line)
    close_cell()
    if level is not None:
        raise ValueError(f"a hint block is never closed (</details>) in {section['section']!r}")
    for i, early in enumerate(sections):  # a helper (`load(path)`) counts for the objects of
        for later in sections[i + 1 :]:  # the sections whose solutions call it
            if not early["objects"] and any(
                re.search(rf"\b{name}\b", code)
                for name in early.get("binds", ())
                for code in later.get("code", ())
            ):
                early["objects"] = sorted(set(early["objects"]) | set(later["objects"]))
    hinted = [
        {key: s[key] for key in ("section", "objects", "hints")} for s in sections if s["hints"]
    ]
    return "\n".join(kept) + ("\n" if text.endswith("\n") else ""), hinted


def _unquote(block: list[str]) -> str:
    body = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in block]
    return "\n".join(body).strip("\n")


def find_hints_file(notebook: str | Path | None = None) -> Path | None:
    """exercises/hints.json: beside the graded notebook, in the working folder, or in the
    course's exercises/ folder; None if there is none.

    Example:
        >>> find_hints_file("exercises/02_freeze_and_replace_head.ipynb").name
        'hints.json'
    """
    here = Path(__file__).resolve().parents[2] / "exercises"
    places = [Path(notebook).expanduser().parent] if notebook else []
    places += [Path.cwd(), Path.cwd() / "exercises", here]
    for place in places:
        if (place / HINTS_FILE).is_file():
            return place / HINTS_FILE
    return None


def next_hints(
    exercise: str,
    failing_needs: set[str],
    failed_attempts: int,
    notebook: str | Path | None = None,
) -> list[str]:
    """Report lines with the next hint of each section that builds an object a failing check
    needs (and of each section whose objects cannot be told; all when none matches).
    `failed_attempts` counts this one: 1 -> Hint 2, 2 or more -> Hint 3.

    Example:
        >>> next_hints("ex01", {"head_info"}, failed_attempts=2)[1]
        '  2. Write `head_info(model)` · Hint 3 (the code):'
    """
    if failed_attempts < 1:
        return []
    path = find_hints_file(notebook)
    if path is None:
        return []
    try:
        sections = json.loads(path.read_text(encoding="utf-8")).get(exercise, [])
    except (OSError, ValueError):
        return []
    # the sections that build a failing object, and those whose objects cannot be told
    chosen = [s for s in sections if not s["objects"] or set(s["objects"]) & failing_needs]
    chosen = chosen or sections
    lines = []
    for section in chosen:
        levels = sorted(int(k) for k in section["hints"])
        if not levels:
            continue
        # the highest level this many failures unlock; the lowest there is, if that is higher
        level = max((lv for lv in levels if lv <= 1 + failed_attempts), default=levels[0])
        what = "the code" if level >= 3 else "the API"
        lines.append(f"  {section['section']} · Hint {level} ({what}):")
        lines += [
            f"    {line}" if line else "" for line in section["hints"][str(level)].splitlines()
        ]
    if not lines:
        return []
    attempts = f"{failed_attempts} failed attempt{'s' if failed_attempts > 1 else ''}"
    then = "" if failed_attempts >= 2 else " (another failed attempt shows Hint 3, the code)"
    return [f"Next hints, unlocked by {attempts}{then}:", *lines]


def write_hints(path: Path, hints: dict[str, list[dict]]) -> None:
    """Write {exercise id: sections} as indented JSON (`make exercises` does, into exercises/).

    Example:
        >>> text = Path("solutions/02_freeze_and_replace_head.py").read_text()
        >>> write_hints(Path("exercises/hints.json"), {"ex02": split_hints(text)[1]})
    """
    path.write_text(json.dumps(hints, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
