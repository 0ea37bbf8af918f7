"""Validation for every choice, test once: no lesson, solution or exercise may *choose* anything
(a learning rate, a threshold, a remedy, an epoch, a checkpoint) by looking at the test set.
Run by `make lint`; exit 1 lists each finding as file:line.

How it reads a notebook (a jupytext percent file is Python): it follows what comes from the test
set through assignments, then looks for the shapes a choice takes.

1. Test data. An expression touches the test set when it names it: an identifier with a `test`
   word (`test_loader`, `x_test`, `head_test`), a subscript `[..."test"...]`, an attribute
   `.test`, or a call of a function that names it inside and returns one value
   (`def accuracy(head): ... ["test"]`). A name assigned from such an expression (`=`, `+=`, a
   `for` target, a comprehension, `name.append(...)`, `name[key] = ...`) touches it too, in the
   order the file runs; `name = clean` makes it clean again.
   (`splits = load_splits(..., {"test": 300})` does not: a dict *key* names a split, it does not
   read one.)
2. A choice, when the expression touches the test set:
   a. assigned to a name that says it is a choice (`best...`, `chosen...`, `choice...`,
      `selected...`, `pick...`), or assigned to one inside an `if` whose condition touches it;
   b. `argmax`/`argmin`/`idxmax`/`idxmin` over a whole curve (no axis or dim: a per-sample
      `logits.argmax(1)` is a prediction, not a choice);
   c. `max`/`min`/`sorted` with a `key=`;
   d. `fit(model, train, VAL, ...)` with test data as VAL while it keeps the best epoch
      (`restore_best` not False) or stops early (`patience=`).

A found line that is not a choice goes in EXCEPTIONS with the reason a reader can check.

Usage: python tools/check_selection.py [FILE ...]   (default: notebooks/, solutions/, exercises/)
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PLACES = ("notebooks", "solutions", "exercises")

TEST_WORD = re.compile(r"(?<![a-z])test(s|set)?(?![a-z])", re.IGNORECASE)
CHOICE_NAME = re.compile(r"^_?(best|chosen|choice|selected|pick)", re.IGNORECASE)
WHOLE_CURVE = {"argmax", "argmin", "nanargmax", "nanargmin", "idxmax", "idxmin"}
KEYED = {"max", "min", "sorted"}
GROWS = {"append", "extend", "update", "add", "insert", "setdefault"}

# (path, a piece of the line) -> why the line this lint finds is not a choice made on the test set.
EXCEPTIONS: dict[tuple[str, str], str] = {
    ("notebooks/07_your_own_data.py", "low, high = sorted("): (
        "orders the two thresholds, both fixed before the test set, to assert that the lower one "
        "finds more; it keys on the threshold, not on a test score"
    ),
    ("notebooks/11_missing_data.py", "best_repair = max("): (
        "an upper bound over every repair for the assert 'no answer gets back what was lost'; "
        "nothing is chosen or used after it"
    ),
}


@dataclass(frozen=True)
class Finding:
    path: str
    line: int
    why: str
    text: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.why}  | {self.text.strip()[:100]}"


def _walk(node: ast.AST) -> list[ast.AST]:
    """ast.walk, less what a comprehension iterates over: `[f(x) for x in test]` reads the test
    set through `x`, which the comprehension binds first (so `{k: f(v) for k, v in [("train",
    a), ("test", b)]}` is not all test data)."""
    found, todo = [], [node]
    while todo:
        current = todo.pop()
        found.append(current)
        if isinstance(current, ast.comprehension):
            todo.extend(current.ifs)
        else:
            todo.extend(ast.iter_child_nodes(current))
    return found


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in _walk(node) if isinstance(n, ast.Name)}


def _names_test_set(node: ast.AST) -> bool:
    """Does the expression name the test set itself (not through an assigned name)?"""
    for n in _walk(node):
        if isinstance(n, ast.Name) and TEST_WORD.search(n.id):
            return True
        if isinstance(n, ast.Attribute) and TEST_WORD.search(n.attr):
            return True
        if isinstance(n, ast.Subscript):
            keys = [c.value for c in ast.walk(n.slice) if isinstance(c, ast.Constant)]
            if any(isinstance(k, str) and TEST_WORD.search(k) for k in keys):
                return True
    return False


def _base_names(target: ast.AST) -> tuple[set[str], bool]:
    """Names a target binds, and whether the binding replaces the value (`a = `) or adds to it
    (`a[k] = `, `a.b = `)."""
    if isinstance(target, ast.Name):
        return {target.id}, True
    if isinstance(target, ast.Tuple | ast.List):
        names, strong = set(), True
        for element in target.elts:
            inner, inner_strong = _base_names(element)
            names |= inner
            strong &= inner_strong
        return names, strong
    while isinstance(target, ast.Subscript | ast.Attribute | ast.Starred):
        target = target.value
    return ({target.id} if isinstance(target, ast.Name) else set()), False


def _reads(node: ast.AST | None) -> ast.AST | None:
    """The expression with what a dict keyed "test" holds left out: `{"test": x}` names a split
    to fill, it does not read the test set into the dict's other entries."""
    if node is None:
        return None
    if isinstance(node, ast.Dict):
        kept = [v for k, v in zip(node.keys, node.values, strict=True) if not _names_split(k)]
        return ast.Tuple(elts=kept, ctx=ast.Load())
    if isinstance(node, ast.List | ast.Tuple):  # [("train", a), ("test", b)]: pairs keyed alike
        kept = [
            e
            for e in node.elts
            if not (isinstance(e, ast.Tuple) and e.elts and _names_split(e.elts[0]))
        ]
        return ast.Tuple(elts=kept, ctx=ast.Load())
    return node


