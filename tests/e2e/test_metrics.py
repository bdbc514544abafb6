"""/metrics of a whole running hub (real database, real RabbitMQ): the counters and
histograms move with posted messages, the levels are there, no label carries personal data,
and the alert rules and dashboard in deploy/monitoring use only metrics the hub exports."""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from hub import __version__
from hub.settings import DEV_ADMIN_TOKEN
from hub.simulate import sample_data as data
from hub.simulate import sif_messages as m
from tests.e2e.conftest import REPO, RunningHub, _wait_connected, hub_running

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
MONITORING = REPO / "deploy/monitoring"
# What the alert rules and dashboard read from RabbitMQ's rabbitmq_prometheus plugin
# (/metrics/per-object, labels vhost and queue); the hub does not export these.
RABBITMQ_PER_OBJECT = {
    "rabbitmq_queue_messages",
    "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_consumers",
}
DAY = date(2026, 11, 23)


@dataclass(frozen=True)
class Posted:
    """What the test sent: the identifiers that must never appear in a label."""

    identifiers: frozenset[str]


async def scrape(running: RunningHub, **headers: str) -> list[Sample]:
    response = await running.client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return [s for f in text_string_to_metric_families(response.text) for s in f.samples]


def total(samples: list[Sample], name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include `labels`."""
    return sum(
        s.value
        for s in samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


async def post_traffic(running: RunningHub) -> Posted:
    """Accepted events (routed to some subscribers, held for others), refusals, and
    identifiers smuggled where a label value could be taken from."""
    hilltop = running.agent("hilltop-mis")
    assert (await hilltop.register("Push")).ok
    learners = [p for p in data.make_learners(9) if p.school.laestab == "8302001"][:2]
    ids: set[str] = set()
    for p in learners:
        msg_id = m.msg_id()
        ack = await hilltop.send_event("LearnerPersonal", "Add", data.learner_personal(p), msg_id)
        assert ack.ok
        ids |= {p.refid, p.upn, msg_id}
    attendance = data.learner_attendance(learners[0], DAY, "AM", "/")
    assert (await hilltop.send_event("LearnerAttendance", "Add", attendance)).ok
    # refused: a mandatory element missing (1/6)
    whole = data.learner_personal(learners[1])
    cut = whole[: whole.index("<InCare>")] + whole[whole.index("</InCare>") + 9 :]
    assert (await hilltop.send_event("LearnerPersonal", "Add", cut)).error_code == 6
    # refused: a UPN as the object name, a RefId as the action
    probe = learners[1]
    smuggled = await hilltop.send_event(probe.upn, probe.refid, data.learner_personal(probe))
    assert not smuggled.ok
    await running.settle()
    return Posted(frozenset(ids))


async def scrape_until_routed(running: RunningHub, rows: int) -> list[Sample]:
    """The dispatcher counts a routed row just after its commit, so the outbox can be seen
    empty a moment before the counters move."""
    for _ in range(200):
        samples = await scrape(running)
        if total(samples, "sifhub_outbox_rows_total", outcome="routed") >= rows:
            return samples
        await asyncio.sleep(0.05)
    raise AssertionError("routed rows were not counted")


@pytest.fixture
async def posted(running: RunningHub) -> tuple[Posted, list[Sample]]:
    sent = await post_traffic(running)
    return sent, await scrape_until_routed(running, rows=3)


async def test_counters_and_histograms_move_with_posted_messages(running: RunningHub) -> None:
    before = await scrape(running)
    assert total(before, "sifhub_ingest_messages_total") == 0
    await post_traffic(running)
    after = await scrape_until_routed(running, rows=3)

    def moved(name: str, **labels: str) -> float:
        return total(after, name, **labels) - total(before, name, **labels)

    event = {"kind": "SIF_Event"}
    accepted = {**event, "outcome": "accepted"}
    assert moved("sifhub_ingest_messages_total", **accepted, object="LearnerPersonal") == 2
    assert moved("sifhub_ingest_messages_total", **accepted, object="LearnerAttendance") == 1
    assert moved("sifhub_ingest_messages_total", kind="SIF_Register", outcome="accepted") == 1
    assert moved("sifhub_ingest_messages_total", **event, outcome="refused") == 2
    assert moved("sifhub_ingest_refusals_total", object="LearnerPersonal", category="1") == 1
    assert moved("sifhub_ingest_refusals_total", **event, object="other") == 1
    assert moved("sifhub_ingest_seconds_count", **event, outcome="accepted") == 3
    assert moved("sifhub_ingest_seconds_count", **event, outcome="refused") == 2
    assert moved("sifhub_ingest_seconds_bucket", **event, outcome="accepted", le="+Inf") == 3
    assert moved("sifhub_ingest_seconds_sum", **event, outcome="accepted") > 0

    routed = {"outcome": "routed", "action": "Add"}
    assert moved("sifhub_outbox_rows_total", **routed, object="LearnerPersonal") == 2
    assert moved("sifhub_outbox_rows_total", **routed, object="LearnerAttendance") == 1
    assert moved("sifhub_outbox_rows_total", outcome="failed") == 0

    # Copies published per subscriber are the disclosures the store recorded.
    stats = (await running.client.get("/admin/stats", headers=ADMIN)).json()
    assert stats["delivered"]  # some copies went out...
    published = {
        s.labels["subscriber"]: s.value
        for s in after
        if s.name == "sifhub_copies_total" and s.labels["outcome"] == "published"
    }
    subscribers = set(published) | set(stats["delivered"])
    per_subscriber = {
        sub: total(after, "sifhub_copies_total", subscriber=sub, outcome="published")
        for sub in subscribers
    }
    assert per_subscriber == {sub: float(n) for sub, n in stats["delivered"].items()}
    # ...and others were held (windows, cohorts): counted, and still held.
    held = total(after, "sifhub_copies_total", outcome="held")
    assert held > 0
    assert total(after, "sifhub_held_copies") == held
    # Every row that published a copy was timed from its POST.
    publish_count = moved("sifhub_post_to_publish_seconds_count")
    assert 1 <= publish_count <= 3
    assert moved("sifhub_post_to_publish_seconds_bucket", le="+Inf") == publish_count


async def test_levels_and_process_metrics_are_exported(
    running: RunningHub, posted: tuple[Posted, list[Sample]]
) -> None:
    _, samples = posted
    names = {s.name for s in samples}
    assert {
        "sifhub_outbox_backlog_rows",
        "sifhub_outbox_oldest_age_seconds",
        "sifhub_outbox_measured_timestamp_seconds",
    } <= names
    settings = running.hub.settings
    assert total(samples, "sifhub_outbox_backlog_max_rows") == settings.outbox_max_backlog
    assert total(samples, "sifhub_outbox_max_age_seconds") == settings.outbox_max_age_seconds
    assert total(samples, "sifhub_outbox_parked_rows") == 0
    assert total(samples, "sifhub_ingest_refusing") == 0
    assert total(samples, "sifhub_database_up") == 1
    assert total(samples, "sifhub_process_cpu_seconds_total") > 0
    assert total(samples, "sifhub_process_resident_memory_bytes") > 0
    assert total(samples, "sifhub_build_info", version=__version__) == 1
    # Each agreement's standing and review date, as the admin API gives them.
    agreements = (await running.client.get("/admin/agreements", headers=ADMIN)).json()
    assert agreements
    for a in agreements:
        assert total(samples, "sifhub_agreement_status", agreement=a["id"]) == 1
        assert total(samples, "sifhub_agreement_status", agreement=a["id"], status=a["status"]) == 1
        due = total(samples, "sifhub_agreement_review_due_timestamp_seconds", agreement=a["id"])
        expected = datetime.fromisoformat(a["review_due"]).timestamp() if a["review_due"] else 0
        assert due == expected
    assert any(a["review_due"] for a in agreements)
    for sub in running.config.subscribers:
        delivery = "pull" if sub.pull_agent else "push"
        main = total(samples, "sifhub_queue_info", subscriber=sub.id, queue=running.queue(sub.id))
        dlq = total(samples, "sifhub_queue_info", subscriber=sub.id, role="dead_letter")
        assert (main, dlq) == (1, 1)
        assert total(samples, "sifhub_queue_info", subscriber=sub.id, delivery=delivery) == 2


async def test_no_label_carries_personal_data(
    running: RunningHub, posted: tuple[Posted, list[Sample]]
) -> None:
    sent, samples = posted
    values = {v for s in samples for v in s.labels.values()}
    assert values  # the check below looks at something
    leaks = {v for v in values for ident in sent.identifiers if ident.lower() in v.lower()}
    assert leaks == set()
    # and the smuggled object name and action were counted under bounded values
    refused = [s for s in samples if s.name == "sifhub_ingest_refusals_total"]
    assert {s.labels["object"] for s in refused} <= {"LearnerPersonal", "other"}


async def test_metrics_token_when_set(database_url: str, tmp_path: Path) -> None:
    async with hub_running(database_url, tmp_path, metrics_token="scrape-secret") as running:
        await _wait_connected(running.hub)
        assert (await running.client.get("/metrics")).status_code == 401
        wrong = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
        assert (await running.client.get("/metrics", headers=wrong)).status_code == 401
        samples = await scrape(running, Authorization="Bearer scrape-secret")
        assert total(samples, "sifhub_database_up") == 1


METRIC = re.compile(r"\b(?:sifhub|rabbitmq)_[a-z_]+\b")


def rule_expressions() -> list[str]:
    rules = yaml.safe_load((MONITORING / "sifhub-alerts.yml").read_text())
    return [r["expr"] for g in rules["groups"] for r in g["rules"]]


def dashboard_expressions() -> list[str]:
    dashboard = json.loads((MONITORING / "sifhub-dashboard.json").read_text())
    return [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]


async def test_alert_rules_and_dashboard_use_only_exported_metrics(
    running: RunningHub, posted: tuple[Posted, list[Sample]]
) -> None:
    _, samples = posted
    exported = {s.name for s in samples}
    expressions = rule_expressions() + dashboard_expressions()
    referenced = {name for expr in expressions for name in METRIC.findall(expr)}
    assert len(expressions) > 20 and len(referenced) > 15
    hub_metrics = {n for n in referenced if n.startswith("sifhub_")}
    assert hub_metrics - exported == set()
    assert referenced - hub_metrics <= RABBITMQ_PER_OBJECT
    # the five alert conditions the hub owns are all there
    alerts = " ".join(rule_expressions())
    for name in (
        "sifhub_outbox_backlog_rows",
        "sifhub_outbox_parked_rows",
        "sifhub_ingest_refusals_total",
        "rabbitmq_queue_consumers",
        "sifhub_queue_info",
    ):
        assert name in alerts
