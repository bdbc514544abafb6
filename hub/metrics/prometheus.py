"""hub.core.ports.Metrics for Prometheus (prometheus-client), one registry per hub.

Label values are bounded by construction: a value outside its known set (the message kinds,
the object catalogue, the actions, the configured subscribers) is counted as "other" and a
missing one as "none", so an agent's input never mints a new series, and no identifier
from a message (RefId, UPN, SIF_MsgId) is ever a label. Levels read from the database
(backlog, parked rows, held copies) are set when Prometheus scrapes, not on a timer.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    ProcessCollector,
    generate_latest,
)

from hub.core.agreements.lifecycle import Status
from hub.core.envelope import Action, MessageKind
from hub.core.errors import SifError
from hub.core.objects import CATALOGUE
from hub.core.records import OutboxRecord

NAMESPACE = "sifhub"
CONTENT_TYPE = CONTENT_TYPE_LATEST
OTHER, NONE = "other", "none"
KINDS = frozenset(k.value for k in MessageKind)
ACTIONS = frozenset(a.value for a in Action)
OBJECTS = frozenset(CATALOGUE)
RELEASE_OUTCOMES = frozenset({"released", "dropped", "published"})
# Request to ack: parsing, validation and one commit; the tail shows a slow database.
INGEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# POST to publish runs from milliseconds (idle hub) to the backlog bound (an hour).
PUBLISH_BUCKETS = (
    *(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    *(30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0),
)


@dataclass(frozen=True, kw_only=True)
class AgreementLevel:
    """An agreement's standing now and when it is due for review."""

    agreement: str
    status: str
    review_due: datetime | None


@dataclass(frozen=True, kw_only=True)
class Levels:
    """The hub's state when Prometheus scrapes: the backlog monitor's last measurement, the
    held copies (None when the database could not be read) and the agreements in force."""

    backlog_rows: int
    oldest_age_seconds: float
    parked_rows: int
    max_rows: int
    max_age_seconds: float
    refusing: bool
    measured_at: datetime | None
    held: Mapping[str, Mapping[str, int]] | None  # {agreement: {reason: copies}}
    agreements: Sequence[AgreementLevel] = ()


@dataclass(frozen=True, kw_only=True)
class SubscriberQueues:
    """A configured subscriber's queues, exported as sifhub_queue_info so that alert rules
    can join RabbitMQ's per-queue metrics to subscribers."""

    subscriber: str
    queue: str
    dead_letter_queue: str
    delivery: str  # "push": the LA service consumes; "pull": the hub reads for a SIF agent


def bounded(value: str | None, known: Collection[str]) -> str:
    if not value:
        return NONE
    return value if value in known else OTHER


