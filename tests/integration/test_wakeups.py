"""Wake-ups across processes (hub.store.wakeups): a NOTIFY from one hub process reaches
another's listener on the same PostgreSQL database, not one on another database; SQLite's
stand-in does nothing."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from hub.store.wakeups import OUTBOX, POLICY, NoWakeups, PgWakeups, open_wakeups
from tests.db_fixtures import fresh_pg_database

pytestmark = pytest.mark.integration


class Heard:
    def __init__(self) -> None:
        self.payloads: list[str] = []
        self.changed = asyncio.Event()

    def __call__(self, payload: str) -> None:
        self.payloads.append(payload)
        self.changed.set()

    async def until(self, payload: str) -> None:
        while payload not in self.payloads:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 20)


@contextlib.asynccontextmanager
async def listening(url: str) -> AsyncIterator[Heard]:
    wakeups, heard, stop = open_wakeups(url), Heard(), asyncio.Event()
    task = asyncio.create_task(wakeups.listen(heard, stop))
    try:
        await heard.until(OUTBOX)  # said once on connecting: whatever came meanwhile
        heard.payloads.clear()
        yield heard
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)
        await wakeups.close()


async def test_a_notify_reaches_a_listener_on_the_same_database_only() -> None:
    async with (
        fresh_pg_database() as url,
        fresh_pg_database() as other_url,
        listening(url) as heard,
        listening(other_url) as elsewhere,
    ):
        sender = open_wakeups(url)
        assert isinstance(sender, PgWakeups)
        try:
            sender.notify(POLICY)
            await heard.until(POLICY)
            for _ in range(50):  # a burst is folded into a few NOTIFYs
                sender.notify(OUTBOX)
            await heard.until(OUTBOX)
        finally:
            await sender.close()
        assert 1 <= heard.payloads.count(OUTBOX) < 50
        assert elsewhere.payloads == []


async def test_sqlite_has_no_wakeups() -> None:
    wakeups = open_wakeups("sqlite+aiosqlite:///hub.db")
    assert isinstance(wakeups, NoWakeups)
    wakeups.notify(OUTBOX)  # nothing to send it through; workers poll
    stop = asyncio.Event()
    stop.set()
    await asyncio.wait_for(wakeups.listen(lambda _: None, stop), 1)
