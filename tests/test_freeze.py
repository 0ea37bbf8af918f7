"""Freezing selects exactly the parameters asked for; BatchNorm stays put; LR groups partition."""

import copy

import pytest
import torch
import torchvision
from torch import nn

import tlcourse as tl


@pytest.fixture
def resnet18():
    torch.manual_seed(0)
    return torchvision.models.resnet18(weights=None)


def test_unfreeze_layer4_fc_matches_the_hand_written_loop(resnet18):
    by_hand = copy.deepcopy(resnet18)
    for name, param in by_hand.named_parameters():  # the syllabus way
        param.requires_grad = name.startswith("layer4") or name.startswith("fc")
    tl.freeze(resnet18, verbose=False)
    assert tl.count_params(resnet18)[0] == 0
    tl.unfreeze(resnet18, "layer4", "fc", verbose=False)
    expected = [n for n, p in by_hand.named_parameters() if p.requires_grad]
    assert tl.trainable_names(resnet18) == expected
    assert all(n.startswith(("layer4.", "fc.")) for n in expected) and len(expected) == 17
    assert tl.count_params(resnet18) == (8_906_728, 11_689_512)


def test_unfreeze_prefix_is_a_module_boundary_and_globs_work():
    model = nn.Sequential()
    model.add_module("layer1", nn.Linear(2, 2))
    model.add_module("layer10", nn.Linear(2, 2))
    tl.freeze(model, verbose=False)
    tl.unfreeze(model, "layer1", verbose=False)
    assert tl.trainable_names(model) == ["layer1.weight", "layer1.bias"]
    tl.unfreeze(model, "layer1*.bias", verbose=False)
    assert tl.trainable_names(model) == ["layer1.weight", "layer1.bias", "layer10.bias"]


def test_freeze_reports_counts(resnet18, capsys):
    tl.freeze(resnet18)
    tl.unfreeze(resnet18, "fc")
    out = capsys.readouterr().out
    assert "trainable 0 / 11,689,512" in out and "trainable 513,000 / 11,689,512" in out


def test_unfreeze_unknown_pattern_lists_top_level_modules(resnet18):
    with pytest.raises(ValueError, match="'layer5'.*Top-level modules: conv1, bn1, relu, maxpool"):
        tl.unfreeze(resnet18, "layer5")


@pytest.mark.parametrize("function", [tl.freeze, tl.unfreeze, tl.count_params, tl.trainable_names])
def test_not_a_module_is_a_type_error(function):
    with pytest.raises(TypeError, match="expects an nn.Module"):
        function([1, 2, 3])


def test_freeze_batchnorm_keeps_running_stats_in_train_mode(resnet18):
    batch = torch.randn(8, 3, 32, 32) * 5 + 3  # statistics far from the stored ones
    drifting = copy.deepcopy(resnet18)
    tl.freeze(drifting, verbose=False)
    drifting.train()(batch)  # frozen weights, yet BN running stats move: the pitfall
    assert not torch.equal(drifting.bn1.running_mean, resnet18.bn1.running_mean)

    handles = tl.freeze_batchnorm(resnet18)
    before = copy.deepcopy(resnet18.state_dict())
    resnet18.train()(batch)
    assert resnet18.training and not resnet18.bn1.training
    assert all(torch.equal(before[k], v) for k, v in resnet18.state_dict().items())
    assert not any(resnet18.bn1.weight.requires_grad for _ in [0]) and len(handles) == 20
    for handle in handles:
        handle.remove()
    resnet18.train()(batch)
    assert not torch.equal(before["bn1.running_mean"], resnet18.bn1.running_mean)


def test_param_groups_partition_trainable_params(resnet18):
    tl.freeze(resnet18, verbose=False)
    tl.unfreeze(resnet18, "layer4", "fc", verbose=False)
    groups = tl.param_groups(resnet18, {"fc": 1e-3, "layer4": 1e-4})
    assert [(g["name"], g["lr"], len(g["params"])) for g in groups] == [
        ("fc", 1e-3, 2),
        ("layer4", 1e-4, 15),
    ]
    optimizer = torch.optim.SGD(groups, lr=0.1, momentum=0.9)
    assert [g["lr"] for g in optimizer.param_groups] == [1e-3, 1e-4]
    with pytest.raises(ValueError, match="match no pattern.*default_lr"):
        tl.param_groups(resnet18, {"fc": 1e-3})
    assert len(tl.param_groups(resnet18, {"fc": 1e-3}, default_lr=1e-5)[1]["params"]) == 15
    with pytest.raises(ValueError, match="layer1.*match no trainable parameter"):
        tl.param_groups(resnet18, {"fc": 1e-3, "layer4": 1e-4, "layer1": 1e-5})


def test_unfreeze_reminds_of_the_batchnorm_policy_and_freeze_batchnorm_is_idempotent(
    resnet18, capsys
):
    tl.freeze(resnet18, verbose=False)
    tl.unfreeze(resnet18, "layer4", "fc")
    # layer4: 2 blocks x 2 BN + the downsample BN of layer4.0
    assert "5 BatchNorm layers are trainable" in capsys.readouterr().out
    assert len(tl.freeze_batchnorm(resnet18)) == 20
    assert tl.freeze_batchnorm(resnet18) == []  # no second hook on the same layers
    tl.unfreeze(resnet18, "fc")
    assert "BatchNorm" not in capsys.readouterr().out
