"""``course data download NAME`` / ``course data status`` / ``course data shapes``: the dataset cache from a shell."""
from __future__ import annotations

import argparse

__all__ = ["register"]

COMMANDS = ("data",)  # the subcommands register() adds (course's CLI loads only the one asked for)


def _cmd_download(args) -> int:
    from ..data.cache import DataError
    from ..data.registry import ensure, real_name

    for name in args.names:
        try:
            root = ensure(real_name(name), progress=not args.quiet, allow_large=True)  # asked for by name
        except DataError as exc:
            print(f"✗ {name}: {exc}")
            return 1
        print(f"✓ {name}: {root}")
    return 0


def _cmd_status(args) -> int:
    from ..paths import data_dir
    from ..data.registry import status

    print(f"data cache: {data_dir()}")
    for name, title, size, state in status():
        print(f"  {name:<11} {state:<8} {size:>7}  {title}")
    shapes = data_dir() / "shapes"
    built = sorted(p.name for p in shapes.iterdir() if (p / "manifest.json").is_file()) if shapes.is_dir() else []
    print(f"shapes world: {', '.join(built) if built else 'nothing generated yet'}")
    return 0


def _cmd_shapes(args) -> int:
    from ..data.cifar import shapes_cifar
    from ..data.datasets import NAMES, _KIND, shapes_set

    names = args.names or list(NAMES)
    if args.real_sizes:  # the rehearsal's worlds: real sizes, real layouts
        from ..data.registry import real_name
        from ..data.rehearsal import REAL_SIZES, real_root

        for name in dict.fromkeys(real_name(n) for n in (args.names or list(REAL_SIZES))):
            print(f"✓ {name}: {real_root(name)}")
        return 0
    for name in names:
        if name in ("cifar10", "cifar100"):
            shapes_cifar(name, rebuild=args.rebuild)
        elif name in _KIND:
            shapes_set(_KIND[name], rebuild=args.rebuild)
        else:
            print(f"✗ unknown dataset {name!r}: use one of {', '.join(NAMES)}")
            return 1
    return 0


def register(subparsers) -> None:
    """Add ``course data ...`` to the ``course`` command."""
    p = subparsers.add_parser("data", help="download datasets, show the cache, generate the shapes world")
    sub = p.add_subparsers(dest="data_command", required=True)
    d = sub.add_parser("download", help="download + verify + extract real datasets into the cache")
    d.add_argument("names", nargs="+", help="cifar10, cifar100, voc, coco, pets, flowers102 (or voc_det, captions ...)")
    d.add_argument("--quiet", action="store_true", help="no progress bars (default: show them)")
    d.set_defaults(func=_cmd_download)
    s = sub.add_parser("status", help="which datasets are in the cache (default location: $COURSE_DATA)")
    s.set_defaults(func=_cmd_status)
    g = sub.add_parser("shapes", help="generate the shapes world now (default: every dataset)")
    g.add_argument("names", nargs="*", help="datasets to generate (default: all)")
    g.add_argument("--rebuild", action="store_true", help="regenerate even if cached (default: reuse)")
    g.add_argument("--real-sizes", action="store_true",
                   help="the worlds a rehearsal reads: the real datasets' sizes and layouts (minutes each)")
    g.set_defaults(func=_cmd_shapes)


def main(argv: list[str] | None = None) -> int:
    """Run ``course data`` on its own (for tests and ``python -m``)."""
    parser = argparse.ArgumentParser(prog="course")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["data", *(argv or [])])
    return args.func(args)
