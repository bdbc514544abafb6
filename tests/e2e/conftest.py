"""A whole hub per test: real database (SQLite and PostgreSQL), real RabbitMQ, the shipped
county configuration under a private queue prefix, HTTP through the ASGI app."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from time import monotonic as _monotonic
from typing import Any

import httpx
import pytest

from hub.api.app import create_app
from hub.composition import Hub, build_hub, start, stop
from hub.configfile import load_config
from hub.core import naming
from hub.core.config import HubConfig
from hub.core.retry import RetryLadder
from hub.demo import SECRETS
from hub.pipeline.release import release_once
from hub.settings import DEV_ADMIN_TOKEN, Settings
from hub.simulate.la_consumer import Received, delete_queues, drain
from hub.simulate.school_agent import SchoolAgent
from tests.broker_fixtures import remove_broker_users

REPO = Path(__file__).resolve().parents[2]
COUNTY = REPO / "deploy/examples/county.yaml"
AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"


class Clock:
    """The hub's clock in tests: starts at a known Monday 06:00 UTC (in the future, so
    rows the store stamps with the real time are never 'later' than the hub's now) and
    runs with real time, so retry backoffs come due; `advance` jumps ahead."""

    def __init__(self) -> None:
        today = datetime.now(UTC).date()
        monday = today + timedelta(days=7 - today.weekday())
        self._start = datetime.combine(monday, time(6, 0), tzinfo=UTC)
        self._began = _monotonic()
        self._offset = timedelta()

    @property
    def now(self) -> datetime:
        return self._start + self._offset + timedelta(seconds=_monotonic() - self._began)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self._offset += timedelta(**delta)
        return self.now


# The bootstrap identity (HUB_ADMIN_TOKEN), whose audit rows say "bootstrap"; the note is
# free text stored beside it, never the actor.
ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}", "X-Hub-Note": "test-ops"}


@dataclass
class RunningHub:
    hub: Hub
    client: httpx.AsyncClient
    clock: Clock

    async def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.client.request(method, path, headers=ADMIN, **kwargs)

    async def release(self) -> int:
        """Run the release (replay) stage once, as its loop would at the hub's now."""
        return await release_once(self.hub.dispatch)

    @property
    def config(self) -> HubConfig:
        return self.hub.config

    def agent(self, agent_id: str) -> SchoolAgent:
        return SchoolAgent(self.client, self.config.zones[0], agent_id, SECRETS[agent_id])

    def queue(self, subscriber_id: str) -> str:
        return naming.subscriber_queue(subscriber_id, self.config.queue_prefix)

    async def drain(
        self, subscriber_id: str, expect: int | None = None, wait_seconds: float = 10.0
    ) -> list[Received]:
        return await drain(
            self.hub.settings.amqp_url,
            self.queue(subscriber_id),
            expect=expect,
            wait_seconds=wait_seconds,
        )

    async def settle(self, timeout: float = 30.0) -> None:
        """Wait until the outbox is empty (everything accepted has been routed)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            async with self.hub.store.transaction() as tx:
                if (await tx.disclosures.stats()).pending == 0:
                    return
            await asyncio.sleep(0.05)
        raise AssertionError("outbox did not drain")


def county_config(**overrides: object) -> HubConfig:
    config = load_config(COUNTY)
    update = {"queue_prefix": f"sifhub-test-{uuid.uuid4().hex[:8]}", **overrides}
    return config.model_copy(update=update)


@asynccontextmanager
async def hub_running(
    database_url: str,
    data_dir: Path,
    config: HubConfig | None = None,
    amqp_url: str = AMQP_URL,
    provision_users: bool = False,
    **settings_overrides: Any,
) -> AsyncIterator[RunningHub]:
    """Broker users are provisioned only when a test asks (provision_users), and are then
    removed afterwards like the queues."""
    config = config or county_config()
    settings = Settings(
        data_dir=data_dir,
        database_url=database_url,
        amqp_url=amqp_url,
        amqp_provision_users=provision_users,
        **{"dispatch_idle_seconds": 0.02, "publish_timeout_seconds": 3, **settings_overrides},
    )
    clock = Clock()
    hub = await build_hub(settings, config, clock)
    await start(hub)
    app = create_app(hub)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://hub", timeout=30
        ) as client:
            yield RunningHub(hub, client, clock)
    finally:
        await stop(hub)
        if amqp_url == AMQP_URL:
            await delete_queues(AMQP_URL, _queues(config, settings))
        if provision_users:
            await remove_broker_users(config.queue_prefix)


def _queues(config: HubConfig, settings: Settings | None = None) -> list[str]:
    """Every queue the hub declares: subscriber queues, their DLQs, the retry queues of
    the subscribers the hub delivers to (webhook, api)."""
    ladder = settings.webhook_ladder() if settings else RetryLadder()
    delivered = [s for s, _ in config.webhook_subscribers()]
    delivered += [s for s, _ in config.api_subscribers()]
    delivered += [s for s, _ in config.file_subscribers()]
    retry_queues = [
        naming.retry_queue(s.id, delay, config.queue_prefix)
        for s in delivered
        for delay in ladder.delays_ms
    ]
    return retry_queues + [
        q
        for s in config.subscribers
        for q in (
            naming.subscriber_queue(s.id, config.queue_prefix),
            naming.dead_letter_queue(s.id, config.queue_prefix),
        )
    ]


@pytest.fixture
async def running(database_url: str, tmp_path: Path) -> AsyncIterator[RunningHub]:
    async with hub_running(database_url, tmp_path) as running_hub:
        await _wait_connected(running_hub.hub)
        yield running_hub


async def _wait_connected(hub: Hub) -> None:
    for _ in range(200):
        if hub.publisher.connected and hub.puller.connected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("hub did not connect to RabbitMQ")
