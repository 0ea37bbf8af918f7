"""Shared fixtures. Tests run offline: TLCOURSE_OFFLINE=1 forbids weight downloads."""

import os

os.environ.setdefault("TLCOURSE_OFFLINE", "1")
os.environ.setdefault("TLCOURSE_DEVICE", "cpu")  # the same numbers on every machine

import pytest  # noqa: E402
import torch  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402

import tlcourse as tl  # noqa: E402


@pytest.fixture(scope="session")
def lite0():
    """The real pretrained EfficientNet-Lite0 (load once; tests deep-copy it before changing it)."""
    return tl.load_pretrained("efficientnet_lite0")


def blobs(n: int = 96, features: int = 8, classes: int = 3, seed: int = 0) -> TensorDataset:
    """A small, learnable classification problem: Gaussian blobs around class centres."""
    labels = torch.arange(n) % classes
    centres = torch.randn(classes, features, generator=torch.Generator().manual_seed(42)) * 2
    noise = torch.randn(n, features, generator=torch.Generator().manual_seed(seed))
    return TensorDataset(centres[labels] + noise, labels)


def blob_loaders(batch_size: int = 16, seed: int = 0, num_workers: int = 0):
    datasets = {"train": blobs(96, seed=seed), "val": blobs(48, seed=seed + 1)}
    return tl.make_loaders(datasets, batch_size=batch_size, num_workers=num_workers, seed=seed)


def small_net(seed: int = 0, features: int = 8, classes: int = 3) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(features, 16),
        torch.nn.ReLU(),
        torch.nn.Dropout(0.2),
        torch.nn.Linear(16, classes),
    )


@pytest.fixture
def loaders():
    return blob_loaders()


@pytest.fixture
def tiny_loader():
    return DataLoader(blobs(32), batch_size=8)
