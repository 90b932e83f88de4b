"""`course doctor` reports each check and fails, with a fix, when something is missing."""
import sys

from course_utils.machinery.doctor import doctor


def test_doctor_passes_here(capsys):
    assert doctor() == 0
    out = capsys.readouterr().out
    assert "[ok] torch" in out and "all good" in out
    assert "offline: lessons will use the smoke profile" in out  # COURSE_OFFLINE=1 in tests


def test_doctor_names_the_missing_package_and_the_fix(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "pycocotools", None)  # makes `import pycocotools` fail
    assert doctor() == 1
    out = capsys.readouterr().out
    assert "[!!] pycocotools missing" in out and "pip install -e ." in out
