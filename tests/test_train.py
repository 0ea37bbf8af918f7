"""fit learns, keeps the best weights, repeats exactly, resumes exactly, and never loses work."""

import math

import pytest
import torch
from conftest import blob_loaders, small_net

import tlcourse as tl


def run(num_workers=0, epochs=4, **kwargs):
    tl.seed_everything(0)
    model = small_net()
    loaders = blob_loaders(num_workers=num_workers)
    history = tl.fit(
        model, loaders["train"], loaders["val"], epochs=epochs, lr=1e-2, progress=False, **kwargs
    )
    return model, history


def test_fit_reduces_loss_and_reaches_high_accuracy():
    model, history = run(epochs=6)
    assert history.train_loss[-1] < history.train_loss[0] / 2
    assert max(history.val_accuracy) > 0.9
    assert len(history.seconds) == 6 and history.stop_reason == "completed"


@pytest.mark.parametrize("restore_best", [True, False])
def test_fit_restores_the_best_epoch(restore_best):
    tl.seed_everything(0)
    model, loaders = small_net(), blob_loaders()
    good_steps = 3 * len(loaders["train"])

    class WreckedAfter3Epochs(torch.optim.SGD):
        """SGD for 3 epochs, then every weight zeroed at each step: the last 2 epochs predict
        one class, worse than epoch 3 on any CPU and PyTorch (an LR too high was not always)."""

        def step(self, closure=None):
            super().step(closure)
            self.steps = getattr(self, "steps", 0) + 1
            if self.steps > good_steps:
                with torch.no_grad():
                    for parameter in model.parameters():
                        parameter.zero_()

    optimizer = WreckedAfter3Epochs(model.parameters(), lr=0.1, momentum=0.9)
    history = tl.fit(
        model,
        loaders["train"],
        loaders["val"],
        epochs=5,
        optimizer=optimizer,
        restore_best=restore_best,
        progress=False,
    )
    best = history.best_epoch
    assert history.val_accuracy[best - 1] == max(history.val_accuracy) > history.val_accuracy[-1]
    expected = history.val_accuracy[best - 1 if restore_best else -1]
    assert tl.evaluate(model, loaders["val"])["accuracy"] == pytest.approx(expected)


def test_evaluate_weights_by_samples_not_batches():
    data = torch.utils.data.TensorDataset(torch.zeros(5, 2), torch.tensor([0, 0, 0, 0, 1]))
    model = torch.nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.zero_()
        model.bias.copy_(torch.tensor([1.0, 0.0]))  # always predicts class 0
    loader = torch.utils.data.DataLoader(data, batch_size=4)  # batches of 4 and 1
    assert tl.evaluate(model, loader)["accuracy"] == pytest.approx(0.8)  # per-batch mean: 0.5


@pytest.mark.parametrize("num_workers", [0, 2])
def test_same_seed_gives_identical_history(num_workers):
    first, second = run(num_workers), run(num_workers)
    assert first[1].train_loss == second[1].train_loss and first[1].val_loss == second[1].val_loss
    assert all(
        torch.equal(a, b)
        for a, b in zip(first[0].state_dict().values(), second[0].state_dict().values())
    )


def test_different_seed_gives_different_history():
    tl.seed_everything(1)
    model, loaders = small_net(seed=1), blob_loaders(seed=0)
    other = tl.fit(model, loaders["train"], loaders["val"], epochs=4, lr=1e-2, progress=False)
    assert other.train_loss != run()[1].train_loss


