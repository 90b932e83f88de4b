"""Which data a run reads: the switch between the real datasets and a rehearsal on the shapes world.

    real    the real datasets (light and full, the default)
    shapes  the shapes world: small in smoke (always), or - for light/full - at the real datasets' sizes and
            in their real layouts (a **rehearsal**, :mod:`course_utils.data.rehearsal` generates it)

``$COURSE_DATA_SOURCE`` (``course run --data shapes`` sets it, papermill kernels inherit it) or
``setup(..., data="shapes")`` asks for a rehearsal; ``auto`` never picks one. This module sits above the
formats and below the registry: the readers never ask which source they serve.
"""
from __future__ import annotations

import os

from .cache import DataError

__all__ = ["ENV", "SOURCES", "REHEARSAL_NOTE", "requested_source", "resolve_source", "source_of", "is_rehearsal"]

ENV = "COURSE_DATA_SOURCE"
SOURCES = ("real", "shapes")
REHEARSAL_NOTE = "REHEARSAL: shapes world at real sizes, random weights"


def requested_source() -> str | None:
    """``$COURSE_DATA_SOURCE`` ('real' or 'shapes'), or None when unset."""
    value = os.environ.get(ENV, "").strip().lower()
    if not value:
        return None
    if value not in SOURCES:
        raise DataError(f"${ENV}={value!r}: use one of {', '.join(SOURCES)} (or leave it unset for real data)")
    return value


def resolve_source(profile: str, asked: str | None = None) -> str:
    """The data source of a run: smoke always reads the small shapes world; light/full read ``asked``, else
    ``$COURSE_DATA_SOURCE``, else the real datasets."""
    if asked is not None and asked not in SOURCES:
        raise ValueError(f"data={asked!r}: use one of {', '.join(SOURCES)}")
    if profile == "smoke":
        if asked == "real":
            raise ValueError("smoke runs on the small shapes world only: use profile='light' or 'full' for real data")
        return "shapes"
    return asked or requested_source() or "real"


def source_of(cfg) -> str:
    """``cfg.data_source`` (set by setup), or what :func:`resolve_source` says for ``cfg.profile``."""
    return getattr(cfg, "data_source", None) or resolve_source(cfg.profile)


def is_rehearsal(cfg) -> bool:
    """True for light/full on the shapes world (at real sizes)."""
    return cfg.profile != "smoke" and source_of(cfg) == "shapes"
