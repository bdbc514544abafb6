"""Where an agreement is applied and a message leaves: outbox -> filtered copies -> queues.

Claims outbox rows, asks the policy who may receive each object, cuts each copy down with
the one filter, publishes all copies with pipelined confirms, and only then records the
disclosures (and any copies held for a window or a suspension) and marks the rows done, in
one transaction. A crash between confirm and commit re-sends the same copies (same message
ids): delivery is at-least-once. When the broker confirms only some of a row's copies, the
confirmed ones are logged at once and the row's retry sends only the rest: every copy that
left is in the log, even if the retry is no longer entitled to send it.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from lxml import etree

from hub.core import naming
from hub.core.envelope import HUB_VERSION
from hub.core.policy import Copy, Item, Policy, decide
from hub.core.ports import (
    NO_METRICS,
    BrokerUnavailable,
    Metrics,
    Outgoing,
    Publisher,
    Store,
    StoreUnavailable,
    Tx,
)
from hub.core.records import DisclosureRecord, HeldRecord, OutboxRecord
from hub.core.retry import RetryPolicy, compute_backoff
from hub.pipeline.batches import publish_copies
from hub.pipeline.offload import Offload
from hub.sif.build import copy_msg_id, event_copy
from hub.sif.facts import values_at
from hub.sif.filter import apply_filter, released_paths
from hub.sif.parse import parse_trusted

log = logging.getLogger("hub.dispatch")


@dataclass
class DispatchContext:
    store: Store
    publisher: Publisher
    policy: Callable[[], Policy]
    queue_prefix: str = naming.PREFIX
    batch: int = 200
    lease_seconds: float = 60.0
    # Poll after an empty claim, doubling up to idle_max_seconds while nothing comes;
    # `wake` (set by ingest after each commit with new work) ends any wait at once.
    idle_seconds: float = 0.05
    idle_max_seconds: float = 1.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    wake: asyncio.Event = field(default_factory=asyncio.Event)
    release_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # Payloads no agreement covers are kept this long after routing (hub-wide maximum).
    uncovered_days: int = 30
    # Copies awaiting a learner's identity are dropped (audited) after this long.
    identity_hold_days: int = 14
    # A row failing this often for a reason of its own (not the broker being away) is
    # parked: set aside until ops re-drive it.
    max_attempts: int = 10
    metrics: Metrics = NO_METRICS
    # Planning a batch (parse, decide, filter each copy) holding large objects runs in a
    # worker thread, bounded like ingest's parsing (the same Offload in a composed hub).
    offload: Offload = field(default_factory=Offload)
    # {subscriber: copies per AMQP message} for those that take batches (hub.pipeline.batches).
    copy_batches: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Identity:
    """Whose data an object is, as far as the hub knows: the learner's RefId (from the
    object, or remembered for the object's own RefId), its UPN (canonical) and the UPNs
    it had before (a UPN-keyed exclusion keeps holding across a change of UPN)."""

    refid: str | None = None
    upn: str | None = None
    former_upns: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Release:
    """One copy ready to go: what is published and what the disclosure log records."""

    copy: Copy
    outgoing: Outgoing
    paths: tuple[str, ...]


@dataclass(frozen=True)
class Planned:
    item: OutboxRecord
    who: Identity
    releases: list[Release]
    held: list[Copy]

    def purge_after(self, at: datetime, uncovered_days: int) -> datetime:
        """Routing time plus the longest retention of the agreements concerned, or the
        hub-wide maximum when none was."""
        days = [r.copy.retention_days for r in self.releases] + [
            c.retention_days for c in self.held
        ]
        return at + timedelta(days=max(days) if days else uncovered_days)


async def identities(tx: Tx, records: Sequence[OutboxRecord]) -> dict[str, Identity]:
    """{outbox id: Identity}: a partial event's learner through its object's RefId."""
    unresolved = [r.object_refid for r in records if r.subject_refid is None and r.object_refid]
    learners = await tx.learners.learners_of(unresolved) if unresolved else {}
    refids = {r.id: r.subject_refid or learners.get(r.object_refid or "") for r in records}
    known = [x for x in refids.values() if x]
    upns = await tx.learners.upns(known)
    former = await tx.learners.former_upns(known)
    return {
        i: Identity(
            refid=x,
            upn=upns.get(x) if x else None,
            former_upns=former.get(x, frozenset()) if x else frozenset(),
        )
        for i, x in refids.items()
    }


def item_of(
    record: OutboxRecord, who: Identity, element: etree._Element | None, policy: Policy
) -> Item:
    paths = policy.conditions.get(record.object_name, frozenset())
    values = values_at(element, paths) if element is not None and paths else {}
    return Item(
        object_name=record.object_name,
        action=record.action,
        school=record.school,
        subject_refid=who.refid,
        upn=who.upn,
        values=values,
        schools=record.schools,
        former_upns=who.former_upns,
    )


def release(record: OutboxRecord, copy: Copy, element: etree._Element, prefix: str) -> Release:
    """Cut the copy down with the one filter and wrap it for its subscriber's queue."""
    msg_id = copy_msg_id(record.id, copy.subscriber, copy.agreement_id)
    filtered = apply_filter(element, copy.filter)
    body = event_copy(
        HUB_VERSION, record.source_agent, msg_id, record.object_name, record.action.value, filtered
    )
    headers = {
        naming.H_MESSAGE_ID: record.message_id,
        naming.H_ZONE: record.zone,
        naming.H_OBJECT: record.object_name,
        naming.H_ACTION: record.action.value,
        naming.H_SOURCE: record.source_agent,
        naming.H_SCHOOL: record.school or "",
        naming.H_AGREEMENT: copy.agreement_id,
        naming.H_AGREEMENT_VERSION: str(copy.agreement_version),
        naming.H_SUBSCRIBER: copy.subscriber,
    }
    outgoing = Outgoing(naming.subscriber_queue(copy.subscriber, prefix), body, msg_id, headers)
    return Release(copy, outgoing, tuple(released_paths(filtered)))


