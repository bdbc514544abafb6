"""`hub demo`, the README's first thing to try, runs against the real broker and shows a
copy leaving by each route (AMQP, SIF pull, webhook, JSON feed, file) and a CSV upload."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration


def test_the_demo_shows_every_route() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "hub", "demo"],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "HUB_LOG_LEVEL": "WARNING"},
        check=False,
    )
    out = done.stdout
    assert done.returncode == 0, done.stderr[-3000:]

    def copies(how: str) -> list[int]:
        return [int(n) for n in re.findall(rf": (\d+) copies \({re.escape(how)}", out)]

    assert max(copies("consumed over AMQP")) > 0
    assert copies("pulled by SIF agent capita-one") and min(copies("pulled by SIF agent")) > 0
    assert copies("pushed to its endpoint, signed") == [2]  # HR & Payroll: both staff
    assert copies("read from its JSON feed")[0] > 0
    assert "2 accepted, 1 refused" in out
    assert "line 4, column UPN: not a valid UPN" in out
    assert "reached 0 services" in out
    files = re.findall(r"file weekly-attendance-\d{8}-1\.csv: (\d+) rows", out)
    assert files and int(files[0]) > 0
    assert "copy_id,object,action,LearnerRefId,Date,Session,Mark" in out
