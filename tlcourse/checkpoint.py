"""Save and load checkpoints safely: atomic writes, `weights_only=True` loads, clear shape errors.

Notebook 07 and `tl.fit(checkpoint=..., resume_from=...)`. A checkpoint is a plain dict of
tensors and numbers (model state, optimizer, epoch, class names, ...), never pickled code.

Example:
    >>> path = save_checkpoint("model.pt", model, classes=["Cat", "Dog"], image_size=96)
    >>> info = load_checkpoint(path, model)   # weights loaded, returns the whole dict
    >>> info["classes"], info["image_size"]
    (['Cat', 'Dog'], 96)
"""

from __future__ import annotations

import os
import pickle
import random
import re
import zipfile
from dataclasses import asdict
from pathlib import Path

import torch
from torch import nn

from tlcourse import distributed


def save_checkpoint(path: str | Path, model: nn.Module | None = None, **extra) -> Path:
    """Write {"model": state_dict, **extra} atomically: a crash mid-write keeps the old file.

    Example:
        >>> save_checkpoint("run/model.pt", model, classes=classes, image_size=96).is_file()
        True
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = ({"model": model.state_dict()} if model is not None else {}) | extra
    temporary = path.with_name(path.name + ".tmp")
    try:
        torch.save(payload, temporary)
        os.replace(temporary, path)  # atomic on POSIX and Windows: old file or new file, never half
    finally:
        temporary.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, model: nn.Module | None = None) -> dict:
    """Load a checkpoint dict with `weights_only=True` (refuses pickled code) onto the CPU.

    If `model` is given, its weights are loaded from the "model" entry with shapes checked.

    Example:
        >>> path = save_checkpoint("run/model.pt", model, classes=["Cat", "Dog"])
        >>> info = load_checkpoint(path, model); info["classes"]
        ['Cat', 'Dog']
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: check the path (cwd is {Path.cwd()})")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        raise ValueError(f"{path} is not a PyTorch checkpoint (not a torch.save archive)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path} was refused by weights_only=True: it contains Python objects, "
            f"not just tensors ({_blocked_global(error)}). Only load files you trust."
        ) from None
    except (RuntimeError, EOFError, OSError) as error:
        raise ValueError(f"{path} is not a PyTorch checkpoint (or is truncated): {error}") from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path} holds a {type(checkpoint).__name__}, not a checkpoint dict")
    if model is not None:
        if "model" not in checkpoint:
            raise ValueError(f"{path} has no 'model' entry; keys: {sorted(checkpoint)}")
        load_model_state(model, checkpoint["model"])
    return checkpoint


def _blocked_global(error: Exception) -> str:
    """What torch's long message says was blocked, e.g. 'GLOBAL builtins.print' (torch >= 2.4
    writes "Unsupported global: GLOBAL builtins.print ...", torch 2.3 "Unsupported class
    __builtin__.print")."""
    found = re.search(r"Unsupported (?:global: GLOBAL|class) ([\w.]+)", str(error))
    if found:
        return f"GLOBAL {found[1]}"
    return str(error).splitlines()[0].split(". Please")[0][:120]


def load_model_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """`model.load_state_dict(state)` that explains a mismatch (architecture, classes).

    Example:
        >>> path = save_checkpoint("model.pt", model)
        >>> load_model_state(model, torch.load(path, weights_only=True)["model"])
    """
    current = model.state_dict()
    missing = [k for k in current if k not in state]
    unexpected = [k for k in state if k not in current]
    shapes = [
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(v.shape)}"
        for k, v in current.items()
        if k in state and state[k].shape != v.shape
    ]
    problems = []
    if missing or unexpected:
        problems.append(
            f"{len(missing)} keys missing (e.g. {missing[:3]}), {len(unexpected)} "
            f"unexpected (e.g. {unexpected[:3]}): a different architecture? Build the "
            "model the checkpoint was saved from"
        )
    if shapes:
        problems.append(
            "shapes differ: " + "; ".join(shapes[:4]) + " (a different num_classes? "
            "call replace_head(model, num_classes=...) before loading)"
        )
    if problems:
        raise ValueError(f"checkpoint does not fit {type(model).__name__}: " + " ".join(problems))
    model.load_state_dict(state)


def rng_state(generator: torch.Generator | None = None) -> dict:
    """Every random state a resumed run needs to continue exactly (torch, cuda, python, loader).

    Example:
        >>> state = rng_state(loader.generator)  # saved with every fit checkpoint
    """
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    if generator is not None:  # the DataLoader's shuffling generator
        state["loader"] = generator.get_state()
    return state


def restore_rng_state(state: dict, generator: torch.Generator | None = None) -> None:
    """Undo `rng_state`: the next random numbers are those the saved run would have drawn.

    Example:
        >>> state = rng_state(loader.generator); first = torch.rand(2)
        >>> restore_rng_state(state, loader.generator)  # the same shuffles as before
        >>> torch.equal(torch.rand(2), first)
        True
    """
    torch.set_rng_state(state["torch"])
    random.setstate(tuple(tuple(x) if isinstance(x, list) else x for x in state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "loader" in state and generator is not None:
        generator.set_state(state["loader"])


def state_on_cpu(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's weights on the CPU: later training steps do not change it.

    Example:
        >>> best = state_on_cpu(model)  # ... more epochs change the model ...
        >>> model.load_state_dict(best)  # back to the best epoch
        <All keys matched successfully>
    """
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


def save_fit_state(
    path: str | Path,
    model: nn.Module,
    optimizer,
    scheduler,
    history,
    best_score,
    best_state,
    loader,
) -> None:
    """Everything `fit(resume_from=path)` needs to continue as if never stopped (rank 0 writes).

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 2))  # any model
        >>> train = loaders["train"]  # 64 px images
        >>> history = tl.fit(model, train, epochs=1, checkpoint="run.pt", progress=False)
        >>> sorted(torch.load("run.pt", weights_only=True))  # fit calls this every epoch
        ['best_score', 'best_state', 'epoch', 'history', 'model', 'optimizer', 'rng', 'scheduler']
    """
    if not distributed.is_main():  # DDP: one process writes the file
        return
    save_checkpoint(
        path,
        model,
        optimizer=optimizer.state_dict(),
        scheduler=scheduler.state_dict() if scheduler else None,
        epoch=len(history.train_loss),
        history=asdict(history),
        best_score=best_score,
        best_state=best_state,
        rng=rng_state(loader.generator),
    )


def resume_fit(path: str | Path, model: nn.Module, optimizer, scheduler, loader) -> dict:
    """Load what `save_fit_state` wrote: weights, optimizer, scheduler and random states restored;
    returns the checkpoint dict ("history", "best_score", "best_state", "epoch").

    Example:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(3 * 64 * 64, 2))  # any model
        >>> train = loaders["train"]  # 64 px images
        >>> history = tl.fit(model, train, epochs=1, checkpoint="run.pt", progress=False)
        >>> history = tl.fit(model, train, epochs=2, resume_from="run.pt", progress=False)
        >>> len(history.train_loss)  # epoch 1 read from run.pt (fit calls this once), 2 trained
        2
    """
    state = load_checkpoint(path, model)
    optimizer.load_state_dict(state["optimizer"])
    if scheduler is not None and state.get("scheduler"):
        scheduler.load_state_dict(state["scheduler"])
    restore_rng_state(state["rng"], loader.generator)
    return state
