"""Every sentence true: numbers in the lessons' prose must come from code, and the learner's text
must hold no development notes. Run by `make lint`; exit 1 lists each finding as file:line.

1. Numbers. Every number in a markdown cell of notebooks/*.py (jupytext percent files; a markdown
   cell is a `# %% [markdown]` block) must be *supported*. A number is supported when

   a. the same value is written in a nearby code cell: the nearest code cell above the markdown
      cell, the nearest one below, or any code cell of the same section (a section starts at a
      markdown heading of level 1 or 2). "Written" means a Python number (`SIDE = 14`,
      `assert gap < 0.1`), a number inside a string (`f"... {n} of 256 images"`) or a number in a
      comment (the seed spread written beside an assert). A percentage also matches its fraction
      (30 % matches 0.3), and 1,000 matches 1000;
   b. or its sentence says where the value comes from: it contains one of MARKERS ("printed",
      "asserted", "computed", "the table above", ...) — a promise the reader can check against the
      output right above;
   c. or it is not a measured claim: a year, a lesson/section/exercise number ("Lesson 03",
      "section 4"), a heading's or a list's number, part of a name (`Lite0`, `fp16`, `VGG16`,
      `ResNet-18`), inside `inline code`, a fenced code block or an address (URL, doi), in a
      table whose header has a "source" column (cited values), in the "**Try next:**" paragraph
      that ends a lesson (settings to try, not claims), or one of ALWAYS_OK (0, 1, 2: "one
      image", "two runs").

2. Development notes. `DEV_NOTES` (GPU model names of our machines, "this machine", "in our
   trials", "we tried", issue numbers, "the syllabus" that no learner has seen) must not appear
   in notebooks/, solutions/, exercises/,
   docs/, site/ or README.md: they belong in the issue note, not in the learner's text.

TEMPORARY_ALLOWLIST below lists findings in lessons whose owners have not fixed them yet; each
fix should delete its entry. An entry absorbs one finding of that number in that file (the exact
line first, so edits above it that shift lines do not break the lint). Unused entries are
reported (not fatal) so the list only shrinks.

Usage: python tools/check_claims.py [FILE ...]   (default: the course's files)
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# A sentence with one of these says the number is read off the output or checked in code.
MARKERS = (
    "printed",
    "prints",
    "asserted",
    "computed",
    "the table above",
    "the plot above",
    "the figure above",
    "the output above",
)
# Numbers too common to be a claim: "one image", "two processes", "zero".
ALWAYS_OK = {0.0, 1.0, 2.0}
# Words after which a number names something rather than measures it: "Lesson 03", "section 4".
NAMING_WORDS = (
    "lesson",
    "lessons",
    "notebook",
    "notebooks",
    "section",
    "sections",
    "exercise",
    "exercises",
    "ex",
    "step",
    "steps",
    "part",
    "chapter",
    "figure",
    "python",
    "pytorch",
    "torch",
    "torchvision",
    "version",
    "rank",
    "item",
)
# Units a number may carry without becoming a name ("96px", "10x", "410k", "2nd").
UNITS = {"x", "k", "m", "px", "s", "ms", "gb", "mb", "kb", "nd", "rd", "th", "st", "d"}

# "the syllabus": the course's source outline, never shown to a learner, so never defined for one.
DEV_NOTES = re.compile(
    r"H200|this machine|in our trials|we tried|issue [0-9]|syllabus", re.IGNORECASE
)
# A learner reads and understands this: the library's own error message, quoted in docs/errors.md.
DEV_NOTE_OK = ("CUDA is not available on this machine",)
DEV_NOTE_PLACES = ("notebooks", "solutions", "exercises", "docs", "site")
DEV_NOTE_SUFFIXES = {".py", ".md", ".yml", ".yaml", ".txt", ".cfg", ".ipynb"}

# ---- TEMPORARY ALLOWLIST: findings in lessons 00-07 and 10 (and solutions/exercises 06, 09), still
# to be fixed by their owners.
# file:line:number (or file:line:note for a development note). Delete an entry when you fix its
# sentence; the list must only shrink, and must be empty when the lessons are done.
TEMPORARY_ALLOWLIST: tuple[str, ...] = ()
# ---- END OF TEMPORARY ALLOWLIST

NUMBER = re.compile(r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")
CODE_NUMBER = re.compile(r"(?<![\w.])\d+(?:_\d+)*(?:\.\d+)?(?:[eE][-+]?\d+)?")


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    number: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.number}  | {self.text.strip()[:110]}"


@dataclass
class Cell:
    kind: str  # "markdown" or "code"
    start: int  # 1-based line of the first content line
    lines: list[str]
    section: int


def relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def cells_of(text: str) -> list[Cell]:
    """Split a jupytext percent file into cells; number the sections (level 1-2 headings)."""
    cells: list[Cell] = []
    current: Cell | None = None
    section = 0
    for number, line in enumerate(text.splitlines(), start=1):
        if line.startswith("# %%"):
            kind = "markdown" if "[markdown]" in line else "code"
            current = Cell(kind, number + 1, [], section)
            cells.append(current)
            continue
        if current is None:  # the jupytext header
            continue
        if current.kind == "markdown" and re.match(r"#\s{0,3}#{1,2}\s", line):
            section += 1
            if not current.lines:
                current.section = section
        current.lines.append(line)
    # A heading inside a markdown cell starts a section for what follows it; a cell that opens
    # with a heading belongs to its section. Code cells take the section of the text above them.
    last = 0
    for cell in cells:
        if cell.kind == "markdown":
            headings = sum(bool(re.match(r"#\s{0,3}#{1,2}\s", line)) for line in cell.lines)
            last = cell.section + headings - (1 if cell.lines and _is_heading(cell.lines[0]) else 0)
        else:
            cell.section = last
    return cells


def _is_heading(line: str) -> bool:
    return bool(re.match(r"#\s{0,3}#{1,2}\s", line))


def _value(token: str) -> float | None:
    try:
        return float(token.replace(",", "").replace("_", ""))
    except ValueError:
        return None


def code_values(cell: Cell) -> set[float]:
    """Every number written in a code cell: literals, inside strings, in comments."""
    values = set()
    for line in cell.lines:
        for match in CODE_NUMBER.finditer(line):
            value = _value(match.group())
            if value is not None:
                values.add(value)
                if line[: match.start()].endswith("-"):
                    values.add(-value)
    return values


def _sentences(cell: Cell) -> Iterator[tuple[int, str, str]]:
    """(line number, line text with code masked, the sentence around it) for a markdown cell.

    Inline code and fenced blocks are blanked out; a table row is its own sentence, with the
    table's header prepended."""
    masked: list[str] = []
    fenced = False
    for line in cell.lines:
        body = re.sub(r"^#\s?", "", line)
        if body.lstrip().startswith("```"):
            fenced = not fenced
            masked.append("")
            continue
        if fenced:
            masked.append("")
            continue
        body = re.sub(r"`[^`]*`", lambda m: " " * len(m.group()), body)
        # addresses are not claims: https://..., doi:10.1234/..., a link's target ](...)
        body = re.sub(r"https?://\S+|doi:\S+|\]\([^)]*\)", lambda m: " " * len(m.group()), body)
        masked.append(body)
    # Join into one text with offsets, split into sentences, and map each number back to its line.
    offsets, text = [], ""
    for body in masked:
        offsets.append(len(text))
        text += body + "\n"
    boundaries = [0]
    for match in re.finditer(r"[.!?:;](?=\s)|\n\s*\n|\n(?=\s*[-*|]\s)|\n(?=\s*\d+\.\s)", text):
        boundaries.append(match.end())
    boundaries.append(len(text))
    table_header = ""
    suggestions = False
    for index, body in enumerate(masked):
        stripped = body.strip()
        if re.match(r"\**Try next", stripped):
            suggestions = True  # "Try next": settings to try, not claims
        if suggestions:
            continue
        if stripped.startswith("|"):
            if not table_header:
                table_header = stripped
            sentence = table_header + " " + stripped
        else:
            table_header = ""
            start = offsets[index]
            before = max(b for b in boundaries if b <= start)
            after = min((b for b in boundaries if b > start + len(body)), default=len(text))
            sentence = text[before:after]
        yield cell.start + index, body, sentence


