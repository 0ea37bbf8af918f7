"""Plots return matplotlib Figures that render headless (no display, no pyplot state)."""

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure

import tlcourse as tl


def test_plots_render_to_png(tmp_path):
    history = tl.History(
        train_loss=[1.0, 0.5],
        train_accuracy=[0.5, 0.8],
        val_loss=[1.1, 0.7],
        val_accuracy=[0.4, 0.7],
    )
    images = tl.to_displayable(torch.zeros(3, 3, 8, 8))
    assert images.shape == (3, 8, 8, 3) and np.allclose(images, 0.5)  # 0 in [-1, 1] is mid grey
    figures = [
        history.plot(title="curves"),
        tl.plot_history(history, history, labels=["a", "b"]),
        tl.plot_confusion_matrix(np.array([[3, 1], [0, 4]]), ["cat", "dog"]),
        tl.show_images(
            images,
            labels=[0, 1, 0],
            class_names=["cat", "dog"],
            predictions=[0, 0, 0],
            probabilities=[0.9, 0.6, 0.7],
        ),
    ]
    for index, figure in enumerate(figures):
        assert isinstance(figure, Figure)
        figure.savefig(tmp_path / f"{index}.png")
        assert (tmp_path / f"{index}.png").stat().st_size > 2_000
    titles = [ax.get_title() for ax in figures[-1].axes]
    assert titles[:2] == ["cat 0.90", "cat 0.60\n(true: dog)"]


def test_top_losses_ranks_by_cross_entropy_and_plots_the_mistakes(tmp_path):
    probabilities = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.01, 0.99]])
    labels = torch.tensor([0, 0, 1, 1])
    indices, losses = tl.top_losses(probabilities, labels, k=3)
    # losses: -log 0.9, -log 0.2, -log 0.4, -log 0.99 -> sample 1 is the worst, then 2, then 0
    assert indices.tolist() == [1, 2, 0]
    assert torch.allclose(losses, -torch.tensor([0.2, 0.4, 0.9]).log())
    reference = torch.nn.functional.nll_loss(probabilities.log(), labels, reduction="none")
    assert torch.allclose(losses, reference[indices])
    dataset = [(torch.zeros(3, 8, 8), int(label)) for label in labels]
    figure = tl.plot_top_losses(dataset, probabilities, ["cat", "dog"], k=3, columns=2)
    titles = [ax.get_title() for ax in figure.axes if ax.get_title()]
    assert titles[0] == "true cat\npred dog 0.80\nloss 1.61" and len(titles) == 3
    figure.savefig(tmp_path / "top.png")
    with pytest.raises(ValueError, match="need shape"):
        tl.top_losses(probabilities[:2], labels, k=1)
