"""Pretrained weights are real, heads are found and replaced on every torchvision classifier."""

import copy
import warnings

import pytest
import torch
import torchvision
from torch import nn

import tlcourse as tl
from tlcourse.models import weights_file

CATEGORIES = torchvision.models.ResNet18_Weights.IMAGENET1K_V1.meta["categories"]
CAT_CLASSES = {"tabby", "tiger cat", "Persian cat", "Siamese cat", "Egyptian cat"}


def top_k(model, photo, size, k):
    transform = tl.transforms_for(model, image_size=size)
    probabilities = tl.predict(model, transform(photo))[0]
    return [CATEGORIES[i] for i in probabilities.topk(k).indices]


@pytest.mark.parametrize(
    "name, size",
    [("efficientnet_lite0", 224), ("efficientnet_lite1", 240), ("efficientnet_lite2", 260)],
)
def test_lite_weights_are_real_imagenet_weights(name, size):
    model = tl.load_pretrained(name)
    photos = tl.sample_photos()
    assert top_k(model, photos["coffee"], size, 1) == ["espresso"]
    assert CAT_CLASSES & set(top_k(model, photos["chelsea"], size, 3))


def test_random_init_lite_is_not_espresso():
    """The check above can fail: a randomly initialised Lite0 does not know coffee."""
    model = tl.load_pretrained("efficientnet_lite0", weights=None)
    assert top_k(model, tl.sample_photos()["coffee"], 224, 1) != ["espresso"]


def test_lite_parameter_counts():
    counts = {
        v: tl.count_params(tl.load_pretrained(f"efficientnet_lite{v}", None))[1] for v in range(3)
    }
    assert counts == {0: 4_652_008, 1: 5_416_680, 2: 6_092_072}


CLASSIFIERS = torchvision.models.list_models(module=torchvision.models)


@pytest.mark.parametrize("name", CLASSIFIERS + ["efficientnet_lite0"])
def test_replace_head_on_every_classifier(name, monkeypatch):
    # RegNet computes its block widths with tensors + .tolist(): let that part run on the CPU.
    block_params = torchvision.models.regnet.BlockParams
    original = block_params.from_init_params.__func__

    def widths_on_cpu(cls, *args, **kwargs):
        with torch.device("cpu"):
            return original(cls, *args, **kwargs)

    monkeypatch.setattr(block_params, "from_init_params", classmethod(widths_on_cpu))
    with torch.device("meta"):  # shapes only: building vit_h_14 for real would take seconds + GBs
        model = (
            tl.load_pretrained(name, weights=None)
            if "lite" in name
            else (torchvision.models.get_model(name, weights=None))
        )
        before = dict(model.named_parameters())
        head_path, old_head = tl.get_head(model)
        head = tl.replace_head(model, num_classes=7, verbose=False)
        assert tl.get_head(model) == (head_path, head) and head is not old_head
        size = 299 if name == "inception_v3" else 224
        out = model.eval()(torch.empty(2, 3, size, size))
    assert out.shape == (2, 7)
    after = dict(model.named_parameters())
    heads = tuple(f"{path}." for path in (head_path, *tl.models.AUX_HEADS))
    new = {n for n in after if n.startswith(heads)}
    assert new, "the head must have parameters"
    for name_, param in after.items():  # everything except the heads is the very same tensor
        if name_ not in new:
            assert before[name_] is param, f"{name_} changed"
    assert not any(after[n] is before.get(n) for n in new), "head parameters must be new"


def test_replace_head_resnet_real_forward_and_mlp_head():
    model = torchvision.models.resnet18(weights=None)
    head = tl.replace_head(model, 5, hidden=[64], dropout=0.3, verbose=False)
    assert [type(m) for m in head] == [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    assert head[0].in_features == 512 and model.fc is head
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 5)


def test_replace_head_vgg_squeezenet_and_aux_heads():
    vgg = torchvision.models.vgg11(weights=None)
    tl.replace_head(vgg, 10, verbose=False)
    assert tl.get_head(vgg)[0] == "classifier.6" and vgg.classifier[6].out_features == 10
    squeeze = torchvision.models.squeezenet1_1(weights=None)
    tl.replace_head(squeeze, 4, verbose=False)
    assert squeeze(torch.randn(1, 3, 96, 96)).shape == (1, 4)
    google = torchvision.models.googlenet(weights=None, aux_logits=True, init_weights=False)
    tl.replace_head(google, 3, verbose=False)
    outputs = google.train()(torch.randn(2, 3, 96, 96))
    assert [o.shape for o in outputs] == [(2, 3)] * 3


def test_replace_head_reports_old_and_new_shape(capsys):
    tl.replace_head(torchvision.models.resnet18(weights=None), 5)
    assert "replaced fc: Linear(512 -> 1000) -> Linear(512 -> 5)" in capsys.readouterr().out


@pytest.mark.parametrize(
    "bad, error",
    [
        (0, ValueError),
        (1, ValueError),
        (-3, ValueError),
        (2.5, TypeError),
        (None, TypeError),
        (True, TypeError),
    ],
)
def test_num_classes_is_validated(bad, error):
    with pytest.raises(error, match="num_classes"):
        tl.replace_head(torchvision.models.resnet18(weights=None), bad)


def test_head_not_found_is_a_clear_error():
    with pytest.raises(ValueError, match="cannot find the head of Sequential"):
        tl.get_head(nn.Sequential())
    model = nn.Module()
    model.body = nn.Linear(3, 3)
    with pytest.raises(ValueError, match="top-level modules are: body"):
        tl.replace_head(model, 2)


def test_unknown_model_name_lists_close_names():
    with pytest.raises(ValueError, match="did you mean.*resnet18"):
        tl.load_pretrained("resnet-18")


def test_torchvision_offline_warns_loudly_and_is_random(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty cache: nothing to load
    with pytest.warns(tl.PretrainedWeightsUnavailable, match="RANDOM weights"):
        model = tl.load_pretrained("resnet18")
    assert isinstance(model, torchvision.models.ResNet)


def test_torchvision_weights_load_from_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    path = weights_file("resnet18")
    assert path.startswith(str(tmp_path))
    reference = torchvision.models.resnet18(weights=None)
    torch.save(reference.state_dict(), _mkdirs(path))
    with warnings.catch_warnings():
        warnings.simplefilter("error", tl.PretrainedWeightsUnavailable)
        model = tl.load_pretrained("resnet18")
    assert torch.equal(model.fc.weight, reference.fc.weight)


def test_unknown_weights_name():
    with pytest.raises(ValueError, match="IMAGENET1K_V1"):
        tl.load_pretrained("resnet18", weights="IMAGENET_V9")


def test_lite_is_a_copyable_module(lite0):
    model = copy.deepcopy(lite0)
    assert tl.get_head(model)[0] == "classifier.1"
    assert model.features[7][0].block[0][0].kernel_size == (1, 1)


def _mkdirs(path):
    import pathlib

    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    return path
