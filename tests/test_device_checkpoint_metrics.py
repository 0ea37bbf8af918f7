"""Device choice, safe checkpoints and metrics against scikit-learn / hand counts."""

import numpy as np
import pytest
import torch
import torchvision

import tlcourse as tl


def test_device_override_and_errors(monkeypatch):
    monkeypatch.setenv("TLCOURSE_DEVICE", "cpu")
    assert tl.get_device() == torch.device("cpu")
    monkeypatch.setenv("TLCOURSE_DEVICE", "gpu0")
    with pytest.raises(ValueError, match="TLCOURSE_DEVICE=gpu0: unknown device"):
        tl.get_device()
    monkeypatch.delenv("TLCOURSE_DEVICE")
    assert tl.get_device().type in ("cpu", "cuda", "mps")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda(monkeypatch):
    monkeypatch.setenv("TLCOURSE_DEVICE", "cuda")
    with pytest.raises(ValueError, match="CUDA is not available.*use cpu"):
        tl.get_device()


def test_seed_everything_repeats_random_numbers():
    tl.seed_everything(7)
    first = (torch.rand(3), np.random.rand(3))
    tl.seed_everything(7)
    assert torch.equal(first[0], torch.rand(3)) and np.array_equal(first[1], np.random.rand(3))


def test_checkpoint_round_trip_with_metadata(tmp_path):
    model = torchvision.models.resnet18(weights=None)
    tl.replace_head(model, 5, verbose=False)
    tl.save_checkpoint(tmp_path / "m.pt", model, classes=list("abcde"), image_size=96)
    other = torchvision.models.resnet18(weights=None)
    tl.replace_head(other, 5, verbose=False)
    info = tl.load_checkpoint(tmp_path / "m.pt", other)
    assert info["classes"] == list("abcde") and torch.equal(other.fc.weight, model.fc.weight)


def test_checkpoint_from_other_class_count_or_architecture(tmp_path):
    model = torchvision.models.resnet18(weights=None)
    tl.replace_head(model, 5, verbose=False)
    tl.save_checkpoint(tmp_path / "m.pt", model)
    with pytest.raises(
        ValueError, match=r"fc.weight: checkpoint \(5, 512\) vs model \(1000, 512\).*num_classes"
    ):
        tl.load_checkpoint(tmp_path / "m.pt", torchvision.models.resnet18(weights=None))
    with pytest.raises(ValueError, match="keys missing.*different architecture"):
        tl.load_checkpoint(tmp_path / "m.pt", torchvision.models.squeezenet1_1(weights=None))


class RunsCode:
    def __reduce__(self):
        return (print, ("pwned",))


def test_checkpoint_that_would_run_code_is_refused(tmp_path):
    torch.save({"model": RunsCode()}, tmp_path / "evil.pt")  # a crafted "checkpoint"
    # "print" (torch 2.14), "builtins.print" or "__builtin__.print" (older torch)
    blocked = r"refused by weights_only=True.*GLOBAL (\w+\.)?print\)"
    with pytest.raises(ValueError, match=blocked):
        tl.load_checkpoint(tmp_path / "evil.pt")
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a PyTorch checkpoint"):
        tl.load_checkpoint(tmp_path / "notes.pt")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        tl.load_checkpoint(tmp_path / "missing.pt")


def test_metrics_match_hand_counts():
    y_true = np.array([0, 0, 0, 0, 1, 1])
    probabilities = np.array(
        [[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.3, 0.7], [0.4, 0.6], [0.7, 0.3]]
    )
    report = tl.classification_metrics(y_true, probabilities, ["normal", "disease"])
    assert report["accuracy"] == pytest.approx(4 / 6)
    assert report["per_class"]["disease"]["recall"] == pytest.approx(0.5)
    assert report["per_class"]["disease"]["precision"] == pytest.approx(0.5)
    assert report["confusion_matrix"].tolist() == [[3, 1], [1, 1]]
    # AUC = fraction of (positive, negative) pairs ranked correctly: 0.6 beats 3/4, 0.3 beats 2/4
    assert report["roc_auc"] == pytest.approx(5 / 8)
    assert tl.sensitivity_specificity(y_true, probabilities.argmax(1)) == pytest.approx((0.5, 0.75))
    assert np.isnan(tl.roc_auc([1, 1], np.array([[0.2, 0.8], [0.4, 0.6]])))


def test_multiclass_auc_and_shape_error():
    probabilities = torch.eye(3)[[0, 1, 2, 0]] * 0.7 + 0.1
    assert tl.classification_metrics(torch.tensor([0, 1, 2, 0]), probabilities)["roc_auc"] == 1.0
    with pytest.raises(ValueError, match="shape"):
        tl.classification_metrics([0, 1], np.zeros(2))
