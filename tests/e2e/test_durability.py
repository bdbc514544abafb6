"""Accepted means delivered: through a RabbitMQ stop/start and a kill -9 of the hub."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from adapters import sample_data as data
from adapters.la_consumer import delete_queues, drain
from adapters.school_agent import SchoolAgent
from hub.amqp.provision import ManagementTarget
from hub.core import naming
from hub.demo import SECRETS
from tests.broker_fixtures import remove_broker_users
from tests.e2e.conftest import AMQP_URL, COUNTY, RunningHub, county_config

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AGENT = "dovedale-mis"  # its school has no pupil exclusions under DSA-CME-2026
SCHOOL = "8304012"


def _learners(n: int) -> list[data.Learner]:
    return [p for p in data.make_learners(n * 3) if p.school.laestab == SCHOOL][:n]


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", *args], check=True, capture_output=True, timeout=120)


@pytest.fixture
def rabbit_stopped_then_started() -> object:
    """Stop the RabbitMQ application; make sure it is running again whatever happens."""
    _rabbitmqctl("stop_app")
    try:
        yield _rabbitmqctl
    finally:
        _rabbitmqctl("start_app")
        _rabbitmqctl("await_startup")


async def test_rabbitmq_restart_loses_nothing(
    running: RunningHub, rabbit_stopped_then_started: object
) -> None:
    agent = running.agent(AGENT)
    assert (await agent.register()).ok
    learners = _learners(30)
    for p in learners:  # broker down: acks still come from the outbox
        ack = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))
        assert ack.status_code == 0, ack.raw
    async with running.hub.store.transaction() as tx:
        assert (await tx.disclosures.stats()).pending == len(learners)
    _rabbitmqctl("start_app")
    _rabbitmqctl("await_startup")
    await running.settle(timeout=120)
    copies = await running.drain("cme", expect=len(learners), wait_seconds=30)
    refids = {c.object.get("RefId") for c in copies}
    assert refids == {p.refid for p in learners}
    assert len({c.message_id for c in copies}) == len(learners)  # once each, after de-duplication


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


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
    return subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--config", str(config_file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _wait_ready(base: str) -> None:
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
    port = _free_port()
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
