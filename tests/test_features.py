"""Cached features: a head trained on them equals one trained through the frozen model."""

import copy

import pytest
import torch
import torchvision
from torch.utils.data import DataLoader, TensorDataset

import tlcourse as tl


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
