"""How fast is ``fit``? The same small CNN on the same CIFAR-shaped data, trained three ways, in one run.

    (a) naive  the loop a careful learner writes: a Dataset of PIL images, a DataLoader with per-sample
               torchvision transforms (RandomCrop(32, padding=4), RandomHorizontalFlip, ToTensor,
               Normalize), num_workers = CPU cores (at most 8), pin_memory on a GPU;
    (b) fit    ``course_utils.train.fit`` with ``TensorLoader`` doing the same augmentation on the device;
    (c) bound  the compute bound: the same forward/backward/step on batches already made and on the
               device — no data work at all.

Images/s are measured over whole epochs after one warm-up epoch. A round runs one epoch of each way,
in the order a, b, c and then c, b, a in the next round, so that a machine getting busier or quieter
during the run slows the three alike on average. Each way's min, median and max over the rounds are
printed, and so are the ratios fit/naive and fit/bound taken *within* each round (the three epochs of a
round share the machine's load; ratios across rounds would not). Both (a) and (b) use the same
precision and memory layout as (c) (bf16/fp16 autocast and channels_last on a GPU, fp32 on a CPU).
Torch uses ``--threads`` intra-op threads (default: every usable core, as ``setup`` does for light/full),
whose idle waits sleep (``OMP_WAIT_POLICY=PASSIVE``, as ``setup`` arranges; ``--spin`` leaves OpenMP's
spinning default): on a busy machine spinning threads take the cores their partners need. Freed memory is
kept for reuse (``course_utils.host.keep_freed_memory``, as ``setup`` and ``fit`` do; ``--default-malloc``
compares glibc's default, which page-faults on every large tensor of every step).
Ends with one line: ``fit/naive median R1 (min .. max)  fit/bound median R2 (min .. max)``.

    python benchmarks/bench_fit.py            # 10,240 images, 7 rounds
    python benchmarks/bench_fit.py --quick    # 2,560 images, 3 rounds: a smoke run
    python benchmarks/bench_fit.py --threads 1   # one torch thread (see README: a busy 2-core machine)
"""
from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time

if "--spin" not in sys.argv:  # before torch loads OpenMP: idle threads sleep, as course_utils.setup arranges
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402
import torchvision  # noqa: E402
from PIL import Image  # noqa: E402
from torch import nn  # noqa: E402
from torchvision import transforms as T  # noqa: E402

from course_utils.arch import simple_cnn  # noqa: E402
from course_utils.train import TensorLoader, amp_dtype, fit  # noqa: E402
from course_utils.train.loop import autocast  # noqa: E402

MEAN, STD = (0.49, 0.48, 0.45), (0.25, 0.24, 0.26)  # CIFAR-10's, roughly
BATCH = 256


def make_data(n: int, seed: int = 0):
    """CIFAR-shaped uint8 images N×3×32×32 with a class-dependent colour, and int64 labels."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.randint(0, 10, (n,), generator=g)
    colours = torch.randint(0, 160, (10, 3, 1, 1), generator=g)
    images = (torch.randint(0, 96, (n, 3, 32, 32), generator=g) + colours[labels]).to(torch.uint8)
    return images, labels


class PILDataset(torch.utils.data.Dataset):
    """What torchvision.datasets.CIFAR10 does: PIL images in memory, transforms applied per sample."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, transform):
        self.images = [Image.fromarray(img.permute(1, 2, 0).numpy()) for img in images]  # H×W×C uint8
        self.labels = labels.tolist()
        self.transform = transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i):
        return self.transform(self.images[i]), self.labels[i]


def model_for(device, channels_last: bool) -> nn.Module:
    torch.manual_seed(0)
    model = simple_cnn((32, 64, 128), 10, batch_norm=True, global_pool=True).to(device)  # conv-BN-ReLU-pool ×3
    return model.to(memory_format=torch.channels_last) if channels_last else model


def naive_epoch(model, loader, opt, device, dtype, channels_last) -> float:
    """The hand-written loop of lesson 02, over one epoch; returns images/s."""
    model.train()
    n, start = 0, time.perf_counter()
    for x, y in loader:
        x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        _step(model, x, y, opt, device, dtype)
        n += len(y)
    _sync(device)
    return n / (time.perf_counter() - start)


def bound_epoch(model, batches, steps, opt, device, dtype) -> float:
    """Forward/backward/step only, cycling over batches already on the device; returns images/s."""
    model.train()
    start = time.perf_counter()
    for i in range(steps):
        x, y = batches[i % len(batches)]
        _step(model, x, y, opt, device, dtype)
    _sync(device)
    return steps * BATCH / (time.perf_counter() - start)


def _step(model, x, y, opt, device, dtype) -> None:
    """One forward (under autocast), cross-entropy, backward and optimizer step."""
    with autocast(device, dtype):
        loss = nn.functional.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} (min {min(values):.2f}, max {max(values):.2f})"


