"""The alert loops' steps over the in-memory store (hub.pipeline.alerts): a condition stored
once however many rounds see it, delivered once to every target, retried with backoff on the
same delivery row when a target fails (never a second notification), given up after
`max_attempts`; the state survives a restart (a new context on the same store); and an
unreadable broker changes nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hub.core.config import HubConfig
from hub.core.envelope import Action
from hub.core.policy import Policy
from hub.core.ports import BrokerUnavailable, Notifier, NotifyFailed
from hub.core.records import AlertEventRecord, OutboxRecord, QueueLevel, RejectionRecord
from hub.pipeline.alerts import AlertContext, current_alerts, deliver_once, evaluate_once
from tests.fakes.store import FakeStore

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


class Target:
    """A notifier that fails its first `failures` sends, and keeps what it took."""

    def __init__(self, failures: int = 0) -> None:
        self.failures = failures
        self.tries = 0
        self.taken: list[AlertEventRecord] = []

    async def send(self, event: AlertEventRecord) -> None:
        self.tries += 1
        if self.tries <= self.failures:
            raise NotifyFailed("http_503")
        self.taken.append(event)


class Queues:
    def __init__(self) -> None:
        self.levels_now: dict[str, QueueLevel] | None = {}

    async def levels(self) -> dict[str, QueueLevel]:
        if self.levels_now is None:
            raise BrokerUnavailable("management API down")
        return self.levels_now


def _config(**rules: object) -> HubConfig:
    only = {
        name: {"enabled": name in rules, **(rules.get(name) or {})}  # type: ignore[dict-item]
        for name in (
            "outbox_backlog",
            "parked_rows",
            "dead_letters",
            "not_consuming",
            "review_due",
            "ingest_refusals",
        )
    }
    return HubConfig.model_validate(
        {
            "zones": ["z"],
            "subscribers": [{"id": "cme", "name": "CME"}],
            "alerts": {
                "interval_seconds": 1,
                "rules": only,
                "webhooks": [{"url": "https://ops.example/hook"}],
                "email": {"host": "smtp.example", "from": "hub@example", "to": ["ops@example"]},
                "max_attempts": 3,
            },
        }
    )


def _context(
    store: FakeStore, config: HubConfig, clock: Clock, notifiers: dict[str, Notifier], q: Queues
) -> AlertContext:
    return AlertContext(
        store=store, config=config, queues=q, notifiers=notifiers, policy=Policy, clock=clock
    )


async def _refuse(store: FakeStore, clock: Clock, count: int) -> None:
    async with store.transaction() as tx:
        for _ in range(count):
            await tx.audit.add_rejection(RejectionRecord(clock(), "agent", "z", 1, 3))


async def test_one_notification_each_way_delivered_once_per_target() -> None:
    store, clock, queues = FakeStore(), Clock(), Queues()
    webhook, email = Target(), Target()
    config = _config(ingest_refusals={"per_minute": 1, "window_minutes": 1, "for_minutes": 2})
    ctx = _context(store, config, clock, {"webhook:1": webhook, "email": email}, queues)
    await _refuse(store, clock, 5)
    for _ in range(3):  # pending: polled again and again, nothing to say yet
        assert await evaluate_once(ctx) == []
        clock.advance(seconds=30)
    clock.advance(seconds=30)
    await _refuse(store, clock, 5)
    (fired,) = await evaluate_once(ctx)
    assert (fired.rule, fired.subject, fired.kind) == ("ingest_refusals", "ingest", "firing")
    for _ in range(5):
        assert await evaluate_once(ctx) == []  # still firing: no repeat
    assert await deliver_once(ctx) == 2
    assert await deliver_once(ctx) == 0
    clock.advance(minutes=2)  # the refusals fall out of the window
    (resolved,) = await evaluate_once(ctx)
    assert resolved.kind == "resolved"
    await deliver_once(ctx)
    for target in (webhook, email):
        assert [(e.kind, e.id) for e in target.taken] == [("firing", 1), ("resolved", 2)]
    view = await current_alerts(store)
    assert view.firing == [] and view.pending == []
    assert [item.event.kind for item in view.history] == ["resolved", "firing"]
    assert all(d.delivered_at is not None for item in view.history for d in item.deliveries)


async def test_a_failing_target_is_retried_on_the_same_row_and_never_duplicated() -> None:
    store, clock, queues = FakeStore(), Clock(), Queues()
    flaky, steady = Target(failures=2), Target()
    config = _config(dead_letters={"for_minutes": 0})
    ctx = _context(store, config, clock, {"webhook:1": flaky, "email": steady}, queues)
    queues.levels_now = {"sifhub.sub.cme.dlq": QueueLevel(messages=4, consumers=0)}
    (fired,) = await evaluate_once(ctx)
    assert fired.subject == "cme" and fired.value == 4
    assert await deliver_once(ctx) == 1  # e-mail went; the webhook answered 503
    assert await deliver_once(ctx) == 0  # not due again yet: backing off
    for _ in range(3):
        clock.advance(minutes=15)
        await evaluate_once(ctx)
        await deliver_once(ctx)
    assert (flaky.tries, len(flaky.taken), len(steady.taken)) == (3, 1, 1)
    (item,) = (await current_alerts(store)).history
    webhook_row = next(d for d in item.deliveries if d.target == "webhook:1")
    assert (webhook_row.attempts, webhook_row.last_error) == (3, "http_503")
    assert webhook_row.delivered_at is not None and webhook_row.next_attempt_at is None


async def test_a_target_that_never_takes_it_is_given_up_after_max_attempts() -> None:
    store, clock, queues = FakeStore(), Clock(), Queues()
    dead = Target(failures=100)
    ctx = _context(
        store, _config(parked_rows={"for_minutes": 0}), clock, {"webhook:1": dead}, queues
    )
    await _park_one(store)
    await evaluate_once(ctx)
    for _ in range(10):
        await deliver_once(ctx)
        clock.advance(hours=1)
    assert dead.tries == 3  # max_attempts
    (item,) = (await current_alerts(store)).history
    rows = {d.target: d for d in item.deliveries}
    assert rows["webhook:1"].next_attempt_at is None and rows["webhook:1"].delivered_at is None
    assert rows["email"].last_error == "gave up: target no longer configured"


async def test_state_survives_a_restart_and_an_unreadable_broker_changes_nothing() -> None:
    store, clock, queues = FakeStore(), Clock(), Queues()
    config = _config(not_consuming={"for_minutes": 1})
    first = _context(store, config, clock, {}, queues)
    queues.levels_now = {"sifhub.sub.cme": QueueLevel(messages=3, consumers=0)}
    assert await evaluate_once(first) == []  # pending
    clock.advance(minutes=1)
    (fired,) = await evaluate_once(first)
    assert fired.kind == "firing"
    restarted = _context(store, config, clock, {}, queues)  # a new process, same database
    clock.advance(minutes=5)
    assert await evaluate_once(restarted) == []
    queues.levels_now = None  # management API unreachable: neither a start nor an end
    assert await evaluate_once(restarted) == []
    assert [s.rule for s in (await current_alerts(store)).firing] == ["not_consuming"]
    queues.levels_now = {"sifhub.sub.cme": QueueLevel(messages=3, consumers=1)}
    (resolved,) = await evaluate_once(restarted)
    assert resolved.kind == "resolved"


async def _park_one(store: FakeStore) -> None:
    """A parked outbox row, as the fake outbox keeps it."""
    record = OutboxRecord(
        id="o1",
        message_id="m1",
        seq=0,
        zone="z",
        source_agent="agent",
        object_name="LearnerPersonal",
        action=Action.ADD,
        school=None,
        subject_refid=None,
        object_xml=b"<x/>",
    )
    async with store.transaction() as tx:
        await tx.outbox.add([record])
    store.state.outbox["o1"].parked_at = T0
