"""No import cycles in tlcourse: every `import` of every module, function bodies included.

The graph is read from the source with `ast`, so an import hidden inside a function (the usual way
a cycle is papered over) counts like one at the top. A package's `__init__` importing its own
submodules is not a cycle by itself: only explicit import statements are edges, not the implicit
import of the parent package that Python does first.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def module_files(package: Path) -> dict[str, Path]:
    """{"tlcourse.grading.grader": path, "tlcourse.grading": .../__init__.py, ...}"""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The dotted names an import statement asks for (`from a import b` -> "a.b" and "a")."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    base = node.module or ""
    if node.level:  # relative: from . import x, from ..y import z
        anchor = module if is_package else module.rpartition(".")[0]
        for _ in range(node.level - 1):
            anchor = anchor.rpartition(".")[0]
        base = f"{anchor}.{base}" if base else anchor
    return [f"{base}.{alias.name}" for alias in node.names]


def import_graph(package: Path) -> dict[str, dict[str, str]]:
    """{module: {module it imports: "file:line" of the first such import}} within `package`."""
    modules = module_files(package)
    graph: dict[str, dict[str, str]] = {}
    for module, path in modules.items():
        edges = graph.setdefault(module, {})
        tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        for node in ast.walk(tree):
            for name in _imported(node, module, path.name == "__init__.py"):
                while name and name not in modules:  # "pkg.mod.function" -> "pkg.mod"
                    name = name.rpartition(".")[0]
                if name and name != module:
                    where = f"{path.relative_to(package.parent)}:{node.lineno}"
                    edges.setdefault(name, where)
    return graph


def cycles(graph: dict[str, dict[str, str]]) -> list[str]:
    """Each import cycle once, as 'a -> b (a.py:3) -> a (b.py:7)'."""
    found, seen, done = [], set(), set()

    def visit(module: str, stack: list[str]) -> None:
        if module in done:
            return
        if module in stack:
            loop = stack[stack.index(module) :] + [module]
            if frozenset(loop) not in seen:
                seen.add(frozenset(loop))
                steps = [f"{b} ({graph[a][b]})" for a, b in zip(loop, loop[1:])]
                found.append(" -> ".join([loop[0], *steps]))
            return
        for target in sorted(graph.get(module, {})):
            visit(target, stack + [module])
        done.add(module)

    for module in sorted(graph):
        visit(module, [])
    return found


def test_tlcourse_has_no_import_cycles():
    graph = import_graph(ROOT / "tlcourse")
    assert "tlcourse.grading.progress" in graph["tlcourse.grading.grader"]  # the graph is read
    problems = cycles(graph)
    assert not problems, "import cycles (break each by moving the shared code one way):\n" + (
        "\n".join(problems)
    )


def test_a_deliberate_cycle_is_found_even_inside_a_function(tmp_path):
    package = tmp_path / "pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("import os\nfrom pkg.b import helper\n")
    (package / "b.py").write_text("def helper():\n    from . import a  # hidden in a function\n")
    (package / "c.py").write_text("import pkg.a\n")  # imports into the cycle, is not part of it
    assert cycles(import_graph(package)) == ["pkg.a -> pkg.b (pkg/a.py:2) -> pkg.a (pkg/b.py:2)"]
