"""``course train ...``: the same as ``python -m course_utils.train ...`` (one process; torchrun for several)."""
from __future__ import annotations

__all__ = ["register"]

COMMANDS = ("train",)  # the subcommands register() adds (course's CLI loads only the one asked for)


def register(subparsers) -> None:
    """Add the ``train`` subcommand to the ``course`` command."""
    from ..train.__main__ import build_parser, run

    p = subparsers.add_parser("train", help="train a model on a dataset (torchrun -m course_utils.train for DDP)")
    build_parser(p)
    p.set_defaults(func=run)
