"""Feature caching and the fast frozen forward pass (notebooks 02 and 09, the demo, the grader).

With a frozen backbone every epoch would compute the same backbone outputs again; computing them
once (`extract_features`) makes each head epoch milliseconds instead of minutes. `FrozenForward`
runs that forward pass, and the ones in `tl.evaluate` and `tl.predict`, at the device's speed.

Example:
    >>> train_features = extract_features(model, loaders["train"])   # (N, 1280) + labels
    >>> head = get_head(model)[1]
    >>> fit(head, DataLoader(train_features, batch_size=64, shuffle=True), epochs=20)
"""

from __future__ import annotations

import copy
import warnings

import torch
import torchvision
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.fusion import fuse_conv_bn_eval
from torch.utils.data import DataLoader, TensorDataset

from tlcourse.device import cpu_has_native_bf16, place_model
from tlcourse.models import get_head

# autocast dtype of each precision, and where it runs (fp16 on a CPU or bf16 on mps: not offered)
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
SUPPORTED = {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "bf16", "fp16"), "mps": ("fp32", "fp16")}
# where the folded channels_last copy was measured faster: CPUs (benchmarks/extraction.py), CUDA
# (one GPU, 2.1x at 96 px, 1.4x at 224 px); mps not measured, so it runs the model as it is
FAST_LAYOUT_DEVICES = ("cpu", "cuda")
# Pairs outside an nn.Sequential whose conv output feeds only the BatchNorm, by the module's exact
# type (a subclass may change forward): torchvision's ResNets, the course's most used family.
NAMED_PAIRS = {
    torchvision.models.ResNet: (("conv1", "bn1"),),
    torchvision.models.resnet.BasicBlock: (("conv1", "bn1"), ("conv2", "bn2")),
    torchvision.models.resnet.Bottleneck: (("conv1", "bn1"), ("conv2", "bn2"), ("conv3", "bn3")),
}


class FrozenForward:
    """A model's forward pass for inference (no training) at the device's speed.

    Args:
        device: where it runs; the model must be there already (`place_model`).
        precision: "fp32" (default: exact), or an opt-in 16-bit autocast: "bf16" (CPUs with
            native bf16, see `cpu_has_native_bf16`; CUDA) or "fp16" (CUDA, MPS). Elsewhere
            "bf16" warns and runs fp32: emulated bf16 is slower than fp32.
        channels_last: True runs a copy of the model with each Conv2d + BatchNorm2d pair folded
            into one Conv2d and the weights stored channels_last (NHWC): the same function,
            outputs equal to the model's within float rounding, faster (Lite0: 1.5-2.4x on 2
            CPU cores, 1.4-2.2x on a GPU). The learner's model is not changed. False runs the
            model itself; None (default) picks True on cpu and cuda for a model with Conv2d
            layers and no hooks.
        keep: the dotted name of a BatchNorm2d not to fold (its input is being captured).

    Example:
        >>> forward = FrozenForward(model.eval(), torch.device("cpu"))
        >>> with torch.inference_mode():
        ...     logits = forward(images)  # model(images) within ~1e-5, faster
    """

    def __init__(
        self, model: nn.Module, device: torch.device | str, precision: str = "fp32",
        channels_last: bool | None = None, keep: str | None = None,
    ):  # fmt: skip
        self.device = torch.device(device)
        self.dtype = _autocast_dtype(precision, self.device)
        if channels_last is None:
            channels_last = fast_layout_helps(model, self.device)
        self.channels_last = channels_last
        self.model = _folded_copy(model, keep) if channels_last else model

    def __call__(self, inputs: torch.Tensor) -> torch.Tensor:
        """The model's output for a batch (B, C, H, W) or (B, F), moved to the device first."""
        inputs = inputs.to(self.device, non_blocking=True)
        if self.channels_last and inputs.ndim == 4:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        if self.dtype is None:
            return self.model(inputs)
        with torch.autocast(self.device.type, dtype=self.dtype):
            return self.model(inputs)


def fast_layout_helps(model: nn.Module, device: torch.device) -> bool:
    """Whether `FrozenForward(channels_last=None)` runs the folded channels_last copy.

    Yes on cpu and cuda for a model with a Conv2d; not for a model with forward hooks (a copy
    would run copies of them, and a hook that records into its own object would record nothing).

    Example:
        >>> fast_layout_helps(torchvision.models.resnet18(), torch.device("cpu"))
        True
    """
    modules = list(model.modules())
    hooked = any(m._forward_hooks or m._forward_pre_hooks for m in modules)
    has_conv = any(isinstance(m, nn.Conv2d) for m in modules)
    return device.type in FAST_LAYOUT_DEVICES and has_conv and not hooked


