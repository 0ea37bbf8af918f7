"""pytest plugin (`-p nbval_outputs`): appends what each nbval cell printed to $NBVAL_OUTPUTS.

nbval --nbval-lax passes a cell that runs without error and keeps its outputs to itself; a test
that needs to read what a notebook printed (a count, the data it used) loads this plugin in the
pytest subprocess that runs the notebook (tests/ on PYTHONPATH).
"""

import os


def pytest_runtest_makereport(item, call):
    outputs = getattr(item, "test_outputs", None)  # set by nbval's IPyNbCell.runtest
    if call.when != "call" or not outputs or "NBVAL_OUTPUTS" not in os.environ:
        return
    text = "".join(out.get("text", "") for out in outputs if out.get("output_type") == "stream")
    with open(os.environ["NBVAL_OUTPUTS"], "a", encoding="utf-8") as file:
        file.write(text)
