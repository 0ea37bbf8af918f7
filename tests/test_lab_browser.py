"""The learner's path after `make lab`, in a real browser: JupyterLab in headless Chromium.

Start `make lab` (the project's venv, a token, a free port), open a notebook in the browser, run
every cell through the UI (Run > Run All Cells), wait for the kernel to go idle, and read what
the learner sees: lesson 00 with no error and its plot; exercise 2 stopping at the blank, then
`tl.check` printing ✅/❌ for a typical first attempt and only ✅ for a right answer.
Nothing is saved: autosave is off and the notebook files are compared before and after.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests
from browser_support import ROOT, PlaywrightTimeout, chromium, screenshot

pytestmark = pytest.mark.browser  # headless Chromium: `make test`, not `make check`

TOKEN = "tlcourse-browser-test-token"
LESSON = "notebooks/00_setup_check.ipynb"
EXERCISE = "exercises/02_freeze_and_replace_head.ipynb"
# JupyterLab settings for this server only: no autosave (the repository's notebooks stay without
# outputs). The news pop-up is switched off by the project's own override (jupyter/overrides.json,
# installed by `make lab`), which test_make_lab_opens_lesson_00_with_nothing_in_the_way checks.
SETTINGS = {"@jupyterlab/docmanager-extension/plugin": {"autosave": False}}
NEWS_QUESTION = "official Jupyter news"  # JupyterLab's "Would you like to get notified about..."
# A typical first attempt at exercise 2 (the new head is right, nothing is frozen), then the fix.
FIRST_ATTEMPT = """def make_feature_extractor(model, num_classes):
    tl.replace_head(model, num_classes=num_classes)
    return model"""
RIGHT_ANSWER = """def make_feature_extractor(model, num_classes):
    tl.freeze(model)
    tl.replace_head(model, num_classes=num_classes)
    return model"""
PANEL = ".jp-NotebookPanel:not(.lm-mod-hidden)"  # the notebook in front
STDERR = f'{PANEL} .jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """`make lab` on a free port with a token; yields its URL; the server is stopped after."""
    tmp = tmp_path_factory.mktemp("lab")
    for plugin, values in SETTINGS.items():
        path = tmp / "settings" / f"{plugin}.jupyterlab-settings"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))
    port = free_port()
    # README's command as it is (no LAB_OPTS): the port and token come from Jupyter's own
    # environment variables; as root and without a display jupyter/lab.py adds what it needs.
    env = {
        k: v for k, v in os.environ.items() if k not in ("LAB_OPTS", "DISPLAY", "WAYLAND_DISPLAY")
    }
    env |= {
        "JUPYTER_PORT": str(port),
        "JUPYTER_TOKEN": TOKEN,
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        "JUPYTER_CONFIG_DIR": str(tmp / "config"),
        "JUPYTERLAB_SETTINGS_DIR": str(tmp / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
        "TLCOURSE_PROGRESS": str(tmp / "progress.json"),  # not the learner's progress file
    }
    if shutil.which("make"):
        command = ["make", "-s", "lab"]
    else:  # the Makefile's `lab` target, without make
        command = [sys.executable, "jupyter/lab.py"]
    originals = {name: (ROOT / name).read_bytes() for name in (LESSON, EXERCISE)}
    server = subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        start_new_session=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(240):  # up to 120 s on a busy machine
            try:
                if requests.get(f"{base}/api/status?token={TOKEN}", timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            assert server.poll() is None, f"`make lab` exited: {server.stdout.read()}"
            time.sleep(0.5)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        for name, content in originals.items():
            if (ROOT / name).read_bytes() != content:
                (ROOT / name).write_bytes(content)
                pytest.fail(f"JupyterLab saved {name} during the test (restored it)")


@pytest.fixture(scope="module")
def browser():
    with chromium("The JupyterLab test (tests/test_lab_browser.py)") as browser:
        yield browser


def open_notebook(browser, base: str, name: str):
    """A new tab on `name` in its own workspace (nothing restored from another test)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{base}/lab/workspaces/{Path(name).stem}/tree/{name}?token={TOKEN}")
    page.locator(f"{PANEL} .jp-Cell").first.wait_for(timeout=120_000)
    wait_idle(page, timeout_s=120)  # the kernel has started
    return page


def prompts(page) -> list[str]:
    """The code cells' prompts: [ ]: not run, [*]: running or queued, [7]: ran 7th."""
    return page.eval_on_selector_all(
        f"{PANEL} .jp-CodeCell .jp-InputPrompt", "ps => ps.map(p => p.textContent.trim())"
    )


def wait_idle(page, timeout_s: float) -> None:
    """Until the status bar says the kernel is idle and no cell waits to run ([*])."""
    page.wait_for_function(
        """panel => {
            const kernel = [...document.querySelectorAll(".jp-StatusBar-Item")]
                .map(item => item.textContent.trim())
                .find(text => / \\| \\w+$/.test(text));
            const prompts = [...document.querySelectorAll(panel + " .jp-InputPrompt")]
                .map(prompt => prompt.textContent.trim());
            return kernel && kernel.startsWith("Python 3") && kernel.endsWith("| Idle")
                && !prompts.includes("[*]:");
        }""",
        arg=PANEL,
        timeout=timeout_s * 1000,
    )


