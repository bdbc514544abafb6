"""The composition root: the one place concrete store, broker and schema objects are built
from settings and handed to the pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path

from adapters.alert_email import EmailNotifier
from adapters.alert_webhook import WebhookNotifier
from adapters.csv_upload import DEFAULT_MAPPING, CsvMapping, load_mapping
from adapters.file_export import CsvFiles
from adapters.webhook import SecretBox, WebhookPusher
from hub import __version__
from hub.amqp import dead_letters
from hub.amqp.deliveries import AmqpDeliveries
from hub.amqp.provision import BrokerUsers, management_target
from hub.amqp.publisher import AmqpPublisher
from hub.amqp.puller import AmqpPuller
from hub.amqp.queue_levels import ManagementQueueLevels
from hub.core import naming
from hub.core.config import HubConfig
from hub.core.policy import Policy
from hub.core.ports import BrokerUnavailable, Notifier, StoreUnavailable
from hub.core.retry import compute_backoff
from hub.core.schools import SchoolIndex
from hub.metrics.prometheus import PrometheusMetrics, SubscriberQueues
from hub.pipeline.agreements import load_policy, sync_config
from hub.pipeline.alerts import AlertContext, run_alert_delivery, run_alerts
from hub.pipeline.backlog import BacklogGauge, BacklogLimits, run_backlog_monitor
from hub.pipeline.dead_letters import MoveDeadLetters
from hub.pipeline.deliver import PushContext, run_webhook
from hub.pipeline.dispatch import DispatchContext, run_dispatcher, sleep_or_wake
from hub.pipeline.export import ExportContext, check_columns, run_cutter, run_stager
from hub.pipeline.feed import FeedContext, run_feed
from hub.pipeline.ingest import IngestContext
from hub.pipeline.offload import Offload
from hub.pipeline.release import run_releaser
from hub.pipeline.retention import RetentionPolicy, run_purger
from hub.pipeline.supervise import Supervisor
from hub.settings import Settings
from hub.sif.schemas import Schemas, load_schemas
from hub.store.engine import PoolSettings
from hub.store.store import SqlStore, open_store
from hub.store.wakeups import OUTBOX, POLICY, NoWakeups, Wakeups, open_wakeups

log = logging.getLogger("hub")
POLICY_REFRESH_SECONDS = 5.0
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class Role(StrEnum):
    """What one hub process runs (docs/processes.md). ALL: everything, the embedded default.
    HTTP: ingest, pulls and the admin API; it wakes the workers after each commit. WORKER:
    dispatch, release of held copies, webhook delivery and purge, with no HTTP at all."""

    ALL = "all"
    HTTP = "http"
    WORKER = "worker"

    @property
    def serves(self) -> bool:
        return self is not Role.WORKER

    @property
    def works(self) -> bool:
        return self is not Role.HTTP


class PolicyHolder:
    """The agreements snapshot in force; reloaded after every admin change and every few
    seconds (lifecycle dates pass, other hub processes change state)."""

    def __init__(self, store: SqlStore, policy: Policy, clock: Clock) -> None:
        self._store = store
        self._policy = policy
        self._clock = clock

    def current(self) -> Policy:
        return self._policy.at(self._clock())

    async def refresh(self) -> None:
        self._policy = await load_policy(self._store, self._clock())


@dataclass
class Hub:
    settings: Settings
    config: HubConfig
    store: SqlStore
    publisher: AmqpPublisher
    puller: AmqpPuller
    ingest: IngestContext
    dispatch: DispatchContext
    policies: PolicyHolder
    schemas: Schemas
    clock: Clock
    backlog: BacklogGauge
    stop: asyncio.Event
    supervisor: Supervisor
    disk_path: Path  # where free disk is watched: the SQLite file's directory, or data_dir
    metrics: PrometheusMetrics
    secrets: SecretBox
    pusher: WebhookPusher
    push: PushContext
    deliveries: AmqpDeliveries
    exports: ExportContext
    feeds: FeedContext
    alerts: AlertContext
    release_wake: asyncio.Event = field(default_factory=asyncio.Event)
    policy_wake: asyncio.Event = field(default_factory=asyncio.Event)  # set by a NOTIFY
    broker_users: BrokerUsers | None = None  # None: HUB_AMQP_PROVISION_USERS=false
    broker_users_status: str = "disabled"  # readiness: disabled, pending, retrying, conflict, ok
    # CSV uploads' columns -> SIF objects (HUB_CSV_MAPPING_FILE; adapters/csv_upload.py).
    csv_mapping: CsvMapping = field(default_factory=load_mapping)
    role: Role = Role.ALL
    wakeups: Wakeups = field(default_factory=NoWakeups)


def dead_letter_mover(hub: Hub) -> MoveDeadLetters:
    """Moves a subscriber's dead letters back to its queue through the hub's publisher."""

    async def move(subscriber: str, limit: int) -> int:
        prefix = hub.config.queue_prefix
        return await dead_letters.redrive(
            hub.settings.amqp_url,
            hub.publisher,
            naming.dead_letter_queue(subscriber, prefix),
            naming.subscriber_queue(subscriber, prefix),
            limit=limit,
        )

    return move


async def build_hub(
    settings: Settings, config: HubConfig, clock: Clock = utc_now, *, role: Role = Role.ALL
) -> Hub:
    """Open the database (migrating it) and the broker; a broker that is down is retried in
    the background while agents keep being acked from the outbox."""
    schemas = load_schemas()
    check_columns([(s.id, t) for s, t in config.file_subscribers()], schemas.element_paths)
    store = await open_store(settings.resolved_database_url(), pool=pool_settings(settings))
    wakeups = open_wakeups(settings.resolved_database_url())
    publisher = AmqpPublisher(
        settings.amqp_url, timeout=settings.publish_timeout_seconds, prefix=config.queue_prefix
    )
    puller = AmqpPuller(settings.amqp_url, timeout=settings.publish_timeout_seconds)
    await sync_config(store, config, schemas.element_paths, clock())
    policies = PolicyHolder(store, await load_policy(store, clock()), clock)
    backlog = BacklogGauge(
        BacklogLimits(
            max_rows=settings.outbox_max_backlog,
            max_age_seconds=settings.outbox_max_age_seconds,
        )
    )
    metrics = PrometheusMetrics(subscriber_queues(config), __version__)
    offload = Offload(settings.offload_body_bytes, settings.offload_threads)
    dispatch = DispatchContext(
        store,
        publisher,
        policies.current,
        config.queue_prefix,
        batch=settings.dispatch_batch,
        copy_batches=config.copy_batches(),
        lease_seconds=settings.dispatch_lease_seconds,
        idle_seconds=settings.dispatch_idle_seconds,
        idle_max_seconds=settings.dispatch_idle_max_seconds,
        clock=clock,
        uncovered_days=settings.retention_uncovered_days,
        identity_hold_days=settings.identity_hold_days,
        max_attempts=settings.outbox_max_attempts,
        metrics=metrics,
        offload=offload,
    )
    ingest = IngestContext(
        store,
        config,
        SchoolIndex.of(config),
        schemas,
        puller,
        clock,
        behind=backlog.over,
        routed=functools.partial(_routed, dispatch.wake, wakeups),
        metrics=metrics,
        max_packets=settings.max_packets,
        offload=offload,
    )
    stop = asyncio.Event()
    secrets = SecretBox(settings.secret_key)
    pusher = WebhookPusher(secrets)
    ladder = settings.webhook_ladder()
    push = PushContext(store, pusher, ladder, clock)
    hub = Hub(
        alerts=AlertContext(
            store=store,
            config=config,
            queues=ManagementQueueLevels(
                management_target(settings.amqp_url, settings.amqp_management_url)
            ),
            notifiers=alert_notifiers(settings, config),
            policy=policies.current,
            clock=clock,
        ),
        secrets=secrets,
        pusher=pusher,
        push=push,
        feeds=FeedContext(
            store,
            functools.partial(feed_retention_days, policies, settings.retention_uncovered_days),
            ladder,
            clock,
        ),
        exports=ExportContext(
            store,
            CsvFiles(),
            push,
            functools.partial(feed_retention_days, policies, settings.retention_uncovered_days),
            clock,
        ),
        deliveries=AmqpDeliveries(
            settings.amqp_url,
            delays_ms=ladder.delays_ms,
            timeout=settings.publish_timeout_seconds,
            prefix=config.queue_prefix,
        ),
        settings=settings,
        config=config,
        store=store,
        publisher=publisher,
        puller=puller,
        ingest=ingest,
        dispatch=dispatch,
        policies=policies,
        schemas=schemas,
        clock=clock,
        backlog=backlog,
        stop=stop,
        supervisor=Supervisor(stop),
        disk_path=store.directory or settings.data_dir,
        metrics=metrics,
        csv_mapping=load_mapping(settings.csv_mapping_file or DEFAULT_MAPPING),
        role=role,
        wakeups=wakeups,
    )
    if settings.amqp_provision_users:
        target = management_target(settings.amqp_url, settings.amqp_management_url)
        hub.broker_users = BrokerUsers(target, prefix=config.queue_prefix)
        hub.broker_users_status = "pending"
    return hub


def feed_retention_days(
    policies: PolicyHolder, default_days: int, agreement_id: str, version: int
) -> int:
    """How long a copy released under this agreement version is kept in a feed: the
    version's retention_days (the hub-wide default if the version is unknown)."""
    state = next((a for a in policies.current().agreements if a.agreement_id == agreement_id), None)
    found = [v for v in (state.versions if state else ()) if v.spec.version == version]
    return found[0].spec.retention_days if found else default_days


