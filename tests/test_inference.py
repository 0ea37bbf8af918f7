"""The fast frozen forward pass (tlcourse/inference.py): the folded copy gives the model's outputs
within float rounding, the learner's model is left as it was, bf16 stays close, one rule decides
when the copy runs, and the old keywords still work."""

import copy

import pytest
import torch
import torchvision
from torch.utils.data import DataLoader, TensorDataset

import tlcourse as tl
from tlcourse import inference
from tlcourse.device import cpu_has_native_bf16
from tlcourse.inference import FrozenForward, fold_pays

# The fast frozen forward pass (issue 17): the default layout gives the same features (float
# rounding), the learner's model is left as it was, and bf16 stays close. No timing here:
# benchmarks/extraction.py measures the speed.


def images_loader(n=16, size=32, seed=0):
    generator = torch.Generator().manual_seed(seed)
    data = TensorDataset(torch.randn(n, 3, size, size, generator=generator), torch.arange(n) % 3)
    return DataLoader(data, batch_size=8)


@pytest.mark.parametrize("layer", [None, "features.7", "features.0.1"])
def test_default_layout_gives_the_fp32_nchw_features(lite0, layer):
    model = copy.deepcopy(lite0).train()
    before = {name: value.clone() for name, value in model.state_dict().items()}
    plain = tl.extract_features(model, images_loader(), layer, fold_batchnorm=False)
    fast = tl.extract_features(model, images_loader(), layer, fold_batchnorm=True)  # NHWC copy
    reference, features = plain.tensors[0], fast.tensors[0]
    # features.0.1 is a BatchNorm: its input (the conv's output) must not be folded away
    assert features.shape == reference.shape and features.is_contiguous()
    assert torch.allclose(features, reference, rtol=1e-4, atol=1e-4 * reference.abs().max())
    assert torch.equal(fast.tensors[1], plain.tensors[1])
    # the learner's model: same mode, same weights, same (NCHW) memory format
    assert model.training and model.features[1][0].block[0][1].training
    for name, value in model.state_dict().items():
        assert torch.equal(value, before[name]) and value.is_contiguous(), name


def test_bf16_features_point_the_same_way(lite0):
    if not cpu_has_native_bf16():
        pytest.skip("bf16 falls back to fp32 on this CPU (tested below)")
    plain = tl.extract_features(lite0, images_loader(), fold_batchnorm=False).tensors[0]
    bf16 = tl.extract_features(lite0, images_loader(), dtype="bf16").tensors[0]
    assert bf16.dtype == torch.float32  # stored as float32 for the head
    assert torch.nn.functional.cosine_similarity(bf16, plain).min() >= 0.99


def test_bf16_without_native_support_warns_and_runs_fp32(lite0, monkeypatch):
    monkeypatch.setattr(inference, "cpu_has_native_bf16", lambda: False)
    plain = tl.extract_features(lite0, images_loader(8))
    with pytest.warns(UserWarning, match="no native bf16.*running fp32 instead"):
        bf16 = tl.extract_features(lite0, images_loader(8), dtype="bf16")
    assert torch.equal(bf16.tensors[0], plain.tensors[0])


def test_dtypes_not_offered_raise(lite0):
    with pytest.raises(ValueError, match="'fp16' is not offered on cpu: use one of fp32, bf16"):
        tl.extract_features(lite0, images_loader(8), dtype="fp16")
    with pytest.raises(ValueError, match="dtype='int8': choose one of fp32, bf16, fp16"):
        tl.evaluate(lite0, images_loader(8), dtype="int8")


def test_evaluate_and_predict_folded_copy_match_the_model(lite0):
    model = copy.deepcopy(lite0)
    tl.replace_head(model, 3, verbose=False)
    loader = images_loader()
    plain = tl.evaluate(model, loader, fold_batchnorm=False)
    fast = tl.evaluate(model, loader, fold_batchnorm=True)  # (16 samples: None runs it as is)
    assert fast["loss"] == pytest.approx(plain["loss"], rel=1e-5)
    images = torch.cat([batch[0] for batch in loader])
    fast = tl.predict(model, images, fold_batchnorm=True)  # (16 images: None would run it as is)
    assert torch.allclose(fast, tl.predict(model, images, fold_batchnorm=False), atol=1e-5)
    assert not model.training and model.classifier[1].weight.is_contiguous()


