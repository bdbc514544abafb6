"""Accepted means delivered: through a RabbitMQ stop/start, a PostgreSQL restart mid-stream
and a kill -9 of the hub.

Every outage here is of a private RabbitMQ node or PostgreSQL cluster that the test started
(tests/private_services.py): the machine's shared broker and database are never stopped.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import asyncpg  # type: ignore[import-untyped]
import httpx
import pytest

from hub.amqp.provision import ManagementTarget
from hub.core import naming
from hub.demo import SECRETS
from hub.simulate import sample_data as data
from hub.simulate import sif_messages as m
from hub.simulate.la_consumer import delete_queues, drain
from hub.simulate.school_agent import Ack, SchoolAgent
from tests.broker_fixtures import remove_broker_users
from tests.e2e.conftest import (
    AMQP_URL,
    COUNTY,
    RunningHub,
    _wait_connected,
    county_config,
    hub_running,
)
from tests.private_services import PrivatePostgres, PrivateRabbit, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AGENT = "dovedale-mis"  # its school has no pupil exclusions under DSA-CME-2026
SCHOOL = "8304012"
READY_WITHIN_SECONDS = 120


def _learners(n: int) -> list[data.Learner]:
    return [p for p in data.make_learners(n * 3) if p.school.laestab == SCHOOL][:n]


@pytest.fixture
async def running(
    database_url: str, tmp_path: Path, rabbit_outage: PrivateRabbit
) -> AsyncIterator[RunningHub]:
    """A hub on the private RabbitMQ node (running again after the test, whatever it did)."""
    async with hub_running(database_url, tmp_path, amqp_url=rabbit_outage.url) as running_hub:
        await _wait_connected(running_hub.hub)
        yield running_hub


async def test_rabbitmq_restart_loses_nothing(
    running: RunningHub, rabbit_outage: PrivateRabbit
) -> None:
    await asyncio.to_thread(rabbit_outage.stop_app)
    agent = running.agent(AGENT)
    assert (await agent.register()).ok
    learners = _learners(30)
    for p in learners:  # broker down: acks still come from the outbox
        ack = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))
        assert ack.status_code == 0, ack.raw
    async with running.hub.store.transaction() as tx:
        assert (await tx.disclosures.stats()).pending == len(learners)
    await asyncio.to_thread(rabbit_outage.start_app)
    await running.settle(timeout=120)
    copies = await running.drain("cme", expect=len(learners), wait_seconds=30)
    refids = {c.object.get("RefId") for c in copies}
    assert refids == {p.refid for p in learners}
    assert len({c.message_id for c in copies}) == len(learners)  # once each, after de-duplication


def _start_hub(
    config_file: Path, database_url: str, port: int, data_dir: Path
) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "HUB_DATABASE_URL": database_url,
        "HUB_PORT": str(port),
        "HUB_DATA_DIR": str(data_dir),
        "HUB_LOG_LEVEL": "WARNING",
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    with open(data_dir / "hub.log", "ab") as log:  # kept with the test's tmp_path
        return subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--config", str(config_file)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )


async def _wait_ready(base: str) -> None:
    """Start-up (imports, XSDs, migrations) took 21 s on a loaded two-core CI machine."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + READY_WITHIN_SECONDS
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        while loop.time() < deadline:
            try:
                if (await client.get("/health/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError("hub did not become ready")


@pytest.fixture
async def hub_config_file(
    tmp_path: Path, management: ManagementTarget
) -> AsyncIterator[tuple[Path, str]]:
    """A private queue prefix; the hub process provisions broker users as in production,
    and they go afterwards with the queues."""
    prefix = county_config().queue_prefix
    text = COUNTY.read_text().replace("queue_prefix: sifhub ", f"queue_prefix: {prefix} ")
    assert prefix in text
    path = tmp_path / "county.yaml"
    path.write_text(text)
    yield path, prefix
    config = county_config(queue_prefix=prefix)
    await remove_broker_users(prefix)
    await delete_queues(
        AMQP_URL,
        [
            q
            for s in config.subscribers
            for q in (naming.subscriber_queue(s.id, prefix), naming.dead_letter_queue(s.id, prefix))
        ],
    )


async def test_kill_9_mid_stream_loses_nothing_accepted(
    database_url: str, tmp_path: Path, hub_config_file: tuple[Path, str]
) -> None:
    config_file, prefix = hub_config_file
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    process = _start_hub(config_file, database_url, port, tmp_path)
    acked: list[str] = []
    try:
        await _wait_ready(base)
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            agent = SchoolAgent(client, "derbyshire", AGENT, SECRETS[AGENT])
            assert (await agent.register()).ok
            for i, p in enumerate(_learners(60)):
                if i == 30:
                    process.send_signal(signal.SIGKILL)
                    process.wait(timeout=10)
                try:
                    ack = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))
                except httpx.TransportError:
                    continue  # the hub is dead: not acked, so not promised
                if ack.status_code == 0:
                    acked.append(p.refid)
    finally:
        process.kill()
        process.wait(timeout=10)
    assert len(acked) >= 30
    process = _start_hub(config_file, database_url, port, tmp_path)
    try:
        await _wait_ready(base)
        queue = naming.subscriber_queue("cme", prefix)
        copies = await drain(AMQP_URL, queue, expect=len(acked), wait_seconds=60)
    finally:
        process.terminate()
        process.wait(timeout=20)
    assert set(acked) <= {c.object.get("RefId") for c in copies}


