"""Inference at the device's speed: the forward pass of `evaluate`, `predict`, `extract_features`.

Without training, a BatchNorm2d in eval mode is a fixed per-channel scale and shift, so the
Conv2d before it can apply it itself: a copy of the model with each such pair folded into one
convolution, weights stored channels_last (NHWC), computes the same function faster (Lite0:
1.5-2.4x on 2 CPU cores). Making the copy costs time, so it pays only on enough samples; one
function decides, `fold_pays`, with one measured threshold, `FOLD_FROM`.

Two options, each with one meaning:
- `dtype`: "fp32" (default, exact) or an opt-in 16-bit autocast, "bf16" or "fp16".
- `fold_batchnorm`: True runs the folded copy (outputs equal to the model's within float
  rounding, not bit for bit), False the model as it is, None lets `fold_pays` decide.

Example:
    >>> forward = FrozenForward(model.eval(), "cpu", fold_batchnorm=True)
    >>> with torch.inference_mode():
    ...     torch.allclose(forward(images), model(images), atol=1e-4)
    True
"""

from __future__ import annotations

import copy
import warnings

import torch
import torchvision
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.fusion import fuse_conv_bn_eval

from tlcourse.device import cpu_has_native_bf16
from tlcourse.guards import renamed_keywords

# autocast dtype of each name, and where it runs (fp16 on a CPU or bf16 on mps: not offered)
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
SUPPORTED = {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "bf16", "fp16"), "mps": ("fp32", "fp16")}
# Where the folded copy was measured faster: CPUs (benchmarks/extraction.py), CUDA (one GPU,
# 2.1x at 96 px, 1.4x at 224 px); mps not measured, so there the model runs as it is.
FOLD_DEVICES = ("cpu", "cuda")
# From this many samples the copy pays for itself. Measured on 2 CPU cores, folded copy vs the
# model, whole run including the copy: ResNet18 at 64 px 0.61x for 32 images, 0.91x for 128,
# 1.27x for 512; Lite0 at 96 px 1.15x, 1.59x, 1.86x. Below it the model runs as it is.
FOLD_FROM = 256
# Pairs outside an nn.Sequential whose conv output feeds only the BatchNorm, by the module's exact
# type (a subclass may change forward): torchvision's ResNets, the course's most used family.
NAMED_PAIRS = {
    torchvision.models.ResNet: (("conv1", "bn1"),),
    torchvision.models.resnet.BasicBlock: (("conv1", "bn1"), ("conv2", "bn2")),
    torchvision.models.resnet.Bottleneck: (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
}
# the keywords these options had before: old -> (new, what the old name means elsewhere)
RENAMED = {
    "precision": ("dtype", "`precision` was also train_one_epoch's training-step options"),
    "channels_last": ("fold_batchnorm", "`channels_last` is fit's memory layout for training"),
}


def fold_pays(model: nn.Module, device: torch.device | str, samples: float) -> bool:
    """Whether `fold_batchnorm=None` runs the folded copy: the one place that decides.

    Yes for `samples` >= FOLD_FROM on cpu or cuda, for a model with a Conv2d and no forward
    hooks (a copy would run copies of them, and a hook that records into its own object would
    record nothing).

    Example:
        >>> resnet = torchvision.models.resnet18()
        >>> fold_pays(resnet, "cpu", samples=512), fold_pays(resnet, "cpu", samples=32)
        (True, False)
    """
    modules = list(model.modules())
    hooked = any(m._forward_hooks or m._forward_pre_hooks for m in modules)
    has_conv = any(isinstance(m, nn.Conv2d) for m in modules)
    on_measured_device = torch.device(device).type in FOLD_DEVICES
    return samples >= FOLD_FROM and on_measured_device and has_conv and not hooked


class FrozenForward:
    """A model's forward pass for inference (no training), as it is or through a folded copy.

    Args:
        device: where it runs; the model must be there already (`place_model`).
        dtype: "fp32" (default: exact), or an opt-in 16-bit autocast: "bf16" (CPUs with native
            bf16, see `cpu_has_native_bf16`; CUDA) or "fp16" (CUDA, MPS). Elsewhere "bf16"
            warns and runs fp32: emulated bf16 is slower than fp32.
        fold_batchnorm: True runs a copy with each Conv2d + BatchNorm2d pair folded into one
            Conv2d, weights NHWC; the learner's model is not changed. False (default) runs the
            model itself. None decides with `fold_pays(model, device, samples)`.
        samples: how many samples will pass through (for None); unknown counts as many.
        keep: the dotted name of a BatchNorm2d not to fold (its input is being captured).

    Example:
        >>> forward = FrozenForward(model.eval(), "cpu")  # the model as it is
        >>> forward.folded
        False
    """

    def __init__(
        self, model: nn.Module, device: torch.device | str, dtype: str = "fp32",
        fold_batchnorm: bool | None = False, samples: float = float("inf"),
        keep: str | None = None,
    ):  # fmt: skip
        self.device = torch.device(device)
        self.autocast_dtype = autocast_dtype(dtype, self.device)
        if fold_batchnorm is None:
            fold_batchnorm = fold_pays(model, self.device, samples)
        self.folded = fold_batchnorm
        self.model = folded_copy(model, keep) if fold_batchnorm else model

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """The model's output for a batch (B, C, H, W) or (B, F), moved to the device first."""
        inputs = inputs.to(self.device, non_blocking=True)
        if self.folded and inputs.ndim == 4:  # the copy's weights are NHWC: so are its inputs
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if self.autocast_dtype is None:
            return self.model(inputs)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype):
            return self.model(inputs)