def markdown_numbers(cell: Cell) -> Iterator[tuple[int, str, float, str, str]]:
    """(line, token, value, line text, sentence) for every number that could be a claim."""
    for line_number, body, sentence in _sentences(cell):
        if re.match(r"\s*#{1,6}\s", body):  # a heading: drop its leading number ("## 3.")
            body = re.sub(r"^(\s*#{1,6}\s+)\d+(\.\d+)*\.?", lambda m: " " * len(m.group()), body)
        body = re.sub(r"^(\s*)\d+\.(?=\s)", lambda m: " " * len(m.group()), body)  # "1. item"
        for match in NUMBER.finditer(body):
            token, start, end = match.group(), match.start(), match.end()
            before, after = body[:start], body[end:]
            if re.search(r"[A-Za-z_]-?$", before) or re.search(r"[A-Za-z]-$", before):
                continue  # part of a name: VGG16, ResNet-18, fp16, Lite0, B4
            unit = re.match(r"[A-Za-z_]+", after)
            if unit and unit.group().lower() not in UNITS:
                continue  # 30xx, 3D, x86_64
            if after.startswith(("-", "‑")) and re.match(r"[-‑][A-Za-z]", after):
                continue  # 2-layer, 1-hot: a compound word
            word = re.search(r"([A-Za-z]+)\s*$", before)
            if word and word.group(1).lower() in NAMING_WORDS:
                continue
            value = _value(token)
            if value is None or value in ALWAYS_OK:
                continue
            if value.is_integer() and 1900 <= value <= 2099 and "." not in token:
                continue  # a year
            yield line_number, token, value, body, sentence