# --- PostgreSQL restart mid-stream --------------------------------------------------------

BEFORE_STOP = 15  # acks before the database goes
REFUSED_WHILE_DOWN = 5  # 11/1 answers seen before it comes back
RESEND_AFTER_SECONDS = 0.1
AGENT_TIMEOUT_SECONDS = 20  # a hang fails the post; the hub's own DB timeouts are shorter


async def _create_database(cluster: PrivatePostgres, name: str) -> str:
    conn = await asyncpg.connect(host="127.0.0.1", port=cluster.port, user="postgres")
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return cluster.url(name)


class _Stream:
    """An agent posting one event per learner, in order, as a SIF agent does: an event
    answered 11/1 is sent again, unchanged (same message id), before the next one. Every
    post is kept with the time it was sent."""

    def __init__(self, agent: SchoolAgent, learners: list[data.Learner]) -> None:
        self.agent, self.learners = agent, learners
        self.posts: list[tuple[float, Ack]] = []
        self.acked: list[str] = []

    def refused_since(self, since: float) -> list[Ack]:
        return [ack for sent, ack in self.posts if sent >= since and _is_11_1(ack)]

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        for p in self.learners:
            message_id = m.msg_id()
            while True:
                xml = data.learner_personal(p)
                sent = loop.time()
                ack = await self.agent.send_event("LearnerPersonal", "Add", xml, message_id)
                self.posts.append((sent, ack))
                if ack.http_status == 200 and ack.status_code == 0:
                    self.acked.append(p.refid)
                    break
                if not _is_11_1(ack):
                    return  # anything else fails the test (see the assertions)
                await asyncio.sleep(RESEND_AFTER_SECONDS)


def _is_11_1(ack: Ack) -> bool:
    return ack.http_status == 200 and (ack.error_category, ack.error_code) == (11, 1)


async def _until(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("shutdown", ["fast", "immediate"])  # a clean stop; a crash
async def test_postgresql_restart_mid_stream_keeps_every_ack(
    shutdown: str,
    private_postgres: PrivatePostgres,
    tmp_path: Path,
    hub_config_file: tuple[Path, str],
) -> None:
    """The hub's database (a private cluster) stops while an agent streams events. While it
    is down every post is answered SIF 11/1 (send again), never a 5xx, never a hang. Once it
    is back (after crash recovery, for `immediate`) the hub recovers by itself, the agent's
    resends are taken, and every acked event reaches the LA service's queue, once."""
    config_file, prefix = hub_config_file
    database_url = await _create_database(private_postgres, "hub")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    learners = _learners(60)
    loop = asyncio.get_running_loop()
    process = _start_hub(config_file, database_url, port, tmp_path)
    try:
        await _wait_ready(base)
        async with httpx.AsyncClient(base_url=base, timeout=AGENT_TIMEOUT_SECONDS) as client:
            agent = SchoolAgent(client, "derbyshire", AGENT, SECRETS[AGENT])
            assert (await agent.register()).ok
            stream = _Stream(agent, learners)
            posting = asyncio.create_task(stream.run())
            await _until(lambda: len(stream.acked) >= BEFORE_STOP or posting.done(), "acks")
            acked_before_stop = len(stream.acked)
            await asyncio.to_thread(private_postgres.stop, shutdown)  # mid-stream
            down = loop.time()  # from here every post must be refused 11/1
            await _until(
                lambda: len(stream.refused_since(down)) >= REFUSED_WHILE_DOWN or posting.done(),
                "refusals while the database is down",
            )
            ready = await client.get("/health/ready")
            up = loop.time()
            await asyncio.to_thread(private_postgres.start)
            await posting  # a hang would have raised httpx.ReadTimeout here
            queue = naming.subscriber_queue("cme", prefix)
            copies = await drain(AMQP_URL, queue, expect=len(learners), wait_seconds=60)
    finally:
        process.terminate()
        process.wait(timeout=20)
    while_down = [ack for sent, ack in stream.posts if down <= sent < up]
    assert len(while_down) >= REFUSED_WHILE_DOWN
    for ack in while_down:  # send again, and it says why: not a bug's 11/1, not a 5xx
        assert _is_11_1(ack) and ack.desc and "database" in ack.desc, ack.raw
    assert ready.status_code == 503, ready.text
    assert ready.json()["checks"]["database"] == "unavailable"
    others = [ack.raw for _, ack in stream.posts if not (ack.ok or _is_11_1(ack))]
    assert others == []  # no 5xx, no other error, before, during or after
    assert BEFORE_STOP <= acked_before_stop < len(learners)  # acks before and after the outage
    assert sorted(stream.acked) == sorted(p.refid for p in learners)  # each taken once
    assert {c.object.get("RefId") for c in copies} == set(stream.acked)  # no acked event lost
    assert len(copies) == len({c.message_id for c in copies}) == len(learners)  # once each
