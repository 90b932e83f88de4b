"""Capped output capture: an nbclient that keeps a bounded amount of each cell's output (see :class:`Limits`)."""
from __future__ import annotations

from nbclient import NotebookClient

from .limits import Limits

__all__ = ["CappedNotebookClient", "cut_note"]


_FLOOR = 8 * 1024  # characters every cell may keep, even when the notebook's budget is spent (its ✗ lines)
_KEEP = 64 * 1024  # an error or a result is shortened to this when it does not fit


def _size(content: dict) -> int:
    """Characters an output message would add to the notebook (text, or every MIME bundle's payload)."""
    if "text" in content:
        return len(content["text"])
    if "traceback" in content:
        return sum(len(line) for line in content["traceback"]) + len(content.get("evalue", ""))
    return sum(len(v) if isinstance(v, str) else len(repr(v)) for v in content.get("data", {}).values())


def _shorten(content: dict) -> None:
    """Cut an error or result down to about ``_KEEP`` characters, in place (scoring reads only its text)."""
    if "traceback" in content:
        tb = "\n".join(content["traceback"])
        content["traceback"] = [tb[:_KEEP // 2] + "\n[...]\n" + tb[-_KEEP // 2:]] if len(tb) > _KEEP else content["traceback"]
        content["evalue"] = content.get("evalue", "")[:_KEEP // 4]
    elif "data" in content:
        text = str(content["data"].get("text/plain", ""))
        content["data"] = {"text/plain": text[:_KEEP]}


class CappedNotebookClient(NotebookClient):
    """An nbclient that keeps a bounded amount of each cell's output and notes where it dropped some."""

    def __init__(self, nb, km=None, limits: Limits = Limits(), **kw):
        super().__init__(nb, km=km, **kw)
        mb = 2**20
        self.caps = (limits.cell_text_mb * mb, limits.cell_output_mb * mb, limits.notebook_output_mb * mb)
        self.used: dict[int, list[int]] = {}  # cell index -> [text characters, all characters] kept
        self.total = 0
        self.cut: set[int] = set()  # cells whose output was (partly) dropped
        self.forced: set[tuple[int, str]] = set()  # (cell, "error" | "execute_result") kept beyond the caps

    def _forget(self, cell_index: int) -> None:
        text_all = self.used.pop(cell_index, [0, 0])
        self.total -= text_all[1]

    def output(self, outs, msg, display_id, cell_index):
        if self.clear_before_next_output and not self.output_hook_stack[msg["parent_header"].get("msg_id")]:
            outs[:] = []  # the delayed clear_output(wait=True), done here so the counts stay right
            self.clear_display_id_mapping(cell_index)
            self.clear_before_next_output = False
            self._forget(cell_index)
        content, kind = msg["content"], msg["msg_type"]
        text_cap, cell_cap, nb_cap = self.caps
        used = self.used.setdefault(cell_index, [0, 0])
        room = min(cell_cap - used[1], max(nb_cap - self.total, _FLOOR - used[1]))
        if kind == "stream":
            room = min(room, text_cap - used[0])
        size = _size(content)
        if size > room:
            self.cut.add(cell_index)
            if kind in ("error", "execute_result") and (cell_index, kind) not in self.forced:
                self.forced.add((cell_index, kind))  # what scoring reads: kept once per cell, shortened
                _shorten(content)
                size = _size(content)
            elif kind == "stream" and room > 0:
                content["text"] = content["text"][:int(room)]
                size = len(content["text"])
            else:
                return None
        used[1] += size
        used[0] += size if kind == "stream" else 0
        self.total += size
        return super().output(outs, msg, display_id, cell_index)

    def clear_output(self, outs, msg, cell_index):
        if not msg["content"].get("wait"):
            self._forget(cell_index)
        return super().clear_output(outs, msg, cell_index)


def cut_note(limits: Limits) -> str:
    return (f"[course grade: output dropped here: a cell keeps {limits.cell_text_mb:g} MB of printed text "
            f"and {limits.cell_output_mb:g} MB in all, a notebook {limits.notebook_output_mb:g} MB]")
