"""Which conditions each alert rule finds in a snapshot of the hub (hub.core.alerts.read),
the `alerts:` configuration section, and its defaults matching the Prometheus rules shipped
in deploy/monitoring."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from hub.core.alert_rules import AlertRules, AlertsConfig
from hub.core.alerts import AgreementStanding, Snapshot, SubscriberLevels, read
from hub.core.records import QueueLevel

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
RULES_FILE = Path(__file__).resolve().parents[2] / "deploy/monitoring/sifhub-alerts.yml"


def _subscriber(
    name: str, messages: int, consumers: int, dead: int, *, consumed: bool = True
) -> SubscriberLevels:
    return SubscriberLevels(
        subscriber=name,
        queue=QueueLevel(messages=messages, consumers=consumers),
        dead_letters=QueueLevel(messages=dead, consumers=0),
        consumed=consumed,
    )


def test_each_rule_finds_its_condition() -> None:
    rules = AlertRules.model_validate({"outbox_backlog": {"above": 100}})
    snap = Snapshot(
        backlog_rows=101,
        parked_rows=2,
        subscribers=[
            _subscriber("cme", 5, 0, 0),  # messages, nobody reading
            _subscriber("attendance", 5, 1, 3),  # read, but dead letters
            _subscriber("pull", 9, 0, 0, consumed=False),  # a pull agent's: no consumer is normal
        ],
        agreements=[
            AgreementStanding(agreement="soon", status="live", review_due=NOW + timedelta(days=29)),
            AgreementStanding(agreement="late", status="suspended", review_due=NOW - timedelta(1)),
            AgreementStanding(agreement="far", status="live", review_due=NOW + timedelta(days=31)),
            AgreementStanding(agreement="done", status="terminated", review_due=NOW),
        ],
        refusals=61,  # 12.2 a minute over 5 minutes
    )
    found = read(rules, snap, NOW)
    assert {rule: sorted(subjects) for rule, subjects in found.items()} == {
        "outbox_backlog": ["outbox"],
        "parked_rows": ["outbox"],
        "dead_letters": ["attendance"],
        "not_consuming": ["cme"],
        "review_due": ["late", "soon"],
        "ingest_refusals": ["ingest"],
    }
    assert found["ingest_refusals"]["ingest"].value == pytest.approx(12.2)
    assert found["review_due"]["late"].summary == "agreement late is due for review 1 days overdue"


def test_quiet_hub_holds_nothing_and_unread_sources_are_left_out() -> None:
    quiet = Snapshot(
        backlog_rows=10_000,  # the bound itself is not above it
        parked_rows=0,
        subscribers=[_subscriber("cme", 0, 0, 0)],
        agreements=[],
        refusals=60,  # exactly 12 a minute
    )
    found = read(AlertRules(), quiet, NOW)
    assert set(found) == {
        "outbox_backlog",
        "parked_rows",
        "dead_letters",
        "not_consuming",
        "review_due",
        "ingest_refusals",
    }
    assert all(not subjects for subjects in found.values())
    assert read(AlertRules(), Snapshot(), NOW) == {}  # nothing could be read: nothing changes


def test_a_disabled_rule_holds_nowhere() -> None:
    rules = AlertRules.model_validate({"parked_rows": {"enabled": False}})
    assert read(rules, Snapshot(parked_rows=5), NOW)["parked_rows"] == {}


def test_configuration_section() -> None:
    config = AlertsConfig.model_validate(
        {
            "interval_seconds": 0.5,
            "webhooks": [{"url": "https://ops.example.gov.uk/hook"}, {"url": "http://127.0.0.1/x"}],
            "email": {"host": "smtp.example", "from": "hub@example.gov.uk", "to": ["a@b.c"]},
        }
    )
    assert config.targets() == ["webhook:1", "webhook:2", "email"]
    assert config.email is not None and config.email.sender == "hub@example.gov.uk"
    with pytest.raises(ValidationError, match="https"):
        AlertsConfig.model_validate({"webhooks": [{"url": "http://ops.example.gov.uk/hook"}]})
    with pytest.raises(ValidationError):
        AlertsConfig.model_validate({"rules": {"outbox_backlogg": {}}})


def _prometheus() -> dict[str, dict[str, str]]:
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return {r["alert"]: r for g in groups for r in g["rules"]}


def _minutes(duration: str) -> float:
    amount, unit = re.fullmatch(r"(\d+)([mh])", duration).groups()  # type: ignore[union-attr]
    return float(amount) * (60 if unit == "h" else 1)


def test_defaults_match_the_prometheus_rules() -> None:
    prom, rules = _prometheus(), AlertRules()
    backlog = prom["SifHubOutboxBacklog"]
    assert f"> {rules.outbox_backlog.above}" in backlog["expr"]
    assert _minutes(backlog["for"]) == rules.outbox_backlog.for_minutes
    assert _minutes(prom["SifHubParkedRows"]["for"]) == rules.parked_rows.for_minutes
    assert _minutes(prom["SifHubDeadLetters"]["for"]) == rules.dead_letters.for_minutes
    not_consuming = prom["SifHubSubscriberNotConsuming"]
    assert _minutes(not_consuming["for"]) == rules.not_consuming.for_minutes
    review = prom["SifHubAgreementReviewDue"]
    assert f"< {rules.review_due.within_days} * 86400" in review["expr"]
    assert 'status=~"live|suspended"' in review["expr"]
    assert _minutes(review["for"]) == rules.review_due.for_minutes
    refusals = prom["SifHubIngestRefusals"]
    per_second = rules.ingest_refusals.per_minute / 60
    window = f"[{rules.ingest_refusals.window_minutes:g}m]"
    assert f"{window})) > {per_second:g}" in refusals["expr"]
    assert _minutes(refusals["for"]) == rules.ingest_refusals.for_minutes
