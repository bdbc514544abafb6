"""Alerts: observe the hub, evaluate the rules (hub.core.alerts), keep their state, and
deliver each notification to every target once.

Two supervised loops (wired in hub.composition.start):
- evaluation, every `alerts.interval_seconds`: in one transaction under the hub-wide
  alert lock, reads the outbox backlog and parked rows and the refusals within the refusal
  window (the same store ports as /admin/stats), every queue's messages and consumers (the
  broker's management API), and the agreements' standing and review dates (the policy
  snapshot in force); steps the stored states and stores each notification with one
  delivery row per target. States live in the database, so a
  restarted hub (or another hub on the same database) never notifies a condition twice.
- delivery: claims due delivery rows under a lease and sends them through the Notifier
  ports (webhook, e-mail), each bounded by its own timeout, all at once; a failure is
  retried with exponential backoff (jittered) up to `alerts.max_attempts`, on the same row:
  never a second notification. A slow target delays neither evaluation nor other targets.

`current_alerts` is the one read of alert state: GET /admin/alerts and the console use it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hub.core import naming
from hub.core.agreements.lifecycle import standing
from hub.core.alert_rules import AlertsConfig
from hub.core.alerts import (
    AgreementStanding,
    Snapshot,
    SubscriberLevels,
    evaluate,
    holds,
    read,
)
from hub.core.config import HubConfig
from hub.core.policy import Policy
from hub.core.ports import (
    BrokerUnavailable,
    Notifier,
    NotifyFailed,
    QueueLevels,
    Store,
    StoreUnavailable,
    Tx,
)
from hub.core.records import AlertDeliveryRecord, AlertEventRecord, AlertStateRecord
from hub.core.retry import RetryPolicy, compute_backoff

log = logging.getLogger("hub.alerts")
DELIVERY_BATCH = 50
DELIVERY_POLL_SECONDS = 5.0
DELIVERY_LEASE_SECONDS = 300.0  # longer than any target's timeout
RETRY_BASE_SECONDS = 1.0
GAVE_UP = "gave up"


@dataclass
class AlertContext:
    store: Store
    config: HubConfig
    queues: QueueLevels | None  # None: queue rules are not measured
    notifiers: Mapping[str, Notifier]  # by target name (AlertsConfig.targets)
    policy: Callable[[], Policy]
    clock: Callable[[], datetime]
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # new notifications to send

    @property
    def alerts(self) -> AlertsConfig:
        return self.config.alerts


# --- observation --------------------------------------------------------------------------


async def observe(
    ctx: AlertContext, tx: Tx, now: datetime, subscribers: list[SubscriberLevels] | None
) -> Snapshot:
    """What the rules read: the store's figures in the evaluating transaction (under the
    alert lock, so no hub evaluates an older figure after a newer one), the broker's (read
    before the transaction: a slow management API must never hold a database lock) and the
    policy's as last known. An unreadable broker leaves its rules unmeasured."""
    window = timedelta(minutes=ctx.alerts.rules.ingest_refusals.window_minutes)
    figures = await tx.outbox.backlog()
    return Snapshot(
        backlog_rows=figures.waiting,
        parked_rows=figures.parked,
        subscribers=subscribers,
        agreements=agreement_standings(ctx.policy()),
        refusals=await tx.audit.rejections_since(now - window),
    )


QUEUE_RULES = frozenset({"dead_letters", "not_consuming"})


async def _subscriber_levels(ctx: AlertContext) -> list[SubscriberLevels] | None:
    if ctx.queues is None or not QUEUE_RULES & set(ctx.alerts.rules.enabled()):
        return None
    try:
        levels = await ctx.queues.levels()
    except BrokerUnavailable as exc:
        log.warning("alerts.queues_unreadable error=%s", type(exc).__name__)
        return None
    prefix = ctx.config.queue_prefix
    return [
        SubscriberLevels(
            subscriber=s.id,
            queue=levels.get(naming.subscriber_queue(s.id, prefix)),
            dead_letters=levels.get(naming.dead_letter_queue(s.id, prefix)),
            # A pull agent's queue is read only when its SIF agent asks: no consumer is normal.
            consumed=s.pull_agent is None,
        )
        for s in ctx.config.subscribers
    ]


def agreement_standings(policy: Policy) -> list[AgreementStanding]:
    return [
        AgreementStanding(
            agreement=state.agreement_id,
            status=standing(state.lifecycle, policy.now).status.value,
            review_due=state.lifecycle.review_due,
        )
        for state in policy.agreements
    ]


# --- evaluation ---------------------------------------------------------------------------


