"""The same `fit` on N processes: PyTorch DistributedDataParallel (DDP), launched by torchrun.

`torchrun --nproc_per_node=N script.py` starts N copies of a script and tells each one its RANK,
LOCAL_RANK and WORLD_SIZE. `tl.fit` then joins the process group (gloo on CPU, nccl on CUDA),
wraps the model in DDP (gradients averaged over the processes in every backward), gives each
process its own share of the data (DistributedSampler) and adds the metric sums of all processes,
so every process holds the global History. Only rank 0 prints and saves. Notebook 09.

Example (`torchrun --nproc_per_node=2 train.py`, where train.py is any single-process script;
not run as a doctest, which is one process):
    >>> history = tl.fit(model, loaders["train"], loaders["val"], epochs=3)  # doctest: +SKIP
"""

from __future__ import annotations

import atexit
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler, RandomSampler, SequentialSampler

TORCHRUN_VARIABLES = ("RANK", "LOCAL_RANK", "WORLD_SIZE")
# torch 2.4's gloo can hang in destroy_process_group as the processes exit (pytorch/pytorch#75097):
# lesson 09's 2-process script hung there in 4 of 61 runs (with or without a barrier first), in
# 0 of 45 without it, and in 0 of 13 on torch 2.14. There `teardown` leaves the group to the exit.
GLOO_DESTROY_HANGS = torch.__version__ < (2, 5)


def launched() -> bool:
    """True in a process started by torchrun (it sets RANK, LOCAL_RANK and WORLD_SIZE).

    Example:
        >>> launched()  # True under torchrun
        False
    """
    return all(name in os.environ for name in TORCHRUN_VARIABLES)


def active() -> bool:
    """True once a process group is running: `fit` then trains with DDP.

    Example:
        >>> active()  # True once fit (or setup) joined torchrun's process group
        False
    """
    return dist.is_available() and dist.is_initialized()


def world_size() -> int:
    """Number of processes training together (1 without torchrun).

    Example:
        >>> batch_size = 64 // world_size()  # keep the global batch at 64
        >>> batch_size  # 32 under torchrun --nproc_per_node=2
        64
    """
    return dist.get_world_size() if active() else 1


def rank() -> int:
    """This process's number, 0 to world_size - 1 (0 without torchrun).

    Example:
        >>> print(f"process {rank()} of {world_size()}")
        process 0 of 1
    """
    return dist.get_rank() if active() else 0


def is_main() -> bool:
    """True on rank 0, the one process that prints, shows progress and writes files.

    Example:
        >>> if is_main(): path = tl.save_checkpoint("model.pt", model)  # one process writes
        >>> is_main()  # without torchrun the one process is the main one
        True
    """
    return rank() == 0


def setup(device: torch.device) -> torch.device:
    """Join torchrun's process group (once) and return this process's device.

    Without torchrun nothing happens and `device` comes back unchanged. On CUDA each process
    takes its own GPU, cuda:LOCAL_RANK; the backend is nccl on CUDA, gloo on the CPU.

    Example:
        >>> setup(torch.device("cpu"))  # unchanged; cuda:1 in the 2nd process of a 2-GPU node
        device(type='cpu')
    """
    if not launched():
        return device
    if device.type == "mps":
        raise ValueError("DDP does not run on Apple MPS: set TLCOURSE_DEVICE=cpu under torchrun")
    if device.type == "cuda":
        local_rank = int(os.environ["LOCAL_RANK"])
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} CUDA device(s): "
                f"use torchrun --nproc_per_node={torch.cuda.device_count()} or fewer"
            )
        device = torch.device("cuda", local_rank)  # one GPU per process
        torch.cuda.set_device(device)
    if not active():
        # env:// rendezvous: MASTER_ADDR/MASTER_PORT come from torchrun; blocks until all
        # WORLD_SIZE processes have joined.
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        atexit.register(teardown)  # a clean exit even if the script never calls teardown()
    return device


def teardown() -> None:
    """Leave the process group (torchrun then sees a clean exit). Safe to call twice.

    On torch 2.4 with gloo the group is left to the process exit (GLOO_DESTROY_HANGS).

    Example:
        >>> teardown()  # at the end of a torchrun script
    """
    if active() and not (GLOO_DESTROY_HANGS and dist.get_backend() == "gloo"):
        dist.destroy_process_group()