def extract_features(
    model: nn.Module, loader: DataLoader, layer: str | None = None, device=None, *,
    precision: str = "fp32", channels_last: bool | None = None,
) -> TensorDataset:  # fmt: skip
    """Inputs of `layer` (default: the head) for every sample of `loader`, as (features, label).

    Runs in eval mode (BatchNorm uses its running stats, dropout off) under `torch.no_grad`, not
    `inference_mode`, so the cached tensors can feed a trainable head. Features are float32,
    contiguous (NCHW) and on the CPU; the model comes back in its own mode and memory format.

    Args:
        layer: dotted module name whose input is cached, e.g. "features.7" to fine-tune the
            layers from there on; default the head found by `get_head`.
        precision, channels_last: see `FrozenForward`. The defaults give the model's features
            within float rounding (~1e-5), 1.5-2.4x faster on 2 CPU cores; precision="bf16" is
            faster still where the CPU has native bf16 (cosine similarity >= 0.99 to fp32).

    Example:
        >>> features = extract_features(model, loaders["train"])
        >>> x, y = features[0]  # x (1280,) for Lite0: what its final Linear layer receives
    """
    path = _layer_path(model, layer)
    forward = FrozenForward(model, place_model(model, device), precision, channels_last, path)
    captured: list[torch.Tensor] = []
    hook = forward.model.get_submodule(path).register_forward_pre_hook(  # (the copy's module)
        lambda _module, args: captured.append(
            args[0].detach().to("cpu", torch.float32, memory_format=torch.contiguous_format)
        )
    )
    was_training, labels = model.training, []
    try:
        model.eval()
        with torch.no_grad():
            for inputs, targets in loader:
                forward(inputs)
                labels.append(targets)
    finally:
        hook.remove()
        model.train(was_training)
    if not captured:
        raise ValueError(
            f"extract_features: layer {path!r} was never called (empty loader or unused layer)"
        )
    return TensorDataset(torch.cat(captured), torch.cat(labels))


def _layer_path(model: nn.Module, layer: str | None) -> str:
    """`layer`, or the head's name; a name the model does not have raises, listing its layers."""
    path = layer or get_head(model)[0]
    try:
        model.get_submodule(path)
    except AttributeError:
        names = ", ".join(name for name, _ in model.named_children())
        raise ValueError(
            f"extract_features: {type(model).__name__} has no layer {path!r}; top-level: {names}"
        ) from None
    return path


def _autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `precision` on `device` (None: plain fp32); unsupported raises."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r}: choose one of {', '.join(PRECISIONS)}")
    offered = SUPPORTED.get(device.type, ("fp32",))
    if precision not in offered:
        raise ValueError(
            f"precision={precision!r} is not offered on {device.type}: use one of "
            f"{', '.join(offered)} (fp16 is for GPUs; bf16 for CPUs with native bf16 and CUDA)"
        )
    if precision == "bf16" and device.type == "cpu" and not cpu_has_native_bf16():
        warnings.warn(
            "precision='bf16': this CPU has no native bf16 (AVX512-BF16 or AMX-BF16), where "
            "bf16 is emulated and slower than fp32; running fp32 instead",
            stacklevel=3,
        )
        return None
    return PRECISIONS[precision]


def _folded_copy(model: nn.Module, keep: str | None = None) -> nn.Module:
    """A copy of `model` in eval mode: Conv2d + BatchNorm2d pairs folded, weights NHWC.

    In eval mode BatchNorm is y = (x - mean) / sqrt(var + eps) * weight + bias: a per-channel
    scale and shift, which the convolution before it can apply itself (new weights and bias).
    Folded are the pairs inside an nn.Sequential, where the conv's output feeds the BatchNorm
    and nothing else (torchvision's Conv2dNormActivation, the Lite blocks, ResNet downsamples;
    a subclass may add a step before its children run, as Lite's stride-2 padding does), and
    the named pairs of the ResNet blocks (NAMED_PAIRS).
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


def _foldable(conv: nn.Module, norm: nn.Module) -> bool:
    return (
        type(conv) is nn.Conv2d  # not a subclass with its own forward
        and type(norm) is nn.BatchNorm2d
        and norm.running_mean is not None  # track_running_stats=False: batch statistics
        and not parametrize.is_parametrized(conv)
    )
