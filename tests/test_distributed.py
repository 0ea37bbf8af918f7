"""DDP: 2 gloo processes launched by torchrun train exactly like 1 process with the combined batch.

This file is also the script torchrun runs (see `__main__` at the bottom), so the code under
test is a plain single-process `tl.fit` call, launched the way a learner launches it.
"""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
from conftest import blobs
from torch.utils.data import DataLoader

import tlcourse as tl
from tlcourse import distributed
from tlcourse.device import seed_worker

pytestmark = pytest.mark.slow  # kernels, trainings or subprocesses: not in `make check`

BATCH = 8  # per process; the one-process reference uses 2 × BATCH
EPOCHS = 3


def train_head(batch_size: int, checkpoint: Path | None = None):
    """The script both runs execute: a linear head on blobs, SGD with momentum, no shuffling."""
    tl.seed_everything(0)
    head = torch.nn.Linear(8, 3)
    train = DataLoader(blobs(96), batch_size=batch_size)
    val = DataLoader(blobs(48, seed=1), batch_size=batch_size)
    optimizer = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)
    history = tl.fit(
        head,
        train,
        val,
        epochs=EPOCHS,
        optimizer=optimizer,
        device="cpu",
        restore_best=False,  # compare the weights after every step, not the best epoch's
        checkpoint=checkpoint,
    )
    return head, history


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def torchrun(*args: str, processes: int = 2) -> subprocess.CompletedProcess:
    """`torchrun --nproc_per_node=2 ...` on a free localhost port, CPU only, 1 thread each."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={processes}"]
    command += ["--master-addr=127.0.0.1", f"--master-port={free_port()}", *args]
    env = os.environ | {"TLCOURSE_DEVICE": "cpu", "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def test_two_processes_equal_one_process_with_the_combined_batch(tmp_path, capsys):
    result = torchrun(__file__, str(tmp_path))
    reference, expected = train_head(2 * BATCH)  # 96 samples, 6 steps of 16 per epoch
    capsys.readouterr()
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    for name, weight in reference.state_dict().items():
        # DDP averages the two processes' gradients (means over 8 samples) = the gradient of the
        # mean over 16: only the float summation order differs (~1e-7 relative per step).
        assert torch.equal(ranks[0]["state"][name], ranks[1]["state"][name])  # same all-reduce
        assert torch.allclose(ranks[0]["state"][name], weight, rtol=1e-5, atol=1e-6)
    for rank in ranks:  # global metrics: every process holds the History of all the data
        assert rank["world_size"] == 2
        assert rank["train_loss"] == pytest.approx(expected.train_loss, rel=1e-6)
        assert rank["val_accuracy"] == expected.val_accuracy
    tl.seed_everything(0)
    assert reference.weight.sub(torch.nn.Linear(8, 3).weight).abs().max() > 0.1  # it trained
    # Rank 0 alone prints the epoch lines and writes the checkpoint.
    assert result.stdout.count(f"epoch   1/{EPOCHS}") == 1, result.stdout
    assert tl.load_checkpoint(tmp_path / "ckpt.pt")["epoch"] == EPOCHS


def test_demo_under_torchrun_says_so_and_prints_one_table(tmp_path):
    out = tmp_path / "demo"
    args = ["--epochs", "3", "--finetune-epochs", "1", "--image-size", "32", "--out", str(out)]
    result = torchrun("-m", "tlcourse", "demo", *args)
    assert result.stdout.count("DDP world size 2") == 1, result.stdout
    assert result.stdout.count("test acc") == 1  # one table, from rank 0
    results = json.loads((out / "results.json").read_text())
    assert results["world_size"] == 2 and results["finetuned_accuracy"] > 0.5


@pytest.fixture
def group_of_one(tmp_path):
    """A real gloo process group with this pytest process as its only member."""
    dist.init_process_group(
        "gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1
    )
    yield
    dist.destroy_process_group()  # not teardown(): on torch 2.4 that leaves gloo groups to the exit


def test_shard_loader_keeps_the_loader_settings(group_of_one):
    loader = tl.make_loaders({"train": blobs(20)}, batch_size=4, num_workers=2, seed=3)["train"]
    sharded = distributed.shard_loader(loader)
    assert isinstance(sharded.sampler, torch.utils.data.DistributedSampler)
    assert sharded.sampler.shuffle and sharded.sampler.seed == 3
    assert (sharded.batch_size, sharded.num_workers) == (4, 2)
    assert sharded.collate_fn is loader.collate_fn
    assert sharded.worker_init_fn is seed_worker
    assert distributed.global_sums(sharded, 1.5, 2, 3) == (1.5, 2.0, 3.0)  # one process: same


def test_a_weighted_sampler_is_a_clear_error_under_ddp(group_of_one):
    labels = [0] * 15 + [1] * 5
    data = torch.utils.data.TensorDataset(torch.zeros(20, 2), torch.tensor(labels))
    loader = DataLoader(data, batch_size=4, sampler=tl.balanced_sampler(labels))
    with pytest.raises(ValueError, match="WeightedRandomSampler.*class_weights"):
        distributed.shard_loader(loader)


def test_teardown_leaves_the_group_except_where_gloo_hangs_there(tmp_path):
    store = f"file://{tmp_path / 'store'}"
    dist.init_process_group("gloo", init_method=store, rank=0, world_size=1)
    distributed.teardown()
    distributed.teardown()  # safe twice
    assert dist.is_initialized() == distributed.GLOO_DESTROY_HANGS  # True on torch 2.4 only
    if dist.is_initialized():
        dist.destroy_process_group()


def test_without_torchrun_nothing_changes(monkeypatch):
    for name in distributed.TORCHRUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not distributed.launched() and not distributed.active()
    assert distributed.setup(torch.device("cpu")) == torch.device("cpu")
    assert (distributed.world_size(), distributed.rank(), distributed.is_main()) == (1, 0, True)


if __name__ == "__main__":  # one copy per process, started by torchrun in the first test above
    head, history = train_head(BATCH, checkpoint=Path(sys.argv[1]) / "ckpt.pt")
    torch.save(
        {
            "state": head.state_dict(),
            "train_loss": history.train_loss,
            "val_accuracy": history.val_accuracy,
            "world_size": distributed.world_size(),
        },
        Path(sys.argv[1]) / f"rank{distributed.rank()}.pt",
    )
