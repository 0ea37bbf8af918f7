"""The loops notebooks 02 and 04 write by hand give exactly what `tl.fit` gives.

The functions are read from the notebooks themselves (the code cells marked "tests/test_hand_loop.py
runs this cell"), so a change to the lesson's loop that changes a number fails here.
"""

import copy
from pathlib import Path

import jupytext
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import tlcourse as tl

ROOT = Path(__file__).resolve().parents[1]
MARKER = "(tests/test_hand_loop.py runs this cell)"
METRICS = ("train_loss", "train_accuracy", "val_loss", "val_accuracy")


def notebook_functions(name: str) -> dict:
    """Run the marked code cells of notebooks/<name>.py; return the names they define."""
    cells = [
        cell.source
        for cell in jupytext.read(ROOT / "notebooks" / f"{name}.py").cells
        if cell.cell_type == "code" and MARKER in cell.source
    ]
    assert len(cells) == 1, f"{name}.py: expected one code cell marked {MARKER!r}"
    # what the notebook imported before the cell; `device` is a parameter of every function
    namespace = {"copy": copy, "nn": nn, "tl": tl, "torch": torch}
    exec(compile(cells[0], f"{name}.py", "exec"), namespace)
    return namespace


def tiny_problem(mismatched_val: bool = False):
    """(model, train loader factory, val loader): 50 train / 20 val samples, 3 classes.

    Batches of 16 leave a short last batch in both splits (50 = 3 x 16 + 2, 20 = 16 + 4), where
    a mean of batch means differs from the sample-weighted mean. The model has Dropout and
    BatchNorm, which act differently in train and eval mode. With `mismatched_val` classes 0 and
    2 swap places in the validation labels: validation accuracy stalls and wanders, which gives
    early stopping something to do.
    """
    generator = torch.Generator().manual_seed(0)
    inputs = torch.randn(70, 4, generator=generator)
    labels = (inputs[:, 0] > 0).long() + (inputs[:, 1] > 0.5).long()  # 0, 1 or 2
    val_labels = (2 - labels[50:]) if mismatched_val else labels[50:]
    train_set = TensorDataset(inputs[:50], labels[:50])

    def train_loader():  # a fresh generator each time: the same shuffle for both runs
        return DataLoader(train_set, batch_size=16, shuffle=True, generator=tl.make_generator(0))

    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 3)
    )
    val_loader = DataLoader(TensorDataset(inputs[50:], val_labels), batch_size=16)
    return model, train_loader, val_loader


def assert_same_weights(hand: nn.Module, fitted: nn.Module) -> None:
    fitted_state = fitted.state_dict()
    for name, value in hand.state_dict().items():
        same = torch.equal(value, fitted_state[name])
        assert same, f"weights differ: {name}"


def hand_and_fit(mismatched_val: bool, seed: int):
    """The notebook's fit_by_hand and tl.fit from the same start, shuffle and dropout seed."""
    fit_by_hand = notebook_functions("02_feature_extraction")["fit_by_hand"]
    start, train_loader, val_loader = tiny_problem(mismatched_val)
    hand, fitted = copy.deepcopy(start), copy.deepcopy(start)

    torch.manual_seed(seed)  # dropout masks come from the global generator: the same for both
    hand_history = fit_by_hand(
        hand,
        train_loader(),
        val_loader,
        epochs=3,
        optimizer=torch.optim.Adam(hand.parameters(), lr=0.05),
        loss_fn=nn.CrossEntropyLoss(),
        device=torch.device("cpu"),  # what tl.get_device() returns in the notebook
    )
    torch.manual_seed(seed)
    history = tl.fit(
        fitted, train_loader(), val_loader, epochs=3, lr=0.05, device="cpu", progress=False
    )
    return hand, hand_history, fitted, history


@pytest.mark.parametrize("mismatched_val", [False, True], ids=["learnable", "mismatched"])
def test_fit_by_hand_equals_tl_fit(mismatched_val):
    # the mismatched case exists to check that the best weights come back, so it needs a run
    # whose best epoch is not the last: which dropout seed gives one depends on the machine's
    # rounding (seed 1: best epoch 2 here, 3 on another CPU), so the first such seed is used
    for seed in range(1, 30):
        hand, hand_history, fitted, history = hand_and_fit(mismatched_val, seed)
        for key in METRICS:
            assert hand_history[key] == getattr(history, key), f"{key} differs (seed {seed})"
        assert hand_history["best_epoch"] == history.best_epoch
        assert_same_weights(hand, fitted)
        if not mismatched_val or history.best_epoch < 3:
            break
    else:
        pytest.fail("no dropout seed in 1..29 gave a best epoch before the last")