def run_all_cells(page, timeout_s: float = 300) -> list[str]:
    """Run > Run All Cells, as a learner clicks it; returns the code cells' prompts after."""
    counts = [int(p[1:-2]) for p in prompts(page) if p[1:-2].isdigit()]
    page.locator(".lm-MenuBar-item", has_text="Run").first.click()
    page.locator('.lm-Menu-item[data-command="runmenu:run-all"]').click()
    try:
        page.wait_for_function(  # this run has started: the first cell has a new execution count
            """([panel, before]) => {
                const first = document.querySelector(panel + " .jp-CodeCell .jp-InputPrompt");
                const count = /^\\[(\\d+)\\]:$/.exec(first.textContent.trim());
                return count && Number(count[1]) > before;
            }""",
            arg=[PANEL, max(counts, default=0)],
            timeout=timeout_s * 1000,
        )
        wait_idle(page, timeout_s)
    except PlaywrightTimeout:
        path = screenshot(page, "lab_timeout.png")
        pytest.fail(f"Run All did not finish in {timeout_s} s: prompts {prompts(page)}; see {path}")
    return prompts(page)


def outputs(page, cell=None) -> str:
    """The text of the outputs the learner sees (of one cell, or of the whole notebook)."""
    scope = cell if cell is not None else page.locator(PANEL)
    return "\n".join(scope.locator(".jp-OutputArea-output").all_inner_texts())


def replace_cell(page, contains: str, code: str) -> None:
    """Type code into the cell whose text contains `contains`, replacing all of it."""
    cell = page.locator(f"{PANEL} .jp-CodeCell", has_text=contains).first
    cell.locator(".cm-content").click()
    page.keyboard.press("ControlOrMeta+a")
    page.keyboard.insert_text(code)
    page.keyboard.press("Escape")  # back to command mode, as after editing


def test_make_lab_opens_lesson_00_with_nothing_in_the_way(browser, lab):
    """A learner's first minute: the server's front page is lesson 00, its kernel starts, and no
    dialog or news question covers it (issue 19: that pop-up came on every start)."""
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"{lab}/?token={TOKEN}")  # what `make lab` prints for the learner to open
    page.locator(f"{PANEL} .jp-Cell").first.wait_for(timeout=120_000)
    wait_idle(page, timeout_s=120)
    page.wait_for_timeout(5000)  # JupyterLab asks about news a moment after it has started
    tab = page.locator("#jp-main-dock-panel .lm-mod-current .lm-TabBar-tabLabel").first.inner_text()
    dialogs = page.locator(".jp-Dialog").count()
    body, url = page.locator("body").inner_text(), page.url
    screenshot(page, "lab_first_open.png")
    page.close()
    assert url.split("?")[0].endswith(f"/lab/tree/{LESSON}"), url
    assert tab == Path(LESSON).name, f"the tab in front is {tab!r}, not lesson 00"
    assert dialogs == 0, f"{dialogs} dialog(s) over the notebook"
    assert NEWS_QUESTION not in body, "JupyterLab's news question covers the notebook"


def test_lesson_00_runs_in_jupyterlab_with_its_plot(browser, lab):
    page = open_notebook(browser, lab, LESSON)
    started = time.perf_counter()
    after = run_all_cells(page)
    seconds = time.perf_counter() - started
    errors = page.locator(STDERR).all_inner_texts()
    plots = page.eval_on_selector_all(
        f"{PANEL} .jp-OutputArea-output img",
        "images => images.filter(i => i.naturalWidth > 0).length",
    )
    text = outputs(page)
    page.locator(f"{PANEL} .jp-OutputArea-output img").first.scroll_into_view_if_needed()
    screenshot(page, "lab_lesson_00.png")
    page.close()
    print(f"lesson 00 ran in JupyterLab in {seconds:.1f} s; prompts {after}")
    assert all(p[1:-2].isdigit() for p in after), f"cells that did not run: {after}"
    assert not errors, "error output in lesson 00:\n" + "\n".join(errors)
    assert plots >= 1, "lesson 00 shows no rendered plot"
    assert "espresso" in text, "the first prediction is not shown"


def test_exercise_graded_in_jupyterlab(browser, lab):
    page = open_notebook(browser, lab, EXERCISE)
    graded = page.locator(f"{PANEL} .jp-CodeCell", has_text='tl.check("ex02"').first

    # 1. Blank: Run All stops at the blank with the exercise's message; the grader is not reached.
    after = run_all_cells(page)
    errors = "\n".join(page.locator(STDERR).all_inner_texts())
    assert "NotImplementedError: Exercise 2" in errors, errors
    assert after[-1] == "[ ]:", f"the graded cell ran after an error: {after}"

    # 2. A first attempt (nothing frozen): the graded cell prints ✅ and ❌ lines with a hint.
    replace_cell(page, 'NotImplementedError("Exercise 2', FIRST_ATTEMPT)
    after = run_all_cells(page)
    report = outputs(page, graded)
    graded.scroll_into_view_if_needed()
    screenshot(page, "lab_exercise_02_first_attempt.png")
    assert all(p[1:-2].isdigit() for p in after), f"cells that did not run: {after}"
    assert "✅" in report and "❌" in report and "Hint" in report, report
    assert "CheckFailed: ex02: 3 of 4 checks" in report, report  # one line, no traceback:
    assert "grader.py" not in report, report  # the grader's code is not the learner's business

    # 3. The right answer: every check ✅.
    replace_cell(page, "def make_feature_extractor", RIGHT_ANSWER)
    run_all_cells(page)
    report = outputs(page, graded)
    graded.scroll_into_view_if_needed()
    screenshot(page, "lab_exercise_02_solved.png")
    page.close()
    print(report)
    assert "❌" not in report and report.count("✅") == 4, report
