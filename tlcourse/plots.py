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
    """Loss and accuracy per epoch, train (dashed) and validation (solid), for 1+ Histories."""
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
    """Confusion matrix (rows: true class, columns: predicted) with counts in each cell."""
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
    """Undo `Normalize(mean, std)`: (N, 3, H, W) float -> (N, H, W, 3) in [0, 1] for imshow."""
    images = images.detach().cpu().float()
    images = images * torch.tensor(std).view(1, 3, 1, 1) + torch.tensor(mean).view(1, 3, 1, 1)
    return images.clamp(0, 1).permute(0, 2, 3, 1).numpy()


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
    """
    count = len(images)
    rows = math.ceil(count / columns)
    figure = Figure(figsize=(1.6 * min(columns, count), 1.8 * rows), layout="constrained")
    axes = np.atleast_1d(figure.subplots(rows, min(columns, count))).ravel()
    name = (lambda i: class_names[int(i)]) if class_names else (lambda i: str(int(i)))
    for index, ax in enumerate(axes):
        ax.axis("off")
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
