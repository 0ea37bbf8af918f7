"""tlcourse: the small, readable helpers behind the transfer-learning course.

>>> import tlcourse as tl
>>> model = tl.load_pretrained("efficientnet_lite0")   # real ImageNet weights, offline
>>> model = tl.freeze(model); head = tl.replace_head(model, num_classes=2)
trainable 0 / 4,652,008 parameters (0.0 %)
replaced classifier.1: Linear(1280 -> 1000) -> Linear(1280 -> 2)
>>> history = tl.fit(model, loaders["train"], loaders["val"], epochs=2)  # Cat vs Dog
epoch ...
completed; best epoch ... (its weights restored)
>>> len(history.train_loss), len(history.val_accuracy)
(2, 2)
"""

from tlcourse.checkpoint import load_checkpoint, load_model_state, save_checkpoint
from tlcourse.data import (
    ImageArrayDataset,
    balanced_sampler,
    class_weights,
    load_animals,
    load_splits,
    make_loaders,
    sample_photos,
    stratified_split,
    transforms_for,
)
from tlcourse.device import get_device, make_generator, seed_everything
from tlcourse.features import extract_features
from tlcourse.freeze import (
    count_params,
    freeze,
    freeze_batchnorm,
    param_groups,
    trainable_names,
    unfreeze,
)
from tlcourse.gradcam import gradcam, show_gradcam
from tlcourse.grading import check
from tlcourse.imagefolder import load_imagefolder, write_imagefolder
from tlcourse.lr_finder import lr_find
from tlcourse.metrics import classification_metrics, roc_auc, sensitivity_specificity
from tlcourse.models import (
    PretrainedWeightsUnavailable,
    available_models,
    get_head,
    load_pretrained,
    replace_head,
)
from tlcourse.plots import (
    plot_confusion_matrix,
    plot_history,
    plot_top_losses,
    show_images,
    show_scenes,
    to_displayable,
    top_losses,
)
from tlcourse.scenes import load_scenes
from tlcourse.segmentation import (
    Lite0Maps,
    Segmenter,
    cache_maps,
    mean_iou,
    segment,
    segmentation_head,
)
from tlcourse.train import History, evaluate, fit, predict, train_one_epoch

__version__ = "0.1.0"

__all__ = [
    "History",
    "ImageArrayDataset",
    "Lite0Maps",
    "PretrainedWeightsUnavailable",
    "Segmenter",
    "available_models",
    "balanced_sampler",
    "cache_maps",
    "check",
    "class_weights",
    "classification_metrics",
    "count_params",
    "evaluate",
    "extract_features",
    "fit",
    "freeze",
    "freeze_batchnorm",
    "get_device",
    "get_head",
    "gradcam",
    "load_animals",
    "load_checkpoint",
    "load_imagefolder",
    "load_model_state",
    "load_pretrained",
    "load_scenes",
    "load_splits",
    "lr_find",
    "make_generator",
    "make_loaders",
    "mean_iou",
    "param_groups",
    "plot_confusion_matrix",
    "plot_history",
    "plot_top_losses",
    "predict",
    "replace_head",
    "roc_auc",
    "sample_photos",
    "save_checkpoint",
    "seed_everything",
    "segment",
    "segmentation_head",
    "sensitivity_specificity",
    "show_gradcam",
    "show_images",
    "show_scenes",
    "stratified_split",
    "to_displayable",
    "top_losses",
    "train_one_epoch",
    "trainable_names",
    "transforms_for",
    "unfreeze",
    "write_imagefolder",
]