def test_resume_equals_uninterrupted(tmp_path):
    full_model, full = run(epochs=4, restore_best=False)
    tl.seed_everything(0)
    model, loaders = small_net(), blob_loaders()
    tl.fit(
        model,
        loaders["train"],
        loaders["val"],
        epochs=2,
        lr=1e-2,
        progress=False,
        restore_best=False,
        checkpoint=tmp_path / "ckpt.pt",
    )
    tl.seed_everything(123)  # a new process would start with other RNG states
    model, loaders = small_net(seed=5), blob_loaders()
    resumed = tl.fit(
        model,
        loaders["train"],
        loaders["val"],
        epochs=4,
        lr=1e-2,
        progress=False,
        restore_best=False,
        resume_from=tmp_path / "ckpt.pt",
    )
    assert resumed.train_loss == full.train_loss and resumed.val_accuracy == full.val_accuracy
    assert all(
        torch.equal(a, b)
        for a, b in zip(model.state_dict().values(), full_model.state_dict().values())
    )


@pytest.mark.parametrize("epochs", [0, -1, 2.5, True])
def test_bad_epochs(epochs, loaders):
    with pytest.raises(ValueError, match="epochs"):
        tl.fit(small_net(), loaders["train"], epochs=epochs, progress=False)


def test_everything_frozen_is_a_clear_error(loaders):
    model = tl.freeze(small_net(), verbose=False)
    with pytest.raises(ValueError, match="every parameter is frozen"):
        tl.fit(model, loaders["train"], epochs=1, progress=False)


def test_optimizer_over_trainable_params_only_keeps_frozen_ones(loaders):
    model = small_net()
    tl.freeze(model, verbose=False)
    tl.unfreeze(model, "3", verbose=False)
    frozen = model[0].weight.clone()
    tl.fit(model, loaders["train"], epochs=2, progress=False)
    assert torch.equal(model[0].weight, frozen)


def test_labels_outside_the_head_are_a_clear_error(loaders):
    with pytest.raises(ValueError, match="label 2 is outside \\[0, 2\\).*replace_head"):
        tl.fit(small_net(classes=2), loaders["train"], epochs=1, progress=False)


class ExplodingLoss(torch.nn.Module):
    """Cross-entropy that turns into NaN (or Ctrl-C) at the n-th call."""

    def __init__(self, at_call, error=None):
        super().__init__()
        self.calls, self.at_call, self.error = 0, at_call, error

    def forward(self, logits, labels):
        self.calls += 1
        loss = torch.nn.functional.cross_entropy(logits, labels)
        if self.calls == self.at_call:
            if self.error:
                raise self.error
            return loss * math.nan
        return loss


@pytest.mark.parametrize(
    "error, reason",
    [(None, "loss is nan at epoch 3, batch 2"), (KeyboardInterrupt(), "interrupted")],
)
def test_nan_or_ctrl_c_stop_cleanly_with_best_weights(loaders, tmp_path, error, reason, capsys):
    batches = len(loaders["train"])
    tl.seed_everything(0)
    model = small_net()
    loss_fn = ExplodingLoss(at_call=2 * (batches + len(loaders["val"])) + 2, error=error)
    history = tl.fit(
        model,
        loaders["train"],
        loaders["val"],
        epochs=5,
        lr=1e-2,
        loss_fn=loss_fn,
        progress=False,
        checkpoint=tmp_path / "c.pt",
    )
    assert reason in history.stop_reason and len(history.train_loss) == 2
    assert reason in capsys.readouterr().out
    assert tl.evaluate(model, loaders["val"])["accuracy"] == max(history.val_accuracy)
    assert tl.load_checkpoint(tmp_path / "c.pt")["epoch"] == 2  # last checkpoint readable


def test_failed_checkpoint_write_keeps_the_previous_file(tmp_path, monkeypatch):
    path = tl.save_checkpoint(tmp_path / "model.pt", small_net(), epoch=1)

    def crash(*args, **kwargs):
        with open(args[1], "wb") as half_written:
            half_written.write(b"PK\x03")
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="disk full"):
        tl.save_checkpoint(path, small_net(), epoch=2)
    monkeypatch.undo()
    assert tl.load_checkpoint(path)["epoch"] == 1
    assert not list(tmp_path.glob("*.tmp"))


