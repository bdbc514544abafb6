"""The dispatcher is woken by new work, not found by its poll: with an hour-long idle poll,
an accepted event still reaches its subscribers (real HTTP app, database and RabbitMQ)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from hub.core import naming
from hub.simulate import sample_data as data
from tests.e2e.conftest import _wait_connected, hub_running

pytestmark = pytest.mark.integration

HOUR = 3600.0


async def test_an_event_is_delivered_although_the_idle_poll_is_an_hour(
    database_url: str, tmp_path: Path
) -> None:
    async with hub_running(
        database_url, tmp_path, dispatch_idle_seconds=HOUR, dispatch_idle_max_seconds=HOUR
    ) as running:
        await _wait_connected(running.hub)
        agent = running.agent("dovedale-mis")
        assert (await agent.register()).ok
        await asyncio.sleep(0.2)  # the dispatcher has found nothing and waits out its poll
        pupil = data.make_learners(3)[1]  # at Dovedale, whose pupils flow to CME at once
        ack = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(pupil))
        assert ack.ok, ack.raw
        copies = await running.drain("cme", expect=1, wait_seconds=20)
        assert [c.headers[naming.H_OBJECT] for c in copies] == ["LearnerPersonal"]
