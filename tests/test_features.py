"""Cached features: a head trained on them equals one trained through the frozen model, and the
fast frozen forward pass (folded channels_last copy, bf16) gives the same features."""

import copy

import pytest
import torch
import torchvision
from torch.utils.data import DataLoader, TensorDataset

import tlcourse as tl
from tlcourse import features as features_module
from tlcourse.device import cpu_has_native_bf16
from tlcourse.features import FrozenForward, fast_layout_helps


def test_cached_head_equals_frozen_model_head():
    torch.manual_seed(0)
    images, labels = torch.randn(48, 3, 32, 32), torch.arange(48) % 3
    model = torchvision.models.resnet18(weights=None)
    tl.freeze(model, verbose=False)
    tl.replace_head(model, 3, verbose=False)
    tl.freeze_batchnorm(model)  # frozen backbone = same features in train mode
    twin = copy.deepcopy(model)
    initial = model.fc.weight.detach().clone()

    def loader(dataset):
        return DataLoader(dataset, batch_size=16, shuffle=True, generator=tl.make_generator(0))

    tl.fit(model, loader(TensorDataset(images, labels)), epochs=3, lr=1e-2, progress=False)
    features = tl.extract_features(twin, DataLoader(TensorDataset(images, labels), batch_size=16))
    assert features.tensors[0].shape == (48, 512) and torch.equal(features.tensors[1], labels)
    assert not features.tensors[0].requires_grad
    tl.fit(twin.fc, loader(features), epochs=3, lr=1e-2, progress=False)
    assert torch.allclose(twin.fc.weight, model.fc.weight, atol=1e-5)
    assert not torch.allclose(model.fc.weight, initial, atol=1e-3)  # the heads did train


def test_extract_features_at_any_layer_and_back_to_train_mode(lite0):
    model = copy.deepcopy(lite0).train()
    data = TensorDataset(torch.randn(4, 3, 64, 64), torch.zeros(4, dtype=torch.long))
    activations = tl.extract_features(model, DataLoader(data, batch_size=2), layer="features.7")
    assert activations.tensors[0].shape == (4, 192, 2, 2) and model.training


def test_extract_features_unknown_layer(lite0):
    data = DataLoader(TensorDataset(torch.randn(2, 3, 32, 32), torch.zeros(2)), batch_size=2)
    with pytest.raises(ValueError, match="no layer 'features.99'.*features, avgpool, classifier"):
        tl.extract_features(lite0, data, layer="features.99")


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
    plain = tl.extract_features(model, images_loader(), layer, channels_last=False)
    fast = tl.extract_features(model, images_loader(), layer)  # default: folded NHWC copy on CPU
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
    plain = tl.extract_features(lite0, images_loader(), channels_last=False).tensors[0]
    bf16 = tl.extract_features(lite0, images_loader(), precision="bf16").tensors[0]
    assert bf16.dtype == torch.float32  # stored as float32 for the head
    assert torch.nn.functional.cosine_similarity(bf16, plain).min() >= 0.99


def test_bf16_without_native_support_warns_and_runs_fp32(lite0, monkeypatch):
    monkeypatch.setattr(features_module, "cpu_has_native_bf16", lambda: False)
    plain = tl.extract_features(lite0, images_loader(8))
    with pytest.warns(UserWarning, match="no native bf16.*running fp32 instead"):
        bf16 = tl.extract_features(lite0, images_loader(8), precision="bf16")
    assert torch.equal(bf16.tensors[0], plain.tensors[0])


def test_precisions_not_offered_raise(lite0):
    with pytest.raises(ValueError, match="'fp16' is not offered on cpu: use one of fp32, bf16"):
        tl.extract_features(lite0, images_loader(8), precision="fp16")
    with pytest.raises(ValueError, match="precision='int8': choose one of fp32, bf16, fp16"):
        tl.evaluate(lite0, images_loader(8), precision="int8")


def test_evaluate_and_predict_default_layout_match_the_model(lite0):
    model = copy.deepcopy(lite0)
    tl.replace_head(model, 3, verbose=False)
    loader = images_loader()
    plain = tl.evaluate(model, loader, channels_last=False)
    fast = tl.evaluate(model, loader, channels_last=True)  # (16 samples: None runs it as is)
    assert fast["loss"] == pytest.approx(plain["loss"], rel=1e-5)
    images = torch.cat([batch[0] for batch in loader])
    fast = tl.predict(model, images, channels_last=True)  # (16 images: None would run it as is)
    assert torch.allclose(fast, tl.predict(model, images, channels_last=False), atol=1e-5)
    assert not model.training and model.classifier[1].weight.is_contiguous()


def test_fast_layout_only_for_conv_models_without_hooks():
    cpu = torch.device("cpu")
    resnet = torchvision.models.resnet18(weights=None)
    assert fast_layout_helps(resnet, cpu)
    assert not fast_layout_helps(torch.nn.Linear(4, 2), cpu)  # nothing to gain: runs as it is
    assert not fast_layout_helps(resnet, torch.device("mps"))  # not measured there
    handle = resnet.layer4.register_forward_hook(lambda *args: None)
    assert not fast_layout_helps(resnet, cpu)  # a copy would run a copy of the hook
    handle.remove()


def test_folding_covers_sequential_and_resnet_pairs_and_keeps_resnet_exact():
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(weights=None).eval()
    for module in resnet.modules():  # non-trivial running statistics, as after training
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    forward = FrozenForward(resnet, torch.device("cpu"), channels_last=True)
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
    forward = FrozenForward(resnet, torch.device("cpu"), channels_last=True, keep="layer3.1.bn3")
    norms = [n for n, m in forward.model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert norms == ["layer3.1.bn3"]  # every other pair folded, conv3/bn3 of a Bottleneck too
    images = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = resnet(images)
        assert torch.allclose(forward(images), reference, atol=1e-4 * reference.abs().max())


def test_evaluate_copies_the_model_for_the_fast_layout_only_for_enough_samples(monkeypatch):
    copies = []
    real = features_module._folded_copy
    monkeypatch.setattr(
        features_module, "_folded_copy", lambda *args: copies.append(1) or real(*args)
    )
    model = torchvision.models.resnet18(num_classes=3)
    small, large = images_loader(tl.train.FEW_SAMPLES - 1, size=16), images_loader(256, size=16)
    tl.evaluate(model, small, device="cpu")
    assert copies == []  # a copy would cost more than it saves: fit validates every epoch
    tl.evaluate(model, large, device="cpu")
    assert copies == [1]
