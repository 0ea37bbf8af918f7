"""Plots that notebooks and the demo show: training curves, confusion matrix, image grids.

Each function returns a matplotlib `Figure` built without pyplot, so it works headless (CI, the
demo) and displays in Jupyter; `fig.savefig("x.png")` writes it.

Example:
    >>> plot_history(history).savefig("curves.png")
"""

from __future__ import annotations

import math

import numpy as np
import torch
from matplotlib.figure import Figure


def plot_history(*histories, labels: list[str] | None = None, title: str = "") -> Figure:
    """Loss and accuracy per epoch, train (dashed) and validation (solid), for 1+ Histories.

    Example:
        >>> frozen, fine_tuned = history, history  # two tl.fit(...) results
        >>> plot_history(frozen, fine_tuned, labels=["frozen", "fine-tuned"]).savefig("curves.png")
    """
    figure = Figure(figsize=(10, 3.6), layout="constrained")
    loss_ax, acc_ax = figure.subplots(1, 2)
    labels = labels or [""] * len(histories)
    for history, label in zip(histories, labels):
        prefix = f"{label} " if label else ""
        epochs = range(1, len(history.train_loss) + 1)
        for ax, train, val in (
            (loss_ax, history.train_loss, history.val_loss),
            (acc_ax, history.train_accuracy, history.val_accuracy),
        ):
            line = ax.plot(epochs, train, "--", label=f"{prefix}train")[0]
            if not all(math.isnan(v) for v in val):
                ax.plot(epochs, val, "-", color=line.get_color(), label=f"{prefix}val")
    for ax, name in ((loss_ax, "loss"), (acc_ax, "accuracy")):
        ax.set_xlabel("epoch")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    if title:
        figure.suptitle(title)
    return figure


def plot_confusion_matrix(matrix, class_names: list[str], title: str = "") -> Figure:
    """Confusion matrix (rows: true class, columns: predicted) with counts in each cell.

    Example:
        >>> report = tl.classification_metrics(labels, tl.predict(model, images), classes)
        >>> figure = plot_confusion_matrix(report["confusion_matrix"], classes, title="test set")
    """
    matrix = np.asarray(matrix)
    size = 1.5 + 0.45 * len(class_names)
    figure = Figure(figsize=(size + 1, size), layout="constrained")
    ax = figure.subplots()
    image = ax.imshow(matrix, cmap="Blues")
    ax.set(
        xticks=range(len(class_names)),
        yticks=range(len(class_names)),
        xlabel="predicted",
        ylabel="true",
        title=title,
    )
    ax.set_xticklabels(class_names, rotation=45, ha="right")
    ax.set_yticklabels(class_names)
    for (row, col), count in np.ndenumerate(matrix):
        color = "white" if count > matrix.max() / 2 else "black"
        ax.text(col, row, str(count), ha="center", va="center", color=color, fontsize=8)
    figure.colorbar(image, ax=ax, shrink=0.8)
    return figure


def to_displayable(images: torch.Tensor, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5)) -> np.ndarray:
    """Undo `Normalize(mean, std)`: (N, 3, H, W) float -> (N, H, W, 3) in [0, 1] for imshow.

    Example:
        >>> to_displayable(torch.zeros(8, 3, 96, 96)).shape
        (8, 96, 96, 3)
    """
    images = images.detach().cpu().float()
    images = images * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
    return images.clamp(0, 1).permute(0, 2, 3, 1).numpy()


def _image_grid(count: int, columns: int, cell: tuple[float, float]) -> tuple[Figure, np.ndarray]:
    """A figure with `count` image cells in rows of `columns`, axes off; returns (figure, axes)."""
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(cell[0] * min(columns, count), cell[1] * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, min(columns, count))).ravel()
    for ax in axes:
        ax.axis("off")
    return figure, axes


def show_images(
    images,
    labels=None,
    class_names: list[str] | None = None,
    predictions=None,
    probabilities=None,
    columns: int = 8,
    title: str = "",
) -> Figure:
    """Grid of images with their labels; with predictions, titles are green (right) or red (wrong).

    Args:
        images: (N, H, W, 3) array in [0, 1] (see `to_displayable`) or uint8.
        labels / predictions: (N,) class indices; probabilities: (N,) confidence of the prediction.

    Example:
        >>> images, labels = next(iter(loaders["val"]))
        >>> figure = show_images(to_displayable(images), labels, classes)
    """
    count = len(images)
    figure, axes = _image_grid(count, columns, cell=(1.6, 1.8))
    name = (lambda i: class_names[int(i)]) if class_names else (lambda i: str(int(i)))
    for index, ax in enumerate(axes):
        if index >= count:
            continue
        ax.imshow(images[index])
        if predictions is not None:
            text = name(predictions[index])
            if probabilities is not None:
                text += f" {float(probabilities[index]):.2f}"
            right = labels is None or int(predictions[index]) == int(labels[index])
            text += "" if labels is None or right else f"\n(true: {name(labels[index])})"
            ax.set_title(text, fontsize=8, color="green" if right else "red")
        elif labels is not None:
            ax.set_title(name(labels[index]), fontsize=8)
    if title:
        figure.suptitle(title)
    return figure