def alert_notifiers(settings: Settings, config: HubConfig) -> dict[str, Notifier]:
    """The alert targets by the names their delivery rows carry."""
    alerts, hub = config.alerts, config.source_id
    notifiers: dict[str, Notifier] = {
        f"webhook:{n}": WebhookNotifier(w.url, timeout_seconds=w.timeout_seconds, hub=hub)
        for n, w in enumerate(alerts.webhooks, start=1)
    }
    if alerts.email is not None:
        password = settings.alerts_smtp_password
        notifiers["email"] = EmailNotifier(alerts.email, password=password, hub=hub)
    return notifiers


def subscriber_queues(config: HubConfig) -> list[SubscriberQueues]:
    return [
        SubscriberQueues(
            subscriber=sub.id,
            queue=naming.subscriber_queue(sub.id, config.queue_prefix),
            dead_letter_queue=naming.dead_letter_queue(sub.id, config.queue_prefix),
            delivery="pull" if sub.pull_agent else "push",
        )
        for sub in config.subscribers
    ]


def _routed(wake: asyncio.Event, wakeups: Wakeups) -> None:
    """Ingest committed rows to route: wake this process's dispatcher and every worker's."""
    wake.set()
    wakeups.notify(OUTBOX)


def work_waiting(hub: Hub) -> None:
    """Outbox rows became due outside ingest (ops re-drove them)."""
    _routed(hub.dispatch.wake, hub.wakeups)


