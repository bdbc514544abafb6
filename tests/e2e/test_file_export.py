"""Scheduled file exports end to end: real RabbitMQ, the real database, files on disk.

The attendance team (Derbyshire schedule 3) takes its return as CSV files. In a real
`hub serve` process, posted events end up in files whose manifests' checksums match, with
only what the agreement released (an excluded path is an empty column), listed and
downloadable through the admin API (the download audited), and their disclosures
acknowledged. In a hub whose clock the test moves, the weekly window gives one file when
it opens, and an AMQP mirror on the same agreement shows the file holds no more than the
queue route carries."""

from __future__ import annotations

import asyncio
import csv
import functools
import hashlib
import io
import json
import sqlite3
import uuid
from collections.abc import Awaitable, Callable
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from hub.core.config import HubConfig
from hub.demo import SECRETS
from hub.settings import DEV_ADMIN_TOKEN
from hub.simulate import sample_data as data
from hub.simulate.school_agent import SchoolAgent
from tests.e2e.conftest import COUNTY, RunningHub, _wait_connected, hub_running
from tests.e2e.hub_process import hub_process

pytestmark = pytest.mark.integration

TEAM = "attendance-team"
MIRROR = "attendance-mirror"
ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
DAY = date(2026, 11, 23)
ZONE = "derbyshire"  # the county example's zone
PUPILS = [p for p in data.make_learners(12) if p.school.laestab == "8302001"][:3]
# Columns per object; AttendanceNote and Appeal are paths the agreement excludes.
EXPORT = {
    "LearnerAttendance": {
        "LearnerRefId": "@LearnerPersonalRefId",
        "Date": "AttendanceDate",
        "Session": "Session",
        "Mark": "AttendanceCode",
        "Note": "AttendanceNote",
    },
    "LearnerExclusion": {
        "LearnerRefId": "@LearnerPersonalRefId",
        "Category": "Category",
        "StartDate": "StartDate",
        "Sessions": "ActualSessions",
        "Appeal": "Appeal",
    },
}


def take_files(
    raw: dict[str, Any], directory: Path, *, immediate: bool, mirror: bool = False
) -> None:
    """The county example (as YAML data), changed so the attendance team takes files."""
    team = next(s for s in raw["subscribers"] if s["id"] == TEAM)
    team["delivery"] = {
        "type": "file",
        "directory": str(directory),
        "export": EXPORT,
        "filename": "attendance-{created:%Y%m%dT%H%M%S}-{seq}.csv",
        "quiet_seconds": 2,
    }
    agreement = next(g for g in raw["agreements"] if g["id"] == "DSA-ATT-2026")
    if immediate:  # a real process runs on the real clock: no waiting for Monday 07:00
        agreement["schedule"] = {"mode": "immediate"}
    if mirror:
        raw["subscribers"].append({"id": MIRROR, "name": "Attendance audit mirror (AMQP)"})
        agreement["recipients"].append(MIRROR)


async def send_return(client: httpx.AsyncClient, zone: str) -> None:
    """Hilltop's pupils, a morning's marks and one suspension."""
    agent = SchoolAgent(client, zone, "hilltop-mis", SECRETS["hilltop-mis"])
    assert (await agent.register()).ok
    for p in PUPILS:
        assert (await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))).ok
    for p, mark in zip(PUPILS, ["/", "N", "L"], strict=True):
        xml = data.learner_attendance(p, DAY, "AM", mark)
        assert (await agent.send_event("LearnerAttendance", "Add", xml)).ok
    xml = data.learner_exclusion(PUPILS[0], DAY, 4)
    assert (await agent.send_event("LearnerExclusion", "Add", xml)).ok


async def until(check: Callable[[], Awaitable[Any]], what: str, seconds: float = 60.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not (result := await check()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.2)
    return result


def rows_of(data_: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(data_.decode("utf-8"), newline="")))


def check_released_only(rows: list[dict[str, str]]) -> None:
    """What was posted is there; what the agreement excludes is not, in any row."""
    refids = {p.refid for p in PUPILS}
    marks = sorted(r["Mark"] for r in rows if r["object"] == "LearnerAttendance")
    assert marks == ["/", "L", "N"]
    assert {r["LearnerRefId"] for r in rows} <= refids
    (suspension,) = [r for r in rows if r["object"] == "LearnerExclusion"]
    assert (suspension["Category"], suspension["Sessions"]) == ("FIXD", "4")
    assert suspension["LearnerRefId"] == PUPILS[0].refid
    # Posted with an AttendanceNote and an Appeal, both excluded by DSA-ATT-2026.
    assert {r["Note"] for r in rows} == {""} and {r["Appeal"] for r in rows} == {""}


