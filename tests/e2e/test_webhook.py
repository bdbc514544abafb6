"""Webhook push end to end: real RabbitMQ (work, retry and dead-letter queues), a real HTTP
receiver on loopback, the real database. HR & Payroll receives by webhook; an AMQP
mirror on the same agreement shows the push route releases exactly what the queue route
does."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import yaml
from sqlalchemy import select
from standardwebhooks.webhooks import Webhook, WebhookVerificationError

from hub.amqp.provision import ManagementTarget
from hub.core import naming
from hub.core.config import HubConfig
from hub.core.records import WebhookAttemptRecord
from hub.simulate import sample_data as data
from hub.simulate.la_consumer import Received, drain
from hub.store.models import disclosures
from tests.e2e.conftest import COUNTY, RunningHub, _wait_connected, hub_running
from tests.webhook_receiver import HANG, Receiver, receiver_running

pytestmark = pytest.mark.integration

HR = "hr-payroll"
MIRROR = "hr-mirror"
# Short ladder for tests: 0.2 s, then 0.4 s; the third failed attempt dead-letters.
FAST: dict[str, Any] = {"webhook_retry_delays_seconds": [0.2, 0.4], "webhook_max_attempts": 3}


def webhook_config(url: str, prefix: str, timeout_seconds: float = 5.0) -> HubConfig:
    """The county example, HR & Payroll by webhook, plus an AMQP mirror on its agreement."""
    raw = yaml.safe_load(COUNTY.read_text())
    raw["queue_prefix"] = prefix
    for sub in raw["subscribers"]:
        if sub["id"] == HR:
            sub["delivery"] = {"type": "webhook", "url": url, "timeout_seconds": timeout_seconds}
    raw["subscribers"].append({"id": MIRROR, "name": "HR audit mirror (AMQP)"})
    for agreement in raw["agreements"]:
        if HR in agreement["recipients"]:
            agreement["recipients"].append(MIRROR)
    return HubConfig.model_validate(raw)


async def _until(check: Callable[[], Any], what: str, seconds: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not await _value(check()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _value(result: Any) -> Any:
    return await result if asyncio.iscoroutine(result) else result


async def _issue_secret(running: RunningHub) -> str:
    response = await running.admin("POST", f"/admin/subscribers/{HR}/webhook-secret")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    secret = response.json()["secret"]
    assert isinstance(secret, str) and secret.startswith("whsec_")
    return secret


async def _send_staff(running: RunningHub, count: int = 1) -> None:
    for staff in data.make_staff(count):
        agent = running.agent(
            {"8302001": "hilltop-mis", "8304012": "dovedale-mis", "8302105": "matlock-mis"}[
                staff.school.laestab
            ]
        )
        assert (await agent.register()).ok
        ack = await agent.send_event("WorkforcePersonal", "Add", data.workforce_personal(staff))
        assert ack.ok, ack.raw
    await running.settle()


async def _disclosure(running: RunningHub, subscriber: str) -> Any:
    async with running.hub.store.engine.connect() as conn:
        query = select(disclosures).where(disclosures.c.subscriber == subscriber)
        rows = (await conn.execute(query)).all()
    assert len(rows) == 1
    return rows[0]


async def _attempts(running: RunningHub) -> list[WebhookAttemptRecord]:
    async with running.hub.store.transaction() as tx:
        return list(reversed(await tx.webhooks.attempts(subscriber=HR)))


async def _acknowledged(running: RunningHub, copy_id: str) -> bool:
    async with running.hub.store.transaction() as tx:
        return (await tx.disclosures.recorded([copy_id])).get(copy_id, False)


def _paths(body: bytes) -> set[str]:
    return Received("", {}, body, None).element_paths()


async def test_webhook_delivers_a_signed_copy_of_exactly_what_was_released(
    database_url: str, tmp_path: Path
) -> None:
    prefix = f"sifhub-test-{uuid.uuid4().hex[:8]}"
    with receiver_running(Receiver()) as receiver:
        config = webhook_config(receiver.url, prefix)
        async with hub_running(database_url, tmp_path, config, **FAST) as running:
            await _wait_connected(running.hub)
            await _send_staff(running)  # before any secret: the copy waits in its queue
            assert receiver.received() == []
            waiting = (await running.client.get("/health/ready")).json()["checks"]
            secret = await _issue_secret(running)
            await _until(lambda: len(receiver.received()) == 1, "the push")
            request = receiver.received()[0]
            disclosure = await _disclosure(running, HR)
            await _until(lambda: _acknowledged(running, disclosure.copy_msg_id), "the ack")
            mirror = await running.drain(MIRROR, expect=1)
            attempts = await _attempts(running)
            audit = await running.admin("GET", f"/admin/subscribers/{HR}/webhook-attempts")
            broker = await running.admin("POST", f"/admin/subscribers/{HR}/credentials")
            listed = await running.admin("GET", "/admin/subscribers")
            ready = (await running.client.get("/health/ready")).json()["checks"]

    assert waiting[f"webhook:{HR}"] == "no_secret" and ready[f"webhook:{HR}"] == "running"
    # Signed the Standard Webhooks way, verifiable with the issued secret; tampering fails.
    Webhook(secret).verify(request.body, request.headers, json_parse=False)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(request.body + b" ", request.headers, json_parse=False)
    assert request.headers["webhook-id"] == disclosure.copy_msg_id
    assert request.headers["content-type"] == "application/xml"
    assert request.headers[naming.H_SUBSCRIBER] == HR
    assert naming.H_ATTEMPTS not in request.headers
    # Exactly what decide + apply_filter released: the AMQP mirror's elements, and the
    # disclosure row's paths; NI number in (HR's agreement), nothing beyond it.
    released = _paths(request.body)
    assert released == mirror[0].element_paths()
    leaves = {p for p in released if not any(q.startswith(p + "/") for q in released)}
    assert leaves == set(disclosure.paths)
    assert "NINumber" in released
    assert not any(p.startswith("PersonalInformation/Demographics") for p in released)
    assert [(a.attempt, a.outcome, a.status_code) for a in attempts] == [(1, "delivered", 200)]
    assert audit.status_code == 200 and audit.json()[0]["outcome"] == "delivered"
    # Its queue is the hub's to read: no broker credentials for the service.
    assert broker.status_code == 409 and broker.json()["title"] == "Not an AMQP subscriber"
    hr = next(s for s in listed.json() if s["id"] == HR)
    assert hr["delivery"]["type"] == "webhook" and hr["delivery"]["url"] == receiver.url


async def test_a_receiver_that_fails_then_recovers_gets_the_copy_after_retries(
    database_url: str, tmp_path: Path
) -> None:
    prefix = f"sifhub-test-{uuid.uuid4().hex[:8]}"
    with receiver_running(Receiver(script=[500, 503])) as receiver:
        config = webhook_config(receiver.url, prefix)
        async with hub_running(database_url, tmp_path, config, **FAST) as running:
            await _wait_connected(running.hub)
            secret = await _issue_secret(running)
            await _send_staff(running)
            disclosure = await _disclosure(running, HR)
            await _until(lambda: _acknowledged(running, disclosure.copy_msg_id), "the ack")
            attempts = await _attempts(running)

    requests = receiver.received()
    assert len(requests) == 3
    assert {r.headers["webhook-id"] for r in requests} == {disclosure.copy_msg_id}
    for r in requests:  # each attempt signed afresh, all verifiable
        Webhook(secret).verify(r.body, r.headers, json_parse=False)
    assert [(a.attempt, a.outcome, a.status_code, a.error, a.retry_in_ms) for a in attempts] == [
        (1, "retry", 500, "http_500", 200),
        (2, "retry", 503, "http_503", 400),
        (3, "delivered", 200, None, None),
    ]


async def test_a_receiver_that_times_out_is_retried(database_url: str, tmp_path: Path) -> None:
    prefix = f"sifhub-test-{uuid.uuid4().hex[:8]}"
    # Generous bounds: a loaded machine must not turn the prompt second answer into a timeout.
    with receiver_running(Receiver(script=[HANG], hang_seconds=8.0)) as receiver:
        config = webhook_config(receiver.url, prefix, timeout_seconds=2.0)
        async with hub_running(database_url, tmp_path, config, **FAST) as running:
            await _wait_connected(running.hub)
            await _issue_secret(running)
            await _send_staff(running)
            disclosure = await _disclosure(running, HR)
            await _until(lambda: _acknowledged(running, disclosure.copy_msg_id), "the ack")
            attempts = await _attempts(running)

    assert len(receiver.received()) == 2
    assert [(a.attempt, a.outcome, a.status_code, a.error) for a in attempts] == [
        (1, "retry", None, "timeout"),
        (2, "delivered", 200, None),
    ]


async def test_a_receiver_that_always_fails_sends_the_copy_to_the_dead_letter_queue(
    database_url: str, tmp_path: Path
) -> None:
    prefix = f"sifhub-test-{uuid.uuid4().hex[:8]}"
    with receiver_running(Receiver(then=500)) as receiver:
        config = webhook_config(receiver.url, prefix)
        async with hub_running(database_url, tmp_path, config, **FAST) as running:
            await _wait_connected(running.hub)
            await _issue_secret(running)
            await _send_staff(running)
            disclosure = await _disclosure(running, HR)
            await _until(lambda: len(receiver.received()) == 3, "three attempts")
            dlq = naming.dead_letter_queue(HR, prefix)
            dead = await drain(running.hub.settings.amqp_url, dlq, expect=1)
            attempts = await _attempts(running)
            acknowledged = await _acknowledged(running, disclosure.copy_msg_id)
            await asyncio.sleep(1.0)  # a fourth attempt would come after 0.4 s
            later = len(receiver.received())

    assert [d.message_id for d in dead] == [disclosure.copy_msg_id]
    assert [(a.attempt, a.outcome) for a in attempts] == [
        (1, "retry"),
        (2, "retry"),
        (3, "dead_lettered"),
    ]
    assert acknowledged is False
    assert later == 3


async def _close_deliverer_connection(management: ManagementTarget, prefix: str) -> int:
    """Close the hub's delivery connection from the broker side (only this hub's: the
    connection is named after its queue prefix). The management API lists a connection
    only after its next statistics emission, so it is looked for until it shows."""
    auth = (management.username, management.password)
    wanted = f"sif-hub-deliveries:{prefix}"
    names: list[str] = []

    async def listed() -> bool:
        async with httpx.AsyncClient(timeout=10) as client:
            found = (await client.get(f"{management.base_url}/api/connections", auth=auth)).json()
        names[:] = [
            c["name"]
            for c in found
            if (c.get("client_properties") or {}).get("connection_name") == wanted
        ]
        return bool(names)

    await _until(listed, "the delivery connection in the management API")
    async with httpx.AsyncClient(timeout=10) as client:
        for name in names:
            response = await client.delete(
                f"{management.base_url}/api/connections/{quote(name, safe='')}", auth=auth
            )
            assert response.status_code in (200, 204), response.text
    return len(names)


async def test_pushing_resumes_after_the_broker_drops_the_connection(
    database_url: str, tmp_path: Path, management: ManagementTarget
) -> None:
    prefix = f"sifhub-test-{uuid.uuid4().hex[:8]}"
    with receiver_running(Receiver()) as receiver:
        config = webhook_config(receiver.url, prefix)
        async with hub_running(database_url, tmp_path, config, **FAST) as running:
            await _wait_connected(running.hub)
            await _issue_secret(running)
            await _send_staff(running)
            await _until(lambda: len(receiver.received()) == 1, "the first push")

            async def first_recorded() -> bool:
                return len(await _attempts(running)) >= 1

            # Once its attempt row is committed, the copy is acknowledged: a redelivery after
            # the drop finds it so and is not pushed again (before that, at-least-once may).
            await _until(first_recorded, "the first push's attempt row")
            closed = await _close_deliverer_connection(management, prefix)
            await _send_staff(running, count=2)  # two new events, so two new copies
            await _until(lambda: len(receiver.received()) >= 3, "pushes after reconnecting")

            async def recorded() -> bool:
                return len(await _attempts(running)) >= 3

            await _until(recorded, "their attempt rows")
            attempts = await _attempts(running)

    assert closed == 1
    ids = [r.headers["webhook-id"] for r in receiver.received()]
    assert len(ids) == len(set(ids)) == 3
    assert [a.outcome for a in attempts] == ["delivered"] * 3
