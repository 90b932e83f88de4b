"""The audit's input: ``tests/wrong_answers/NN_topic.toml``, plausible wrong answers per answer cell."""
from __future__ import annotations

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, as the tomli package (pyproject)
    import tomli as tomllib
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WrongAnswer", "load_wrong_answers", "wrong_answers_path"]


@dataclass(frozen=True)
class WrongAnswer:
    """One plausible wrong answer for an answer cell."""

    grade_id: str
    code: str
    why: str
    hides: tuple[str, ...] = ()
    fitted: bool = False


def wrong_answers_path(lesson: Path) -> Path:
    """``<repo>/tests/wrong_answers/NN_topic.toml`` for ``<repo>/notebooks/NN_topic.ipynb``."""
    return lesson.resolve().parent.parent / "tests" / "wrong_answers" / f"{lesson.stem}.toml"


def load_wrong_answers(path: Path) -> dict[str, list[WrongAnswer]]:
    """Read a wrong-answers file: ``{answer grade_id: [WrongAnswer, ...]}``."""
    data = tomllib.loads(path.read_text(encoding="utf-8"))
    out: dict[str, list[WrongAnswer]] = {}
    for gid, entries in data.items():
        if not isinstance(entries, list) or not entries:
            raise ValueError(f"{path}: [[{gid}]] must be a list of tables with 'code' and 'why'")
        for e in entries:
            if "code" not in e or "why" not in e:
                raise ValueError(f"{path}: an entry of [[{gid}]] lacks 'code' or 'why'")
            out.setdefault(gid, []).append(WrongAnswer(gid, e["code"].strip("\n"), e["why"], tuple(e.get("hides", ())),
                                                       bool(e.get("fitted", False))))
    return out
