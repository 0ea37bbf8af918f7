"""Classification metrics as thin wrappers over scikit-learn (notebooks 05 and 07).

Accuracy alone misleads on imbalanced data: report per-class precision/recall/F1, macro-F1,
ROC-AUC and the confusion matrix.

Example:
    >>> probs = tl.predict(model, loaders["test"])  # (4, 2): 2 cats, 2 dogs
    >>> report = classification_metrics(labels, probs, classes)
    >>> sorted(report), report["per_class"]["Cat"]["support"]
    (['accuracy', 'confusion_matrix', 'macro_f1', 'per_class', 'roc_auc'], 2)
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn import metrics as skm


def _numpy(values) -> np.ndarray:
    return values.detach().cpu().numpy() if isinstance(values, torch.Tensor) else np.asarray(values)


def classification_metrics(y_true, probabilities, class_names: list[str] | None = None) -> dict:
    """Accuracy, macro-F1, ROC-AUC, per-class precision/recall/F1/support and confusion matrix.

    Args:
        y_true: (N,) integer labels.
        probabilities: (N, num_classes) predicted probabilities (e.g. from `tl.predict`).
        class_names: names for the per-class entries (default "0", "1", ...).

    Example:
        >>> probabilities = [[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]]
        >>> report = classification_metrics([0, 0, 1, 1], probabilities, ["Cat", "Dog"])
        >>> print(f'{report["macro_f1"]:.3f} {report["per_class"]["Cat"]["recall"]:.2f}')
        0.733 0.50
    """
    y_true, probabilities = _numpy(y_true), _numpy(probabilities)
    if probabilities.ndim != 2 or len(probabilities) != len(y_true):
        raise ValueError(
            f"need probabilities of shape (N, num_classes) for N={len(y_true)} labels, "
            f"got {probabilities.shape}"
        )
    num_classes = probabilities.shape[1]
    names = class_names or [str(i) for i in range(num_classes)]
    labels = np.arange(num_classes)
    y_pred = probabilities.argmax(1)
    precision, recall, f1, support = skm.precision_recall_fscore_support(
        y_true, y_pred, labels=labels, zero_division=0
    )
    return {
        "accuracy": skm.accuracy_score(y_true, y_pred),
        "macro_f1": skm.f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0),
        "roc_auc": roc_auc(y_true, probabilities),
        "per_class": {
            name: {"precision": p, "recall": r, "f1": f, "support": int(s)}
            for name, p, r, f, s in zip(names, precision, recall, f1, support)
        },
        "confusion_matrix": skm.confusion_matrix(y_true, y_pred, labels=labels),
    }


def roc_auc(y_true, probabilities) -> float:
    """ROC-AUC: binary uses P(class 1); multi-class is one-vs-rest macro; NaN if undefined.

    Example:
        >>> roc_auc([0, 1, 1, 0], [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6], [0.3, 0.7]])
        0.75
    """
    y_true, probabilities = _numpy(y_true), _numpy(probabilities)
    if len(np.unique(y_true)) < 2:
        return float("nan")  # AUC needs both positives and negatives
    if probabilities.shape[1] == 2:
        return float(skm.roc_auc_score(y_true, probabilities[:, 1]))
    return float(
        skm.roc_auc_score(
            y_true, probabilities, multi_class="ovr", labels=np.arange(probabilities.shape[1])
        )
    )


def sensitivity_specificity(y_true, y_pred, positive: int = 1) -> tuple[float, float]:
    """Sensitivity (recall of `positive`, e.g. disease) and specificity (recall of the rest).

    Example:
        >>> sensitivity_specificity(y_true=[1, 1, 0, 0], y_pred=[1, 0, 0, 0])
        (0.5, 1.0)
    """
    y_true, y_pred = _numpy(y_true) == positive, _numpy(y_pred) == positive
    sensitivity = (y_true & y_pred).sum() / max(y_true.sum(), 1)
    specificity = (~y_true & ~y_pred).sum() / max((~y_true).sum(), 1)
    return float(sensitivity), float(specificity)
