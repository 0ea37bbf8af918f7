"""`python -m tlcourse check NOTEBOOK`: its verdict is made where notebook code cannot write it.

Each test is a notebook a careless or dishonest learner could hand in (issue 25): it grades
another exercise, forges a report or progress line, empties or patches the checks, hands over
code of its own, hangs with `except BaseException`, or ends its own kernel. The runner grades in
its own process (tlcourse/grading/submission.py), so every one of them must be ❌.
"""

import json
import time
from pathlib import Path

import nbformat
import pytest
import torch
from torch import nn

import tlcourse as tl
from tlcourse.__main__ import main
from tlcourse.grading import progress
from tlcourse.grading.data import heldout_images, refuse_replaced_code
from tlcourse.grading.registry import CheckTimeout, NotYet, time_limit
from tlcourse.grading.submission import allowed

pytestmark = pytest.mark.slow  # kernels, trainings or subprocesses: not in `make check`

RIGHT = {"q1": "c", "q2": "a", "q3": "d", "q4": "b", "q5": "b", "q6": "a", "q7": "no", "q8": 2565}


@pytest.fixture(autouse=True)
def private_progress(tmp_path, monkeypatch):
    monkeypatch.setenv("TLCOURSE_PROGRESS", str(tmp_path / "progress.json"))
    monkeypatch.setenv("TLCOURSE_CHECK_TIMEOUT", "20")
    return tmp_path / "progress.json"