def autocast_dtype(dtype: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for "fp32"/"bf16"/"fp16" on `device` (None: plain fp32).

    Example:
        >>> autocast_dtype("fp32", torch.device("cpu")) is None
        True
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r}: choose one of {', '.join(DTYPES)}")
    offered = SUPPORTED.get(device.type, ("fp32",))
    if dtype not in offered:
        raise ValueError(
            f"dtype={dtype!r} is not offered on {device.type}: use one of "
            f"{', '.join(offered)} (fp16 is for GPUs; bf16 for CPUs with native bf16 and CUDA)"
        )
    if dtype == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        warnings.warn(
            "dtype='bf16': this CPU has no native bf16 (AVX512-BF16 or AMX-BF16), where "
            "bf16 is emulated and slower than fp32; running fp32 instead",
            stacklevel=3,
        )
        return None
    return DTYPES[dtype]


def folded_copy(model: nn.Module, keep: str | None = None) -> nn.Module:
    """A copy of `model` in eval mode: Conv2d + BatchNorm2d pairs folded, weights NHWC.

    In eval mode BatchNorm is y = (x - mean) / sqrt(var + eps) * weight + bias: a per-channel
    scale and shift, which the convolution before it can apply itself (new weights and bias).
    Folded are the pairs inside an nn.Sequential, where the conv's output feeds the BatchNorm
    and nothing else (torchvision's Conv2dNormActivation, the Lite blocks, ResNet downsamples;
    a subclass may add a step before its children run, as Lite's stride-2 padding does), and
    the named pairs of the ResNet blocks (NAMED_PAIRS).

    Example:
        >>> folded = folded_copy(torchvision.models.resnet18())
        >>> any(isinstance(m, nn.BatchNorm2d) for m in folded.modules())
        False
    """
    folded = copy.deepcopy(model).eval()
    with torch.no_grad():
        for name, module in list(folded.named_modules()):  # (listed before any change)
            prefix = f"{name}." if name else ""
            pairs = list(NAMED_PAIRS.get(type(module), ()))
            if isinstance(module, nn.Sequential):
                pairs += [(str(i), str(i + 1)) for i in range(len(module) - 1)]
            for conv_name, norm_name in pairs:
                conv, norm = getattr(module, conv_name), getattr(module, norm_name)
                if _foldable(conv, norm) and prefix + norm_name != keep:
                    module.register_module(conv_name, fuse_conv_bn_eval(conv, norm))
                    module.register_module(norm_name, nn.Identity())  # the conv does its work
    return folded.to(memory_format=torch.channels_last)


def loader_samples(loader) -> float:
    """How many samples `loader` yields: len(dataset), or infinity for a stream without one.

    Example:
        >>> data = torch.utils.data.TensorDataset(torch.zeros(300, 2))
        >>> loader_samples(torch.utils.data.DataLoader(data, batch_size=64))
        300
    """
    try:
        return len(loader.dataset)
    except TypeError:  # an IterableDataset without a length: assume a big one
        return float("inf")


def renamed_options(function: str, old: dict, dtype: str, fold: bool | None):
    """(dtype, fold_batchnorm), taking the old keywords `precision=`/`channels_last=` with a
    FutureWarning that names the new one; any other unknown keyword is a TypeError.

    Example:
        >>> renamed_options("evaluate", {}, "fp32", None)
        ('fp32', None)
    """
    new = renamed_keywords(function, old, RENAMED, stacklevel=4)  # (warns at the caller's line)
    return new.get("dtype", dtype), new.get("fold_batchnorm", fold)


def _foldable(conv: nn.Module, norm: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d  # not a subclass with its own forward
        and type(norm) is nn.BatchNorm2d
        and norm.running_mean is not None  # track_running_stats=False: batch statistics
        and not parametrize.is_parametrized(conv)
    )
