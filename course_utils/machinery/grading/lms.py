"""Take in a class's submissions as the LMS hands them out (for ``course grade``): Canvas, Moodle or a plain folder.

Canvas ("Download Submissions"), flat, in a zip or unpacked::

    doejane_12345_67890_02_linear_classifier.ipynb          name_userid_submissionid_originalname
    doejane_LATE_12345_67890_02_linear_classifier.ipynb     handed in after the due date
    doejane_12345_67891_02_linear_classifier-1.ipynb        a second file of the same name

Moodle ("Download all submissions"), one folder per submission, in a zip or unpacked::

    Jane Doe_12345_assignsubmission_file_/02_linear_classifier.ipynb     12345: the participant id

Anything else is a plain folder (``<student>/<NN_topic>.ipynb`` or ``<student>__<NN_topic>.ipynb``), graded
as it is. Canvas and Moodle files are copied to a staging folder as ``<student>/<original name>``, where
``<student>`` is ``doejane_12345`` or ``Jane Doe_12345``, and the LMS id, name and late mark go into the
roster (for the gradebook export). A file that cannot be graded keeps a row with the reason: a file whose
name the LMS did not write, a non-notebook, a zip a student handed in that cannot be read, another
lesson's notebook, a second file for the same lesson (the later one is graded).
"""
from __future__ import annotations

import io
import json
import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = ["Intake", "parse_canvas", "parse_moodle", "read_download", "detect", "take_in"]

_CANVAS = re.compile(r"^(?P<name>[^_/]+?)(?P<late>_LATE)?_(?P<id>[0-9]+)_(?P<sub>[0-9]+)_(?P<orig>[^/]+)$")
_MOODLE = re.compile(r"^(?P<name>[^/]+)_(?P<id>[0-9]+)_assignsubmission_(?P<kind>[a-z]+)_$")
_LESSON_IN_NAME = re.compile(r"(?<![0-9])([0-9]{2})_[A-Za-z]")
_AGAIN = re.compile(r"-([0-9]+)\.ipynb$")  # Canvas's suffix for a second file of the same name
_SKIP = ("__MACOSX", ".ipynb_checkpoints")


@dataclass
class Intake:
    """What a download holds: the folder to grade, who is who, and the files that get a row without a grade."""

    lms: str  # canvas | moodle | plain
    folder: Path
    roster: dict[str, dict] = field(default_factory=dict)  # student -> {lms, id, name, late, submission, file}
    rejected: list[dict] = field(default_factory=list)  # rows: student, lesson, file, status, detail


def parse_canvas(name: str) -> dict | None:
    """The parts of a Canvas download's file name, None if Canvas did not write it."""
    m = _CANVAS.match(name)
    if not m:
        return None
    return {"lms": "canvas", "student": f"{m['name']}_{m['id']}", "id": m["id"], "name": m["name"],
            "submission": m["sub"], "late": bool(m["late"]), "file": m["orig"]}


def parse_moodle(path: str) -> dict | None:
    """The parts of a Moodle download's ``folder/file`` path, None if Moodle did not write it."""
    parts = PurePosixPath(path).parts
    m = _MOODLE.match(parts[0]) if len(parts) >= 2 else None
    if not m:
        return None
    return {"lms": "moodle", "student": f"{m['name']}_{m['id']}", "id": m["id"], "name": m["name"],
            "submission": "", "late": False, "file": "/".join(parts[1:])}


def _visible(name: str) -> bool:
    parts = PurePosixPath(name).parts
    return bool(parts) and not any(p.startswith(".") or p in _SKIP for p in parts)


def read_download(src: Path) -> list[tuple[str, bytes | Exception]]:
    """Every file of a download (a zip or a folder) as (path inside it, bytes or why it could not be read)."""
    if src.is_dir():
        return [(p.relative_to(src).as_posix(), p.read_bytes()) for p in sorted(src.rglob("*"))
                if p.is_file() and _visible(p.relative_to(src).as_posix())]
    try:
        archive = zipfile.ZipFile(src)
    except (OSError, zipfile.BadZipFile) as exc:
        raise SystemExit(f"{src} is neither a folder nor a readable zip ({exc}): download the submissions again.")
    files: list[tuple[str, bytes | Exception]] = []
    with archive:
        for info in archive.infolist():
            name = info.filename
            if info.is_dir() or not _visible(name):
                continue
            if name.startswith("/") or ".." in PurePosixPath(name).parts:
                files.append((name, ValueError("a path that leaves the archive")))
                continue
            try:
                files.append((name, archive.read(info)))
            except Exception as exc:  # noqa: BLE001 - a damaged member costs its own row only
                files.append((name, exc))
    return files


def detect(names: list[str]) -> str:
    """``canvas``, ``moodle`` or ``plain``: the LMS whose naming most of the files follow."""
    if not names:
        return "plain"
    moodle = sum(parse_moodle(n) is not None for n in names)
    canvas = sum("/" not in n and parse_canvas(n) is not None for n in names)
    best = max((moodle, "moodle"), (canvas, "canvas"))
    return best[1] if best[0] * 2 > len(names) else "plain"


def _grade_ids(data: bytes) -> set[str]:
    cells = json.loads(data)["cells"]
    return {c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in cells} - {None}


