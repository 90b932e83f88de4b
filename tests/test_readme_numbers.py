"""README prose numbers that come from a measurement file agree with it (they are typed by hand)."""
from __future__ import annotations

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SLOWEST = re.compile(r"the slowest, (\d\d), takes ([\d.]+) minutes; all (\d+) take ([\d.]+) minutes together")


def light_rehearsal_claims(readme: str) -> list[tuple[str, float, int, float]]:
    return [(m[1], float(m[2]), int(m[3]), float(m[4])) for m in SLOWEST.finditer(readme)]


def check_claims(claims, seconds: dict[str, float]) -> list[str]:
    """What the README says against the JSON: lesson and minutes of the slowest, count and total minutes."""
    problems = []
    slowest = max(seconds, key=seconds.get)
    for lesson, minutes, count, total in claims:
        if lesson != slowest[:2] or round(seconds[slowest] / 60, 1) != minutes:
            problems.append(f"slowest: README says {lesson} at {minutes} min, the JSON {slowest[:2]} at "
                            f"{seconds[slowest] / 60:.1f} min")
        if count != len(seconds) or round(sum(seconds.values()) / 60) != round(total):
            problems.append(f"total: README says {count} lessons in {total} min, the JSON {len(seconds)} in "
                            f"{sum(seconds.values()) / 60:.1f} min")
    return problems


def test_readme_light_rehearsal_numbers_match_the_measurements():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    seconds = json.loads((ROOT / "docs" / "measurements" / "rehearse-light.json").read_text())["seconds"]
    claims = light_rehearsal_claims(readme)
    assert claims, "README no longer states the light rehearsal's slowest lesson and total: update this test"
    assert not check_claims(claims, seconds)


def test_the_check_catches_a_wrong_total():
    seconds = {"00": 60.0, "01": 1743.2}  # 30.05 minutes in all, the slowest 29.1
    assert check_claims([("01", 29.1, 2, 30)], seconds) == []
    assert len(check_claims([("01", 29.1, 2, 29)], seconds)) == 1
    assert len(check_claims([("00", 1.0, 2, 30)], seconds)) == 1
