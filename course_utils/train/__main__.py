"""Train from the command line, on one device or several: ``python -m course_utils.train`` or
``torchrun --nproc_per_node=N -m course_utils.train``.

    torchrun --nproc_per_node=2 -m course_utils.train --data cifar10 --model small_cnn --epochs 10 --lr 0.2

Every process runs this file; ``ddp.init()`` joins the group torchrun created (gloo on CPU, NCCL on
GPUs) and ``fit`` does the rest. ``--data synthetic`` makes random CIFAR-shaped data (no download).
"""
from __future__ import annotations

import argparse

import torch

__all__ = ["build_parser", "main", "run", "synthetic"]


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    p = parser or argparse.ArgumentParser(prog="python -m course_utils.train", description=__doc__.split("\n")[0])
    a = p.add_argument
    a("--data", default="synthetic", help="dataset name for course_utils.data.load_tensors, or 'synthetic' "
                                          "(default: synthetic)")
    a("--model", default="small_cnn", help="small_cnn (arch.simple_cnn with BatchNorm and global pooling, "
                                           "32/64/128 channels) or a torchvision model name (default: small_cnn)")
    a("--epochs", type=int, default=2, help="epochs (default: 2)")
    a("--lr", type=float, default=0.2, help="peak learning rate (default: 0.2)")
    a("--batch-size", type=int, default=256, help="batch size per process (default: 256)")
    a("--optimizer", default="sgd", help="sgd or adamw (default: sgd)")
    a("--schedule", default="onecycle", help="onecycle, cosine or constant (default: onecycle)")
    a("--amp", default="auto", help="auto, on, off, bf16 or fp16 (default: auto = on for GPUs)")
    a("--channels-last", action="store_true", help="NHWC memory layout (default: off)")
    a("--compile", action="store_true", help="torch.compile the model (default: off)")
    a("--label-smoothing", type=float, default=0.0, help="label smoothing (default: 0)")
    a("--ema", type=float, default=None, help="EMA decay of the weights, e.g. 0.999 (default: none)")
    a("--no-augment", action="store_true", help="switch off crop+flip augmentation (default: on)")
    a("--checkpoint-dir", default=None, help="where last.pt and best.pt go (default: none)")
    a("--resume", action="store_true", help="continue from checkpoint-dir/last.pt (default: off)")
    a("--seed", type=int, default=0, help="seed (default: 0)")
    a("--device", default=None, help="cpu, cuda ... (default: the process's GPU, else cpu)")
    a("--profile", default="auto", help="data profile for load_tensors (default: auto)")
    a("--n-train", type=int, default=2048, help="images in the synthetic training set (default: 2048)")
    a("--quiet", action="store_true", help="no progress bars (default: show them)")
    return p


def synthetic(n: int, num_classes: int = 10, size: int = 32, seed: int = 0):
    """Random uint8 N×3×size×size images with a class-dependent colour, so there is something to learn."""
    colours = torch.randint(0, 160, (num_classes, 3, 1, 1), generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, num_classes, (n,), generator=g)
    images = torch.randint(0, 96, (n, 3, size, size), generator=g) + colours[labels]
    return images.to(torch.uint8), labels


def _model(name: str, num_classes: int):
    if name == "small_cnn":  # the benchmark's CNN: conv-BN-ReLU-pool ×3 (32, 64, 128 channels), global pool
        from ..arch import simple_cnn

        return simple_cnn((32, 64, 128), num_classes, batch_norm=True, global_pool=True)
    import torchvision

    return torchvision.models.get_model(name, weights=None, num_classes=num_classes)


def main(argv: list[str] | None = None) -> int:
    """Parse the command line and train."""
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    """Train with parsed arguments; returns 0, or 1 when the ranks' weights disagree at the end."""
    from . import TensorLoader, ddp, fit

    device = torch.device(args.device or ddp.init())
    if args.device:
        ddp.init()
    if args.data == "synthetic":
        xt, yt = synthetic(args.n_train, seed=args.seed)
        xv, yv = synthetic(args.n_train // 4, seed=args.seed + 1)
        classes, mean, std = 10, None, None
    else:
        import course_utils
        from course_utils.data import load_tensors

        cfg = course_utils.setup(args.profile, args.seed, datasets=(args.data,), quiet=not ddp.is_main())
        tr, va = load_tensors(args.data, "train", cfg), load_tensors(args.data, "test", cfg)
        (xt, yt), (xv, yv) = (tr.images, tr.labels), (va.images, va.labels)
        classes, mean, std = len(tr.classes), tr.mean, tr.std
    train = TensorLoader(xt, yt, args.batch_size, augment=not args.no_augment, mean=mean, std=std,
                         device=device, drop_last=True, seed=args.seed)
    val = TensorLoader(xv, yv, 2 * args.batch_size, shuffle=False, mean=mean, std=std, device=device)
    torch.manual_seed(args.seed)  # same initial weights on every rank (DDP also broadcasts rank 0's)
    model = _model(args.model, classes)
    amp = {"auto": None, "on": True, "off": False}.get(args.amp, args.amp)
    history = fit(model, train, val, epochs=args.epochs, lr=args.lr, optimizer=args.optimizer,
                  schedule=args.schedule, device=device, amp=amp, channels_last=args.channels_last,
                  compile=args.compile, label_smoothing=args.label_smoothing, ema=args.ema,
                  checkpoint_dir=args.checkpoint_dir, resume=args.resume, quiet=args.quiet, seed=args.seed,
                  config={"data": args.data, "model": args.model})
    synced = ddp.in_sync(model)
    if ddp.is_main():
        print(history)
        print(f"world size {ddp.world_size()}, weights identical on all ranks: {synced}")
    ddp.cleanup()
    return 0 if synced else 1


if __name__ == "__main__":
    raise SystemExit(main())