def _names_split(key: ast.AST | None) -> bool:
    return (
        isinstance(key, ast.Constant)
        and isinstance(key.value, str)
        and bool(TEST_WORD.search(key.value))
    )


def _touches(node: ast.AST | None, tainted: set[str]) -> bool:
    node = _reads(node)
    return node is not None and (_names_test_set(node) or bool(_names(node) & tainted))


def _call_name(call: ast.Call) -> str:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")


def _keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def _end(node: ast.AST) -> tuple[int, int]:
    return node.end_lineno or 0, node.end_col_offset or 0


def _events(tree: ast.AST) -> list[tuple[tuple[int, int], int, ast.AST]]:
    """Checks and bindings in the order Python runs them: a statement binds after it has read its
    value (so `x = [f(a) for a in test]` binds `a` first, then `x`); at one place, checks first."""
    events = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.NamedExpr):
            if node.value is not None:
                events.append((_end(node.value), 0, node))
                events.append((_end(node.value), 1, node))
        elif isinstance(node, ast.For | ast.comprehension):
            events.append((_end(node.iter), 1, node))
        elif isinstance(node, ast.If):
            events.append((_end(node.test), 0, node))
        elif isinstance(node, ast.Call):
            events.append((_end(node), 0, node))
            if isinstance(node.func, ast.Attribute) and node.func.attr in GROWS:
                events.append((_end(node), 1, node))
    return sorted(events, key=lambda e: (e[0], e[1]))


def _bind(node: ast.AST, tainted: set[str]) -> None:
    if isinstance(node, ast.Call):  # name.append(...): adds to name
        names, _ = _base_names(node.func.value)
        if any(_touches(a, tainted) for a in [*node.args, *[k.value for k in node.keywords]]):
            tainted |= names
        return
    if isinstance(node, ast.Assign):
        targets, source = node.targets, node.value
    elif isinstance(node, ast.For | ast.comprehension):
        targets, source = [node.target], node.iter
    else:
        targets, source = [node.target], node.value
    if (  # a, b = x, y: each name from its own expression
        len(targets) == 1
        and isinstance(targets[0], ast.Tuple | ast.List)
        and isinstance(source, ast.Tuple | ast.List)
        and len(targets[0].elts) == len(source.elts)
        and not isinstance(node, ast.For | ast.comprehension)
    ):
        for target, value in zip(targets[0].elts, source.elts, strict=True):
            names, strong = _base_names(target)
            if _touches(value, tainted):
                tainted |= names
            elif strong:
                tainted -= names
        return
    touched = _touches(source, tainted)
    for target in targets:
        names, strong = _base_names(target)
        if isinstance(node, ast.AugAssign):
            strong = False
        if touched:
            tainted |= names
        elif strong:
            tainted -= names


