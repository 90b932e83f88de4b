"""The runner behind `course run`: statuses, metric checks and the written report."""
import re
from pathlib import Path

import nbformat
import pytest

from course_utils.machinery import cli
from course_utils.config import pick_device
from course_utils.machinery.report import NotebookResult, execute, write_report


def _notebook(path: Path, body: str) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell('profile = "auto"\nseed = 0', metadata={"tags": ["parameters"]}),
                nbformat.v4.new_code_cell("import course_utils\ncfg = course_utils.setup(profile, seed)\n" + body)]
    nbformat.write(nb, path)
    return path


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    d = tmp_path_factory.mktemp("nbs")
    ranges = {"good": {"smoke": {"acc": {"min": 0.5}}}, "low": {"smoke": {"acc": {"min": 0.5}}}}
    return {name: execute(_notebook(d / f"{name}.ipynb", body), d / "out", profile="smoke", ranges=ranges)
            for name, body in [("good", 'course_utils.record("acc", 0.9)'),
                               ("low", 'course_utils.record("acc", 0.1)'),
                               ("silent", "x = 1"),
                               ("broken", "raise ValueError('boom')")]}


def test_statuses(results):
    assert results["good"].status == "ok" and results["good"].metrics == {"acc": 0.9}
    assert results["good"].profile == "smoke" and results["good"].device == pick_device()  # the banner's device
    assert results["low"].status == "out-of-range" and "acc = 0.1 outside" in results["low"].problems[0]
    assert results["silent"].status == "no-metrics"
    assert results["broken"].status == "failed" and "boom" in results["broken"].error


def test_report_files(results, tmp_path):
    ranges = {"good": {"smoke": {"acc": {"min": 0.5}}}}
    md = write_report(list(results.values()), tmp_path, ranges).read_text()
    assert f"| good | smoke | {pick_device()} |" in md and "acc = 0.9 (expected >= 0.5)" in md
    assert "1 of 4 notebooks ok." in md
    page = (tmp_path / "report.html").read_text()
    assert 'aria-label="0.9 in &gt;= 0.5"' in page  # the number drawn against its range
    assert "site/good.html" not in page and "make site" in page  # no links to a site that is not built
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "good.html").write_text("")
    write_report(list(results.values()), tmp_path, ranges)
    assert '<a href="site/good.html">good</a>' in (tmp_path / "report.html").read_text()


def test_marker_shows_value_inside_or_outside_its_range():
    from course_utils.machinery.report_html import marker_svg

    assert 'aria-label="0.7 in [0.5, 0.9]"' in marker_svg(0.7, {"min": 0.5, "max": 0.9})
    outside = marker_svg(0.2, {"min": 0.5})
    assert 'aria-label="0.2 outside &gt;= 0.5"' in outside and "#cf222e" in outside
    assert "#1a7f37" in marker_svg(11689512, {"equals": 11689512})
    assert "#cf222e" in marker_svg(3, {"equals": 4})


def test_seconds_chart_has_a_bar_per_lesson_and_run(tmp_path):
    from course_utils.machinery.report import read_runs
    from course_utils.machinery.report_html import chart_bars, seconds_chart

    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "smoke.json").write_text('{"00_a": 6.5, "01_b": 9.0}')
    runs = read_runs(tmp_path)
    assert runs["smoke (this machine)"] == {"00_a": 6.5, "01_b": 9.0}
    runs = {"smoke": {"00_a": 6.5, "01_b": 9.0}, "light": {"00_a": 300.0}}
    lessons, bars = chart_bars(runs)
    assert lessons == ["00_a", "01_b"]
    assert bars == [("smoke", 0.0, 6.5), ("smoke", 1.0, 9.0), ("light", 0.4, 300.0)]
    svg = seconds_chart(runs)
    assert svg.startswith("<svg") and "<script" not in svg
    assert 'href="http' not in svg and "src=" not in svg  # nothing to fetch


def test_report_row_for_result_without_metrics(tmp_path):
    md = write_report([NotebookResult("x", "failed", 1.0, error="E: e")], tmp_path, {}).read_text()
    assert "| x | - | - | 1.0 | 0.0 | - | failed: E: e | - |" in md


