"""Many hubs, one database: two `hub serve` processes on one PostgreSQL database release a
delivery window's held copies once, even with one of them paused (SIGSTOP) mid-release:
no duplicate copy, no extra disclosure row."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest
import yaml
from sqlalchemy import text
from sqlalchemy.engine import make_url

from hub.core import naming
from hub.core.ports import Outgoing, Publisher
from hub.demo import SECRETS
from hub.simulate import sample_data as data
from hub.simulate.la_consumer import delete_queues, drain
from hub.simulate.school_agent import SchoolAgent
from tests.db_fixtures import fresh_pg_database
from tests.e2e.conftest import AMQP_URL, COUNTY, _wait_connected, county_config, hub_running
from tests.e2e.test_agreements import _sole_releaser

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AGENT, SCHOOL = "dovedale-mis", "8304012"  # no UPN-keyed pupil list: nothing waits for identity
MARKS = 120
# The window must come after both hubs have started and the marks are posted (the test
# checks that it did); generous, so that a loaded machine does not miss it.
WINDOW_AFTER_SECONDS = 45


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(path: Path, prefix: str, window: datetime) -> Path:
    """The county, with the weekly attendance return's window moved to `window` (today)."""
    config = yaml.safe_load(COUNTY.read_text())
    config["queue_prefix"] = prefix
    local = window.astimezone(ZoneInfo("Europe/London"))
    (att,) = [a for a in config["agreements"] if a["id"] == "DSA-ATT-2026"]
    att["schedule"] = {
        "mode": "windows",
        "times": [local.strftime("%H:%M:%S")],
        "days": [local.strftime("%a")],
    }
    path.write_text(yaml.safe_dump(config))
    return path