async def test_a_real_hub_writes_the_return_to_files_listed_and_downloadable(
    tmp_path: Path,
) -> None:
    exports = tmp_path / "exports"
    edit = functools.partial(take_files, directory=exports, immediate=True)
    async with hub_process(tmp_path, edit=edit) as hub:
        await send_return(hub.client, ZONE)

        async def listed() -> list[dict[str, Any]] | None:
            got = await hub.client.get(f"/admin/subscribers/{TEAM}/exports", headers=ADMIN)
            assert got.status_code == 200, got.text
            files: list[dict[str, Any]] = got.json()
            return files if sum(f["rows"] for f in files) >= 4 else None

        files = await until(listed, "the export files")
        downloads = {}
        for f in files:
            got = await hub.client.get(f"/admin/exports/{f['id']}", headers=ADMIN)
            assert got.status_code == 200, got.text
            assert got.headers["content-type"].startswith("text/csv")
            downloads[f["id"]] = got.content
        unknown = await hub.client.get(f"/admin/exports/{uuid.uuid4().hex}", headers=ADMIN)
        not_file = await hub.client.get("/admin/subscribers/cme/exports", headers=ADMIN)
        anonymous = await hub.client.get(f"/admin/exports/{files[0]['id']}")
        ready = (await hub.client.get("/health/ready")).json()["checks"]
    database = sqlite3.connect(hub.database)
    disclosed = database.execute(
        "SELECT copy_msg_id, acknowledged_at FROM disclosures WHERE subscriber = ?", (TEAM,)
    ).fetchall()
    audit = database.execute(
        "SELECT actor, subject FROM audit WHERE action = 'export.downloaded'"
    ).fetchall()
    database.close()

    assert sum(f["rows"] for f in files) == 4
    counts: dict[str, int] = {}
    rows: list[dict[str, str]] = []
    for f in files:
        on_disk = (exports / f["file_name"]).read_bytes()
        manifest = json.loads((exports / f["manifest_name"]).read_text())
        assert hashlib.sha256(on_disk).hexdigest() == manifest["sha256"] == f["sha256"]
        assert manifest["file"] == f["file_name"] and manifest["rows"] == f["rows"]
        assert manifest["agreements"] == ["DSA-ATT-2026@1"]
        assert downloads[f["id"]] == on_disk
        for name, n in manifest["counts"].items():
            counts[name] = counts.get(name, 0) + n
        rows += rows_of(on_disk)
    assert counts == {"LearnerAttendance": 3, "LearnerExclusion": 1}
    check_released_only(rows)
    # Every copy in a file is a disclosure, acknowledged once the file was written.
    assert sorted(c for c, _ in disclosed) == sorted(r["copy_id"] for r in rows)
    assert all(at is not None for _, at in disclosed)
    assert sorted(audit) == sorted(("bootstrap", f["id"]) for f in files)
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert not_file.status_code == 409 and not_file.json()["title"] == "Not a file subscriber"
    assert anonymous.status_code == 401
    assert ready[f"file:{TEAM}"] == "running" and ready[f"export:{TEAM}"] == "running"
    # Nothing but the files and their manifests is left in the directory.
    names = sorted(p.name for p in exports.iterdir())
    assert names == sorted([f["file_name"] for f in files] + [f["manifest_name"] for f in files])


async def _files(running: RunningHub) -> list[dict[str, Any]]:
    got = await running.admin("GET", f"/admin/subscribers/{TEAM}/exports")
    assert got.status_code == 200, got.text
    files: list[dict[str, Any]] = got.json()
    return files


async def test_the_weekly_window_gives_one_file_holding_no_more_than_the_queue_route(
    database_url: str, tmp_path: Path
) -> None:
    exports = tmp_path / "exports"
    raw = yaml.safe_load(COUNTY.read_text())
    take_files(raw, exports, immediate=False, mirror=True)
    raw["queue_prefix"] = f"sifhub-test-{uuid.uuid4().hex[:8]}"
    config = HubConfig.model_validate(raw)
    async with hub_running(database_url, tmp_path, config) as running:
        await _wait_connected(running.hub)
        await send_return(running.client, config.zones[0])
        await running.settle()
        await asyncio.sleep(3)  # longer than quiet_seconds: a file would have been cut
        before = await _files(running)
        assert not exports.exists() or list(exports.iterdir()) == []
        running.clock.advance(hours=1, minutes=1)  # Monday 07:01: the window has opened
        await running.release()

        async def one_file() -> list[dict[str, Any]]:
            files = await _files(running)
            return files if files and files[0]["rows"] == 4 else []

        (made,) = await until(one_file, "the weekly file")
        mirror = await running.drain(MIRROR, expect=4)
        content = (exports / made["file_name"]).read_bytes()
        (exports / made["file_name"]).unlink()  # removed by hand: recorded, not on disk
        gone = await running.admin("GET", f"/admin/exports/{made['id']}")

    assert before == []
    assert gone.status_code == 410 and gone.json()["title"] == "Export file gone"
    assert made["counts"] == {"LearnerAttendance": 3, "LearnerExclusion": 1}
    rows = rows_of(content)
    check_released_only(rows)
    # The file holds no more than the queue route: every non-empty cell's path is in the
    # mirror's copy of the same object (same agreement, same filter).
    by_object = {m.headers["hub-object"]: m for m in mirror}
    for row in rows:
        copy = by_object[row["object"]]
        paths = copy.element_paths()
        for column, path in EXPORT[row["object"]].items():
            if row[column] and not path.startswith("@"):
                assert path in paths, (column, path)
    assert "AttendanceNote" not in by_object["LearnerAttendance"].element_paths()
    # Kept for DSA-ATT-2026's retention (the default 365 days), then purged.
    kept = datetime.fromisoformat(made["delete_after"]) - datetime.fromisoformat(made["created_at"])
    assert kept == timedelta(days=365)