def test_a_rehearsal_is_labelled_timed_and_not_held_to_the_real_ranges(tmp_path, monkeypatch):
    from course_utils.machinery.report import _save_run, data_source

    nb = _notebook(tmp_path / "r.ipynb", 'course_utils.record("acc", 0.1)\nsum(i * i for i in range(3_000_000))')
    ranges = {"r": {"light": {"acc": {"min": 0.5}}}}
    monkeypatch.delenv("COURSE_DATA_SOURCE", raising=False)
    with data_source("shapes"):  # what `course run --data shapes` does around the kernels
        res = execute(nb, tmp_path / "out", profile="light", ranges=ranges)
    assert "COURSE_DATA_SOURCE" not in __import__("os").environ  # put back afterwards
    assert res.rehearsal and res.profile == "light" and res.profile_label == "light (rehearsal)"
    assert res.status == "ok" and not res.problems  # made-up data: light's real ranges do not apply
    assert res.cpu_seconds is not None and 0.1 < res.cpu_seconds < res.seconds * 2 + 5  # the kernel's CPU time
    md = write_report([res], tmp_path, ranges).read_text()
    assert "| r | light (rehearsal) |" in md and "REHEARSAL: shapes world at real sizes, random weights" in md
    assert "REHEARSAL" in (tmp_path / "report.html").read_text()
    _save_run([res], tmp_path)
    assert list((tmp_path / "runs").glob("*.json")) == [tmp_path / "runs" / "light-rehearsal.json"]
    real = execute(nb, tmp_path / "out", profile="light", ranges=ranges)
    assert not real.rehearsal and real.status == "out-of-range"  # the same notebook on real data is checked


def test_cli_refuses_a_rehearsal_without_a_size(capsys):
    assert cli.main(["run", "--profile", "auto", "--data", "shapes"]) == 2
    assert "--data shapes needs --profile light or full" in capsys.readouterr().err
    assert cli.main(["run", "--profile", "smoke", "--data", "real"]) == 2


def test_cli_nb_clean_check(tmp_path, capsys):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("1", execution_count=3)
    nb.cells = [cell]
    path = tmp_path / "00_x.ipynb"
    nbformat.write(nb, path)
    assert cli.main(["nb", "clean", str(path), "--check"]) == 1
    assert cli.main(["nb", "clean", str(path), "--check"]) == 0
    assert "unchanged" in capsys.readouterr().out


def test_cli_help_lists_commands(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["--help"])
    assert stop.value.code == 0
    out = capsys.readouterr().out
    listed = re.search(r"^usage: course[^{]*\{([\w,]+)\}", out, re.M).group(1).split(",")  # the subcommands (the line may wrap)
    for cmd in ("run", "test", "doctor", "lab", "nb", "rehearse"):
        assert cmd in listed
        assert re.search(rf"^ {{4}}{cmd} +\w", out, re.M), f"{cmd} has no help line"


def test_a_kernel_that_dies_at_start_is_started_again(tmp_path, monkeypatch, capsys):
    """Another process can take a port the kernel was given before it binds it: start again, not 'failed'."""
    import papermill

    real, calls = papermill.execute_notebook, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("Kernel died before replying to kernel_info")
        return real(*args, **kwargs)

    monkeypatch.setattr(papermill, "execute_notebook", flaky)
    res = execute(_notebook(tmp_path / "again.ipynb", 'course_utils.record("acc", 0.9)'), tmp_path / "out",
                  profile="smoke", ranges={})
    assert len(calls) == 2 and res.status == "ok" and res.metrics == {"acc": 0.9}
    assert "starting again.ipynb again" in capsys.readouterr().out

    def dead(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("Kernel died before replying to kernel_info")

    calls.clear()
    monkeypatch.setattr(papermill, "execute_notebook", dead)
    res = execute(_notebook(tmp_path / "never.ipynb", "x = 1"), tmp_path / "out", profile="smoke", ranges={})
    assert len(calls) == 3 and res.status == "failed" and "kernel_info" in res.error  # then an honest failure
