"""Alerts on a real `hub serve` process with real RabbitMQ: an outbox row that keeps
failing (its subscriber's queue was deleted) is parked; the parked-rows alert fires once, is
delivered once by webhook (a real local HTTP receiver) and once by e-mail (a real local SMTP
server, which refuses the first try: retried, not duplicated), and GET /admin/alerts shows
it; ops fix the queue and re-drive the row, and the alert resolves once, delivered once by
each target. Every wait polls for an outcome under a generous cap; nothing is timed."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aio_pika
import pytest

from hub.amqp.publisher import AmqpPublisher
from hub.core import naming
from hub.core.alert_rules import AlertsConfig
from hub.demo import SECRETS
from hub.simulate import sample_data as data
from hub.simulate.school_agent import SchoolAgent
from tests.e2e.conftest import (
    ADMIN,
    AMQP_URL,
    RunningHub,
    _wait_connected,
    county_config,
    hub_running,
)
from tests.e2e.hub_process import HubProcess, hub_process
from tests.e2e.test_agreements import AGENT_FOR, DAY, DOVEDALE, _register_all
from tests.smtp_server import Mailbox, smtp_running
from tests.webhook_receiver import Receiver, receiver_running

pytestmark = pytest.mark.integration

RULES = ("outbox_backlog", "dead_letters", "not_consuming", "review_due", "ingest_refusals")
CAP_SECONDS = 90.0


def _alerts(webhook_url: str, smtp_port: int) -> dict[str, Any]:
    """Only the parked-rows rule, at once; evaluated five times a second."""
    return {
        "interval_seconds": 0.2,
        "rules": {
            "parked_rows": {"for_minutes": 0},
            **{name: {"enabled": False} for name in RULES},
        },
        "webhooks": [{"url": webhook_url, "timeout_seconds": 5}],
        "email": {
            "host": "127.0.0.1",
            "port": smtp_port,
            "from": "sifhub@county.example",
            "to": ["ops@county.example"],
        },
    }


async def _until(what: str, check: Callable[[], Awaitable[bool]]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + CAP_SECONDS
    while loop.time() < deadline:
        if await check():
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"gave up waiting: {what}")


async def _view(hub: HubProcess) -> dict[str, Any]:
    response = await hub.client.get("/admin/alerts", headers=ADMIN)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _delivered(view: dict[str, Any], kind: str) -> bool:
    events = [e for e in view["history"] if e["kind"] == kind]
    return bool(events) and all(d["delivered_at"] for e in events for d in e["deliveries"])


async def _delete_queue(name: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        await channel.queue_delete(name)


async def test_a_parked_row_alerts_once_and_resolves_once(tmp_path: Path) -> None:
    with (
        receiver_running(Receiver()) as receiver,
        smtp_running(Mailbox(refuse=1)) as mailbox,
    ):
        async with hub_process(
            tmp_path,
            env={"HUB_OUTBOX_MAX_ATTEMPTS": "2"},
            config_update={"alerts": _alerts(receiver.url, mailbox.port)},
        ) as hub:
            await _park_a_row(hub)
            await _until("the alert fires", lambda: _firing(hub))
            await _until("the firing is delivered", lambda: _sent(hub, "firing"))
            view = await _view(hub)
            (firing,) = view["firing"]
            assert (firing["rule"], firing["subject"], firing["value"]) == (
                "parked_rows",
                "outbox",
                1.0,
            )
            (event,) = view["history"]  # many rounds later, still one notification
            email = next(d for d in event["deliveries"] if d["target"] == "email")
            assert email["attempts"] == 2 and email["last_error"]  # 451 first, then taken

            await _fix_and_redrive(hub)
            await _until("the alert resolves", lambda: _resolved(hub))
            await _until("the resolution is delivered", lambda: _sent(hub, "resolved"))
            view = await _view(hub)
            assert view["firing"] == [] and view["pending"] == []
            assert [e["kind"] for e in view["history"]] == ["resolved", "firing"]

        bodies = [json.loads(r.body) for r in receiver.received()]
        assert [(b["status"], b["rule"]) for b in bodies] == [
            ("firing", "parked_rows"),
            ("resolved", "parked_rows"),
        ]
        assert [m["Subject"] for m in mailbox.received()] == [
            "[SIF Hub] FIRING: parked_rows (outbox)",
            "[SIF Hub] RESOLVED: parked_rows (outbox)",
        ]


async def _park_a_row(hub: HubProcess) -> None:
    """Every publish to CME comes back (its queue is gone): after two attempts the row is
    parked."""
    zone = "derbyshire"
    for agent_id in AGENT_FOR.values():
        agent = SchoolAgent(hub.client, zone, agent_id, SECRETS[agent_id])
        assert (await agent.register()).ok
    await _delete_queue(naming.subscriber_queue("cme", hub.queue_prefix))
    agent = SchoolAgent(hub.client, zone, "dovedale-mis", SECRETS["dovedale-mis"])
    xml = data.learner_attendance(DOVEDALE, DAY, "AM", "/")
    assert (await agent.send_event("LearnerAttendance", "Add", xml)).ok


async def _fix_and_redrive(hub: HubProcess) -> None:
    publisher = AmqpPublisher(AMQP_URL, timeout=5, prefix=hub.queue_prefix)
    await publisher.start()
    try:
        await publisher.ensure_queues(["cme"])
    finally:
        await publisher.close()
    response = await hub.client.post("/admin/outbox/redrive", json={}, headers=ADMIN)
    assert response.json() == {"redriven": 1}


async def _firing(hub: HubProcess) -> bool:
    return bool((await _view(hub))["firing"])


async def _resolved(hub: HubProcess) -> bool:
    return any(e["kind"] == "resolved" for e in (await _view(hub))["history"])


async def _sent(hub: HubProcess, kind: str) -> bool:
    return _delivered(await _view(hub), kind)


# --- queue rules through RabbitMQ's real management API, on both databases ---------------


async def _rule_events(running: RunningHub, rule: str, subject: str) -> list[str]:
    response = await running.admin("GET", "/admin/alerts")
    assert response.status_code == 200, response.text
    history = response.json()["history"]
    return [e["kind"] for e in history if (e["rule"], e["subject"]) == (rule, subject)]


async def _events_become(running: RunningHub, rule: str, subject: str, expected: list[str]) -> None:
    async def check() -> bool:
        return await _rule_events(running, rule, subject) == expected

    await _until(f"{rule}/{subject} history {expected}", check)


async def test_queue_rules_fire_and_resolve_from_the_brokers_figures(
    database_url: str, tmp_path: Path
) -> None:
    """CME's queue holds a copy and nobody reads it: not_consuming fires. Its consumer
    rejects the copy: the queue empties (not_consuming resolves) and the copy is
    dead-lettered (dead_letters fires). Ops purge the dead-letter queue: it resolves."""
    alerts = AlertsConfig.model_validate(
        {
            "interval_seconds": 0.2,
            "rules": {
                "not_consuming": {"for_minutes": 0},
                "dead_letters": {"for_minutes": 0},
                **{
                    name: {"enabled": False}
                    for name in ("outbox_backlog", "parked_rows", "review_due", "ingest_refusals")
                },
            },
        }
    )
    async with hub_running(database_url, tmp_path, county_config(alerts=alerts)) as running:
        await _wait_connected(running.hub)
        await _register_all(running)
        xml = data.learner_attendance(DOVEDALE, DAY, "AM", "/")
        assert (await running.agent("dovedale-mis").send_event("LearnerAttendance", "Add", xml)).ok
        await running.settle()
        await _events_become(running, "not_consuming", "cme", ["firing"])

        await _reject_one(running.queue("cme"))
        await _events_become(running, "not_consuming", "cme", ["resolved", "firing"])
        await _events_become(running, "dead_letters", "cme", ["firing"])

        dlq = naming.dead_letter_queue("cme", running.config.queue_prefix)
        connection = await aio_pika.connect(AMQP_URL)
        async with connection:
            channel = await connection.channel()
            await (await channel.get_queue(dlq, ensure=False)).purge()
        await _events_become(running, "dead_letters", "cme", ["resolved", "firing"])
        # Still one notification each way, many rounds later.
        await _events_become(running, "not_consuming", "cme", ["resolved", "firing"])


async def _reject_one(queue: str) -> None:
    """The LA service's consumer refuses the copy (reject, no requeue): dead-lettered."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel()
        found = await channel.get_queue(queue, ensure=False)
        for _ in range(100):
            message = await found.get(fail=False)
            if message is not None:
                await message.reject(requeue=False)
                return
            await asyncio.sleep(0.1)
    raise AssertionError("no copy to reject")