def _serve(config: Path, database_url: str, port: int, data_dir: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HUB_DATABASE_URL": database_url,
        "HUB_PORT": str(port),
        "HUB_DATA_DIR": str(data_dir),
        "HUB_LOG_LEVEL": "WARNING",
        "HUB_AMQP_PROVISION_USERS": "false",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _ready(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        for _ in range(300):
            try:
                if (await client.get("/health/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("hub did not become ready")


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    async with fresh_pg_database() as url:
        yield url


async def _scalar(url: str, query: str) -> int:
    conn = await asyncpg.connect(make_url(url).set(drivername="postgresql").render_as_string(False))
    try:
        return int(await conn.fetchval(query))
    finally:
        await conn.close()


async def test_two_hubs_release_a_window_once_with_one_paused(pg_url: str, tmp_path: Path) -> None:
    prefix = county_config().queue_prefix
    window = datetime.now(UTC) + timedelta(seconds=WINDOW_AFTER_SECONDS)
    config = _config(tmp_path / "county.yaml", prefix, window)
    ports = [_free_port(), _free_port()]
    hubs = [_serve(config, pg_url, port, tmp_path / f"hub{i}") for i, port in enumerate(ports)]
    queue = naming.subscriber_queue("attendance-team", prefix)
    try:
        for port in ports:
            await _ready(f"http://127.0.0.1:{port}")
        learners = [p for p in data.make_learners(MARKS * 3) if p.school.laestab == SCHOOL]
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{ports[0]}", timeout=10) as c:
            agent = SchoolAgent(c, "derbyshire", AGENT, SECRETS[AGENT])
            assert (await agent.register()).ok
            for p in learners[:MARKS]:
                xml = data.learner_attendance(p, window.date(), "AM", "/")
                assert (await agent.send_event("LearnerAttendance", "Add", xml)).ok
        held = "SELECT count(*) FROM held_copies WHERE settled_at IS NULL AND reason = 'schedule'"
        for _ in range(300):
            if await _scalar(pg_url, held) == len(learners[:MARKS]):
                break
            await asyncio.sleep(0.1)
        assert await _scalar(pg_url, held) == MARKS
        assert datetime.now(UTC) < window, "posting took longer than the window's lead"
        # Both hubs are due to release at the window; pause one just as it may have claimed.
        await asyncio.sleep((window - datetime.now(UTC)).total_seconds() + 0.3)
        hubs[1].send_signal(signal.SIGSTOP)
        try:
            await asyncio.sleep(8)  # the other hub's release loop runs (every 5 s)
        finally:
            hubs[1].send_signal(signal.SIGCONT)
        copies = await drain(AMQP_URL, queue, expect=MARKS, wait_seconds=60)
        await asyncio.sleep(6)  # the paused hub's next pass: it must find nothing to release
        copies += await drain(AMQP_URL, queue, wait_seconds=2)
    finally:
        for process in hubs:
            process.send_signal(signal.SIGCONT)
            process.terminate()
        for process in hubs:
            process.wait(timeout=20)
        config_model = county_config(queue_prefix=prefix)
        await delete_queues(
            AMQP_URL,
            [
                q
                for s in config_model.subscribers
                for q in (
                    naming.subscriber_queue(s.id, prefix),
                    naming.dead_letter_queue(s.id, prefix),
                )
            ],
        )
    assert len(copies) == MARKS  # no duplicate copy
    assert len({c.message_id for c in copies}) == MARKS
    rows = "SELECT count(*) FROM disclosures WHERE subscriber = 'attendance-team'"
    assert await _scalar(pg_url, rows) == MARKS  # no extra disclosure row
    assert await _scalar(pg_url, held) == 0


class _Gate:
    """A publisher that waits at a gate before publishing: a hub stalled mid-release."""

    def __init__(self, inner: Publisher) -> None:
        self.inner, self.open, self.waiting = inner, asyncio.Event(), asyncio.Event()

    async def ensure_queues(self, subscriber_ids: Sequence[str]) -> None:
        await self.inner.ensure_queues(subscriber_ids)

    async def publish_batch(self, messages: Sequence[Outgoing]) -> list[Exception | None]:
        self.waiting.set()
        await self.open.wait()
        return await self.inner.publish_batch(messages)

    async def ping(self) -> None:
        await self.inner.ping()


async def test_a_stalled_releaser_keeps_its_claim_and_settles_once(
    database_url: str, tmp_path: Path
) -> None:
    config = county_config()
    async with (
        hub_running(database_url, tmp_path / "a", config) as first,
        hub_running(database_url, tmp_path / "b", config) as second,
    ):
        for running in (first, second):
            _sole_releaser(running)
            await _wait_connected(running.hub)
        agent = first.agent(AGENT)
        assert (await agent.register()).ok
        learners = [p for p in data.make_learners(60) if p.school.laestab == SCHOOL][:15]
        for p in learners:
            xml = data.learner_attendance(p, first.clock.now.date(), "AM", "/")
            assert (await agent.send_event("LearnerAttendance", "Add", xml)).ok
        await first.settle()
        for running in (first, second):
            running.clock.advance(hours=1, minutes=1)  # past Monday 07:00: the window opens
        gate = _Gate(first.hub.dispatch.publisher)
        first.hub.dispatch.publisher = gate
        stalled = asyncio.create_task(first.release())
        await gate.waiting.wait()  # claimed, not yet published
        assert await second.release() == 0  # the claim holds: nothing for the other hub
        second.clock.advance(minutes=5)  # the stalled hub's lease runs out: the other takes over
        assert await second.release() == len(learners)
        gate.open.set()
        assert await stalled == len(learners)  # it publishes again, but settles nothing
        copies = await second.drain("attendance-team", expect=len(learners) * 2)
        async with second.hub.store.engine.connect() as conn:
            rows = await conn.execute(
                text("SELECT count(*) FROM disclosures WHERE subscriber = 'attendance-team'")
            )
            disclosed = rows.scalar_one()
    # At-least-once: a claimer stalled past its lease re-sends the same copies (consumers
    # de-duplicate on message_id), and the disclosure log records each copy once.
    assert len({c.message_id for c in copies}) == len(learners)
    assert disclosed == len(learners)