async def evaluate_once(ctx: AlertContext) -> list[AlertEventRecord]:
    """One round: observe, step the stored states, store the notifications it makes."""
    targets = ctx.alerts.targets()
    subscribers = await _subscriber_levels(ctx)
    async with ctx.store.transaction() as tx:
        if not await tx.alerts.exclusive():
            return []  # another hub is evaluating this moment
        now = ctx.clock()
        readings = read(ctx.alerts.rules, await observe(ctx, tx, now, subscribers), now)
        states = {(s.rule, s.subject): s for s in await tx.alerts.states()}
        result = evaluate(states, readings, holds(ctx.alerts.rules), now)
        for (rule, subject), state in result.changed.items():
            await tx.alerts.save_state(rule, subject, state)
        for event in result.events:
            await tx.alerts.add_event(event, targets, now)
    for event in result.events:
        log.warning("alert.%s rule=%s subject=%s", event.kind, event.rule, event.subject)
    if result.events:
        ctx.wake.set()
    return result.events


async def run_alerts(ctx: AlertContext, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await evaluate_once(ctx)
        except StoreUnavailable:
            log.warning("alerts.unevaluated")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), ctx.alerts.interval_seconds)


# --- delivery -----------------------------------------------------------------------------


async def deliver_once(ctx: AlertContext) -> int:
    """Send the due deliveries; returns how many were delivered."""
    now = ctx.clock()
    async with ctx.store.transaction() as tx:
        claimed = await tx.alerts.claim_deliveries(now, DELIVERY_BATCH, DELIVERY_LEASE_SECONDS)
    if not claimed:
        return 0
    errors = await asyncio.gather(*(_send(ctx, d) for d in claimed))
    done = ctx.clock()
    async with ctx.store.transaction() as tx:
        for delivery, error in zip(claimed, errors, strict=True):
            if error is None:
                await tx.alerts.delivered(delivery.id, done)
            else:
                await tx.alerts.failed(delivery.id, error, _retry_at(ctx, delivery, done))
    return errors.count(None)


async def _send(ctx: AlertContext, delivery: AlertDeliveryRecord) -> str | None:
    """None when the target took the notification, else why not."""
    notifier = ctx.notifiers.get(delivery.target)
    if notifier is None:
        return f"{GAVE_UP}: target no longer configured"
    try:
        await notifier.send(delivery.event)
    except NotifyFailed as exc:
        log.warning(
            "alert.delivery_failed target=%s event=%s attempt=%d error=%s",
            delivery.target,
            delivery.event.id,
            delivery.attempts + 1,
            exc,
        )
        return str(exc) or type(exc).__name__
    log.info("alert.delivered target=%s event=%s", delivery.target, delivery.event.id)
    return None


def _retry_at(ctx: AlertContext, delivery: AlertDeliveryRecord, now: datetime) -> datetime | None:
    made = delivery.attempts + 1
    if made >= ctx.alerts.max_attempts or delivery.target not in ctx.notifiers:
        return None
    policy = RetryPolicy(base_seconds=RETRY_BASE_SECONDS, max_seconds=ctx.alerts.retry_max_seconds)
    return now + timedelta(seconds=compute_backoff(made - 1, policy, random.random()))


async def run_alert_delivery(ctx: AlertContext, stop: asyncio.Event) -> None:
    poll = min(ctx.alerts.interval_seconds, DELIVERY_POLL_SECONDS)
    while not stop.is_set():
        ctx.wake.clear()
        try:
            await deliver_once(ctx)
        except StoreUnavailable:
            log.warning("alerts.undelivered")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_first(stop, ctx.wake), poll)


async def _first(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


# --- the one read of alert state ---------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class AlertHistoryItem:
    event: AlertEventRecord
    deliveries: list[AlertDeliveryRecord]


@dataclass(frozen=True, kw_only=True)
class AlertsView:
    firing: list[AlertStateRecord]
    pending: list[AlertStateRecord]
    history: list[AlertHistoryItem]  # newest first


async def current_alerts(store: Store, *, history: int = 50) -> AlertsView:
    """What fires now, what may fire soon, and the latest notifications with how each
    delivery went (for GET /admin/alerts and the console's dashboard)."""
    async with store.transaction() as tx:
        states = await tx.alerts.states()
        events = await tx.alerts.events(history)
        deliveries = await tx.alerts.deliveries([e.id for e in events if e.id is not None])
    by_event: dict[int | None, list[AlertDeliveryRecord]] = {}
    for d in deliveries:
        by_event.setdefault(d.event.id, []).append(d)
    ordered = sorted(states, key=lambda s: (s.since, s.rule, s.subject))
    return AlertsView(
        firing=[s for s in ordered if s.status == "firing"],
        pending=[s for s in ordered if s.status == "pending"],
        history=[AlertHistoryItem(event=e, deliveries=by_event.get(e.id, [])) for e in events],
    )