def plan(
    record: OutboxRecord, policy: Policy, who: Identity, prefix: str = naming.PREFIX
) -> Planned:
    element = parse_trusted(record.object_xml)
    copies = decide(item_of(record, who, element, policy), policy)
    ready = [c for c in copies if c.hold is None]
    held = [c for c in copies if c.hold is not None]
    return Planned(record, who, [release(record, c, element, prefix) for c in ready], held)


def disclosure(record: OutboxRecord, rel: Release, who: Identity, at: datetime) -> DisclosureRecord:
    return DisclosureRecord(
        outbox_id=record.id,
        message_id=record.message_id,
        copy_msg_id=rel.outgoing.message_id,
        subscriber=rel.copy.subscriber,
        agreement_id=rel.copy.agreement_id,
        agreement_version=rel.copy.agreement_version,
        object_name=record.object_name,
        action=record.action,
        school=record.school,
        subject_refid=who.refid,
        published_at=at,
        upn=who.upn,
        lawful_basis=rel.copy.lawful_basis,
        purpose=rel.copy.purpose,
        paths=rel.paths,
    )


def held_record(record: OutboxRecord, copy: Copy, at: datetime) -> HeldRecord:
    return HeldRecord(
        id=uuid.uuid4().hex,
        outbox_id=record.id,
        subscriber=copy.subscriber,
        agreement_id=copy.agreement_id,
        reason=copy.hold or "",
        held_at=at,
        release_after=copy.release_after,
    )


async def dispatch_once(ctx: DispatchContext) -> int:
    """Route one batch; returns how many outbox rows were claimed."""
    async with ctx.store.transaction() as tx:
        items = await tx.outbox.claim(ctx.batch, ctx.clock(), ctx.lease_seconds)
        who = await identities(tx, items) if items else {}
    if not items:
        return 0
    policy = ctx.policy()
    size = sum(len(i.object_xml) for i in items)
    planned = await _unsent(
        await ctx.offload.run(
            size, lambda: [plan(i, policy, who[i.id], ctx.queue_prefix) for i in items]
        ),
        ctx,
    )
    outgoing = [r.outgoing for p in planned for r in p.releases]
    results = await publish_copies(ctx.publisher, outgoing, ctx.copy_batches)
    await _settle(ctx, planned, results)
    return len(items)


async def _unsent(planned: list[Planned], ctx: DispatchContext) -> list[Planned]:
    """Leave out the copies that have left already: a row retried after the broker confirmed
    some of its copies but not all (those are logged; see _settle) sends only the rest."""
    ids = [r.outgoing.message_id for p in planned for r in p.releases]
    if not ids:
        return planned
    async with ctx.store.transaction() as tx:
        logged = await tx.disclosures.logged(ids)
    if not logged:
        return planned
    return [
        replace(p, releases=[r for r in p.releases if r.outgoing.message_id not in logged])
        for p in planned
    ]


