"""The pull feed in isolation on the in-memory store: a released copy becomes exactly one
feed item (a redelivery none), a copy without its disclosure row is never kept, cursors
page without gaps or repeats, items go at their agreement's retention, and the subscriber's
delivery configuration."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree
from pydantic import ValidationError

from hub.configfile import check_config, load_config
from hub.core import naming
from hub.core.config import ApiDelivery, Subscriber
from hub.core.envelope import Action
from hub.core.ports import Delivered
from hub.core.records import DisclosureRecord, FeedItemRecord
from hub.core.retry import RetryLadder
from hub.pipeline.feed import FeedContext, keep_copy
from hub.pipeline.retention import RetentionPolicy, purge
from hub.sif.build import event_copy
from hub.sif.names import NSMAP, q
from tests.fakes import FakeStore

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
LADDER = RetryLadder(delays_ms=(100, 200), max_attempts=3)
REFID = "0123456789ABCDEF0123456789ABCDEF"


def build(action: str) -> bytes:
    element = etree.Element(q("LearnerAttendance"), nsmap=NSMAP)  # type: ignore[arg-type]
    element.set("RefId", REFID)
    etree.SubElement(element, q("AttendanceDate")).text = "2026-12-01"
    etree.SubElement(element, q("Session")).text = "AM"
    return event_copy("2.4", "hilltop-mis", "C1", "LearnerAttendance", action, element)


BODIES = {action: build(action) for action in ("Add", "Delete")}


def body(action: str = "Add") -> bytes:
    return BODIES[action]


def copy(message_id: str = "C1", action: str = "Add", deferrals: int = 0) -> Delivered:
    headers = {naming.H_AGREEMENT: "DSA-VS", naming.H_AGREEMENT_VERSION: "1"}
    return Delivered(message_id=message_id, body=body(action), headers=headers, deferrals=deferrals)


def disclosure(copy_msg_id: str) -> DisclosureRecord:
    return DisclosureRecord(
        outbox_id="o",
        message_id="m",
        copy_msg_id=copy_msg_id,
        subscriber="vs",
        agreement_id="DSA-VS",
        agreement_version=1,
        object_name="LearnerAttendance",
        action=Action.ADD,
        school=None,
        subject_refid=None,
        published_at=T0,
    )


async def context(*disclosed: str) -> FeedContext:
    store = FakeStore()
    async with store.transaction() as tx:
        await tx.disclosures.add([disclosure(c) for c in disclosed])
    return FeedContext(
        store,
        lambda agreement, version: 30 if (agreement, version) == ("DSA-VS", 1) else 1,
        LADDER,
        lambda: T0,
        disclosure_waits=(),
        max_deferrals=2,
    )


async def items(ctx: FeedContext, subscriber: str = "vs") -> list[FeedItemRecord]:
    async with ctx.store.transaction() as tx:
        return await tx.feeds.page(subscriber, 0, 1000)


async def test_a_released_copy_is_one_item_and_a_redelivery_adds_none() -> None:
    ctx = await context("C1")
    first = await keep_copy(ctx, "vs", copy())
    again = await keep_copy(ctx, "vs", copy())
    kept = await items(ctx)
    assert (first.kind, again.kind) == ("done", "done")
    assert [(i.cursor, i.copy_msg_id, i.object_name, i.refid, i.action) for i in kept] == [
        (1, "C1", "LearnerAttendance", REFID, Action.ADD)
    ]
    assert kept[0].body == body()  # exactly as released
    assert kept[0].purge_after == T0 + timedelta(days=30)  # its agreement's retention


async def test_a_copy_without_its_disclosure_row_is_never_kept() -> None:
    ctx = await context()
    settles = [await keep_copy(ctx, "vs", copy(deferrals=n)) for n in range(3)]
    assert [(s.kind, s.deferrals) for s in settles] == [("retry", 1), ("retry", 2), ("dead", 3)]
    assert await items(ctx) == []


async def test_without_the_database_the_copy_waits_uncounted() -> None:
    ctx = await context("C1")
    assert isinstance(ctx.store, FakeStore)
    ctx.store.unavailable = True
    settle = await keep_copy(ctx, "vs", copy())
    assert (settle.kind, settle.delay_ms, settle.deferrals) == ("retry", 100, 0)
    ctx.store.unavailable = False
    assert await items(ctx) == []


async def test_cursors_page_every_item_once_in_order_per_subscriber() -> None:
    ids = [f"C{n}" for n in range(7)]
    ctx = await context(*ids, "X1")
    for n, copy_id in enumerate(ids):
        await keep_copy(ctx, "vs", copy(copy_id, action="Delete" if n == 3 else "Add"))
        if n == 2:
            await keep_copy(ctx, "other", copy("X1"))
    seen: list[tuple[int, str]] = []
    since = 0
    async with ctx.store.transaction() as tx:
        while page := await tx.feeds.page("vs", since, 3):
            seen += [(i.cursor, i.copy_msg_id) for i in page]
            since = page[-1].cursor
    assert seen == [(n + 1, copy_id) for n, copy_id in enumerate(ids)]
    assert [i.cursor for i in await items(ctx, "other")] == [1]
    assert (await items(ctx))[3].action is Action.DELETE


async def test_items_go_when_their_agreements_retention_has_passed() -> None:
    ctx = await context("C1", "C2")
    await keep_copy(ctx, "vs", copy("C1"))
    short = FeedContext(ctx.store, lambda a, v: 1, LADDER, lambda: T0, disclosure_waits=())
    await keep_copy(short, "vs", copy("C2"))
    counts = await purge(ctx.store, RetentionPolicy(), T0 + timedelta(days=2))
    assert counts is not None and counts.feed_items == 1
    assert [i.copy_msg_id for i in await items(ctx)] == ["C1"]


def test_api_delivery_is_a_subscriber_delivery_and_excludes_a_pull_agent() -> None:
    api = {"type": "api"}
    subscriber = Subscriber.model_validate({"id": "vs", "name": "VS", "delivery": api})
    assert isinstance(subscriber.delivery, ApiDelivery) and subscriber.delivery.concurrency == 16
    with pytest.raises(ValidationError, match="pull_agent"):
        Subscriber.model_validate({"id": "a", "name": "A", "pull_agent": "x", "delivery": api})
    with pytest.raises(ValidationError):
        Subscriber.model_validate({"id": "a", "name": "A", "delivery": {"type": "api", "x": 1}})


def test_the_schedule_6_example_pulls_children_in_care_twice_a_day() -> None:
    example = Path(__file__).resolve().parents[2] / "deploy/examples/derbyshire-virtual-school.yaml"
    assert check_config(example) == []
    config = load_config(example)
    [(subscriber, _)] = config.api_subscribers()
    [agreement] = config.agreements
    assert subscriber.id == "virtual-school" and agreement.recipients == ["virtual-school"]
    assert agreement.cohort == "children-in-care"
    assert agreement.schedule.mode == "windows" and len(agreement.schedule.times) == 2


# Copies arriving for two subscribers in any order, some redelivered, read back in pages
# of any size: every copy exactly once, in arrival order, cursors only growing.
ARRIVALS = st.lists(
    st.tuples(st.sampled_from(["vs", "other"]), st.integers(min_value=0, max_value=12)),
    max_size=40,
)


@settings(max_examples=200, deadline=None)
@given(ARRIVALS, st.integers(min_value=1, max_value=7))
def test_paging_reads_every_copy_once_in_order_whatever_arrives(
    arrivals: list[tuple[str, int]], limit: int
) -> None:
    async def play() -> tuple[dict[str, list[str]], dict[str, list[list[int]]]]:
        ctx = await context(*{f"{s}-{n}" for s, n in arrivals})
        for subscriber, n in arrivals:
            await keep_copy(ctx, subscriber, copy(f"{subscriber}-{n}"))
        pages: dict[str, list[list[int]]] = {}
        read: dict[str, list[str]] = {}
        for subscriber in ("vs", "other"):
            since = 0
            async with ctx.store.transaction() as tx:
                while page := await tx.feeds.page(subscriber, since, limit):
                    pages.setdefault(subscriber, []).append([i.cursor for i in page])
                    read.setdefault(subscriber, []).extend(i.copy_msg_id for i in page)
                    since = page[-1].cursor
        return read, pages

    read, pages = asyncio.run(play())
    for subscriber in ("vs", "other"):
        arrived = [f"{s}-{n}" for s, n in arrivals if s == subscriber]
        assert read.get(subscriber, []) == list(dict.fromkeys(arrived))
        cursors = [c for page in pages.get(subscriber, []) for c in page]
        assert cursors == list(range(1, len(cursors) + 1))
        assert all(len(page) <= limit for page in pages.get(subscriber, []))