async def start(hub: Hub) -> None:
    """Connect to the broker (or keep trying) and start the background stages of the hub's
    role, each under the supervisor (restarted with backoff if it crashes)."""
    run = hub.supervisor.start
    run("broker", lambda: _keep_broker(hub))
    run("policy", lambda: _refresh_policy(hub))
    if hub.role.serves:
        # Wall time, as outbox rows are stamped (a test's shifted hub clock must not age them).
        run("backlog", lambda: run_backlog_monitor(hub.store, hub.backlog, utc_now, hub.stop))
    if hub.role.works:
        start_work(hub)


def start_work(hub: Hub) -> None:
    """What a worker runs: dispatch, release, purge, webhook delivery, and the wake-ups
    other processes send it."""
    run = hub.supervisor.start
    run("dispatch", lambda: run_dispatcher(hub.dispatch, hub.stop))
    run("release", lambda: run_releaser(hub.dispatch, hub.stop, hub.release_wake))
    run("wakeups", lambda: hub.wakeups.listen(functools.partial(_woken, hub), hub.stop))
    run(
        "purge",
        lambda: run_purger(
            hub.store,
            retention_policy(hub.settings),
            hub.clock,
            hub.stop,
            hub.settings.purge_interval_seconds,
            files=hub.exports.files,
        ),
    )
    run("alerts", lambda: run_alerts(hub.alerts, hub.stop))
    run("alert-delivery", lambda: run_alert_delivery(hub.alerts, hub.stop))
    for subscriber, target in hub.config.webhook_subscribers():
        push = functools.partial(
            run_webhook, hub.push, hub.deliveries, subscriber.id, target, hub.stop
        )
        run(f"webhook:{subscriber.id}", push)
    for subscriber, files in hub.config.file_subscribers():
        stage = functools.partial(
            run_stager, hub.exports, hub.deliveries, subscriber.id, files, hub.stop
        )
        run(f"file:{subscriber.id}", stage)
        cut = functools.partial(run_cutter, hub.exports, subscriber.id, files, hub.stop)
        run(f"export:{subscriber.id}", cut)
    for subscriber, api in hub.config.api_subscribers():
        keep = functools.partial(run_feed, hub.feeds, hub.deliveries, subscriber.id, api, hub.stop)
        run(f"feed:{subscriber.id}", keep)


