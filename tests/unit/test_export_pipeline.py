"""The file export stage on the in-memory store: a copy is staged only once its
disclosure row is written, once per copy; a file is cut only after the queue has been quiet
(or a file's worth is waiting), holds exactly the staged cells, acknowledges its copies'
disclosures, and goes with its rows when retention ends."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from adapters.file_export import CsvFiles
from hub.composition import build_hub
from hub.core import naming
from hub.core.config import FileDelivery, HubConfig
from hub.core.envelope import Action
from hub.core.ports import Delivered
from hub.core.records import DisclosureRecord
from hub.core.retry import RetryLadder
from hub.pipeline.deliver import PushContext
from hub.pipeline.export import (
    ExportContext,
    ExportSpecInvalid,
    cut_and_report,
    cut_once,
    stage_copy,
)
from hub.pipeline.retention import RetentionPolicy, purge
from hub.settings import Settings
from tests.fakes import FakeStore
from tests.unit.test_file_export import copy_of

T0 = datetime(2026, 3, 2, 7, 0, tzinfo=UTC)
SUB = "capita"


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass
class Setup:
    ctx: ExportContext
    store: FakeStore
    clock: Clock
    target: FileDelivery
    copies: dict[str, Delivered] = field(default_factory=dict)


def disclosure(copy_id: str) -> DisclosureRecord:
    return DisclosureRecord(
        outbox_id="o",
        message_id="m",
        copy_msg_id=copy_id,
        subscriber=SUB,
        agreement_id="DSA-B2B",
        agreement_version=1,
        object_name="LearnerPersonal",
        action=Action.ADD,
        school="8302001",
        subject_refid=None,
        published_at=T0,
    )


def copy(copy_id: str, values: dict[str, str]) -> Delivered:
    headers = {
        naming.H_OBJECT: "LearnerPersonal",
        naming.H_ACTION: "Add",
        naming.H_AGREEMENT: "DSA-B2B",
        naming.H_AGREEMENT_VERSION: "1",
    }
    return Delivered(message_id=copy_id, body=copy_of(values), headers=headers)


def setup(tmp_path: Path, **extra: object) -> Setup:
    store, clock = FakeStore(), Clock()
    push = PushContext(store, None, RetryLadder(), clock, disclosure_waits=(), max_deferrals=2)  # type: ignore[arg-type]
    ctx = ExportContext(store, CsvFiles(), push, lambda agreement, version: 30, clock)
    target = FileDelivery.model_validate(
        {
            "type": "file",
            "directory": str(tmp_path),
            "export": {
                "LearnerPersonal": {
                    "UPN": "UPN",
                    "Surname": "PersonalInformation/Name/FamilyName",
                    "RefId": "@RefId",
                }
            },
            "filename": "{subscriber}-{seq}.csv",
            "quiet_seconds": 5,
            **extra,
        }
    )
    return Setup(ctx, store, clock, target)


async def disclose(s: Setup, *copy_ids: str) -> None:
    async with s.store.transaction() as tx:
        await tx.disclosures.add([disclosure(c) for c in copy_ids])


async def test_a_copy_waits_for_its_disclosure_row_then_is_staged_once(tmp_path: Path) -> None:
    s = setup(tmp_path)
    c1 = copy("C1", {"UPN": "A123456789012", "@RefId": "R1"})
    early = await stage_copy(s.ctx, SUB, s.target, c1)
    assert (early.kind, early.deferrals) == ("retry", 1)
    assert s.store.state.export_rows == {}
    await disclose(s, "C1")
    assert (await stage_copy(s.ctx, SUB, s.target, c1)).kind == "done"
    assert (await stage_copy(s.ctx, SUB, s.target, c1)).kind == "done"  # re-sent
    rows = s.store.state.export_rows
    assert list(rows) == ["C1"]
    assert rows["C1"].cells == {"UPN": "A123456789012", "Surname": "", "RefId": "R1"}
    assert (rows["C1"].agreement_id, rows["C1"].agreement_version) == ("DSA-B2B", 1)


async def test_an_acknowledged_copy_is_not_staged_again(tmp_path: Path) -> None:
    s = setup(tmp_path)
    await disclose(s, "C1")
    async with s.store.transaction() as tx:
        await tx.disclosures.acknowledge(["C1"], T0)
    assert (await stage_copy(s.ctx, SUB, s.target, copy("C1", {}))).kind == "done"
    assert s.store.state.export_rows == {}


async def test_a_file_is_cut_after_the_queue_goes_quiet(tmp_path: Path) -> None:
    s = setup(tmp_path)
    await disclose(s, "C1", "C2")
    await stage_copy(s.ctx, SUB, s.target, copy("C1", {"UPN": "=cmd", "@RefId": "R1"}))
    s.clock.advance(3)
    await stage_copy(
        s.ctx, SUB, s.target, copy("C2", {"UPN": "B2", "PersonalInformation/Name/FamilyName": "Ng"})
    )
    s.clock.advance(4)  # 7 s after the first, 4 s after the last: not quiet yet
    assert await cut_once(s.ctx, SUB, s.target) is None
    s.clock.advance(1)
    made = await cut_once(s.ctx, SUB, s.target)
    assert made is not None and (made.seq, made.rows, made.file_name) == (1, 2, "capita-1.csv")
    assert made.counts == {"LearnerPersonal": 2} and made.agreements == ["DSA-B2B@1"]
    assert made.purge_after == s.clock.now + timedelta(days=30)  # its agreement's retention
    read = list(csv.reader(io.StringIO((tmp_path / "capita-1.csv").read_text(), newline="")))
    assert read == [
        ["copy_id", "object", "action", "UPN", "Surname", "RefId"],
        ["C1", "LearnerPersonal", "Add", "'=cmd", "", "R1"],
        ["C2", "LearnerPersonal", "Add", "B2", "Ng", ""],
    ]
    manifest = json.loads((tmp_path / "capita-1.csv.manifest.json").read_text())
    assert manifest["sha256"] == made.sha256 and manifest["counts"] == {"LearnerPersonal": 2}
    assert {d.copy_msg_id: d.acknowledged_at for d in s.store.state.disclosures} == {
        "C1": s.clock.now,
        "C2": s.clock.now,
    }
    assert [a.action for a in s.store.state.audit] == ["export.written"]
    s.clock.advance(60)
    assert await cut_once(s.ctx, SUB, s.target) is None  # nothing waits: no empty file


async def test_a_full_file_is_cut_without_waiting(tmp_path: Path) -> None:
    s = setup(tmp_path, max_rows=2)
    await disclose(s, "C1", "C2", "C3")
    for c in ("C1", "C2", "C3"):
        await stage_copy(s.ctx, SUB, s.target, copy(c, {"UPN": c}))
    first = await cut_once(s.ctx, SUB, s.target)
    assert first is not None and first.rows == 2
    assert await cut_once(s.ctx, SUB, s.target) is None  # one left, not quiet yet
    s.clock.advance(5)
    second = await cut_once(s.ctx, SUB, s.target)
    assert second is not None and (second.seq, second.rows) == (2, 1)


async def test_retention_deletes_the_file_its_manifest_and_its_rows(tmp_path: Path) -> None:
    s = setup(tmp_path)
    await disclose(s, "C1")
    await stage_copy(s.ctx, SUB, s.target, copy("C1", {"UPN": "A1"}))
    s.clock.advance(5)
    made = await cut_once(s.ctx, SUB, s.target)
    assert made is not None
    policy = RetentionPolicy()
    early = await purge(s.store, policy, made.purge_after - timedelta(seconds=1), files=CsvFiles())
    assert early is not None and early.export_files == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "capita-1.csv",
        "capita-1.csv.manifest.json",
    ]
    dry = await purge(s.store, policy, made.purge_after, dry_run=True, files=CsvFiles())
    assert dry is not None and (dry.export_files, dry.export_rows) == (1, 1)
    assert len(list(tmp_path.iterdir())) == 2
    done = await purge(s.store, policy, made.purge_after, files=CsvFiles())
    assert done is not None and (done.export_files, done.export_rows) == (1, 1)
    assert list(tmp_path.iterdir()) == []
    assert s.store.state.export_rows == {} and s.store.state.export_files == {}


async def test_rows_no_file_took_are_purged_after_the_uncovered_period(tmp_path: Path) -> None:
    s = setup(tmp_path)
    await disclose(s, "C1")
    await stage_copy(s.ctx, SUB, s.target, copy("C1", {"UPN": "A1"}))
    policy = RetentionPolicy(uncovered_days=30)
    kept = await purge(s.store, policy, T0 + timedelta(days=29), files=CsvFiles())
    assert kept is not None and kept.export_rows == 0 and list(s.store.state.export_rows) == ["C1"]
    gone = await purge(s.store, policy, T0 + timedelta(days=31), files=CsvFiles())
    assert gone is not None and gone.export_rows == 1 and s.store.state.export_rows == {}
    assert [d.acknowledged_at for d in s.store.state.disclosures] == [None]


async def test_a_directory_that_cannot_be_written_keeps_the_rows_and_shows_failing(
    tmp_path: Path,
) -> None:
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the export directory should be")
    s = setup(blocked)
    await disclose(s, "C1")
    await stage_copy(s.ctx, SUB, s.target, copy("C1", {"UPN": "A1"}))
    s.clock.advance(5)
    await cut_and_report(s.ctx, SUB, s.target)
    assert s.ctx.status[f"export:{SUB}"] == "failing"
    assert s.store.state.export_files == {}
    assert [d.acknowledged_at for d in s.store.state.disclosures] == [None]
    blocked.unlink()  # ops fix the directory: the same rows go into the next file
    await cut_and_report(s.ctx, SUB, s.target)
    assert s.ctx.status[f"export:{SUB}"] == "running"
    (made,) = s.store.state.export_files.values()
    assert made.rows == 1 and (blocked / made.file_name).is_file()


async def test_a_hub_refuses_to_start_with_a_column_the_schemas_do_not_know(
    tmp_path: Path,
) -> None:
    raw = {
        "zones": ["z"],
        "subscribers": [
            {
                "id": SUB,
                "name": "Capita ONE",
                "delivery": {
                    "type": "file",
                    "directory": str(tmp_path),
                    "export": {"LearnerPersonal": {"Middle": "PersonalInformation/Name/Middle"}},
                },
            }
        ],
    }
    settings = Settings(data_dir=tmp_path, database_url=f"sqlite+aiosqlite:///{tmp_path}/h.db")
    with pytest.raises(ExportSpecInvalid, match="LearnerPersonal has no PersonalInformation"):
        await build_hub(settings, HubConfig.model_validate(raw))
    assert not (tmp_path / "h.db").exists()  # refused before anything was touched
