"""Notebook pairs (.ipynb + .py percent) are in sync, have no outputs, use kernel python3."""

from pathlib import Path

import jupytext
import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(
    p for d in ("notebooks", "solutions", "exercises") for p in (ROOT / d).glob("*.ipynb")
)


def cells(notebook):
    return [(cell.cell_type, cell.source.strip()) for cell in notebook.cells]


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebooks found: nbval would silently test nothing"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_pair_in_sync_without_outputs(path):
    pair = path.with_suffix(".py")
    assert pair.exists(), f"{pair.name} missing: run `make sync`"
    notebook, script = jupytext.read(path), jupytext.read(pair)
    assert cells(notebook) == cells(script), f"{path.name} and {pair.name} differ: run `make sync`"
    assert notebook.metadata["kernelspec"]["name"] == "python3"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, f"{path.name}: clear outputs"
