"""Grad-CAM: where in an image does the model look? A thin layer over captum's `LayerGradCam`.

Lesson 10. Grad-CAM (Selvaraju et al., 2017) weights a conv layer's feature maps by the gradient
of the class score, sums them and keeps the positive part: a coarse heat map of the evidence.
captum (PyTorch's own interpretability library) computes it; this module picks the layer,
checks the inputs, upsamples the maps to the image size and draws them.

Example:
    >>> cams = gradcam(model, images)            # (N, H, W) in [0, 1], last conv block
    >>> figure = show_gradcam(images, cams, titles=[classes[i] for i in labels])
"""

from __future__ import annotations

import torch
from matplotlib.figure import Figure
from torch import nn

from tlcourse.plots import _image_grid, to_displayable


def conv_blocks(model: nn.Module, depth: int = 2) -> list[str]:
    """Names (at most `depth` dots deep) of the modules that are or hold a Conv2d, in order:
    the layers Grad-CAM can look at.

    Example:
        >>> conv_blocks(model)[-2:]  # model: Lite0 with a new head
        ['features.7', 'features.8']
    """
    return [
        name
        for name, module in model.named_modules()
        if name
        and name.count(".") < depth
        and any(isinstance(m, nn.Conv2d) for m in module.modules())
    ]


def last_conv_block(model: nn.Module) -> str:
    """The block holding the model's last Conv2d: Grad-CAM's usual layer (`features.8` in Lite0,
    `layer4.1` in ResNet18). ValueError if the model has no Conv2d at all.

    Example:
        >>> last_conv_block(torchvision.models.resnet18())
        'layer4.1'
    """
    convs = [name for name, module in model.named_modules() if isinstance(module, nn.Conv2d)]
    if not convs:
        raise ValueError(
            f"gradcam: {type(model).__name__} has no Conv2d layer, so there is no feature map to "
            "explain: Grad-CAM needs a convolutional network (a ViT or an MLP has none)"
        )
    return convs[-1].rpartition(".")[0] or convs[-1]  # the conv's parent block, or the conv


def _layer(model: nn.Module, target_layer: str | None) -> tuple[str, nn.Module]:
    name = target_layer or last_conv_block(model)
    try:
        return name, model.get_submodule(name)
    except AttributeError:
        candidates = conv_blocks(model)
        raise ValueError(
            f"gradcam: {type(model).__name__} has no layer {name!r}; conv blocks you can pass as "
            f"target_layer: {', '.join(candidates[-6:]) or 'none'} (default: the last one)"
        ) from None


def _check_images(images: object) -> torch.Tensor:
    if not isinstance(images, torch.Tensor):
        raise TypeError(
            f"gradcam: images must be a torch.Tensor (N, 3, H, W), got {type(images).__name__}"
        )
    batch = images[None] if images.ndim == 3 else images  # one image -> a batch of one
    if batch.ndim != 4 or batch.shape[1] != 3:
        raise ValueError(
            f"gradcam: images must have shape (N, 3, H, W) (or (3, H, W) for one), normalised as "
            f"the model expects; got {tuple(images.shape)}. Channels-last or grey images: "
            "use the dataset's transform (tl.transforms_for) to make them"
        )
    return batch


def gradcam(
    model: nn.Module,
    images: torch.Tensor,
    target_layer: str | None = None,
    targets: torch.Tensor | list[int] | None = None,
    batch_size: int = 64,
) -> torch.Tensor:
    """Grad-CAM heat maps (N, H, W) on the CPU, each scaled to [0, 1] (all zero: no evidence).

    Args:
        images: (N, 3, H, W) as the model takes them (normalised), or one (3, H, W) image.
        target_layer: dotted module name, e.g. "features.6"; default the last conv block.
            Earlier layers give finer but less class-specific maps.
        targets: the class explained for each image; default the model's prediction.

    Example:
        >>> cams = gradcam(model, images)  # model: any CNN classifier, e.g. Lite0 with a new head
        >>> cams.shape  # 4 images of 64 x 64 pixels
        torch.Size([4, 64, 64])
    """
    from captum.attr import LayerAttribution, LayerGradCam  # imported here: ~1 s, only needed now

    images = _check_images(images)
    _, layer = _layer(model, target_layer)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()  # BatchNorm with running statistics, dropout off: explain the model as it predicts
    maps = []
    try:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size].to(device)
            if targets is None:
                with torch.no_grad():
                    wanted = model(batch).argmax(1)
            else:
                wanted = torch.as_tensor(targets[start : start + batch_size], device=device)
            cam = LayerGradCam(model, layer).attribute(batch, target=wanted)  # (n, 1, h, w)
            cam = LayerAttribution.interpolate(cam, tuple(batch.shape[-2:]), "bilinear")
            maps.append(cam[:, 0].detach().clamp_min(0).cpu())  # (n, H, W); ReLU: evidence for
    finally:
        model.train(was_training)
    cams = torch.cat(maps)
    peak = cams.flatten(1).amax(1).clamp_min(1e-12)[:, None, None]
    return cams / peak


def show_gradcam(
    images: torch.Tensor,
    cams: torch.Tensor,
    titles: list[str] | None = None,
    columns: int = 6,
    alpha: float = 0.5,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
    title: str = "",
) -> Figure:
    """Each image with its heat map laid over it (red: where the evidence is).

    Args:
        images: (N, 3, H, W) normalised as the model takes them; `mean`, `std` undo that.
        cams: (N, H, W) from `gradcam`; titles: one short line per image (e.g. "Cat 0.93").

    Example:
        >>> figure = show_gradcam(images[:2], gradcam(model, images[:2]), titles=["Cat", "Dog"])
    """
    images = _check_images(images)
    if cams.shape != (images.shape[0], *images.shape[-2:]):
        raise ValueError(
            f"show_gradcam: cams {tuple(cams.shape)} do not match images "
            f"{tuple(images.shape)}: want (N, H, W) from gradcam(model, images)"
        )
    figure, axes = _image_grid(len(images), columns, cell=(1.7, 1.9))
    for index, (ax, image) in enumerate(zip(axes, to_displayable(images, mean, std))):
        ax.imshow(image)
        ax.imshow(cams[index].numpy(), cmap="jet", alpha=alpha, vmin=0, vmax=1)
        if titles:
            ax.set_title(titles[index], fontsize=8)
    if title:
        figure.suptitle(title)
    return figure
