"""Segmentation on a pretrained classifier's backbone: Lite0's intermediate maps, torchvision's
LR-ASPP head, and the mean IoU per class. Lesson 12 and exercise 12 use it.

Example:
    >>> backbone = Lite0Maps(tl.load_pretrained("efficientnet_lite0"))
    >>> model = Segmenter(backbone, segmentation_head(num_classes=11))
    >>> model(torch.zeros(2, 3, 96, 96)).shape  # a score per class for every pixel
    torch.Size([2, 11, 96, 96])
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torchvision.models.segmentation.lraspp import LRASPPHead

LOW_CHANNELS, HIGH_CHANNELS = 40, 112  # Lite0 after stage 3 (stride 8) and stage 5 (stride 16)


class Lite0Maps(nn.Module):
    """Lite0's first six stages as a backbone for dense tasks, sharing the classifier's layers.

    (N, 3, H, W) -> {"low": (N, 40, H/8, W/8), "high": (N, 112, H/16, W/16)}: a fine map for
    outlines and a coarse one for what is where. The classifier's later stages are not used.

    Example:
        >>> maps = Lite0Maps(tl.load_pretrained("efficientnet_lite0"))(torch.zeros(1, 3, 96, 96))
        >>> {name: tuple(m.shape) for name, m in maps.items()}
        {'low': (1, 40, 12, 12), 'high': (1, 112, 6, 6)}
    """

    def __init__(self, model: nn.Module):
        super().__init__()
        features = getattr(model, "features", None)
        if not isinstance(features, nn.Sequential) or len(features) < 6:
            raise TypeError(
                f"Lite0Maps needs an EfficientNet-Lite (model.features with its stages), got "
                f"{type(model).__name__}: pass tl.load_pretrained('efficientnet_lite0')"
            )
        self.low, self.high = features[:4], features[4:6]

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        low = self.low(images)
        return {"low": low, "high": self.high(low)}


def segmentation_head(num_classes: int, inter_channels: int = 64) -> LRASPPHead:
    """torchvision's LR-ASPP head (the head of LR-ASPP MobileNetV3) for Lite0Maps' two maps.

    Returns scores (N, num_classes, H/8, W/8) from {"low", "high"}.

    Example:
        >>> head = segmentation_head(num_classes=11)
        >>> head({"low": torch.zeros(1, 40, 12, 12), "high": torch.zeros(1, 112, 6, 6)}).shape
        torch.Size([1, 11, 12, 12])
    """
    if num_classes < 2:
        raise ValueError(f"num_classes={num_classes}: need at least 2 (background and a class)")
    return LRASPPHead(LOW_CHANNELS, HIGH_CHANNELS, num_classes, inter_channels)


class Segmenter(nn.Module):
    """A backbone giving maps and a head giving scores, scaled up to the image's size.

    Example:
        >>> model = Segmenter(Lite0Maps(tl.load_pretrained("efficientnet_lite0")),
        ...                   segmentation_head(11))
        >>> model(torch.zeros(1, 3, 96, 96)).shape
        torch.Size([1, 11, 96, 96])
    """

    def __init__(self, backbone: nn.Module, head: nn.Module):
        super().__init__()
        self.backbone, self.head = backbone, head

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        scores = self.head(self.backbone(images))  # (N, C, H/8, W/8)
        return F.interpolate(scores, size=images.shape[-2:], mode="bilinear", align_corners=False)


@torch.no_grad()
def cache_maps(backbone: nn.Module, images: torch.Tensor, batch_size: int = 100) -> dict:
    """The frozen backbone's maps of `images`, computed once (eval mode): train a head on them.

    Example:
        >>> backbone = Lite0Maps(tl.load_pretrained("efficientnet_lite0"))
        >>> cached = cache_maps(backbone, torch.zeros(4, 3, 96, 96))
        >>> {name: tuple(m.shape) for name, m in cached.items()}
        {'low': (4, 40, 12, 12), 'high': (4, 112, 6, 6)}
    """
    backbone.eval()
    device = next(backbone.parameters()).device
    parts = [backbone(x.to(device)) for x in images.split(batch_size)]
    return {name: torch.cat([p[name] for p in parts]) for name in parts[0]}


@torch.no_grad()
def segment(model: nn.Module, images: torch.Tensor, batch_size: int = 100) -> torch.Tensor:
    """The class of every pixel, (N, H, W) int64 on the CPU, with `model` in eval mode.

    Example:
        >>> segmenter = Segmenter(Lite0Maps(tl.load_pretrained("efficientnet_lite0")),
        ...                       segmentation_head(11))
        >>> segment(segmenter, torch.zeros(4, 3, 96, 96)).shape
        torch.Size([4, 96, 96])
    """
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    try:
        return torch.cat([model(x.to(device)).argmax(1).cpu() for x in images.split(batch_size)])
    finally:
        model.train(was_training)


def mean_iou(
    predicted: torch.Tensor, masks: torch.Tensor, num_classes: int
) -> tuple[float, np.ndarray]:
    """Intersection over union of each class but the background (0) over all pixels of all
    images, and their mean: the standard score of semantic segmentation.

    A class that is neither predicted nor present scores 0 (it does not raise the mean).

    Example:
        >>> truth = torch.tensor([[0, 1, 1, 2]])
        >>> miou, per_class = mean_iou(torch.tensor([[0, 1, 2, 2]]), truth, num_classes=3)
        >>> round(miou, 3), per_class.round(3).tolist()  # class 1: 1/2, class 2: 1/2
        (0.5, [0.5, 0.5])
    """
    if predicted.shape != masks.shape:
        raise ValueError(f"predicted {tuple(predicted.shape)} vs masks {tuple(masks.shape)}")
    # confusion[t, p] counts the pixels of true class t predicted as p
    index = masks.reshape(-1).long() * num_classes + predicted.reshape(-1).long()
    confusion = torch.bincount(index, minlength=num_classes**2).reshape(num_classes, num_classes)
    confusion = confusion.double().numpy()
    hits = np.diag(confusion)
    union = confusion.sum(0) + confusion.sum(1) - hits
    per_class = np.divide(hits, union, out=np.zeros_like(hits), where=union > 0)[1:]
    return float(per_class.mean()), per_class