async def _settle(
    ctx: DispatchContext, planned: list[Planned], results: list[Exception | None]
) -> None:
    ok, failed = [], []
    confirmed: list[tuple[Planned, Release]] = []  # copies that left from rows that failed
    cursor = 0
    at = ctx.clock()
    for p in planned:
        outcome = results[cursor : cursor + len(p.releases)]
        cursor += len(p.releases)
        errors = [r for r in outcome if r is not None]
        if errors:
            failed.append((p.item, errors[0]))
            confirmed += [(p, r) for r, e in zip(p.releases, outcome, strict=True) if e is None]
        else:
            ok.append(p)
    # One transaction: a crash can neither lose a held copy nor route its object twice, and
    # a row another dispatcher finished meanwhile (our lease ran out) records nothing again.
    async with ctx.store.transaction() as tx:
        done = [(p.item.id, p.purge_after(at, ctx.uncovered_days)) for p in ok]
        settled = set(await tx.outbox.complete(done))
        mine = [p for p in ok if p.item.id in settled]
        # A copy the broker confirmed has left, whatever becomes of its row's other copies
        # (the retry may no longer be entitled to send them): it is logged now, once.
        sent = [disclosure(p.item, r, p.who, at) for p, r in confirmed]
        logged = await tx.disclosures.logged([d.copy_msg_id for d in sent]) if sent else set()
        left = [d for d in sent if d.copy_msg_id not in logged]
        await tx.disclosures.add(
            [disclosure(p.item, r, p.who, at) for p in mine for r in p.releases] + left
        )
        await tx.held.add([held_record(p.item, c, at) for p in mine for c in p.held])
        parked = 0
        for item, error in failed:
            delay = compute_backoff(item.attempts, ctx.retry, random.random())
            park = item.attempts + 1 >= ctx.max_attempts and not _transient(error)
            parked += park
            await tx.outbox.retry(
                item.id, at + timedelta(seconds=delay), type(error).__name__, park=park
            )
    for p in mine:
        subscribers = [r.copy.subscriber for r in p.releases]
        ctx.metrics.routed(p.item, published=subscribers, held=[c.subscriber for c in p.held])
    for item, _ in failed:
        ctx.metrics.route_failed(item)
    for d in left:  # counted once, like their disclosure rows; the retry sends only the rest
        ctx.metrics.released(d.object_name, d.subscriber, "published")
    if failed:
        log.warning(
            "dispatch.publish_failed rows=%d parked=%d first_error=%s",
            len(failed),
            parked,
            type(failed[0][1]).__name__,
        )


def _transient(error: Exception) -> bool:
    """The broker away or slow: every row fails alike, so none is parked for it."""
    return isinstance(error, BrokerUnavailable | TimeoutError)


async def run_dispatcher(ctx: DispatchContext, stop: asyncio.Event) -> None:
    """Drain the outbox until `stop` is set, backing off while the DB or broker is down."""
    failures = 0
    idle = ctx.idle_seconds
    while not stop.is_set():
        ctx.wake.clear()  # work arriving from now on must wake the next idle wait
        try:
            claimed = await dispatch_once(ctx)
            failures = 0
        except (StoreUnavailable, BrokerUnavailable) as exc:
            failures += 1
            log.warning("dispatch.unavailable error=%s attempt=%d", type(exc).__name__, failures)
            await sleep_or_wake(ctx.wake, stop, compute_backoff(failures, ctx.retry))
            continue
        if claimed < ctx.batch:
            await sleep_or_wake(ctx.wake, stop, idle)
        idle = min(idle * 2, ctx.idle_max_seconds) if claimed == 0 else ctx.idle_seconds


async def sleep_or_wake(wake: asyncio.Event, stop: asyncio.Event, seconds: float) -> None:
    """Wait up to `seconds`, waking early when new work is signalled or on stop."""
    waiters = [asyncio.ensure_future(wake.wait()), asyncio.ensure_future(stop.wait())]
    _, pending = await asyncio.wait(waiters, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    for task in pending:
        task.cancel()
