"""DDP on CPU with gloo: two processes run the same fit; both must end with identical weights."""
from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(rank: int, world: int, port: int, out: str) -> None:
    from course_utils.train import TensorLoader, fit
    from torch import nn

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (64, 3, 8, 8), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 3, (64,), generator=g)
    x = x // 3  # dark images whose class's colour channel is bright: something to learn in 3 epochs
    x[torch.arange(64), y] += 150
    train = TensorLoader(x, y, 8, augment=True, seed=0)
    torch.manual_seed(rank)  # different initial weights per rank: DDP must broadcast rank 0's
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(144, 3))
    first = [p.detach().clone() for p in model.parameters()]
    h = fit(model, train, TensorLoader(x, y, 32, shuffle=False), epochs=3, lr=0.1, device="cpu", quiet=True,
            seed=0)
    # a DataLoader gets a DistributedSampler: each rank sees its half, and the weights stay in sync
    ds = torch.utils.data.TensorDataset(x.float() / 255, y)
    dl = torch.utils.data.DataLoader(ds, batch_size=8, shuffle=True)
    seen = []
    model2 = nn.Sequential(nn.Flatten(), nn.Linear(192, 3))
    model2.register_forward_pre_hook(lambda m, i: seen.append(len(i[0])))
    fit(model2, dl, epochs=1, lr=0.1, device="cpu", quiet=True, seed=0)
    torch.save({"state": model.state_dict(), "first": first, "batches": len(train), "history": h.rows,
                "world": h.config["world_size"], "state2": model2.state_dict(), "seen2": sum(seen)},
               f"{out}/rank{rank}.pt")
    dist.destroy_process_group()


def test_two_gloo_processes_end_with_identical_weights(tmp_path):
    mp.spawn(_worker, args=(2, _free_port(), str(tmp_path)), nprocs=2, join=True)
    r0, r1 = (torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in (0, 1))
    assert r0["world"] == r1["world"] == 2
    assert r0["batches"] == r1["batches"] == 4  # each rank trains on its half: 32 images, batch 8
    for k, v in r0["state"].items():
        if k.endswith("running_mean") or k.endswith("running_var"):
            continue  # BatchNorm statistics are per rank (plain DDP does not sync them)
        assert torch.equal(v, r1["state"][k]), k
    assert not all(torch.equal(a, b) for a, b in zip(r0["first"], r1["first"]))  # they started apart
    # and trained: on its own training images, loss well below chance (ln 3 = 1.10) and accuracy above 1/3
    assert r0["history"][-1]["val_loss"] < math.log(3) - 0.5 and r0["history"][-1]["val_acc"] > 0.8  # ~0.05, 1.0
    assert r0["history"][-1]["train_loss"] == r1["history"][-1]["train_loss"]  # loss averaged over ranks
    assert r0["seen2"] == r1["seen2"] == 32  # DataLoader sharded by a DistributedSampler
    assert all(torch.equal(v, r1["state2"][k]) for k, v in r0["state2"].items())


def test_torchrun_command_line(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "course_utils.train", "--n-train", "256", "--epochs", "1", "--batch-size", "32", "--quiet",
           "--checkpoint-dir", str(tmp_path)]
    res = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "world size 2, weights identical on all ranks: True" in res.stdout
    state = torch.load(tmp_path / "last.pt", weights_only=False)
    assert state["config"]["world_size"] == 2 and state["epoch"] == 0


def test_course_train_subcommand_shares_the_torchrun_options():
    from course_utils.machinery.cli import build_parser

    args = build_parser().parse_args(["train", "--epochs", "3", "--ema", "0.99", "--channels-last"])
    assert (args.epochs, args.ema, args.channels_last, args.data) == (3, 0.99, True, "synthetic")
