"""The pipeline reports to the Metrics port, here the Prometheus exporter over the in-memory
fakes: failed and retried routing, copies held then released, refusals, and label values
kept to bounded sets."""

from __future__ import annotations

import dataclasses
from datetime import timedelta

import pytest

from hub.core.errors import system_error
from hub.core.records import SuppressionRecord
from hub.metrics.prometheus import Levels, PrometheusMetrics, SubscriberQueues
from hub.pipeline.agreements import load_policy
from hub.pipeline.dispatch import dispatch_once
from hub.pipeline.release import release_once
from hub.simulate import sample_data as data
from hub.simulate import sif_messages as m
from tests.unit.test_pipeline_fakes import (  # noqa: F401 - fixtures
    DAY,
    IMMEDIATE_FOR_LEARNER,
    LEARNER,
    Pipeline,
    agent_of,
    config,
    hub,
    schemas,
)


@pytest.fixture
def metrics(hub: Pipeline) -> PrometheusMetrics:  # noqa: F811 - the imported fixture
    exporter = PrometheusMetrics(
        [
            SubscriberQueues(subscriber=s.id, queue="q", dead_letter_queue="dlq", delivery="push")
            for s in hub.config.subscribers
        ],
        "test",
    )
    hub.ingest = dataclasses.replace(hub.ingest, metrics=exporter)
    hub.dispatch.metrics = exporter
    return exporter


def value(metrics: PrometheusMetrics, name: str, **labels: str) -> float:
    found = metrics.registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


async def test_a_failed_publish_counts_a_failed_row_then_the_routed_one(
    hub: Pipeline,  # noqa: F811
    metrics: PrometheusMetrics,
) -> None:
    assert (await hub.learner_event(LEARNER)).ok
    hub.publisher.fail_next(1)
    assert await dispatch_once(hub.dispatch) == 1
    row = {"object": "LearnerPersonal", "action": "Add"}
    assert value(metrics, "sifhub_outbox_rows_total", **row, outcome="failed") == 1
    assert value(metrics, "sifhub_outbox_rows_total", **row, outcome="routed") == 0
    assert value(metrics, "sifhub_post_to_publish_seconds_count") == 0

    (outbox_row,) = hub.store.state.outbox.values()
    hub.clock.now = outbox_row.next_attempt_at
    assert await dispatch_once(hub.dispatch) == 1
    assert value(metrics, "sifhub_outbox_rows_total", **row, outcome="routed") == 1
    for sub in IMMEDIATE_FOR_LEARNER:
        copies = {"subscriber": sub, "object": "LearnerPersonal", "outcome": "published"}
        assert value(metrics, "sifhub_copies_total", **copies) == 1
    assert value(metrics, "sifhub_post_to_publish_seconds_count") == 1


async def test_a_held_copy_is_counted_held_then_released(
    hub: Pipeline,  # noqa: F811
    metrics: PrometheusMetrics,
) -> None:
    attendance = data.learner_attendance(LEARNER, DAY, "AM", "/")
    agent = agent_of(LEARNER)
    assert (await hub.post(agent, m.event(agent, "LearnerAttendance", "Add", attendance))).ok
    assert await dispatch_once(hub.dispatch) == 1
    team = {"subscriber": "attendance-team", "object": "LearnerAttendance"}
    assert value(metrics, "sifhub_copies_total", **team, outcome="held") == 1
    assert value(metrics, "sifhub_copies_total", **team, outcome="released") == 0

    (held,) = hub.store.state.held.values()
    assert held.release_after is not None
    hub.clock.now = held.release_after
    assert await release_once(hub.dispatch) == 1
    assert value(metrics, "sifhub_copies_total", **team, outcome="released") == 1


async def test_a_held_copy_no_longer_entitled_is_counted_dropped(
    hub: Pipeline,  # noqa: F811
    metrics: PrometheusMetrics,
) -> None:
    attendance = data.learner_attendance(LEARNER, DAY, "AM", "/")
    agent = agent_of(LEARNER)
    assert (await hub.post(agent, m.event(agent, "LearnerAttendance", "Add", attendance))).ok
    assert await dispatch_once(hub.dispatch) == 1
    (held,) = hub.store.state.held.values()
    assert held.release_after is not None
    # The learner is suppressed while the copy waits for its window.
    suppression = SuppressionRecord("s1", LEARNER.refid, "confidential", hub.clock(), "test")
    async with hub.store.transaction() as tx:
        await tx.privacy.add_suppression(suppression)
    policy = await load_policy(hub.store, hub.clock())
    hub.dispatch.policy = lambda: policy.at(hub.clock())
    hub.clock.now = held.release_after
    assert await release_once(hub.dispatch) == 1
    team = {"subscriber": "attendance-team", "object": "LearnerAttendance"}
    assert value(metrics, "sifhub_copies_total", **team, outcome="dropped") == 1
    assert value(metrics, "sifhub_copies_total", **team, outcome="released") == 0


async def test_a_refusal_is_counted_with_its_sif_category_and_code(
    hub: Pipeline,  # noqa: F811
    metrics: PrometheusMetrics,
) -> None:
    hub.store.unavailable = True
    ack = await hub.learner_event(LEARNER)
    hub.store.unavailable = False
    assert (ack.error_category, ack.error_code) == (11, 1)
    refusal = {"kind": "SIF_Event", "object": "LearnerPersonal", "category": "11", "code": "1"}
    assert value(metrics, "sifhub_ingest_refusals_total", **refusal) == 1
    timing = {"kind": "SIF_Event", "outcome": "refused"}
    assert value(metrics, "sifhub_ingest_seconds_count", **timing) == 1


def test_label_values_outside_their_sets_are_counted_as_other() -> None:
    queues = [SubscriberQueues(subscriber="cme", queue="q", dead_letter_queue="d", delivery="push")]
    metrics = PrometheusMetrics(queues, "test")
    metrics.ingested(
        kind="P830200123843",
        object_name="A1B2C3D4E5F60718293A4B5C6D7E8F90",
        action="Upsert",
        error=system_error("x"),
        seconds=timedelta(milliseconds=5).total_seconds(),
    )
    metrics.released("LearnerPersonal", "someone-else", "vanished")
    metrics.render(
        Levels(
            backlog_rows=0,
            oldest_age_seconds=0,
            parked_rows=0,
            max_rows=1,
            max_age_seconds=1,
            refusing=False,
            measured_at=None,
            held=None,
        )
    )
    counted = {"kind": "other", "object": "other", "action": "other", "outcome": "refused"}
    assert value(metrics, "sifhub_ingest_messages_total", **counted) == 1
    released = {"subscriber": "other", "object": "LearnerPersonal", "outcome": "other"}
    assert value(metrics, "sifhub_copies_total", **released) == 1
    assert value(metrics, "sifhub_database_up") == 0
