"""Seconds per epoch of lesson 07's CIFAR-10 ResNet recipe at full size, on the shapes world at CIFAR's size.

The recipe as lesson 07 runs it in the full profile: ``course_utils.arch.cifar_resnet18``, a ``TensorLoader``
of the 50,000 training images on the device (batch 512, random crop + flip), ``fit`` with SGD (lr 0.2,
one-cycle, label smoothing 0.1, weight decay 5e-4) and fit's automatic mixed precision (bf16/fp16 on a
GPU, fp32 on a CPU), evaluated on the 10,000 test images after each epoch. The data is the shapes world
generated at CIFAR-10's size (a rehearsal: the same tensors, shapes and code path as real CIFAR-10).

The first epoch pays for cuDNN autotuning and the allocator; it is reported apart. Every size is a knob
(flag or environment variable), so the script can be checked on a CPU in seconds:

    python benchmarks/bench_recipe.py                                  # 50,000 images, 3 epochs
    python benchmarks/bench_recipe.py --n 256 --test 128 --batch 64 --epochs 2   # a CPU check
    BENCH_RECIPE_N=256 BENCH_RECIPE_EPOCHS=2 python benchmarks/bench_recipe.py

Ends with one line for scripts: ``recipe seconds/epoch S (images/s R, 40 epochs ~ M min)``.
"""
from __future__ import annotations

import argparse
import os
import statistics

import course_utils
from course_utils.arch import cifar_resnet18
from course_utils.train import TensorLoader, fit

FULL_EPOCHS = 40  # lesson 07's full recipe


def main() -> None:
    env = lambda name, default: type(default)(os.environ.get(f"BENCH_RECIPE_{name}", default))  # noqa: E731
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--n", type=int, default=env("N", 50000), help="training images (default 50000, the full split)")
    p.add_argument("--test", type=int, default=env("TEST", 10000), help="test images (default 10000)")
    p.add_argument("--batch", type=int, default=env("BATCH", 512), help="batch size (default 512, the recipe's)")
    p.add_argument("--epochs", type=int, default=env("EPOCHS", 3), help="epochs; the first is warm-up (default 3)")
    p.add_argument("--device", default=os.environ.get("BENCH_RECIPE_DEVICE"), help="default: cuda > mps > cpu")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format (the lesson does not use it)")
    args = p.parse_args()
    if args.epochs < 2:
        p.error("--epochs must be >= 2: the first epoch is warm-up")

    cfg = course_utils.setup("full", seed=0, device=args.device, data="shapes", quiet=True)
    train = course_utils.data.load_tensors("cifar10", "train", cfg, limit=args.n)
    test = course_utils.data.load_tensors("cifar10", "test", cfg, limit=args.test)
    loader = TensorLoader(train.images, train.labels, args.batch, augment=True, mean=train.mean, std=train.std,
                          seed=0, device=cfg.device)
    val = TensorLoader(test.images, test.labels, 1024, shuffle=False, mean=train.mean, std=train.std,
                       device=cfg.device)
    hist = fit(cifar_resnet18(10), loader, val, epochs=args.epochs, lr=0.2, label_smoothing=0.1,
               schedule="onecycle", weight_decay=5e-4, device=cfg.device, channels_last=args.channels_last,
               quiet=True, seed=0)
    seconds = hist["seconds"]  # training time of each epoch (fit's own timing, evaluation excluded)
    steady = seconds[1:]
    med = statistics.median(steady)
    total = hist.seconds / len(hist)  # with evaluation, per epoch
    print(f"device {hist.env['device']}; torch {hist.env['torch']}; {len(train)} train / "
          f"{len(test)} test images 3x32x32 ({train.source}); batch {args.batch}; amp {hist.config['amp']}; "
          f"channels_last {args.channels_last}")
    print(f"epoch 1 (warm-up) {seconds[0]:.2f} s; then train {med:.2f} s per epoch "
          f"(min {min(steady):.2f}, max {max(steady):.2f} over {len(steady)}); with evaluation {total:.2f} s")
    print(f"recipe seconds/epoch {med:.2f} (images/s {len(train) / med:,.0f}, "
          f"{FULL_EPOCHS} epochs ~ {FULL_EPOCHS * total / 60:.1f} min)")


if __name__ == "__main__":
    main()