def main() -> None:
    from course_utils.host import keep_freed_memory, usable_cores

    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="2,560 images and 3 rounds (default: 10,240 and 7)")
    p.add_argument("--n", type=int, default=None, help="training images (default: 10240, quick 2560)")
    p.add_argument("--rounds", type=int, default=None, help="measured rounds (default: 7, quick 3)")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", help="default: cuda if any")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="DataLoader workers "
                                                                                    "(default: CPU cores, <= 8)")
    p.add_argument("--threads", type=int, default=usable_cores(),
                   help="torch intra-op threads (default: every usable core, as setup() does for light/full)")
    p.add_argument("--spin", action="store_true", help="leave OpenMP's wait policy alone: idle threads spin "
                                                       "(default: OMP_WAIT_POLICY=PASSIVE, as setup() sets it)")
    p.add_argument("--default-malloc", action="store_true", help="leave glibc's allocator as it is (default: "
                   "keep freed memory for reuse, as setup() and fit() do: course_utils.host.keep_freed_memory)")
    args = p.parse_args()
    if args.default_malloc:  # keep_freed_memory (also fit's call) leaves a user's malloc settings alone
        os.environ.setdefault("MALLOC_TRIM_THRESHOLD_", str(128 * 1024))  # glibc's default
    malloc = "kept for reuse" if keep_freed_memory() else "default"
    n = args.n or (2560 if args.quick else 10240)
    rounds = args.rounds or (3 if args.quick else 7)
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    gpu = device.type == "cuda"
    dtype = amp_dtype(device)  # bf16/fp16 on a GPU, None (fp32) on a CPU
    channels_last = gpu
    hw = torch.cuda.get_device_name(device) if gpu else f"{platform.processor() or platform.machine()}, " \
                                                         f"{torch.get_num_threads()} threads"
    print(f"device {device} ({hw}); torch {torch.__version__}, torchvision {torchvision.__version__}; "
          f"{n} images 3×32×32, batch {BATCH}, amp {dtype}, channels_last {channels_last}, "
          f"{args.workers} DataLoader workers; OMP_WAIT_POLICY {os.environ.get('OMP_WAIT_POLICY', 'unset (spin)')}; "
          f"freed memory {malloc}; "
          f"load average {os.getloadavg()[0]:.1f}")

    images, labels = make_data(n)
    tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(), T.Normalize(MEAN, STD)])
    naive_loader = torch.utils.data.DataLoader(
        PILDataset(images, labels, tf), batch_size=BATCH, shuffle=True, num_workers=args.workers,
        pin_memory=gpu, persistent_workers=args.workers > 0, drop_last=True)
    fit_loader = TensorLoader(images, labels, BATCH, augment=True, mean=MEAN, std=STD, device=device,
                              drop_last=True, seed=0)
    steps = len(fit_loader)
    g = torch.Generator().manual_seed(1)
    batches = [(torch.randn(BATCH, 3, 32, 32, generator=g).to(device), torch.randint(0, 10, (BATCH,), generator=g)
                .to(device)) for _ in range(8)]
    if channels_last:
        batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in batches]

    naive_model, bound_model = model_for(device, channels_last), model_for(device, channels_last)
    naive_opt = torch.optim.SGD(naive_model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    bound_opt = torch.optim.SGD(bound_model.parameters(), lr=0.05, momentum=0.9, nesterov=True)
    fit_model = model_for(device, channels_last)

    def fit_epoch() -> float:
        h = fit(fit_model, fit_loader, epochs=1, lr=0.05, device=device, channels_last=channels_last, quiet=True)
        return h.last["images_per_s"]  # the epoch itself, not fit's one-off setup

    ways = {"naive": lambda: naive_epoch(naive_model, naive_loader, naive_opt, device, dtype, channels_last),
            "fit": fit_epoch,
            "bound": lambda: bound_epoch(bound_model, batches, steps, bound_opt, device, dtype)}
    for run in ways.values():  # warm-up: worker start, allocator, cuDNN autotuning
        run()

    speeds: dict[str, list[float]] = {k: [] for k in ways}
    ratios: dict[str, list[float]] = {"fit/naive": [], "fit/bound": []}
    for r in range(rounds):
        order = list(ways) if r % 2 == 0 else list(reversed(ways))  # a b c, then c b a: drift cancels
        for k in order:
            speeds[k].append(ways[k]())
        ratios["fit/naive"].append(speeds["fit"][-1] / speeds["naive"][-1])
        ratios["fit/bound"].append(speeds["fit"][-1] / speeds["bound"][-1])
        print(f"round {r + 1} ({' '.join(order)}): " + "  ".join(f"{k} {v[-1]:,.0f}" for k, v in speeds.items())
              + f"  fit/naive {ratios['fit/naive'][-1]:.2f}  fit/bound {ratios['fit/bound'][-1]:.2f}"
              + f"  load {os.getloadavg()[0]:.1f}", flush=True)

    print(f"\n{'way':<10}{'min':>10}{'median':>10}{'max':>10}  images/s over {rounds} rounds")
    for k, label in (("naive", "(a) naive"), ("fit", "(b) fit"), ("bound", "(c) bound")):
        v = speeds[k]
        print(f"{label:<10}{min(v):>10,.0f}{statistics.median(v):>10,.0f}{max(v):>10,.0f}")
    print(f"load average {os.getloadavg()[0]:.1f} (other processes on the machine slow all three alike)")
    print(f"fit/naive median {_spread(ratios['fit/naive'])}  fit/bound median {_spread(ratios['fit/bound'])}")


if __name__ == "__main__":
    main()
