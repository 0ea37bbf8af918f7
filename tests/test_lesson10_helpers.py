"""Lesson 10's helpers: the learning-rate range test (`tl.lr_find`) and Grad-CAM (`tl.gradcam`,
`tl.show_gradcam`): what they compute, that they leave the model as it was, and their messages
for bad inputs (docs/errors.md)."""

import copy
import math
import re
from pathlib import Path

import pytest
import torch
import torchvision
from conftest import blobs, small_net
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import DataLoader

import tlcourse as tl
from tlcourse.gradcam import conv_blocks, last_conv_block
from tlcourse.lr_finder import LRFinder, suggest_lr


# ------------------------------------------------------------------------------- lr_find
def blob_loader(seed: int = 0) -> DataLoader:
    return DataLoader(blobs(96), batch_size=16, shuffle=True, generator=tl.make_generator(seed))


def test_lr_find_grows_the_lr_exponentially_and_stops_when_the_loss_blows_up():
    model = small_net()
    finder = tl.lr_find(
        model,
        blob_loader(),
        torch.optim.SGD(model.parameters(), lr=0.1),
        start_lr=1e-5,
        end_lr=100.0,
        steps=120,
    )
    ratios = [b / a for a, b in zip(finder.lrs, finder.lrs[1:])]
    assert finder.lrs[0] == pytest.approx(1e-5)
    assert all(r == pytest.approx(ratios[0]) for r in ratios)
    assert ratios[0] == pytest.approx((100.0 / 1e-5) ** (1 / 119))
    assert len(finder.lrs) == len(finder.losses) < 120  # LR 100 with SGD diverges before the end
    assert all(math.isfinite(loss) for loss in finder.losses)
    # the suggestion sits where the loss falls, before it bottoms out
    lowest = finder.lrs[finder.losses.index(min(finder.losses))]
    assert 1e-4 < finder.suggestion <= lowest
    assert isinstance(finder.plot(), Figure)


def test_lr_find_puts_the_weights_and_the_optimizer_back():
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    before, optimizer_before = copy.deepcopy(model.state_dict()), optimizer.state_dict()
    tl.lr_find(model, blob_loader(), optimizer, steps=30)
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics too
    assert optimizer.param_groups[0]["lr"] == 3e-4
    assert optimizer.state_dict()["state"] == optimizer_before["state"] == {}


def test_lr_find_suggests_a_rate_that_trains():
    finder_model = small_net()
    finder = tl.lr_find(
        finder_model,
        blob_loader(),
        torch.optim.SGD(finder_model.parameters(), lr=1.0, momentum=0.9),
        steps=100,
    )
    losses = {}
    for lr in (finder.suggestion, 1e-5):
        model = small_net()
        history = tl.fit(
            model,
            blob_loader(),
            epochs=3,
            progress=False,
            device="cpu",
            optimizer=torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9),
        )
        losses[lr] = history.train_loss[-1]
    assert losses[finder.suggestion] < 0.5 * losses[1e-5]


def test_suggest_lr_reads_the_steepest_fall_before_the_minimum():
    lrs = [10.0 ** (k / 4) for k in range(-24, 5)]  # 1e-6 .. 10, 4 points a decade
    # flat, a fall between 1e-4 and 1e-2 (steepest at 1e-3), a minimum at 0.1, then a blow-up
    losses = [2.0 - 1.5 / (1 + math.exp(-3 * (math.log10(lr) + 3))) for lr in lrs]
    losses = [loss + (5 * (math.log10(lr) + 1) if lr > 0.1 else 0) for loss, lr in zip(losses, lrs)]
    assert suggest_lr(lrs, losses) == pytest.approx(1e-3)
    assert suggest_lr([1e-4, 1e-3, 1e-2, 0.1, 1.0], [2.3, 2.2, 1.2, 0.9, 5.0], skip=0) == 0.01


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"start_lr": 1.0, "end_lr": 1e-3}, "need 0 < start_lr < end_lr"),
        ({"start_lr": 0.0}, "need 0 < start_lr < end_lr"),
        ({"steps": 5}, "steps >= 10"),
    ],
)
def test_lr_find_bad_arguments(kwargs, message):
    model = small_net()
    with pytest.raises(ValueError, match=message):
        tl.lr_find(model, blob_loader(), torch.optim.SGD(model.parameters(), lr=0.1), **kwargs)


def test_lr_find_that_diverges_at_once_says_so_and_puts_the_weights_back():
    model = small_net()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ValueError, match=r"diverged after \d+ steps: lower start_lr"):
        tl.lr_find(model, blob_loader(), optimizer, start_lr=1e6, end_lr=1e9, diverge=1.0001)
    assert all(torch.equal(before[k], model.state_dict()[k]) for k in before)
    assert optimizer.param_groups[0]["lr"] == 0.1 and isinstance(LRFinder(), LRFinder)


def test_lr_find_on_an_empty_loader_says_so():
    model = small_net()
    empty = DataLoader(blobs(96), batch_size=128, drop_last=True)  # 96 samples: 0 full batches
    with pytest.raises(ValueError, match=r"the loader is empty \(0 batches\)"):
        tl.lr_find(model, empty, torch.optim.SGD(model.parameters(), lr=0.1))