def prepare(
    model: nn.Module,
    device: torch.device,
    train_loader: DataLoader,
    val_loader: DataLoader | None,
) -> tuple[nn.Module, DataLoader, DataLoader | None]:
    """What `fit` trains with: (model, train_loader, val_loader), unchanged in one process.

    In a process group: the model (already on `device`) wrapped in DDP, which shares its
    parameters, and both loaders rebuilt so that each process reads its own share of the data.

    Example:
        >>> train, val = loaders["train"], loaders["val"]
        >>> train_model, train_loader, val_loader = prepare(model, device, train, val)
        >>> train_model is model, train_loader is train  # one process: all unchanged
        (True, True)
    """
    if not active():
        return model, train_loader, val_loader
    if not isinstance(model, DistributedDataParallel):
        # DDP broadcasts rank 0's weights now, then all-reduces gradients in every backward.
        model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None
        )
    val_loader = shard_loader(val_loader) if val_loader is not None else None
    return model, shard_loader(train_loader), val_loader


def shard_loader(loader: DataLoader) -> DataLoader:
    """The same loader (batch size, workers, collate, pinning) reading this process's share.

    One step then sees world_size × batch_size samples in all. DistributedSampler shuffles with
    seed + epoch (call `set_epoch`) and repeats a few samples so every process gets as many.

    Example (under torchrun only, not run as a doctest: DistributedSampler asks the process
    group for the rank):
        >>> shard_loader(loaders["train"]).sampler  # doctest: +SKIP
        <torch.utils.data.distributed.DistributedSampler object at 0x...>
    """
    if isinstance(loader.sampler, DistributedSampler):
        return loader  # already sharded by the caller
    if loader.batch_size is None or type(loader.sampler) not in (RandomSampler, SequentialSampler):
        used = type(loader.batch_sampler if loader.batch_size is None else loader.sampler)
        raise ValueError(
            f"fit under torchrun splits the data with DistributedSampler, but this loader "
            f"uses {used.__name__}: build it with batch_size and shuffle=True/False (for "
            f"class imbalance pass loss_fn=nn.CrossEntropyLoss(weight=tl.class_weights(...)))"
        )
    sampler = DistributedSampler(
        loader.dataset,
        shuffle=isinstance(loader.sampler, RandomSampler),
        seed=loader.generator.initial_seed() if loader.generator is not None else 0,
    )
    return DataLoader(
        loader.dataset,
        batch_size=loader.batch_size,
        sampler=sampler,
        num_workers=loader.num_workers,
        collate_fn=loader.collate_fn,
        pin_memory=loader.pin_memory,
        drop_last=loader.drop_last,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor,
        persistent_workers=loader.persistent_workers,
    )


def set_epoch(loader: DataLoader, epoch: int) -> None:
    """Give a DistributedSampler a new shuffle each epoch (it shuffles with seed + epoch).

    Example:
        >>> set_epoch(loaders["train"], 2)  # before each epoch: a new shuffle (DDP only)
    """
    if isinstance(getattr(loader, "sampler", None), DistributedSampler):
        loader.sampler.set_epoch(epoch)


def global_sums(loader: DataLoader, *sums: float) -> tuple[float, ...]:
    """Each sum added over all processes when `loader` is sharded; unchanged otherwise.

    Metrics are sums (loss × n, correct, seen), so the global mean is the sum of sums divided
    by the global count: the same number one process would compute on all the data.

    Example:
        >>> total_loss, correct, seen = global_sums(loader, 12.5, 30, 32)
        >>> total_loss, correct, seen  # one process: unchanged
        (12.5, 30, 32)
    """
    if not (active() and isinstance(getattr(loader, "sampler", None), DistributedSampler)):
        return sums
    on_gpu = dist.get_backend() == "nccl"  # nccl reduces CUDA tensors only
    device = torch.device("cuda", torch.cuda.current_device()) if on_gpu else torch.device("cpu")
    totals = torch.tensor(sums, dtype=torch.float64, device=device)  # (len(sums),)
    dist.all_reduce(totals, op=dist.ReduceOp.SUM)
    return tuple(totals.tolist())
