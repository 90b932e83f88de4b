"""``History``: what ``fit`` returns — one row per epoch, plus where, with what, and how long it ran.

Rows are dicts such as ``{"epoch": 1, "train_loss": 1.9, "train_acc": 0.31, "val_loss": 1.7,
"val_acc": 0.38, "lr": 0.01, "seconds": 4.2, "images_per_s": 11900.0}``. ``history["val_acc"]`` gives a
column, ``history.plot()`` draws loss and metric curves (train vs val), and Jupyter shows a small table.
"""
from __future__ import annotations

import math
import platform
from dataclasses import dataclass, field

__all__ = ["History", "environment"]


def environment(device) -> dict:
    """Device name and library versions, recorded with every result."""
    import numpy as np
    import torch
    import torchvision

    name = str(device)
    if str(device).startswith("cuda") and torch.cuda.is_available():
        name += f" ({torch.cuda.get_device_name(torch.device(device))})"
    elif str(device) == "cpu":
        name += f" ({torch.get_num_threads()} threads, {platform.processor() or platform.machine()})"
    return {"device": name, "python": platform.python_version(), "torch": torch.__version__,
            "torchvision": torchvision.__version__, "numpy": np.__version__}


@dataclass
class History:
    """Per-epoch rows, the run's config and environment, total seconds, and whether it was interrupted."""

    rows: list[dict] = field(default_factory=list)
    config: dict = field(default_factory=dict)
    env: dict = field(default_factory=dict)
    seconds: float = 0.0
    interrupted: bool = False
    best: dict | None = None  # {"metric": name, "value": v, "epoch": e} when best_metric was given

    def append(self, row: dict) -> None:
        self.rows.append(row)

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, key: str) -> list:
        """One column, e.g. ``history["val_acc"]`` (NaN for epochs that lack it)."""
        if not any(key in r for r in self.rows):
            raise KeyError(f"{key!r} is not in the history; columns: {', '.join(self.columns)}")
        return [r.get(key, math.nan) for r in self.rows]

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for r in self.rows:
            cols += [k for k in r if k not in cols]
        return cols

    @property
    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}

    @property
    def device(self) -> str:
        return self.env.get("device", "?")

    def metric_names(self) -> list[str]:
        """Names such as 'acc' that appear as train_/val_ columns, loss excluded."""
        names = []
        for c in self.columns:
            for prefix in ("train_", "val_"):
                if c.startswith(prefix) and c[len(prefix):] != "loss" and c[len(prefix):] not in names:
                    names.append(c[len(prefix):])
        return names

    def state_dict(self) -> dict:
        return {"rows": self.rows, "config": self.config, "env": self.env, "seconds": self.seconds,
                "interrupted": self.interrupted, "best": self.best}

    @classmethod
    def from_state_dict(cls, state: dict) -> "History":
        return cls(**state)

    def plot(self):
        """A Figure: loss (train vs val) on the left, metrics (train vs val) on the right."""
        import matplotlib.pyplot as plt

        metrics = self.metric_names()
        fig, axes = plt.subplots(1, 1 + bool(metrics), figsize=(5 + 4.5 * bool(metrics), 3.2), squeeze=False)
        epochs = self["epoch"] if self.rows else []
        panels = [("loss", ["loss"])] + ([("metric", metrics)] if metrics else [])
        for ax, (title, names) in zip(axes[0], panels):
            for name in names:
                for prefix, style in (("train_", "-"), ("val_", "--")):
                    if any(prefix + name in r for r in self.rows):
                        ax.plot(epochs, self[prefix + name], style, marker="o", ms=3, label=prefix + name)
            ax.set_xlabel("epoch")
            ax.set_title(title)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        plt.close(fig)  # the notebook shows the returned figure once, not twice
        return fig

    def _cells(self, v) -> str:
        if isinstance(v, float):
            return f"{v:.0f}" if abs(v) >= 1000 else f"{v:.4g}"
        return str(v)

    def __repr__(self) -> str:
        cols = self.columns
        lines = ["  ".join(f"{c:>12}" for c in cols)]
        lines += ["  ".join(f"{self._cells(r.get(c, '')):>12}" for c in cols) for r in self.rows]
        tail = f"{len(self.rows)} epochs, {self.seconds:.1f} s on {self.device}"
        return "\n".join(lines + [tail + (" (interrupted)" if self.interrupted else "")])

    def _repr_html_(self) -> str:
        cols = self.columns
        head = "".join(f"<th>{c}</th>" for c in cols)
        body = "".join("<tr>" + "".join(f"<td>{self._cells(r.get(c, ''))}</td>" for c in cols) + "</tr>"
                       for r in self.rows)
        note = f"{len(self.rows)} epochs, {self.seconds:.1f} s on {self.device}"
        if self.interrupted:
            note += " (interrupted)"
        return f"<table><tr>{head}</tr>{body}</table><p><small>{note}</small></p>"