def top_losses(probabilities, labels, k: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices and losses of the `k` samples the model got most wrong (highest cross-entropy).

    Args:
        probabilities: (N, num_classes) from `predict`; labels: (N,) true class indices.

    Example:
        >>> indices, losses = top_losses(tl.predict(model, images), labels, k=3)
        >>> indices.shape, bool((losses[:-1] >= losses[1:]).all())  # the 3 worst, worst first
        (torch.Size([3]), True)
    """
    probabilities = torch.as_tensor(probabilities, dtype=torch.float32)
    labels = torch.as_tensor(labels, dtype=torch.long)
    if probabilities.ndim != 2 or len(probabilities) != len(labels):
        raise ValueError(
            f"top_losses: probabilities {tuple(probabilities.shape)} need shape (N, num_classes) "
            f"with N = len(labels) = {len(labels)}"
        )
    # loss of one sample = -log(probability given to its true class), clamped: log(0) = -inf
    losses = -probabilities[torch.arange(len(labels)), labels].clamp_min(1e-12).log()
    losses, indices = losses.topk(min(k, len(labels)))
    return indices, losses


def plot_top_losses(
    dataset,
    probabilities,
    class_names: list[str] | None = None,
    k: int = 8,
    columns: int = 4,
    mean=(0.5, 0.5, 0.5),
    std=(0.5, 0.5, 0.5),
) -> Figure:
    """The `k` test images with the highest loss: true class, prediction, its probability, loss.

    Like fastai's `plot_top_losses`: look at the mistakes before tuning anything; they show
    label noise, confusable classes and what the model never learned.

    Args:
        dataset: indexable, `dataset[i]` = (normalised image (3, H, W), label), in the same
            order as `probabilities` (a loader with `shuffle=False` over it gives that order).
        probabilities: (N, num_classes) from `predict`.
        mean, std: the normalisation to undo for display (Lite0: 0.5; ImageNet models differ).

    Example:
        >>> figure = plot_top_losses(splits["test"], tl.predict(model, loaders["test"]), classes)
    """
    labels = torch.tensor([int(dataset[i][1]) for i in range(len(dataset))])
    indices, losses = top_losses(probabilities, labels, k)
    probabilities = torch.as_tensor(probabilities, dtype=torch.float32)[indices]
    images = to_displayable(torch.stack([dataset[int(i)][0] for i in indices]), mean, std)
    name = (lambda i: class_names[int(i)]) if class_names else (lambda i: str(int(i)))
    count = len(indices)
    figure, axes = _image_grid(count, columns, cell=(2.2, 2.3))
    for ax, image, index, loss, probs in zip(axes, images, indices, losses, probabilities):
        predicted, true = int(probs.argmax()), int(labels[index])
        ax.imshow(image)
        ax.set_title(
            f"true {name(true)}\npred {name(predicted)} {probs[predicted]:.2f}\nloss {loss:.2f}",
            fontsize=8,
            color="green" if predicted == true else "red",
        )
    figure.suptitle(f"top {count} losses: the test images the model got most wrong")
    return figure


def show_scenes(
    images: torch.Tensor,
    masks: torch.Tensor | None = None,
    targets: list[dict] | None = None,
    class_names: list[str] | None = None,
    columns: int = 6,
    title: str = "",
) -> Figure:
    """Scenes with their class masks (half-transparent colours) and boxes (class name on top).

    Args:
        images: (N, 3, H, W) normalised like Lite0's inputs (see `to_displayable`).
        masks: (N, H, W) int class per pixel, 0 = background (drawn clear).
        targets: per image {"boxes": (k, 4) x0, y0, x1, y1, "labels": (k,)} (+ "scores").

    Example:
        >>> scenes = tl.load_scenes({"test": 6})["test"]
        >>> figure = show_scenes(scenes.images, scenes.masks, scenes.targets, scenes.classes)
    """
    from matplotlib import colormaps
    from matplotlib.patches import Rectangle

    colours = colormaps["tab10"].colors  # class c is colour c - 1; background has none
    figure, axes = _image_grid(len(images), columns, cell=(2.0, 2.1))
    for index, picture in enumerate(to_displayable(images)):
        ax = axes[index]
        ax.imshow(picture)
        if masks is not None:
            mask = masks[index].cpu().numpy()
            overlay = np.zeros((*mask.shape, 4))
            for c in np.unique(mask[mask > 0]):
                overlay[mask == c] = (*colours[(c - 1) % 10], 0.6)
            ax.imshow(overlay)
        target = targets[index] if targets is not None else {"labels": []}
        for k, label in enumerate(target["labels"]):
            x0, y0, x1, y1 = target["boxes"][k].tolist()
            colour = colours[(int(label) - 1) % 10]
            corner = (x0 - 0.5, y0 - 0.5)  # pixel edges, not centres
            ax.add_patch(Rectangle(corner, x1 - x0, y1 - y0, fill=False, color=colour))
            text = class_names[int(label)] if class_names else str(int(label))
            if "scores" in target:
                text += f" {float(target['scores'][k]):.2f}"
            ax.text(x0, y0 - 1, text, color=colour, fontsize=7, va="bottom")
    if title:
        figure.suptitle(title)
    return figure