def test_the_old_keywords_still_work_and_name_the_new_ones(lite0):
    loader = images_loader(8)
    new = tl.evaluate(lite0, loader, dtype="fp32", fold_batchnorm=True)
    with pytest.warns(FutureWarning, match=r"evaluate\(channels_last=...\) is now evaluate\(fold"):
        old = tl.evaluate(lite0, loader, precision="fp32", channels_last=True)
    assert old == new
    with pytest.warns(FutureWarning, match=r"predict\(precision=...\) is now predict\(dtype"):
        tl.predict(lite0, torch.zeros(1, 3, 32, 32), precision="fp32")
    with pytest.warns(FutureWarning, match="extract_features"):
        tl.extract_features(lite0, loader, channels_last=False)
    with pytest.raises(TypeError, match="evaluate\\(\\) got an unexpected keyword argument 'fast'"):
        tl.evaluate(lite0, loader, fast=True)


def test_fold_pays_only_for_conv_models_without_hooks_on_enough_samples():
    cpu, many = torch.device("cpu"), inference.FOLD_FROM
    resnet = torchvision.models.resnet18(weights=None)
    assert fold_pays(resnet, cpu, many)
    assert not fold_pays(resnet, cpu, many - 1)  # the copy would cost more than it saves
    assert not fold_pays(torch.nn.Linear(4, 2), cpu, many)  # nothing to gain: runs as it is
    assert not fold_pays(resnet, torch.device("mps"), many)  # not measured there
    handle = resnet.layer4.register_forward_hook(lambda *args: None)
    assert not fold_pays(resnet, cpu, many)  # a copy would run a copy of the hook
    handle.remove()


def test_folding_covers_sequential_and_resnet_pairs_and_keeps_resnet_exact():
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None).eval()
    for module in resnet.modules():  # non-trivial running statistics, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    forward = FrozenForward(resnet, torch.device("cpu"), fold_batchnorm=True)
    assert isinstance(forward.model.layer2[0].downsample[1], torch.nn.Identity)  # folded
    assert isinstance(forward.model.bn1, torch.nn.Identity)  # the stem (NAMED_PAIRS)
    assert isinstance(forward.model.layer1[1].bn2, torch.nn.Identity)  # a BasicBlock's pair
    remaining = [m for m in forward.model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert not remaining, f"{len(remaining)} BatchNorm2d not folded"
    assert isinstance(resnet.layer2[0].downsample[1], torch.nn.BatchNorm2d)  # original intact
    assert isinstance(resnet.bn1, torch.nn.BatchNorm2d) and resnet.bn1.training is False
    images = torch.randn(4, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(forward(images), resnet(images), atol=1e-4)


def test_bottleneck_resnets_fold_exactly_and_keep_a_captured_norm():
    torch.manual_seed(0)
    resnet = torchvision.models.resnet50(weights=None).eval()
    for module in resnet.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    forward = FrozenForward(resnet, "cpu", fold_batchnorm=True, keep="layer3.1.bn3")
    norms = [n for n, m in forward.model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms == ["layer3.1.bn3"]  # every other pair folded, conv3/bn3 of a Bottleneck too
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = resnet(images)
        assert torch.allclose(forward(images), reference, atol=1e-4 * reference.abs().max())


@pytest.mark.parametrize("entry", ["evaluate", "predict", "extract_features"])
def test_one_rule_decides_the_copy_for_evaluate_predict_and_extract_features(monkeypatch, entry):
    copies = []
    real = inference.folded_copy
    monkeypatch.setattr(inference, "folded_copy", lambda *args: copies.append(1) or real(*args))
    model = torchvision.models.resnet18(num_classes=3)
    run = {
        "evaluate": lambda loader: tl.evaluate(model, loader, device="cpu"),
        "predict": lambda loader: tl.predict(model, loader, device="cpu"),
        "extract_features": lambda loader: tl.extract_features(model, loader, device="cpu"),
    }[entry]
    run(images_loader(inference.FOLD_FROM - 1, size=16))
    assert copies == []  # a copy would cost more than it saves: fit validates every epoch
    run(images_loader(inference.FOLD_FROM, size=16))
    assert copies == [1]
    images = torch.zeros(inference.FOLD_FROM, 3, 16, 16)
    if entry == "predict":  # a tensor of images counts as its length
        tl.predict(model, images[:-1], device="cpu")
        assert copies == [1]
        tl.predict(model, images, device="cpu")
        assert copies == [1, 1]
