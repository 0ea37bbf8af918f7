"""tools/check_selection.py (run by `make lint`): choosing a rate, an epoch, a threshold or a
remedy on the test set fails the lint; choosing on validation and reporting test once passes."""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "tools" / "check_selection.py"
spec = importlib.util.spec_from_file_location("check_selection", SCRIPT)
check_selection = importlib.util.module_from_spec(spec)
sys.modules["check_selection"] = check_selection
spec.loader.exec_module(check_selection)

SETUP = """
import numpy as np
import tlcourse as tl
splits = tl.load_splits("animals", {"train": 300, "val": 100, "test": 100})
loaders = {name: make_loader(split) for name, split in splits.items()}
test_loader = loaders["test"]
"""

# Each planted choice on the test set, as a learner's or an author's code would write it.
CHOICES_ON_TEST = {
    "a rate by key=": """
scores = {lr: tl.evaluate(train(lr), test_loader)["accuracy"] for lr in (1e-4, 1e-3, 1e-2)}
best_lr = max(scores, key=scores.get)
""",
    "an epoch by argmax over a test curve": """
curve = []
for epoch in range(10):
    curve.append(tl.evaluate(model, loaders["test"])["accuracy"])
epoch = np.argmax(curve)
""",
    "a checkpoint by a running best": """
best_accuracy = 0.0
for epoch in range(10):
    accuracy = tl.evaluate(model, test_loader)["accuracy"]
    if accuracy > best_accuracy:
        best_state = model.state_dict()
""",
    "a remedy by idxmax on a table of test scores": """
table = score_remedies(splits["test"])
chosen = table["macro-F1"].idxmax()
""",
    "a rate through a helper that reads the test set": """
def accuracy(head, dataset=None):
    return tl.evaluate(head, dataset or features["test"])["accuracy"]


sweep = {lr: accuracy(train(lr)) for lr in (1e-4, 1e-3, 1e-2)}
best_lr = max(sweep, key=lambda lr: sweep[lr])
""",
    "fit keeping its best epoch on the test loader": """
history = tl.fit(model, loaders["train"], test_loader, epochs=10)
""",
    "fit stopping early on the test loader": """
history = tl.fit(model, loaders["train"], val_loader=loaders["test"], epochs=10,
                 restore_best=False, patience=3)
""",
    "a threshold from test probabilities, through a dict": """
features = {name: extract(split) for name, split in splits.items()}
test_p = predict(features["test"])
chosen_threshold = threshold_for(test_y, test_p)
""",
}

# Choosing on validation, predicting and reporting on test: none of these is a choice on test.
FINE = """
scores = {lr: tl.evaluate(train(lr), loaders["val"])["accuracy"] for lr in (1e-4, 1e-3, 1e-2)}
best_lr = max(scores, key=scores.get)
model = train(best_lr)
history = tl.fit(model, loaders["train"], loaders["val"], epochs=10, patience=3)
test_accuracy = tl.evaluate(model, test_loader)["accuracy"]
predictions = model(test_images).argmax(1)
print(f"LR {best_lr:g} chosen on validation; test accuracy {test_accuracy:.3f}")
val_index, test_index = splits["val"], splits["test"]
threshold = threshold_for(val_y, predict(val_index))
features = {name: extract(ds) for name, ds in [("train", a), ("val", b), ("test", c)]}
best_val = max(tl.evaluate(model, loader)["accuracy"] for loader in (features["val"],))
fixed = tl.fit(model, loaders["train"], test_loader, epochs=3, restore_best=False)
"""


def lint(tmp_path: Path, code: str) -> list:
    path = tmp_path / "42_planted.py"
    path.write_text(SETUP + code, encoding="utf-8")
    return check_selection.check_file(path)


@pytest.mark.parametrize("name", CHOICES_ON_TEST)
def test_a_choice_made_on_the_test_set_fails(tmp_path, name):
    findings = lint(tmp_path, CHOICES_ON_TEST[name])
    assert findings, f"the lint missed {name}"
    assert all(f.path.endswith("42_planted.py") and f.line > 0 for f in findings)


def test_choosing_on_validation_and_reporting_test_passes(tmp_path):
    assert lint(tmp_path, FINE) == []


def test_the_lint_names_the_line_and_the_fix(tmp_path, capsys):
    path = tmp_path / "42_planted.py"
    path.write_text(SETUP + CHOICES_ON_TEST["a rate by key="], encoding="utf-8")
    assert check_selection.main([str(path)]) == 1
    out = capsys.readouterr().out
    assert "42_planted.py:" in out and "max(key=...) ranks on test data" in out
    assert "Choose on validation data" in out


def test_every_lesson_solution_and_exercise_chooses_on_validation():
    files = check_selection.course_files()
    assert len(files) >= 30  # 12 lessons, 11 solutions, 11 exercises
    assert [str(f) for path in files for f in check_selection.check_file(path)] == []


def test_each_exception_still_matches_a_line():
    """An exception whose line has changed is dead weight: delete it with the line it excused."""
    for path, piece in check_selection.EXCEPTIONS:
        assert piece in (ROOT / path).read_text(encoding="utf-8"), (path, piece)
