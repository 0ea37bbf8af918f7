"""Mixed precision (bf16 autocast on the CPU) and channels_last train like plain fp32.

bf16 keeps 8 significant bits: unit roundoff u = 2**-8 ≈ 0.0039. Under autocast a Linear layer
rounds its input and its weight to bf16 once each and accumulates in fp32, so one layer's output
is off by about 2u relative; the tolerances below are a few u, with measured values in comments.
"""

import pytest
import torch
from conftest import blob_loaders
from torch.utils.data import TensorDataset

import tlcourse as tl

U = 2.0**-8  # bf16 unit roundoff


def mlp() -> torch.nn.Module:
    """No dropout: dropout masks would be the only other difference between the two runs."""
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))


def train(amp: bool):
    tl.seed_everything(0)
    model, loaders = mlp(), blob_loaders()
    initial = [p.detach().clone() for p in model.parameters()]
    dtypes = []  # what the first layer really computed in, training batches only
    model[0].register_forward_hook(
        lambda module, _args, output: dtypes.append(output.dtype) if module.training else None
    )
    history = tl.fit(
        model,
        loaders["train"],
        loaders["val"],
        epochs=5,
        optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
        amp=amp,
        restore_best=False,
        progress=False,
    )
    return model, history, initial, set(dtypes)


def test_bf16_forward_is_within_a_few_roundoffs_of_fp32():
    model, inputs = mlp(), blob_loaders()["train"].dataset.tensors[0]
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = model(inputs)
    assert low.dtype == torch.bfloat16
    exact = model(inputs)
    error = (low.float() - exact).abs().max() / exact.abs().max()
    assert 0 < error < 4 * U  # measured 1.8u: two layers, each rounding inputs and weights once


def test_bf16_autocast_trains_and_matches_fp32():
    reference, fp32, initial, fp32_dtypes = train(amp=False)
    model, bf16, _, bf16_dtypes = train(amp=True)
    assert fp32_dtypes == {torch.float32} and bf16_dtypes == {torch.bfloat16}  # autocast was on
    # (validation runs in fp32: `evaluate` has no autocast, so val numbers are exact ones)
    assert bf16.train_loss[-1] < bf16.train_loss[0] / 3 and max(bf16.val_accuracy) > 0.9
    # Per-epoch losses: measured relative gap 3e-4 (u/10); 2u leaves a wide margin.
    assert bf16.train_loss == pytest.approx(fp32.train_loss, rel=2 * U)
    assert bf16.val_loss == pytest.approx(fp32.val_loss, rel=2 * U)
    assert all(abs(a - b) <= 1 / 48 for a, b in zip(bf16.val_accuracy, fp32.val_accuracy))
    # Weights stay on the fp32 path: the gap is measured against how far training moved them
    # (0.4% = 1u measured). Parameters themselves stay fp32 under autocast.
    gap = sum((a - b).pow(2).sum() for a, b in zip(model.parameters(), reference.parameters()))
    moved = sum((a - b).pow(2).sum() for a, b in zip(reference.parameters(), initial))
    assert moved.sqrt() > 0.5 and gap.sqrt() < 4 * U * moved.sqrt()
    assert all(p.dtype == torch.float32 for p in model.parameters())


def convnet() -> torch.nn.Module:
    # bias=False before BatchNorm (BN cancels it): its zero gradient would let Adam amplify
    # rounding noise into full-size steps and hide what this test compares.
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1, bias=False),
        torch.nn.BatchNorm2d(8),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(1),
        torch.nn.Linear(8, 2),
    )


@pytest.mark.parametrize("amp", [False, True])
def test_channels_last_gives_the_same_training(amp):
    labels = torch.arange(64) % 2
    images = torch.randn(64, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    images += labels[:, None, None, None] * 0.5  # (64, 3, 12, 12): class 1 is brighter
    datasets = {"train": TensorDataset(images, labels), "val": TensorDataset(images, labels)}
    runs = []
    for channels_last in (False, True):
        tl.seed_everything(0)
        model, loaders = convnet(), tl.make_loaders(datasets, batch_size=16)
        layouts = []
        model[0].register_forward_pre_hook(
            lambda _m, args, seen=layouts: seen.append(
                args[0].is_contiguous(memory_format=torch.channels_last)
            )
        )
        history = tl.fit(
            model,
            loaders["train"],
            loaders["val"],
            epochs=3,
            lr=1e-2,
            amp=amp,
            channels_last=channels_last,
            restore_best=False,
            progress=False,
        )
        runs.append((model, history, set(layouts)))
    (plain, plain_history, plain_layouts), (nhwc, nhwc_history, nhwc_layouts) = runs
    assert nhwc[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert plain_layouts == {False} and True in nhwc_layouts  # training batches were NHWC
    # Same math, other summation order: fp32 gaps measured ~1e-7; bf16 kernels may round
    # differently per layout, so amp gets the bf16 tolerance.
    tolerance = 4 * U if amp else 1e-5
    assert nhwc_history.train_loss == pytest.approx(plain_history.train_loss, rel=tolerance)
    for a, b in zip(nhwc.state_dict().values(), plain.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), rtol=tolerance, atol=tolerance)
