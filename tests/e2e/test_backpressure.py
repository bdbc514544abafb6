"""Backpressure: with the broker unreachable the outbox grows; above its documented bound
the hub stops accepting events (SIF_Error 11/1: send again later) instead of taking work it
cannot deliver in time, and says so in /admin/stats. Below the bound again, it accepts."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from hub.pipeline.backlog import BacklogLimits, measure
from hub.simulate import sample_data as data
from tests.e2e.conftest import ADMIN, RunningHub, hub_running

pytestmark = pytest.mark.integration

DOVEDALE = "8304012"
BOUND = 5


def _sole_measurer(running: RunningHub) -> None:
    """Stop the hub's own backlog monitor: the test measures when it means to."""
    running.hub.supervisor.cancel("backlog")


async def test_above_the_backlog_bound_events_are_refused_11_1(
    database_url: str, tmp_path: Path
) -> None:
    async with hub_running(
        database_url, tmp_path, amqp_url="amqp://guest:guest@127.0.0.1:1/"
    ) as running:
        _sole_measurer(running)
        running.hub.backlog.limits = BacklogLimits(max_rows=BOUND, max_age_seconds=3600)
        agent = running.agent("dovedale-mis")
        assert (await agent.register()).ok
        learners = [p for p in data.make_learners(40) if p.school.laestab == DOVEDALE]
        accepted = 0
        for p in learners[: BOUND + 1]:
            ack = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))
            assert ack.status_code == 0, ack.raw  # taken: the outbox holds it
            accepted += 1
        await measure(running.hub.store, running.hub.backlog, datetime.now(UTC))
        refused = await agent.send_event(
            "LearnerPersonal", "Add", data.learner_personal(learners[BOUND + 1])
        )
        assert (refused.error_category, refused.error_code) == (11, 1), refused.raw
        assert refused.desc and "send again later" in refused.desc
        stats = (await running.client.get("/admin/stats", headers=ADMIN)).json()
        assert stats["backlog"]["rows"] == accepted == stats["pending"]
        assert stats["backlog"]["refusing"] is True
        assert stats["backlog"]["oldest_age_seconds"] >= 0
        # The refused event was not stored: nothing is promised for it.
        async with running.hub.store.transaction() as tx:
            assert (await tx.disclosures.stats()).received == {"LearnerPersonal": accepted}
        # Below the bound again (ops raised it, or routing caught up): accepted again.
        running.hub.backlog.limits = BacklogLimits(max_rows=BOUND * 10, max_age_seconds=3600)
        await asyncio.sleep(0)
        ack = await agent.send_event(
            "LearnerPersonal", "Add", data.learner_personal(learners[BOUND + 1])
        )
        assert ack.status_code == 0, ack.raw


async def test_an_old_backlog_is_refused_too(database_url: str, tmp_path: Path) -> None:
    async with hub_running(
        database_url, tmp_path, amqp_url="amqp://guest:guest@127.0.0.1:1/"
    ) as running:
        _sole_measurer(running)
        running.hub.backlog.limits = BacklogLimits(max_rows=1000, max_age_seconds=60)
        agent = running.agent("dovedale-mis")
        assert (await agent.register()).ok
        (p, q) = [p for p in data.make_learners(9) if p.school.laestab == DOVEDALE][:2]
        assert (await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))).ok
        two_minutes_on = datetime.now(UTC) + timedelta(minutes=2)  # nothing routed meanwhile
        await measure(running.hub.store, running.hub.backlog, two_minutes_on)
        ack = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(q))
        assert (ack.error_category, ack.error_code) == (11, 1), ack.raw