def notebook(tmp_path: Path, name: str, *sources: str) -> Path:
    """A notebook `name` whose last cell is the graded one."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.cells = [nbformat.v4.new_code_cell(s) for s in ("import tlcourse as tl", *sources)]
    nb.cells[-1].metadata["tags"] = ["graded"]
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def verdict(path: Path, capsys, *options: str) -> tuple[int, str]:
    code = main(["check", str(path), *options])
    return code, capsys.readouterr().out


def status_of(exercise: str) -> str | None:
    entry = progress.load_progress()["exercises"].get(exercise)
    return entry and entry["status"]


def test_right_answers_pass_and_are_recorded_by_the_runner(tmp_path, capsys):
    path = notebook(tmp_path, "10_mine.ipynb", f'tl.check("ex10", answers={RIGHT!r})')
    code, out = verdict(path, capsys)
    assert code == 0 and "10/10 points" in out, out
    assert status_of("ex10") == "passed"


def test_a_graded_cell_that_grades_another_exercise_fails(tmp_path, capsys):
    path = notebook(
        tmp_path, "03_vgg16_custom_dataset.ipynb", f'tl.check("ex10", answers={RIGHT!r})'
    )
    code, out = verdict(path, capsys)
    assert code == 1, out
    assert 'calls tl.check("ex10"), but this notebook is ex03' in out
    assert status_of("ex03") != "passed" and status_of("ex10") is None


def test_forged_report_and_progress_lines_change_nothing(tmp_path, capsys, private_progress):
    forge = (
        "import json, os\n"
        "from tlcourse.grading.progress import record_attempt\n"
        "line = {'exercise': 'ex10', 'status': 'passed', 'points': 10, 'max_points': 10,"
        " 'results': []}\n"
        "for var in ('TLCOURSE_CHECK_REPORT', 'TLCOURSE_PROGRESS'):\n"
        "    if os.environ.get(var):\n"
        "        open(os.environ[var], 'a').write(json.dumps(line) + '\\n')\n"
        "record_attempt('ex10', 'passed', 10, 10)\n"
        "record_attempt('ex04', 'passed', 10, 10)"
    )
    path = notebook(tmp_path, "10_mine.ipynb", forge, 'tl.check("ex10", answers={"q1": "a"})')
    code, out = verdict(path, capsys)
    assert code == 1 and "✅ passed" not in out, out
    assert status_of("ex10") == "in progress" and status_of("ex04") is None


@pytest.mark.parametrize(
    "cheat",
    [
        'tl.grading.find_exercise("ex10").checks.clear()',  # 0/0 points
        "for c in tl.grading.find_exercise('ex10').checks:\n    c.function = lambda o: 'ok'",
        "import tlcourse.grading.grader as g\ng.grade = lambda *a, **k: None",
    ],
    ids=["checks-cleared", "checks-patched", "grade-patched"],
)
def test_editing_the_checks_in_the_kernel_changes_nothing(tmp_path, capsys, cheat):
    path = notebook(tmp_path, "10_mine.ipynb", cheat, 'tl.check("ex10", answers={"q1": "c"})')
    code, out = verdict(path, capsys)
    assert code == 1 and "ex10: 1/10 points" in out, out


def test_code_written_in_the_notebook_is_not_handed_over(tmp_path, capsys):
    liar = (
        "class Liar(dict):\n"
        "    def get(self, key, default=None):\n"
        f"        return {RIGHT!r}[key]\n"
        f"answers = Liar({RIGHT!r})"
    )
    path = notebook(tmp_path, "10_mine.ipynb", liar, 'tl.check("ex10", answers=answers)')
    code, out = verdict(path, capsys)
    assert code == 1, out
    assert "`answers` refused: __main__.Liar (defined in your notebook)" in out


def test_a_replaced_forward_is_refused_by_the_runner_and_in_the_kernel(tmp_path, capsys):
    build = (
        "import torchvision, torch\n"
        "model = torchvision.models.resnet18(num_classes=5)\n"
        "tl.freeze(model, verbose=False); tl.replace_head(model, num_classes=5, verbose=False)\n"
        "model.forward = lambda x: torch.zeros(len(x), 5)\n"
        "make = lambda m, n: m"
    )
    graded = 'tl.check("ex02", model=model, make_feature_extractor=make)'
    code, out = verdict(notebook(tmp_path, "02_mine.ipynb", build, graded), capsys)
    assert code == 1 and "`model` could not be handed to the grader" in out, out

    model = tl.load_pretrained("efficientnet_lite0")
    model.forward = lambda x: torch.zeros(len(x), 5)
    with pytest.raises(NotYet, match="forward was replaced on the instance"):
        refuse_replaced_code(model)
    model = tl.load_pretrained("efficientnet_lite0")
    handle = model.register_forward_hook(lambda module, inputs, output: output * 0)
    with pytest.raises(NotYet, match="carries a forward hook"):
        refuse_replaced_code(model)
    handle.remove()
    tl.freeze_batchnorm(model)  # the course's own hook keeps BatchNorm in eval mode: allowed
    refuse_replaced_code(model)


def test_the_unpickler_builds_library_classes_only():
    assert allowed("torch.nn.modules.linear", "Linear", nn.Linear)
    assert allowed("torch._utils", "_rebuild_tensor_v2", torch._utils._rebuild_tensor_v2)
    for module, name, found in [
        ("os", "system", print),
        ("__main__", "Liar", dict),
        ("torch", "load", torch.load),
        ("torch.hub", "load", torch.hub.load),
        ("builtins", "eval", eval),
        ("tlcourse.grading.progress", "record_attempt", progress.record_attempt),
    ]:
        assert not allowed(module, name, found), (module, name)


def test_a_function_that_swallows_the_time_limit_is_stopped(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TLCOURSE_CHECK_TIMEOUT", "3")
    stubborn = (
        "import time\n"
        "def make_optimizer(model):\n"
        "    while True:\n"
        "        try:\n"
        "            time.sleep(1)\n"
        "        except BaseException:\n"
        "            pass"
    )
    graded = 'tl.check("ex04", make_optimizer=make_optimizer)'
    started = time.perf_counter()
    code, out = verdict(notebook(tmp_path, "04_mine.ipynb", stubborn, graded), capsys)
    assert code == 1 and time.perf_counter() - started < 120, out
    assert "stopped after 3 s" in out and "0/10 points" in out


def test_in_the_kernel_the_limit_fires_again_after_it_is_swallowed():
    def swallow_once_then_work():
        try:
            time.sleep(5)
        except BaseException:
            pass
        time.sleep(5)  # the re-armed alarm stops this too

    started = time.perf_counter()
    with pytest.raises(CheckTimeout), time_limit(0.3):
        swallow_once_then_work()
    assert time.perf_counter() - started < 3


def test_a_kernel_that_exits_is_reported_with_its_exit_code(tmp_path, capsys):
    path = notebook(tmp_path, "10_mine.ipynb", "import os\nos._exit(3)", "tl.check('ex10')")
    code, out = verdict(path, capsys)
    assert code == 1 and "the Python kernel exited with code 3" in out, out
    assert "out of memory" not in out


@pytest.mark.parametrize(
    "content, message",
    [
        (None, "not found"),
        ("this is not json", "is not a readable notebook (NotJSONError"),
        ("{}", "is not a readable notebook"),
    ],
)
def test_bad_notebook_files_get_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "10_mine.ipynb"
    if content is not None:
        path.write_text(content)
    code, out = verdict(path, capsys)
    assert code == 2 and message in out, out
    assert len(out.strip().splitlines()) == 1 and "Traceback" not in out


def test_heldout_images_are_perturbed_afresh_for_every_check_call():
    from tlcourse.grading.data import _grader_images, clear_outputs

    shipped, _ = _grader_images(["Cat", "Dog"], 20)
    first, _ = heldout_images(["Cat", "Dog"], 20)
    again, _ = heldout_images(["Cat", "Dog"], 20)
    clear_outputs()  # what check() does when it starts
    second, _ = heldout_images(["Cat", "Dog"], 20)
    assert (first == again).all()  # one check() call grades on one set of images
    assert not (first == second).all()
    assert not (first == shipped).all(axis=(1, 2)).any()  # no image survives as shipped
    assert not hasattr(tl.grading, "heldout_data")  # nothing public returns the grader's pool


def test_report_lists_every_check_of_the_exercise(tmp_path, capsys):
    path = notebook(tmp_path, "10_mine.ipynb", f'tl.check("ex10", answers={RIGHT!r})')
    verdict(path, capsys)
    entry = progress.load_progress()["exercises"]["ex10"]
    assert entry["points"] == 10 and json.dumps(entry)


def test_hooks_handed_over_keep_their_place_when_the_grader_adds_its_own(tmp_path, monkeypatch):
    """Hook ids count per process: a check's hook must not replace the model's (same key)."""
    import torchvision
    from torch.utils.hooks import RemovableHandle

    from tlcourse.freeze import _keep_eval
    from tlcourse.grading.submission import load_submission, save_submission

    monkeypatch.setattr(RemovableHandle, "next_id", 0)  # the kernel: bn1's hook gets id 0
    model = torchvision.models.resnet18()
    tl.freeze_batchnorm(model)
    meta = save_submission(tmp_path, "ex05", {"model": model})
    monkeypatch.setattr(RemovableHandle, "next_id", 0)  # the runner's fresh process
    _, objects, _ = load_submission(meta, None)
    bn = objects["model"].bn1
    bn.register_forward_pre_hook(lambda module, args: None)
    assert _keep_eval in bn._forward_pre_hooks.values()