def pool_settings(settings: Settings) -> PoolSettings:
    return PoolSettings(
        size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        recycle_seconds=settings.db_pool_recycle_seconds,
        pre_ping=settings.db_pool_pre_ping,
    )


def retention_policy(settings: Settings) -> RetentionPolicy:
    return RetentionPolicy(
        uncovered_days=settings.retention_uncovered_days,
        rejected_days=settings.retention_rejected_days,
        accountability_days=settings.retention_accountability_days,
    )


async def policy_changed(hub: Hub) -> None:
    """After an admin change: reload the snapshot and re-check held copies at once, those
    awaiting a learner's identity included (a lifted suppression may let them go); workers
    in other processes are told to do the same."""
    await hub.policies.refresh()
    async with hub.store.transaction() as tx:
        await tx.held.wake_identity(hub.clock())
    hub.release_wake.set()
    hub.wakeups.notify(POLICY)


def _woken(hub: Hub, payload: str) -> None:
    """A NOTIFY from another hub process (hub.store.wakeups)."""
    (hub.policy_wake if payload == POLICY else hub.dispatch.wake).set()


async def _refresh_policy(hub: Hub) -> None:
    """Every few seconds, and at once when another process says agreements changed (then
    held copies are looked at again too)."""
    while not hub.stop.is_set():
        await sleep_or_wake(hub.policy_wake, hub.stop, POLICY_REFRESH_SECONDS)
        told = hub.policy_wake.is_set()
        hub.policy_wake.clear()
        try:
            await hub.policies.refresh()
        except StoreUnavailable:
            log.warning("policy.refresh_failed")
        if told:
            hub.release_wake.set()


async def _keep_broker(hub: Hub) -> None:
    """Connect publisher and puller, declaring every subscriber queue; retry while down.
    Then give each subscriber its broker user."""
    attempt = 0
    subscribers = [s.id for s in hub.config.subscribers]
    while not hub.stop.is_set():
        try:
            await hub.publisher.start()
            await hub.publisher.ensure_queues(subscribers)
            await hub.puller.start()
            log.info("broker.connected subscribers=%d", len(subscribers))
            break
        except BrokerUnavailable:
            attempt += 1
            log.warning("broker.unavailable attempt=%d", attempt)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hub.stop.wait(), compute_backoff(attempt))
    if not hub.role.serves:
        return  # broker users are the HTTP processes' job (their readiness reports it)
    # A subscriber the hub delivers to (webhook) gets no broker user: its queue is ours.
    readers = [s.id for s in hub.config.subscribers if s.delivery.type == "amqp"]
    await _provision_broker_users(hub, readers)


async def _provision_broker_users(hub: Hub, subscribers: list[str]) -> None:
    """One read-only broker user per subscriber, stale ones removed; retried in the
    background while the management API is down (agents and dispatch carry on)."""
    attempt = 0
    while hub.broker_users is not None and not hub.stop.is_set():
        try:
            report = await hub.broker_users.sync(subscribers)
        except BrokerUnavailable as exc:
            attempt += 1
            hub.broker_users_status = "retrying"
            log.warning("broker.users_unprovisioned attempt=%d error=%s", attempt, exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hub.stop.wait(), compute_backoff(attempt))
            continue
        hub.broker_users_status = "conflict" if report.conflicts else "ok"
        log.info(
            "broker.users_provisioned created=%d removed=%d conflicts=%d",
            len(report.created),
            len(report.removed),
            len(report.conflicts),
        )
        return


async def stop(hub: Hub) -> None:
    """Background tasks first, then the broker, then the database (SqlStore.close
    checkpoints SQLite's WAL once nothing writes any more)."""
    hub.stop.set()
    await hub.supervisor.stop()
    await hub.deliveries.close()
    await hub.pusher.close()
    await hub.puller.close()
    await hub.publisher.close()
    await hub.wakeups.close()
    await hub.store.close()
