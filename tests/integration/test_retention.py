"""Retention against the real databases: payloads go once their agreements' retention has
passed (never while a copy is still held), messages no agreement covered go after the
hub-wide maximum, accountability records after theirs; every purge is audited; a dry run
changes nothing; SQLite gives the space back; two hubs never purge at once."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import make_url

from hub.core.records import (
    AuditRecord,
    HeldRecord,
    OutboxRecord,
    PurgeCounts,
    RejectionRecord,
)
from hub.pipeline.retention import RetentionPolicy, purge
from hub.store import SqlStore, open_store
from hub.store.models import audit
from tests.integration.test_store import accept, claim, count, disclosure, message, new_id

pytestmark = pytest.mark.integration

POLICY = RetentionPolicy(uncovered_days=30, rejected_days=30, accountability_days=2190, batch=7)


def _now() -> datetime:
    return datetime.now(UTC)


async def _route(store: SqlStore, items: list[OutboxRecord], keep_days: int) -> None:
    """What dispatch does: disclosures and done rows, each kept `keep_days` after routing."""
    await claim(store, _now())
    async with store.transaction() as tx:
        await tx.disclosures.add([disclosure(i, "la-send") for i in items])
        done = [(i.id, _now() + timedelta(days=keep_days)) for i in items]
        assert sorted(await tx.outbox.complete(done)) == sorted(i.id for i in items)


async def test_purge_follows_each_rule_and_is_audited(store: SqlStore) -> None:
    short = await accept(store, message(), objects=3)  # a 10-day agreement
    long = await accept(store, message(), objects=2)  # a 400-day agreement
    await _route(store, short, 10)
    await _route(store, long, 400)
    held_back = await accept(store, message())  # routed, but a copy still waits
    await _route(store, held_back, 10)
    copy = HeldRecord(new_id(), held_back[0].id, "la-send", "dsa-1", "suspended", _now())
    unrouted = message(object_name=None)  # an Identity, say: nothing to route
    async with store.transaction() as tx:
        await tx.held.add([copy])
        await tx.messages.add(unrouted)
        await tx.audit.add_rejection(RejectionRecord(_now(), "agent-1", "zone-1", 1, 3))

    later = _now() + timedelta(days=31)
    dry = await purge(store, POLICY, later, dry_run=True, actor="test")
    assert dry == PurgeCounts(outbox=3, messages=2, rejections=1)
    assert await count(store, "outbox") == 6  # a dry run deletes nothing

    assert await purge(store, POLICY, later, actor="test") == dry
    assert await count(store, "outbox") == 3 and await count(store, "messages") == 2
    assert await count(store, "disclosures") == 6  # the accountability record stays
    async with store.engine.connect() as conn:
        rows = (
            await conn.execute(
                select(audit.c.action, audit.c.detail).where(audit.c.action.like("retention.%"))
            )
        ).all()
    assert [(r.action, r.detail["outbox"]) for r in rows] == [
        ("retention.dry_run", 3),
        ("retention.purged", 3),
    ]

    async with store.transaction() as tx:  # the held copy is released: its object may go
        await tx.held.settle([copy.id], "released", later)
    much_later = _now() + timedelta(days=401)
    counts = await purge(store, POLICY, much_later)
    assert counts is not None
    assert (counts.outbox, counts.held, counts.messages) == (3, 1, 2)
    assert await count(store, "outbox") == 0 and await count(store, "messages") == 0

    accountability = _now() + timedelta(days=2191)
    counts = await purge(store, POLICY, accountability)
    assert counts is not None and counts.disclosures == 6 and counts.audit >= 3
    assert await count(store, "disclosures") == 0


async def test_an_object_not_yet_routed_is_never_purged(store: SqlStore) -> None:
    await accept(store, message(), objects=2)  # broker down for a year: still pending
    counts = await purge(store, POLICY, _now() + timedelta(days=400))
    assert counts == PurgeCounts()
    assert await count(store, "outbox") == 2 and await count(store, "messages") == 1


async def test_another_hubs_purge_is_not_run_twice(database_url: str, store: SqlStore) -> None:
    if make_url(database_url).get_backend_name() != "postgresql":
        pytest.skip("SQLite has one writer: two purges cannot overlap (the lock is PostgreSQL's)")
    await _route(store, await accept(store, message()), 1)
    holding, release = asyncio.Event(), asyncio.Event()

    async def other_hub() -> None:
        async with store.transaction() as tx:
            assert await tx.retention.exclusive()
            holding.set()
            await release.wait()

    task = asyncio.create_task(other_hub())
    await holding.wait()
    assert await purge(store, POLICY, _now() + timedelta(days=2)) is None
    release.set()
    await task
    counts = await purge(store, POLICY, _now() + timedelta(days=2))
    assert counts is not None and counts.outbox == 1


async def test_sqlite_gives_the_space_back(tmp_path: Path) -> None:
    path = tmp_path / "hub.db"
    store = await open_store(f"sqlite+aiosqlite:///{path}")
    try:
        blob = os.urandom(6000)  # incompressible payloads of a realistic size
        for _ in range(10):
            items = []
            for _ in range(25):
                items += await accept(store, dataclasses.replace(message(), payload=blob))
            await _route(store, items, 1)
        before = await _file_size(store, path)
        counts = await purge(store, POLICY, _now() + timedelta(days=2))
        assert counts is not None and counts.messages == 250
        after = await _file_size(store, path)
        assert after < before / 2, (before, after)
    finally:
        await store.close()


async def _file_size(store: SqlStore, path: Path) -> int:
    """The database file's size with the write-ahead log folded in."""
    async with store.engine.connect() as conn:
        driver = (await conn.get_raw_connection()).driver_connection
        assert driver is not None  # outside any transaction: a checkpoint needs that
        await (await driver.execute("PRAGMA wal_checkpoint(TRUNCATE)")).fetchall()
    return path.stat().st_size


async def test_audit_rows_of_purges_name_no_one(store: SqlStore) -> None:
    await purge(store, POLICY, _now(), actor="cli")
    async with store.transaction() as tx:
        await tx.audit.add(AuditRecord(_now(), "x", "y", "z", {}))
    async with store.engine.connect() as conn:
        detail = (
            await conn.execute(select(audit.c.detail).where(audit.c.action == "retention.purged"))
        ).scalar_one()
    assert set(detail) == {f.name for f in dataclasses.fields(PurgeCounts)}


async def test_hub_purge_prints_counts_and_a_dry_run_changes_nothing(database_url: str) -> None:
    store = await open_store(database_url)
    try:
        await _route(store, await accept(store, message(), objects=2), -1)  # already due
    finally:
        await store.close()
    env = {**os.environ, "HUB_DATABASE_URL": database_url}
    hub = str(Path(sys.executable).with_name("hub"))

    def run(*args: str) -> str:
        done = subprocess.run(
            [hub, "purge", *args], env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "would remove 2 outbox\nwould remove 1 messages\n" in run("--dry-run")
    assert "removed 2 outbox\nremoved 1 messages\n" in run("--vacuum")
    assert "removed 0 outbox\n" in run()
