"""Outbox rows that never succeed are parked with their reason after a few attempts (not
retried forever), shown to ops, and re-driven by an admin call: then they are delivered."""

from __future__ import annotations

import asyncio

import aio_pika
import pytest

from hub.core.admins import BOOTSTRAP
from hub.simulate import sample_data as data
from tests.e2e.conftest import AMQP_URL, RunningHub
from tests.e2e.test_agreements import DAY, DOVEDALE, _audit, _register_all

pytestmark = pytest.mark.integration


async def _delete_queue(name: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


async def _parked(running: RunningHub) -> list[dict[str, object]]:
    response = await running.admin("GET", "/admin/outbox/parked")
    assert response.status_code == 200, response.text
    return list(response.json())


async def test_a_row_that_keeps_failing_is_parked_then_redriven(running: RunningHub) -> None:
    running.hub.dispatch.max_attempts = 3
    await _register_all(running)
    await _delete_queue(running.queue("cme"))  # every publish to CME now comes back
    agent = running.agent("dovedale-mis")
    xml = data.learner_attendance(DOVEDALE, DAY, "AM", "/")
    assert (await agent.send_event("LearnerAttendance", "Add", xml)).ok
    for _ in range(400):
        if await _parked(running):
            break
        await asyncio.sleep(0.05)
    (row,) = await _parked(running)
    assert (row["object_name"], row["attempts"]) == ("LearnerAttendance", 3)
    assert row["last_error"] and "Error" in str(row["last_error"])
    stats = (await running.admin("GET", "/admin/stats")).json()
    assert (stats["pending"], stats["parked"]) == (1, 1)
    await asyncio.sleep(1)
    assert (await _parked(running))[0]["attempts"] == 3  # parked: no more attempts

    await running.hub.publisher.ensure_queues(["cme"])  # ops fix the cause ...
    response = await running.admin("POST", "/admin/outbox/redrive", json={})
    assert response.json() == {"redriven": 1}  # ... and re-drive
    await running.settle()
    (copy,) = await running.drain("cme", expect=1)
    assert copy.object.get("LearnerPersonalRefId") == DOVEDALE.refid
    assert await _parked(running) == []
    # The actor is who authenticated (the bootstrap token), not what a header claims.
    assert [actor for actor, _ in await _audit(running, "outbox.redrive")] == [BOOTSTRAP]