# ------------------------------------------------------------------------------- gradcam
class Spotlight(nn.Module):
    """A CNN whose class-1 score is the brightness of channel 0: Grad-CAM must light up where
    the image is bright, wherever that is."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(3, 1, 1, bias=False), nn.ReLU())
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(1, 2)
        with torch.no_grad():
            self.body[0].weight.copy_(torch.tensor([1.0, 0.0, 0.0]).view(1, 3, 1, 1))
            self.fc.weight.copy_(torch.tensor([[-1.0], [1.0]]))
            self.fc.bias.zero_()

    def forward(self, x):
        return self.fc(self.pool(self.body(x)).flatten(1))


def bright_square(corner: tuple[int, int], size: int = 16) -> torch.Tensor:
    image = torch.zeros(3, size, size)
    row, col = corner
    image[0, row : row + 4, col : col + 4] = 1.0
    return image


def test_gradcam_lights_up_the_evidence_wherever_it_is():
    model = Spotlight()
    images = torch.stack([bright_square((0, 0)), bright_square((10, 6))])
    cams = tl.gradcam(model, images, targets=[1, 1])
    assert cams.shape == (2, 16, 16) and cams.min() >= 0 and cams.amax((1, 2)).tolist() == [1, 1]
    for cam, image in zip(cams, images):
        mask = image[0] > 0
        assert (cam * mask).sum() / cam.sum() > 0.9  # the square is 1/16 of the image
    assert last_conv_block(model) == "body"


def test_gradcam_on_a_frozen_pretrained_model_restores_its_mode(lite0):
    model = copy.deepcopy(lite0)
    tl.freeze(model, verbose=False)
    tl.replace_head(model, num_classes=3, verbose=False)
    model.train()
    images = torch.randn(3, 3, 64, 64)
    cams = tl.gradcam(model, images)  # default: the last conv block, features.8
    assert cams.shape == (3, 64, 64) and 0 <= cams.min() and cams.max() <= 1
    assert model.training and tl.count_params(model)[0] == 1280 * 3 + 3
    assert tl.gradcam(model, images[0]).shape == (1, 64, 64)  # one image, no batch dimension
    assert tl.gradcam(model, images, target_layer="features.5").shape == (3, 64, 64)


def test_default_layers_are_the_usual_ones(lite0):
    assert last_conv_block(lite0) == "features.8"
    assert last_conv_block(torchvision.models.resnet18()) == "layer4.1"
    assert conv_blocks(lite0)[-3:] == ["features.6", "features.7", "features.8"]


def test_gradcam_wrong_target_layer_lists_candidates(lite0):
    with pytest.raises(ValueError, match=r"no layer 'features\.99'; conv blocks .*features\.8"):
        tl.gradcam(lite0, torch.randn(1, 3, 32, 32), target_layer="features.99")


@pytest.mark.parametrize("shape", [(2, 32, 32), (2, 32, 32, 3), (2, 1, 32, 32), (32,)])
def test_gradcam_images_of_the_wrong_shape(lite0, shape):
    expected = r"must have shape \(N, 3, H, W\).*got " + re.escape(str(shape))
    with pytest.raises(ValueError, match=expected):
        tl.gradcam(lite0, torch.randn(*shape))
    with pytest.raises(TypeError, match="must be a torch.Tensor"):
        tl.gradcam(lite0, [[0.0]])


def test_gradcam_model_without_conv_layers():
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 2))
    with pytest.raises(ValueError, match="has no Conv2d layer.*needs a convolutional network"):
        tl.gradcam(mlp, torch.randn(2, 3, 8, 8))


def test_show_gradcam_draws_each_image_and_checks_shapes():
    images = torch.stack([bright_square((0, 0)), bright_square((8, 8))])
    cams = tl.gradcam(Spotlight(), images, targets=[1, 1])
    figure = tl.show_gradcam(images, cams, titles=["a", "b"], title="where")
    assert isinstance(figure, Figure) and len([ax for ax in figure.axes if ax.images]) == 2
    with pytest.raises(ValueError, match="do not match images"):
        tl.show_gradcam(images, cams[:1])


def test_suggest_lr_skips_warm_up_points_before_taking_slopes():
    """Repeated rates in the warm-up used to divide by zero in np.gradient: NaN won argmin."""
    lrs = [1e-4] * 10 + [1e-4, 1e-3, 1e-2, 1e-1, 1.0]
    assert suggest_lr(lrs, [2.3] * 11 + [2.2, 1.2, 0.9, 5.0]) == 0.01


def test_exercise_11_demo_prints_what_its_comment_says(capsys):
    """The demo under choose_lr (solution, and the learner's blank) says '# 0.01'."""
    import numpy as np

    source = (Path(__file__).parents[1] / "solutions" / "11_lr_finder.py").read_text()
    start = source.index("\ndef choose_lr(") + 1  # the code cell, not Hint 3's sketch
    end = source.index("\n", source.index("print(choose_lr(demo_lrs, demo_losses))"))
    block = source[start:end]
    assert "# 0.01" in block
    exec(block, {"np": np})
    assert capsys.readouterr().out.strip() == "0.01"
    namespace = {"np": np}
    exec(block.split("\n\n\ndemo_lrs")[0], namespace)
    demo = block[block.index("demo_lrs =") :].split("\nprint")[0]
    exec(demo, namespace)
    assert suggest_lr(namespace["demo_lrs"], namespace["demo_losses"]) == 0.01
