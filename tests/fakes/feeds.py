"""In-memory hub.core.ports.Feeds."""

from __future__ import annotations

import dataclasses
from datetime import datetime

from hub.core.records import FeedItemRecord, FeedKeyRecord
from tests.fakes.state import FakeRepo


class FakeFeeds(FakeRepo):
    async def add(self, record: FeedItemRecord) -> int | None:
        if any(i.copy_msg_id == record.copy_msg_id for i in self._state.feed_items):
            return None
        cursor = self._state.feed_heads.get(record.subscriber, 0) + 1
        self._state.feed_heads[record.subscriber] = cursor
        self._state.feed_items.append(dataclasses.replace(record, cursor=cursor))
        return cursor

    async def page(self, subscriber: str, since: int, limit: int) -> list[FeedItemRecord]:
        items = [i for i in self._state.feed_items if i.subscriber == subscriber]
        return sorted((i for i in items if i.cursor > since), key=lambda i: i.cursor)[:limit]

    async def purge(self, now: datetime, limit: int, dry_run: bool) -> int:
        old = sorted(
            (i for i in self._state.feed_items if i.purge_after <= now),
            key=lambda i: i.purge_after,
        )[:limit]
        if not dry_run:
            self._state.feed_items = [i for i in self._state.feed_items if i not in old]
        return len(old)

    async def key(self, key_id: str) -> FeedKeyRecord | None:
        return next((k for k in self._state.feed_keys.values() if k.key_id == key_id), None)

    async def save_key(self, record: FeedKeyRecord) -> None:
        self._state.feed_keys[record.subscriber] = record