def check_notebook(path: Path) -> list[Finding]:
    cells = cells_of(path.read_text(encoding="utf-8"))
    values = [code_values(cell) if cell.kind == "code" else set() for cell in cells]
    findings = []
    for index, cell in enumerate(cells):
        if cell.kind != "markdown":
            continue
        nearby: set[float] = set()
        above = [i for i in range(index - 1, -1, -1) if cells[i].kind == "code"][:1]
        below = [i for i in range(index + 1, len(cells)) if cells[i].kind == "code"][:1]
        same = [
            i
            for i, other in enumerate(cells)
            if other.kind == "code" and other.section in _sections(cell)
        ]
        for i in above + below + same:
            nearby |= values[i]
        for line, token, value, body, sentence in markdown_numbers(cell):
            lowered = " ".join(sentence.lower().split())
            if any(marker in lowered for marker in MARKERS):
                continue
            if body.strip().startswith("|") and re.search(r"\|\s*sources?\s*\|", lowered):
                continue  # a table that cites where each number comes from
            percent = re.match(r"\s*%", body[body.find(token) + len(token) :])
            candidates = {value, -value} | ({value / 100} if percent else set())
            if any(_close(c, v) for c in candidates for v in nearby):
                continue
            findings.append(Finding(relative(path), line, token, body))
    return findings


def _sections(cell: Cell) -> set[int]:
    headings = sum(_is_heading(line) for line in cell.lines)
    first = cell.section
    return set(range(first, first + headings + 1))


def _close(a: float, b: float) -> bool:
    return a == b or abs(a - b) <= 1e-9 * max(abs(a), abs(b))


def dev_note_files(root: Path = ROOT) -> Iterator[Path]:
    for place in DEV_NOTE_PLACES:
        folder = root / place
        if not folder.is_dir():
            continue
        for path in sorted(folder.rglob("*")):
            if path.suffix not in DEV_NOTE_SUFFIXES or not path.is_file():
                continue
            if any(
                part.startswith((".", "_")) and part != "_toc.yml"
                for part in path.parts[len(root.parts) :]
            ):
                continue
            if path.suffix == ".ipynb" and path.with_suffix(".py").exists():
                continue  # its jupytext pair is checked
            yield path
    if (root / "README.md").exists():
        yield root / "README.md"


def check_dev_notes(path: Path) -> list[Finding]:
    findings = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        for match in DEV_NOTES.finditer(line):
            if any(ok in line for ok in DEV_NOTE_OK):
                continue
            findings.append(Finding(relative(path), number, match.group(), line))
    return findings


def apply_allowlist(
    findings: list[Finding], allowlist: Iterable[str]
) -> tuple[list[Finding], list[str]]:
    """Drop the findings the allowlist covers; return (what is left, unused entries)."""
    entries = []
    for entry in allowlist:
        file, line, number = entry.rsplit(":", 2)
        entries.append((file, int(line), number, entry))
    left = []
    unused = list(entries)
    for exact in (True, False):
        still = []
        for finding in findings if exact else left:
            match = next(
                (
                    e
                    for e in unused
                    if e[0] == finding.path
                    and e[2] == finding.number
                    and (e[1] == finding.line or not exact)
                ),
                None,
            )
            if match:
                unused.remove(match)
            else:
                still.append(finding)
        left = still
    return left, [e[3] for e in unused]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        paths = [Path(a) for a in argv]
        notebooks = [p for p in paths if p.suffix == ".py"]
        dev = paths
    else:
        notebooks = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
        dev = list(dev_note_files())
    numbers = [f for path in notebooks for f in check_notebook(path)]
    numbers, unused = apply_allowlist(numbers, TEMPORARY_ALLOWLIST) if not argv else (numbers, [])
    notes = [f for path in dev for f in check_dev_notes(path)]
    notes, unused_notes = apply_allowlist(notes, unused)
    unused = [e for e in unused if e in unused_notes]
    for entry in unused:
        print(f"check_claims: allowlist entry no longer needed, delete it: {entry}")
    if numbers:
        print(
            f"{len(numbers)} number(s) in markdown cells that no nearby code cell prints, asserts"
        )
        print("or computes (print it just above with an f-string, assert it, or drop it):")
        for finding in numbers:
            print(f"  {finding}")
    if notes:
        print(
            f"{len(notes)} development note(s) in the learner's text (move them to the issue note):"
        )
        for finding in notes:
            print(f"  {finding}")
    return 1 if numbers or notes else 0


if __name__ == "__main__":
    sys.exit(main())