def test_early_stopping_by_hand_equals_tl_fit():
    fit_early_stopping_by_hand = notebook_functions("04_augmentation_and_overfitting")[
        "fit_early_stopping_by_hand"
    ]
    resumed = 0  # runs in which a better epoch came after epochs without one
    for patience in (2, 3, 4):
        start, train_loader, val_loader = tiny_problem(mismatched_val=True)
        hand, fitted = copy.deepcopy(start), copy.deepcopy(start)
        torch.manual_seed(1)
        stopped, best_epoch = fit_early_stopping_by_hand(
            hand,
            train_loader(),
            val_loader,
            epochs=40,
            patience=patience,
            optimizer=torch.optim.Adam(hand.parameters(), lr=0.01),
            loss_fn=nn.CrossEntropyLoss(),
            device=torch.device("cpu"),
        )
        torch.manual_seed(1)
        history = tl.fit(fitted, train_loader(), val_loader, epochs=40, lr=0.01,
                         device="cpu", patience=patience, progress=False)  # fmt: skip

        assert history.stop_reason.startswith("early stopping"), history.stop_reason
        assert (stopped, best_epoch) == (len(history.train_loss), history.best_epoch), patience
        assert_same_weights(hand, fitted)
        accuracy = history.val_accuracy
        resumed += any(
            accuracy[i] > max(accuracy[:i]) and accuracy[i - 1] <= max(accuracy[: i - 1])
            for i in range(2, len(accuracy))
        )
    # measured: all three (val accuracy 0.25, 0.25, 0.3, ...): the counter must go back to 0
    assert resumed, "no run had a better epoch after a wait: the test would miss a counter bug"


def test_fit_by_hand_equals_tl_fit_on_a_conv_net_with_batchnorm(lite0):
    """Lite0's last MBConv stage and head conv (Conv2d + BatchNorm2d pairs), fine-tuned on cached
    activations with 256 validation samples: from there on `tl.evaluate` alone would fold the
    pairs (tlcourse/inference.py), so fit's validation must ask for the model as it is."""
    fit_by_hand = notebook_functions("02_feature_extraction")["fit_by_hand"]
    generator = torch.Generator().manual_seed(0)
    activations = torch.randn(64 + 256, 192, 2, 2, generator=generator)  # features.7's input
    labels = torch.arange(64 + 256) % 3
    labels[::7] = (labels[::7] + 1) % 3  # a few the head cannot get right: the loss stays > 0
    train_set = TensorDataset(activations[:64], labels[:64])
    val_loader = DataLoader(TensorDataset(activations[64:], labels[64:]), batch_size=64)
    assert len(val_loader.dataset) >= tl.inference.FOLD_FROM  # where the folded copy would run
    tail = copy.deepcopy(nn.Sequential(*lite0.features[7:], lite0.avgpool, nn.Flatten(1)))
    torch.manual_seed(0)
    start = nn.Sequential(tail, nn.Linear(1280, 3))

    def train_loader():
        return DataLoader(train_set, batch_size=16, shuffle=True, generator=tl.make_generator(0))

    runs = {}
    for name in ("hand", "fit", "fit folded"):
        model = copy.deepcopy(start)
        torch.manual_seed(1)
        if name == "hand":
            optimizer, loss_fn = (
                torch.optim.Adam(model.parameters(), lr=1e-3),
                nn.CrossEntropyLoss(),
            )
            history = fit_by_hand(model, train_loader(), val_loader, epochs=2, optimizer=optimizer,
                                  loss_fn=loss_fn, device=torch.device("cpu"))  # fmt: skip
        else:
            fitted = tl.fit(model, train_loader(), val_loader, epochs=2, lr=1e-3, device="cpu",
                            fold_batchnorm=name == "fit folded", progress=False)  # fmt: skip
            history = {key: getattr(fitted, key) for key in METRICS}
            history["best_epoch"] = fitted.best_epoch
        runs[name] = model, history
    (hand, by_hand), (fitted, by_fit) = runs["hand"], runs["fit"]
    for key in METRICS:
        assert by_hand[key] == by_fit[key], f"{key} differs: {by_hand[key]} vs {by_fit[key]}"
    assert by_hand["best_epoch"] == by_fit["best_epoch"]
    assert_same_weights(hand, fitted)
    # the test can fail: the folded copy's validation numbers are close, but not these numbers
    folded = runs["fit folded"][1]
    assert folded["val_loss"] == pytest.approx(by_hand["val_loss"], rel=1e-4)
    inputs = val_loader.dataset.tensors[0]
    as_is = tl.predict(fitted, inputs, fold_batchnorm=False)
    assert not torch.equal(tl.predict(fitted, inputs, fold_batchnorm=True), as_is), (
        "folding changed no bit of 256 x 3 probabilities: this test could not see it"
    )
