"""The JSON pull feed's own costs: keeping copies (one transaction each, the next cursor
taken under the feed_heads row lock, as hub.pipeline.feed does) and reading pages (the
page query, the disclosure acknowledgement and the XML -> JSON mapping, as
GET /api/v1/feeds/{subscriber} does). Measures only; nothing here asserts a figure.

    .venv/bin/python bench/feeds.py [--items N] [--writers W] [--limit L]
                                    [--database sqlite|postgresql|both]

Each item is a released LearnerPersonal copy shaped like the Virtual School's (names,
date of birth, UPN) with its disclosure row. `--writers` concurrent keepers share the
subscriber, as the deliverer's concurrency does; then one reader pages through the whole
feed `--limit` items at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DEFAULT_PG_URL, fresh_database, machine_facts

from adapters.json_feed import feed_item
from hub.core.envelope import Action
from hub.core.records import DisclosureRecord, FeedItemRecord
from hub.sif.schemas import load_schemas
from hub.store.store import SqlStore, open_store

SUBSCRIBER = "virtual-school"
NS = "http://www.sifinfo.org/uk/infrastructure/2.x"


def body(n: int) -> bytes:
    refid = f"{n:032X}"
    return (
        f"<?xml version='1.0' encoding='UTF-8'?><SIF_Message xmlns=\"{NS}\" Version=\"2.4\">"
        "<SIF_Event><SIF_Header><SIF_MsgId>X</SIF_MsgId><SIF_Timestamp>2026-12-07T09:30:00Z"
        "</SIF_Timestamp><SIF_SourceId>hilltop-mis</SIF_SourceId></SIF_Header><SIF_ObjectData>"
        '<SIF_EventObject ObjectName="LearnerPersonal" Action="Add">'
        f'<LearnerPersonal RefId="{refid}"><PersonalInformation><Name Type="C">'
        "<FamilyName>Smith</FamilyName><GivenName>Amelia</GivenName></Name><Demographics>"
        "<BirthDate>2015-04-12</BirthDate></Demographics></PersonalInformation>"
        f"<UPN>A83020011{n % 10000:04d}</UPN></LearnerPersonal></SIF_EventObject>"
        "</SIF_ObjectData></SIF_Event></SIF_Message>"
    ).encode()


def item(n: int, now: datetime) -> FeedItemRecord:
    return FeedItemRecord(
        subscriber=SUBSCRIBER,
        copy_msg_id=uuid.uuid4().hex.upper(),
        object_name="LearnerPersonal",
        refid=f"{n:032X}",
        action=Action.ADD,
        body=body(n),
        released_at=now,
        purge_after=now + timedelta(days=365),
    )


def disclosure(record: FeedItemRecord) -> DisclosureRecord:
    return DisclosureRecord(
        outbox_id=uuid.uuid4().hex,
        message_id=uuid.uuid4().hex,
        copy_msg_id=record.copy_msg_id,
        subscriber=SUBSCRIBER,
        agreement_id="DCC-ISS6-2026",
        agreement_version=1,
        object_name="LearnerPersonal",
        action=Action.ADD,
        school="8302001",
        subject_refid=record.refid,
        published_at=record.released_at,
    )


async def keep(store: SqlStore, records: list[FeedItemRecord], writers: int) -> float:
    async with store.transaction() as tx:
        await tx.disclosures.add([disclosure(r) for r in records])
    queue = list(records)

    async def writer() -> None:
        while queue:
            record = queue.pop()
            async with store.transaction() as tx:
                await tx.feeds.add(record)

    began = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(writers)))
    return time.perf_counter() - began


async def read_all(store: SqlStore, limit: int) -> tuple[float, float, int]:
    """(seconds in the database, seconds mapping to JSON, items read)."""
    repeating = load_schemas().repeating_paths("LearnerPersonal")
    since, read, db_s, map_s = 0, 0, 0.0, 0.0
    while True:
        began = time.perf_counter()
        async with store.transaction() as tx:
            rows = await tx.feeds.page(SUBSCRIBER, since, limit + 1)
            await tx.disclosures.acknowledge(
                [r.copy_msg_id for r in rows[:limit]], datetime.now(UTC)
            )
        mapped = time.perf_counter()
        for r in rows[:limit]:
            feed_item(
                cursor=r.cursor,
                copy_msg_id=r.copy_msg_id,
                object_name=r.object_name,
                refid=r.refid,
                action=r.action.value,
                released_at=r.released_at,
                body=r.body,
                repeating=repeating,
            )
        db_s += mapped - began
        map_s += time.perf_counter() - mapped
        read += min(len(rows), limit)
        if len(rows) <= limit:
            return db_s, map_s, read
        since = rows[limit - 1].cursor


async def run(backend: str, items: int, writers: int, limit: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with fresh_database(backend, Path(tmp), DEFAULT_PG_URL) as url:
            store = await open_store(url)
            try:
                now = datetime.now(UTC)
                kept_s = await keep(store, [item(n, now) for n in range(items)], writers)
                db_s, map_s, read = await read_all(store, limit)
                async with store.transaction() as tx:
                    last = (await tx.feeds.page(SUBSCRIBER, items - 1, 10))[0].cursor
            finally:
                await store.close()
    print(
        f"{backend}: kept {items} items with {writers} writers in {kept_s:.2f} s "
        f"({items / kept_s:.0f}/s, last cursor {last}); read {read} in pages of {limit}: "
        f"database {db_s:.2f} s, mapping {map_s:.2f} s "
        f"({read / (db_s + map_s):.0f} items/s, {map_s / read * 1e6:.0f} us/item to JSON)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=5000)
    parser.add_argument("--writers", type=int, default=16)
    parser.add_argument("--limit", type=int, default=100)
    parser.add_argument("--database", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args()
    print(" ".join(f"{k}={v}" for k, v in machine_facts().items()))
    backends = ["sqlite", "postgresql"] if args.database == "both" else [args.database]
    for backend in backends:
        asyncio.run(run(backend, args.items, args.writers, args.limit))


if __name__ == "__main__":
    main()
