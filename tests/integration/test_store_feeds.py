"""Feed cursors under concurrency on PostgreSQL: the next cursor is taken under the
subscriber's feed_heads row lock, held to commit, so a later cursor never commits before
an earlier one and a reader paging with `since` never skips an item."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from hub.core.envelope import Action
from hub.core.records import FeedItemRecord
from hub.store import SqlStore

pytestmark = pytest.mark.integration

T0 = datetime(2026, 12, 7, 9, 30, tzinfo=UTC)


def item(copy: str) -> FeedItemRecord:
    return FeedItemRecord(
        subscriber="vs",
        copy_msg_id=copy,
        object_name="LearnerAttendance",
        refid=None,
        action=Action.ADD,
        body=b"<copy/>",
        released_at=T0,
        purge_after=T0 + timedelta(days=365),
    )


async def _add(store: SqlStore, copy: str) -> int | None:
    async with store.transaction() as tx:
        return await tx.feeds.add(item(copy))


async def _read(store: SqlStore) -> list[int]:
    async with store.transaction() as tx:
        return [i.cursor for i in await tx.feeds.page("vs", 0, 10)]


async def test_a_later_cursor_waits_for_the_earlier_one_to_commit(
    database_url: str, store: SqlStore
) -> None:
    if not database_url.startswith("postgresql"):
        pytest.skip("row locks are PostgreSQL's; SQLite serialises whole transactions")
    async with store.transaction() as first:
        assert await first.feeds.add(item("C1")) == 1
        second = asyncio.create_task(_add(store, "C2"))
        seen_meanwhile = await asyncio.wait_for(_read(store), timeout=10)
        await asyncio.sleep(0.3)  # room for the second to (wrongly) get ahead
        blocked = not second.done()
    assert await asyncio.wait_for(second, timeout=10) == 2
    assert (seen_meanwhile, blocked) == ([], True)
    assert await _read(store) == [1, 2]
