"""Released copies kept for subscribers that pull, their cursors and API keys (implements
hub.core.ports.Feeds).

The next cursor is taken by updating the subscriber's feed_heads row: its lock is held
until the transaction commits, so a later cursor never commits before an earlier one and
a reader paging with `since` never skips an item (on PostgreSQL as on SQLite).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update

from hub.core.envelope import Action
from hub.core.records import FeedItemRecord, FeedKeyRecord
from hub.store.models import feed_heads, feed_items, feed_keys
from hub.store.repos.base import SqlRepo, from_row, values_of


class SqlFeeds(SqlRepo):
    async def add(self, record: FeedItemRecord) -> int | None:
        cursor = await self._next_cursor(record.subscriber)
        known = select(feed_items.c.id).where(feed_items.c.copy_msg_id == record.copy_msg_id)
        if (await self._execute(known)).first() is not None:
            await self._execute(
                update(feed_heads)
                .where(feed_heads.c.subscriber == record.subscriber)
                .values(last_cursor=cursor - 1)
            )
            return None
        values = values_of(record, cursor=cursor, action=record.action.value)
        await self._execute(feed_items.insert().values(values))
        return cursor

    async def _next_cursor(self, subscriber: str) -> int:
        insert = self._insert(feed_heads).values(subscriber=subscriber, last_cursor=1)
        statement = insert.on_conflict_do_update(
            index_elements=["subscriber"], set_={"last_cursor": feed_heads.c.last_cursor + 1}
        ).returning(feed_heads.c.last_cursor)
        return int((await self._execute(statement)).scalar_one())

    async def page(self, subscriber: str, since: int, limit: int) -> list[FeedItemRecord]:
        query = (
            select(feed_items)
            .where(feed_items.c.subscriber == subscriber, feed_items.c.cursor > since)
            .order_by(feed_items.c.cursor)
            .limit(limit)
        )
        rows = (await self._execute(query)).all()
        return [
            from_row(FeedItemRecord, r, action=Action(r.action), body=bytes(r.body)) for r in rows
        ]

    async def purge(self, now: datetime, limit: int, dry_run: bool) -> int:
        query = (
            select(feed_items.c.id)
            .where(feed_items.c.purge_after <= now)
            .order_by(feed_items.c.purge_after)
            .limit(limit)
        )
        ids = list((await self._execute(query)).scalars().all())
        if ids and not dry_run:
            await self._execute(delete(feed_items).where(feed_items.c.id.in_(ids)))
        return len(ids)

    async def key(self, key_id: str) -> FeedKeyRecord | None:
        query = select(feed_keys).where(feed_keys.c.key_id == key_id)
        row = (await self._execute(query)).first()
        return from_row(FeedKeyRecord, row) if row is not None else None

    async def save_key(self, record: FeedKeyRecord) -> None:
        await self._upsert(feed_keys, values_of(record), ["subscriber"])