class PrometheusMetrics:
    """Counters and histograms the pipeline moves, gauges set at scrape time, and the
    process collector, all under the `sifhub_` prefix."""

    def __init__(self, subscribers: Sequence[SubscriberQueues], version: str) -> None:
        self.registry = CollectorRegistry()
        self._subscribers = frozenset(s.subscriber for s in subscribers)
        r, ns = self.registry, NAMESPACE
        ProcessCollector(namespace=ns, registry=r)
        Info("build", "The running hub's version", namespace=ns, registry=r).info(
            {"version": version}
        )
        queues = Gauge(
            "queue_info",
            "1 per subscriber queue (role main or dead_letter; delivery push or pull)",
            ["subscriber", "queue", "role", "delivery"],
            namespace=ns,
            registry=r,
        )
        for s in subscribers:
            queues.labels(s.subscriber, s.queue, "main", s.delivery).set(1)
            queues.labels(s.subscriber, s.dead_letter_queue, "dead_letter", s.delivery).set(1)
        self._ingested = Counter(
            "ingest_messages",
            "Agent messages answered, by kind, object, action and outcome (accepted, refused)",
            ["kind", "object", "action", "outcome"],
            namespace=ns,
            registry=r,
        )
        self._refused = Counter(
            "ingest_refusals",
            "Agent messages refused, by kind, object and SIF error category and code",
            ["kind", "object", "category", "code"],
            namespace=ns,
            registry=r,
        )
        self._ingest_seconds = Histogram(
            "ingest_seconds",
            "Seconds from an agent's message to its SIF_Ack (parse, validate, commit)",
            ["kind", "outcome"],
            namespace=ns,
            registry=r,
            buckets=INGEST_BUCKETS,
        )
        self._rows = Counter(
            "outbox_rows",
            "Outbox rows routed or failed (to be retried or parked), by object and action",
            ["object", "action", "outcome"],
            namespace=ns,
            registry=r,
        )
        self._copies = Counter(
            "copies",
            "Filtered copies per subscriber: published, held, released from hold, dropped",
            ["subscriber", "object", "outcome"],
            namespace=ns,
            registry=r,
        )
        self._publish_seconds = Histogram(
            "post_to_publish_seconds",
            "Seconds from an object's outbox row being stored to its copies being published",
            namespace=ns,
            registry=r,
            buckets=PUBLISH_BUCKETS,
        )
        self._backlog_rows = Gauge(
            "outbox_backlog_rows", "Outbox rows waiting to be routed", namespace=ns, registry=r
        )
        self._oldest_age = Gauge(
            "outbox_oldest_age_seconds",
            "Age of the oldest outbox row waiting to be routed",
            namespace=ns,
            registry=r,
        )
        self._parked = Gauge(
            "outbox_parked_rows",
            "Outbox rows parked after repeated failures, waiting for ops to re-drive them",
            namespace=ns,
            registry=r,
        )
        self._max_rows = Gauge(
            "outbox_backlog_max_rows",
            "Backlog bound above which ingest refuses events (HUB_OUTBOX_MAX_BACKLOG)",
            namespace=ns,
            registry=r,
        )
        self._max_age = Gauge(
            "outbox_max_age_seconds",
            "Oldest-row age above which ingest refuses events (HUB_OUTBOX_MAX_AGE_SECONDS)",
            namespace=ns,
            registry=r,
        )
        self._refusing = Gauge(
            "ingest_refusing",
            "1 while ingest refuses events because routing is behind (backpressure)",
            namespace=ns,
            registry=r,
        )
        self._measured = Gauge(
            "outbox_measured_timestamp_seconds",
            "When the backlog was last measured (stale while the database is unreachable)",
            namespace=ns,
            registry=r,
        )
        self._held = Gauge(
            "held_copies",
            "Copies held (for a delivery window, a suspension or an identity), by agreement",
            ["agreement", "reason"],
            namespace=ns,
            registry=r,
        )
        self._agreement_status = Gauge(
            "agreement_status",
            "1 for each agreement's standing now (draft, live, suspended, terminating, "
            "terminated), 0 for the others",
            ["agreement", "status"],
            namespace=ns,
            registry=r,
        )
        self._review_due = Gauge(
            "agreement_review_due_timestamp_seconds",
            "When each agreement is due for review (Unix time)",
            ["agreement"],
            namespace=ns,
            registry=r,
        )
        self._database_up = Gauge(
            "database_up",
            "1 when the scrape could read the database, else 0",
            namespace=ns,
            registry=r,
        )

    # --- hub.core.ports.Metrics ---------------------------------------------------------

    def ingested(
        self,
        *,
        kind: str | None,
        object_name: str | None,
        action: str | None,
        error: SifError | None,
        seconds: float,
    ) -> None:
        kind_label, object_label = bounded(kind, KINDS), bounded(object_name, OBJECTS)
        outcome = "accepted" if error is None else "refused"
        self._ingested.labels(kind_label, object_label, bounded(action, ACTIONS), outcome).inc()
        self._ingest_seconds.labels(kind_label, outcome).observe(seconds)
        if error is not None:
            self._refused.labels(
                kind_label, object_label, str(int(error.category)), str(int(error.code))
            ).inc()

    def routed(
        self, record: OutboxRecord, *, published: Sequence[str], held: Sequence[str]
    ) -> None:
        object_label = bounded(record.object_name, OBJECTS)
        self._rows.labels(object_label, bounded(record.action.value, ACTIONS), "routed").inc()
        for subscriber in published:
            self._copy(subscriber, object_label, "published")
        for subscriber in held:
            self._copy(subscriber, object_label, "held")
        if published and record.created_at is not None:
            # Wall time on both sides: the store stamps created_at with it.
            waited = (datetime.now(UTC) - record.created_at).total_seconds()
            self._publish_seconds.observe(max(0.0, waited))

    def route_failed(self, record: OutboxRecord) -> None:
        object_label = bounded(record.object_name, OBJECTS)
        self._rows.labels(object_label, bounded(record.action.value, ACTIONS), "failed").inc()

    def released(self, object_name: str, subscriber: str, outcome: str) -> None:
        self._copy(subscriber, bounded(object_name, OBJECTS), bounded(outcome, RELEASE_OUTCOMES))

    def _copy(self, subscriber: str, object_label: str, outcome: str) -> None:
        self._copies.labels(bounded(subscriber, self._subscribers), object_label, outcome).inc()

    # --- exposition ---------------------------------------------------------------------

    def render(self, levels: Levels) -> bytes:
        """Set the levels, then the text exposition of every metric."""
        self._backlog_rows.set(levels.backlog_rows)
        self._oldest_age.set(levels.oldest_age_seconds)
        self._parked.set(levels.parked_rows)
        self._max_rows.set(levels.max_rows)
        self._max_age.set(levels.max_age_seconds)
        self._refusing.set(1 if levels.refusing else 0)
        if levels.measured_at is not None:
            self._measured.set(levels.measured_at.timestamp())
        self._database_up.set(0 if levels.held is None else 1)
        if levels.held is not None:  # unreadable: keep the last figures rather than none
            self._held.clear()
            for agreement, reasons in levels.held.items():
                for reason, copies in reasons.items():
                    self._held.labels(agreement, reason).set(copies)
        self._agreement_status.clear()
        self._review_due.clear()
        for a in levels.agreements:
            for status in Status:
                self._agreement_status.labels(a.agreement, status.value).set(
                    1 if status.value == a.status else 0
                )
            if a.review_due is not None:
                self._review_due.labels(a.agreement).set(a.review_due.timestamp())
        return generate_latest(self.registry)
