"""The course machinery: what the ``course`` command runs. No lesson imports anything from here.

    cli          the ``course`` command (``python -m course_utils``) and its subcommands
    nbtools      lesson notebooks: find, clean, sync badges and setup cells, refresh compared outputs
    report       execute lessons with papermill, check recorded numbers against ranges, build/report.md
    report_html  the report's HTML table and seconds chart
    rehearse     light/full rehearsals on the real-size shapes world, measured minutes
    site         the static course site (Sphinx + myst-nb) from executed lessons
    sitecheck    every page of the site in headless Chromium
    doctor       checks the installation and says what to fix
    data_cli     ``course data ...``: status, download, shapes worlds
    train_cli    ``course train ...`` (``python -m course_utils.train`` is the same)
    grading/     student copies, batch grading, the exercise audit

Nothing here runs on import.
"""
from __future__ import annotations

__all__ = ["cli", "nbtools", "report", "report_html", "rehearse", "site", "sitecheck", "doctor", "data_cli",
           "train_cli", "grading"]