def _choice_names(statement: ast.AST) -> set[str]:
    """The names an assignment binds that say they hold a choice (`best_lr = `, `chosen = `)."""
    if not isinstance(statement, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.NamedExpr):
        return set()
    targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
    return {n for t in targets for n in _base_names(t)[0] if CHOICE_NAME.search(n)}


def _choice(node: ast.AST, tainted: set[str]) -> list[tuple[int, str]]:
    found = []
    named = _choice_names(node)
    if named and _touches(node.value, tainted):
        found.append((node.lineno, f"{sorted(named)[0]} is set from test data"))
    elif isinstance(node, ast.If) and _touches(node.test, tainted):
        for statement in (s for inner in node.body for s in ast.walk(inner)):
            if named := _choice_names(statement):
                why = f"{sorted(named)[0]} is set on a test comparison"
                found.append((statement.lineno, why))
    elif isinstance(node, ast.Call):
        name = _call_name(node)
        method = isinstance(node.func, ast.Attribute)
        if name in WHOLE_CURVE and not any(k.arg in ("axis", "dim") for k in node.keywords):
            # curve.argmax() or np.argmax(curve); logits.argmax(1) is a prediction per sample
            receiver = node.func.value if method else None
            if (method and not node.args and _touches(receiver, tainted)) or (
                len(node.args) == 1 and _touches(node.args[0], tainted)
            ):
                found.append((node.lineno, f"{name} over a test curve chooses on it"))
        key = _keyword(node, "key")
        if (
            name in KEYED
            and key is not None
            and (_touches(key, tainted) or any(_touches(a, tainted) for a in node.args))
        ):
            found.append((node.lineno, f"{name}(key=...) ranks on test data"))
        if name == "fit":
            val = node.args[2] if len(node.args) > 2 else _keyword(node, "val_loader")
            restore = _keyword(node, "restore_best")
            keeps_best = not (isinstance(restore, ast.Constant) and restore.value is False)
            stops = _keyword(node, "patience") is not None
            if _touches(val, tainted) and (keeps_best or stops):
                found.append((node.lineno, "fit keeps the best epoch on test data"))
    return found


def choices(tree: ast.AST) -> list[tuple[int, str]]:
    """Every choice made on test data, as (line, why), following the file in the order it runs."""
    # a function that reads the test set inside (`def accuracy(head): ... features["test"]`)
    # returns test data wherever it is called
    # (a function returning a tuple of splits, `return train, val, test`, is a loader: its
    # caller unpacks the splits by name)
    tainted = {
        f.name
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef)
        for r in ast.walk(f)
        if isinstance(r, ast.Return)
        and not isinstance(r.value, ast.Tuple)
        and any(_names_test_set(s) for s in f.body)
    }
    found: list[tuple[int, str]] = []
    for _, kind, node in _events(tree):
        if kind == 0:
            found += _choice(node, tainted)
        else:
            _bind(node, tainted)
    return sorted(set(found))


def check_file(path: Path) -> list[Finding]:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text, filename=str(path))
    lines = text.splitlines()
    shown = relative(path)
    findings = []
    for line, why in choices(tree):
        if not any(p == shown and piece in lines[line - 1] for p, piece in EXCEPTIONS):
            findings.append(Finding(shown, line, why, lines[line - 1]))
    return findings


def relative(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def course_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for place in PLACES for p in (root / place).glob("[0-9]*.py"))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    paths = [Path(a) for a in argv] or course_files()
    findings = [f for path in paths for f in check_file(path)]
    for finding in findings:
        print(finding)
    if findings:
        print(
            f"\n{len(findings)} choice(s) made on the test set. Choose on validation data "
            "(a rate, a threshold, a remedy, an epoch) and measure the test set once, at the end; "
            "a line that is not a choice goes in EXCEPTIONS in tools/check_selection.py, with why."
        )
        return 1
    print(f"check_selection: {len(paths)} files, no choice made on the test set")
    return 0


if __name__ == "__main__":
    sys.exit(main())