def _expand_zip(name: str, data: bytes) -> list[tuple[str, bytes | Exception]]:
    """The notebooks in a zip a student handed in, or the reason it gives none."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as inner:
            members = [i for i in inner.infolist() if not i.is_dir() and _visible(i.filename)
                       and i.filename.endswith(".ipynb")]
            out = [(f"{name}/{i.filename}", inner.read(i)) for i in members]
    except Exception as exc:  # noqa: BLE001 - bad zip, bad CRC, encrypted ...
        return [(name, ValueError(f"an unreadable zip archive ({type(exc).__name__}): hand in the .ipynb file"))]
    return out or [(name, ValueError("a zip archive without a notebook in it: hand in the .ipynb file"))]


def take_in(src: Path, staging: Path, lessons: dict[str, Path], only: str | None = None,
            lms: str = "auto") -> Intake:
    """Read ``src`` (zip or folder); stage Canvas/Moodle files as ``<student>/<file>`` in ``staging``.

    ``lessons`` maps lesson stems (``02_linear_classifier``) to their source notebooks; ``only`` is the
    stem given with ``--lesson``. A plain folder is graded where it is (``staging`` is not used).
    """
    files = read_download(src)
    kind = detect([n for n, _ in files]) if lms == "auto" else lms
    if kind == "plain" and src.is_dir():
        return Intake("plain", src)
    ids = {stem: _grade_ids(path.read_bytes()) for stem, path in lessons.items()}
    by_number = {stem[:2]: stem for stem in lessons}
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    intake, placed = Intake(kind, staging), {}
    for name, data in files:
        info = (parse_canvas(name) if kind == "canvas" else parse_moodle(name) if kind == "moodle"
                else {"lms": "plain", "student": PurePosixPath(name).parts[0], "id": "", "name": "",
                      "submission": "", "late": False, "file": "/".join(PurePosixPath(name).parts[1:]) or name})
        if kind == "plain" and "/" not in name:
            info.update(student=name.split("__", 1)[0] if "__" in name else PurePosixPath(name).stem, file=name)
        if info is None:
            intake.rejected.append(_row("", "", name, f"cannot tell whose file this is: {kind.title()} did not "
                                        "name it (was it added to the download by hand?)"))
            continue
        known = intake.roster.setdefault(info["student"], {k: v for k, v in info.items() if k != "student"})
        known["late"] = known["late"] or info["late"]  # late if any of the student's files was
        pieces = _expand_zip(name, data) if isinstance(data, bytes) and name.lower().endswith(".zip") else [(name, data)]
        for piece, content in pieces:
            _place(intake, placed, info, piece, content, ids, by_number, only)
    for (student, lesson), group in placed.items():
        group.sort(key=lambda e: e["rank"])
        keep, lesson = group[-1], "" if lesson.startswith("?") else lesson
        for extra in group[:-1]:
            intake.rejected.append(_row(student, lesson, extra["name"], "a second file for this lesson from this "
                                        f"student: {keep['name']} (the later one) was graded instead"))
        target = staging / student / keep["file"]
        if target.exists():  # two files of unknown lessons under one name: neither is picked silently
            intake.rejected.append(_row(student, lesson, keep["name"], f"another file of this student is also "
                                        f"named {keep['file']}: rename one and grade again"))
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(keep["data"])
    return intake


def _row(student: str, lesson: str, file: str, detail: str) -> dict:
    return {"student": student, "lesson": lesson, "file": file, "status": "error", "detail": detail,
            "total": 0, "max": "", "seconds": 0, "hash": "", "feedback": ""}


def _place(intake: Intake, placed: dict, info: dict, name: str, content, ids: dict[str, set[str]],
           by_number: dict[str, str], only: str | None) -> None:
    """Queue one file for staging, or give it a row saying why it is not graded."""
    student = info["student"]
    base = PurePosixPath(name).name
    named = _LESSON_IN_NAME.search(base)
    lesson = only or (by_number.get(named.group(1), "") if named else "")
    if isinstance(content, Exception):
        intake.rejected.append(_row(student, lesson, name, f"could not be read from the download ({content})"))
        return
    if not base.endswith(".ipynb"):
        ext = PurePosixPath(base).suffix or "no extension"
        intake.rejected.append(_row(student, lesson, name, f"not a notebook ({ext}): only .ipynb files are "
                                    "graded; ask for the notebook"))
        return
    try:
        found = _grade_ids(content)
    except Exception:  # noqa: BLE001 - graded anyway: the grader's row says the file is unreadable
        found = set()
    overlap = {stem: len(found & gids) for stem, gids in ids.items()}
    best = max(overlap, key=overlap.get, default="")
    if lesson and best and overlap[best] and not overlap.get(lesson):
        intake.rejected.append(_row(student, lesson, name, f"this is the notebook of {best}, not of {lesson}: "
                                    "ask for the right file"))
        return
    lesson = lesson or (best if best and overlap[best] else "")
    file = PurePosixPath(info["file"]).name if intake.lms == "canvas" and "/" not in name else base
    again = _AGAIN.search(file)
    if again:
        file = file[:again.start()] + ".ipynb"  # 02_x-1.ipynb is staged as 02_x.ipynb
    rank = (int(info["submission"] or 0), int(again.group(1)) if again else 0, name)
    group = placed.setdefault((student, lesson or f"?{file}"), [])
    group.append({"name": name, "file": file, "data": content, "rank": rank})
