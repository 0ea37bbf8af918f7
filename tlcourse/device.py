"""Where to run (cuda > mps > cpu) and how to make runs repeat exactly (seeds, DataLoader workers).

Used by every notebook: `device = tl.get_device()` then `tl.seed_everything(0)`.
"""

from __future__ import annotations

import functools
import os
import random
from pathlib import Path

import numpy as np
import torch

DEVICE_ENV = "TLCOURSE_DEVICE"


def get_device(name: str | None = None) -> torch.device:
    """Pick the fastest available device: cuda > mps > cpu.

    Args:
        name: force a device ("cpu", "cuda", "cuda:1", "mps"); default: env `TLCOURSE_DEVICE`,
            else automatic.

    Example:
        >>> get_device("cpu")
        device(type='cpu')
    """
    requested = (name or os.environ.get(DEVICE_ENV, "")).strip().lower()
    if not requested or requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    source = f"{DEVICE_ENV}={requested}" if name is None else f"device={requested!r}"
    try:
        device = torch.device(requested)
    except RuntimeError:
        raise ValueError(
            f"{source}: unknown device; use one of cpu, cuda, cuda:N, mps, auto"
        ) from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{source}, but CUDA is not available on this machine: use cpu or auto")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ValueError(f"{source}, but only {torch.cuda.device_count()} CUDA device(s) exist")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{source}, but Apple MPS is not available on this machine: use cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        raise ValueError(f"{source}: the course supports cpu, cuda and mps")
    return device


@functools.lru_cache(maxsize=1)
def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware: x86 AVX512-BF16 or AMX-BF16.

    Elsewhere PyTorch emulates bf16 and it runs slower than fp32, so `precision="bf16"` only
    pays off where this is True (e.g. AMD Zen 4, Intel Cooper Lake and Sapphire Rapids on).
    ARM CPUs answer False: bf16 there is not measured by this course.

    Example:
        >>> native = cpu_has_native_bf16()  # True on an AMD EPYC (Zen 4), False on most laptops
        >>> precision = "bf16" if native else "fp32"
    """
    capabilities = getattr(torch.cpu, "get_capabilities", None)  # cpuinfo's flags (recent torch)
    if capabilities is not None:
        flags = capabilities()
        return bool(flags.get("avx512_bf16") or flags.get("amx_bf16"))
    try:  # older torch on Linux: the kernel's list of CPU flags
        words = set(Path("/proc/cpuinfo").read_text(encoding="utf-8").split())
    except OSError:
        return False
    return bool(words & {"avx512_bf16", "amx_bf16"})


def seed_everything(seed: int = 0) -> int:
    """Seed Python, NumPy and PyTorch (all devices). Returns the seed.

    Example:
        >>> seed_everything(0)
        0
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)  # also seeds every CUDA device
    return seed


def seed_worker(worker_id: int) -> None:
    """`worker_init_fn` for DataLoader: seed NumPy and `random` in each worker from torch's seed.

    torch already gives each worker `base_seed + worker_id`; NumPy and `random` would otherwise
    start identical (or OS-random) in every worker. Module-level so it pickles on Windows/macOS.

    Example:
        >>> loader = DataLoader(dataset, num_workers=2, worker_init_fn=seed_worker)
    """
    worker_seed = torch.initial_seed() % 2**32
    np.random.seed(worker_seed)
    random.seed(worker_seed)


def make_generator(seed: int = 0) -> torch.Generator:
    """A seeded CPU generator for DataLoader shuffling, so batch order repeats exactly.

    Example:
        >>> loader = DataLoader(dataset, shuffle=True, generator=make_generator(0),
        ...                     worker_init_fn=seed_worker, num_workers=2)
    """
    generator = torch.Generator()
    generator.manual_seed(seed)
    return generator


def place_model(model: torch.nn.Module, device: torch.device | str | None = None) -> torch.device:
    """The device `model` runs on: `device` if given (the model is moved there), else its own.

    A model whose weights are spread over several devices (say a new head made after
    `model.to("cuda")`) raises ValueError naming one weight per device, instead of PyTorch's
    "Expected all tensors to be on the same device" deep inside the forward pass.

    Example:
        >>> place_model(torch.nn.Linear(2, 2))
        device(type='cpu')
    """
    if device is not None:
        device = get_device(str(device))
        model.to(device)
        return device
    where: dict[torch.device, str] = {}
    for name, tensor in [*model.named_parameters(), *model.named_buffers()]:
        where.setdefault(tensor.device, name)
    if len(where) > 1:
        found = ", ".join(f"{name} on {place}" for place, name in where.items())
        raise ValueError(
            f"the model's weights are on {len(where)} devices ({found}): call "
            "model.to(device) after changing its layers, or pass device=..."
        )
    return next(iter(where), torch.device("cpu"))
