"""LA services' own broker credentials, through the admin API of a whole running hub (real
database, real RabbitMQ and its management API): provisioned at start-up, issued and
rotated over HTTP, audited without the password, stale users removed at the next start-up."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import pytest
from aiormq.exceptions import ChannelAccessRefused, ProbableAuthenticationError
from sqlalchemy import text

from hub.amqp.provision import MANAGED_TAG, ManagementTarget
from hub.composition import Hub, build_hub, start, stop
from hub.core import naming
from hub.core.admins import BOOTSTRAP
from hub.core.config import Subscriber
from hub.settings import Settings
from hub.simulate import sample_data as data
from hub.simulate.la_consumer import delete_queues, drain
from tests.broker_fixtures import remove_broker_users
from tests.e2e.conftest import (
    AMQP_URL,
    RunningHub,
    _queues,
    _wait_connected,
    county_config,
    hub_running,
)

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


async def _wait_status(hub: Hub, status: str) -> None:
    """Provisioning runs in the background after the broker connects."""
    for _ in range(600):
        if hub.broker_users_status == status:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"broker users stayed {hub.broker_users_status!r}, not {status!r}")


@pytest.fixture
async def provisioned(
    database_url: str, tmp_path: Path, management: ManagementTarget
) -> AsyncIterator[RunningHub]:
    async with hub_running(database_url, tmp_path, provision_users=True) as running:
        await _wait_connected(running.hub)
        await _wait_status(running.hub, "ok")
        yield running


async def _broker_user(management: ManagementTarget, name: str) -> dict[str, Any] | None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(
            f"{management.base_url}/api/users/{name}",
            auth=(management.username, management.password),
        )
    return None if response.status_code == 404 else dict(response.json())


async def _audit_rows(running: RunningHub) -> list[dict[str, Any]]:
    async with running.hub.store.engine.connect() as conn:
        rows = await conn.execute(text("SELECT actor, action, subject, detail FROM audit"))
        return [dict(r._mapping) for r in rows.all()]


def _url(credentials: dict[str, str]) -> str:
    return f"amqp://{credentials['username']}:{credentials['password']}@127.0.0.1:5672/"


async def test_every_subscriber_gets_a_passwordless_user_named_like_its_queue(
    provisioned: RunningHub, management: ManagementTarget
) -> None:
    response = await provisioned.admin("GET", "/admin/subscribers")
    assert response.status_code == 200
    listed = response.json()
    assert len(listed) == len(provisioned.config.subscribers)
    for sub in listed:
        assert sub["broker_username"] == sub["queue"] == provisioned.queue(sub["id"])
        user = await _broker_user(management, sub["broker_username"])
        assert user is not None
        assert user["tags"] == [MANAGED_TAG] and user["password_hash"] == ""
    ready = await provisioned.client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"]["broker_users"] == "ok"


async def test_issued_credentials_read_the_services_own_copies_and_nothing_else(
    provisioned: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    response = await provisioned.admin("POST", "/admin/subscribers/cme/credentials")
    assert response.status_code == 200, response.text
    issued = response.json()
    assert set(issued) == {"username", "password", "queue"}
    assert issued["username"] == issued["queue"] == provisioned.queue("cme")
    assert response.headers["cache-control"] == "no-store"

    learner = data.make_learners(1)[0]
    agent = provisioned.agent(_agent_for(learner.school.laestab))
    assert (await agent.register()).ok
    ack = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(learner))
    assert ack.ok, ack.raw
    await provisioned.settle()
    copies = await drain(_url(issued), issued["queue"], expect=1)
    assert [c.headers[naming.H_SUBSCRIBER] for c in copies] == ["cme"]

    with pytest.raises(ChannelAccessRefused):
        await drain(_url(issued), provisioned.queue("virtual-school"))

    (row,) = [r for r in await _audit_rows(provisioned) if r["action"].startswith("broker.")]
    assert (row["actor"], row["action"], row["subject"]) == (
        BOOTSTRAP,
        "broker.credentials_issued",
        "cme",
    )
    assert issued["password"] not in str(await _audit_rows(provisioned))
    assert issued["password"] not in caplog.text


def _agent_for(laestab: str) -> str:
    return {"8302001": "hilltop-mis", "8304012": "dovedale-mis", "8302105": "matlock-mis"}[laestab]


async def test_issuing_again_rotates_the_password(provisioned: RunningHub) -> None:
    first = (await provisioned.admin("POST", "/admin/subscribers/hr-payroll/credentials")).json()
    second = (await provisioned.admin("POST", "/admin/subscribers/hr-payroll/credentials")).json()
    assert first["password"] != second["password"]
    with pytest.raises(ProbableAuthenticationError):
        await aio_pika.connect(_url(first), timeout=10)
    async with await aio_pika.connect(_url(second), timeout=10):
        pass
    subjects = [r["subject"] for r in await _audit_rows(provisioned)]
    assert subjects.count("hr-payroll") == 2


async def test_unknown_subscriber_is_a_404_problem(provisioned: RunningHub) -> None:
    response = await provisioned.admin("POST", "/admin/subscribers/nobody/credentials")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["title"] == "Unknown subscriber"
    assert not [r for r in await _audit_rows(provisioned) if r["action"].startswith("broker.")]


async def test_credentials_need_the_admin_token(provisioned: RunningHub) -> None:
    response = await provisioned.client.post("/admin/subscribers/cme/credentials")
    assert response.status_code == 401
    assert response.headers["content-type"].startswith(PROBLEM)


async def test_management_api_down_hub_keeps_serving_and_issuing_is_a_503(
    database_url: str, tmp_path: Path, management: ManagementTarget
) -> None:
    async with hub_running(
        database_url,
        tmp_path,
        provision_users=True,
        amqp_management_url="http://127.0.0.1:1",
    ) as running:
        await _wait_connected(running.hub)
        await _wait_status(running.hub, "retrying")
        ready = await running.client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["broker_users"] == "retrying"
        response = await running.admin("POST", "/admin/subscribers/cme/credentials")
        assert response.status_code == 503
        assert response.headers["content-type"].startswith(PROBLEM)
        assert "password" not in response.json()
        assert (await running.agent("hilltop-mis").register()).ok  # agents still served
        assert not [r for r in await _audit_rows(running) if r["action"].startswith("broker.")]


async def test_provisioning_turned_off_means_no_usernames_and_a_409(running: RunningHub) -> None:
    listed = (await running.admin("GET", "/admin/subscribers")).json()
    assert all(sub["broker_username"] is None for sub in listed)
    response = await running.admin("POST", "/admin/subscribers/cme/credentials")
    assert response.status_code == 409
    assert response.headers["content-type"].startswith(PROBLEM)


async def _run_once(settings: Settings, config: Any) -> None:
    hub = await build_hub(settings, config)
    await start(hub)
    try:
        await _wait_connected(hub)
        await _wait_status(hub, "ok")
    finally:
        await stop(hub)


async def test_a_removed_subscribers_user_is_deleted_at_the_next_start_up(
    database_url: str, tmp_path: Path, management: ManagementTarget
) -> None:
    county = county_config()
    leaver = Subscriber(id="leaver", name="A service that stopped")
    with_leaver = county.model_copy(update={"subscribers": [*county.subscribers, leaver]})
    settings = Settings(
        data_dir=tmp_path, database_url=database_url, amqp_url=AMQP_URL, publish_timeout_seconds=3
    )
    leaver_user = naming.subscriber_user("leaver", county.queue_prefix)
    try:
        await _run_once(settings, with_leaver)
        assert await _broker_user(management, leaver_user) is not None
        await _run_once(settings, county)
        assert await _broker_user(management, leaver_user) is None
        for sub in county.subscribers:
            user_name = naming.subscriber_user(sub.id, county.queue_prefix)
            assert await _broker_user(management, user_name) is not None
    finally:
        await remove_broker_users(county.queue_prefix)
        await delete_queues(AMQP_URL, _queues(with_leaver))