def test_predict_returns_probabilities():
    model = small_net()
    probabilities = tl.predict(model, torch.randn(5, 8))
    assert probabilities.shape == (5, 3)
    assert torch.allclose(probabilities.sum(1), torch.ones(5))


def test_scheduler_and_bf16_autocast_on_cpu(loaders):
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=1, gamma=0.5)
    history = tl.fit(
        model,
        loaders["train"],
        loaders["val"],
        epochs=3,
        optimizer=optimizer,
        scheduler=scheduler,
        amp=True,
        progress=False,
    )
    assert history.lr == [0.1, 0.05, 0.025]
    assert max(history.val_accuracy) > 0.8


def test_progress_prints_the_first_and_last_epoch_and_throttles_fast_ones(capsys, monkeypatch):
    def epoch_lines() -> list[str]:
        tl.seed_everything(0)
        loaders = blob_loaders()
        tl.fit(small_net(), loaders["train"], loaders["val"], epochs=5, lr=1e-2, progress=True)
        out = capsys.readouterr().out.splitlines()
        return [line.split()[1] for line in out if line.startswith("epoch")]

    monkeypatch.setattr(tl.report, "LINE_SECONDS", 0.0)  # every epoch is due a line
    assert epoch_lines() == ["1/5", "2/5", "3/5", "4/5", "5/5"]
    monkeypatch.setattr(tl.report, "LINE_SECONDS", 1e9)  # epochs far faster than the interval
    assert epoch_lines() == ["1/5", "5/5"]


@pytest.mark.parametrize("device", ["cpu", torch.device("cpu")])
def test_train_one_epoch_and_evaluate_take_a_device_name_or_object(device):
    tl.seed_everything(0)
    model, loaders = small_net(), blob_loaders()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = torch.nn.CrossEntropyLoss()
    train = tl.train_one_epoch(model, loaders["train"], loss_fn, optimizer, device)
    val = tl.evaluate(model, loaders["val"], device=device)
    assert math.isfinite(train["loss"]) and 0 <= val["accuracy"] <= 1


def test_clip_grad_bounds_every_step_s_gradient_norm():
    """fit(clip_grad=c): the optimizer sees gradients whose global norm is at most c."""

    def gradient_norms(clip_grad):
        model, norms = small_net(), []
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        optimizer.register_step_pre_hook(
            lambda *_: norms.append(
                torch.linalg.vector_norm(
                    torch.stack([p.grad.norm() for p in model.parameters() if p.grad is not None])
                ).item()
            )
        )
        torch.manual_seed(0)
        tl.fit(model, blob_loaders()["train"], epochs=2, optimizer=optimizer,
               clip_grad=clip_grad, device="cpu", progress=False)  # fmt: skip
        return norms

    unclipped, clipped = gradient_norms(None), gradient_norms(0.1)
    assert len(clipped) == len(unclipped) == 12  # 96 samples / 16 per batch, 2 epochs
    assert min(unclipped) > 0.1  # without clipping every step is above the bound: it can bite
    assert max(clipped) <= 0.1 * (1 + 1e-5)
    assert max(clipped) == pytest.approx(0.1, rel=1e-5)  # clipped to the bound, not to zero


def test_train_one_epoch_takes_its_old_keyword_with_a_warning_and_no_unknown_one(loaders):
    from tlcourse.train_step import TrainStep

    model = small_net()
    optimizer, loss_fn = torch.optim.SGD(model.parameters(), lr=0.1), torch.nn.CrossEntropyLoss()
    step = TrainStep(model, "cpu")
    with pytest.warns(FutureWarning, match=r"train_one_epoch\(precision=...\) is now .*step="):
        tl.train_one_epoch(model, loaders["train"], loss_fn, optimizer, "cpu", precision=step)
    with pytest.raises(TypeError, match="unexpected keyword argument 'amp'"):
        tl.train_one_epoch(model, loaders["train"], loss_fn, optimizer, "cpu", step=step, amp=True)
