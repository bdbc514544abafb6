"""Readiness that tells the truth: /health/ready fails (503 problem+json, every check
listed) when a background task keeps crashing, when free disk is below the bound, when the
database takes reads but refuses writes; it reports "degraded" (200) while the outbox backlog
is over its bound. A crashed task is restarted, counted, logged, and readiness recovers."""

from __future__ import annotations

import asyncio
import logging
import resource
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from hub.amqp.publisher import AmqpPublisher
from hub.api.problems import PROBLEM
from hub.core.policy import Policy
from hub.demo import SECRETS
from hub.pipeline.backlog import BacklogLimits
from hub.settings import DEV_ADMIN_TOKEN
from hub.simulate import sample_data as data
from hub.simulate.school_agent import SchoolAgent
from tests.e2e.conftest import RunningHub, _wait_connected, hub_running
from tests.e2e.hub_process import hub_process, wait_ready

pytestmark = pytest.mark.integration

DOVEDALE, AGENT = "8304012", "dovedale-mis"
UNREACHABLE = "amqp://guest:guest@127.0.0.1:1/"


async def _until(condition: Callable[[], Any], what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not await _value(condition()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        await asyncio.sleep(0.05)


async def _value(result: Any) -> Any:
    return await result if asyncio.iscoroutine(result) else result


def _not_ready(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["title"] == "Not ready"
    return body


def _learners(count: int) -> list[data.Learner]:
    return [p for p in data.make_learners(count * 4) if p.school.laestab == DOVEDALE][:count]


# --- supervised tasks ------------------------------------------------------------------


async def test_a_task_that_keeps_crashing_fails_readiness(
    running: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    async def faulty() -> None:
        raise RuntimeError("a bug")

    with caplog.at_level(logging.ERROR, logger="hub.supervise"):
        running.hub.supervisor.start("faulty", faulty)
        await _until(
            lambda: running.hub.supervisor.statuses()["faulty"].restarts >= 2,
            "the faulty task was restarted twice",
        )
    body = _not_ready(await running.client.get("/health/ready"))
    assert body["detail"] == "Failing: tasks"
    assert body["checks"]["tasks"] == "failing"
    assert body["checks"]["database"] == body["checks"]["broker"] == "ok"
    assert body["tasks"]["faulty"] in ("backoff", "recovering")
    assert body["tasks"]["dispatch"] == "running"
    stats = (await running.admin("GET", "/admin/stats")).json()
    assert stats["tasks"]["faulty"]["restarts"] >= 2
    assert stats["tasks"]["faulty"]["last_error"] == "RuntimeError"
    crashes = [r.getMessage() for r in caplog.records if "task.crashed" in r.getMessage()]
    assert crashes[0].startswith("task.crashed task=faulty attempt=1 error=RuntimeError at=")
    assert crashes[1].startswith("task.crashed task=faulty attempt=2 ")
    assert not any("a bug" in line for line in crashes)  # the class, never the message


async def test_a_crashed_dispatcher_is_restarted_and_delivers(
    running: RunningHub, caplog: pytest.LogCaptureFixture
) -> None:
    """The real dispatcher meets an error nobody planned for (here: evaluating the policy
    raises, once): it is restarted, the row it had claimed is routed after its lease, and
    readiness, failing while it recovers, is ready again."""
    dispatch = running.hub.dispatch
    policy, calls = dispatch.policy, []

    def policy_failing_once() -> Policy:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("injected")
        return policy()

    dispatch.policy = policy_failing_once
    dispatch.lease_seconds = 1.0  # the crashed claim's row comes due again soon
    agent = running.agent(AGENT)
    assert (await agent.register()).ok
    (learner,) = _learners(1)
    with caplog.at_level(logging.ERROR, logger="hub.supervise"):
        ack = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(learner))
        assert ack.ok, ack.raw
        await _until(
            lambda: running.hub.supervisor.statuses()["dispatch"].restarts == 1,
            "the dispatcher was restarted",
        )
        await running.settle()
    assert len(await running.drain("cme", expect=1)) == 1
    await _until(lambda: _status(running, "/health/ready", 200), "ready again after the restart")
    stats = (await running.admin("GET", "/admin/stats")).json()
    assert stats["tasks"]["dispatch"] == {
        "state": "running",
        "restarts": 1,
        "last_error": "RuntimeError",
    }
    assert stats["delivered"] and stats["pending"] == 0
    (crash,) = [r.getMessage() for r in caplog.records if "task.crashed" in r.getMessage()]
    assert crash.startswith("task.crashed task=dispatch attempt=1 error=RuntimeError at=")


async def _status(running: RunningHub, path: str, code: int) -> bool:
    return (await running.client.get(path)).status_code == code


async def test_a_task_stopped_outside_shutdown_is_dead(running: RunningHub) -> None:
    running.hub.supervisor.cancel("release")
    await _until(
        lambda: running.hub.supervisor.statuses()["release"].state == "stopped",
        "the release task stopped",
    )
    body = _not_ready(await running.client.get("/health/ready"))
    assert body["tasks"]["release"] == "stopped"
    assert body["checks"]["tasks"] == "failing"


# --- free disk -------------------------------------------------------------------------


async def test_free_disk_below_the_bound_fails_readiness(database_url: str, tmp_path: Path) -> None:
    async with hub_running(database_url, tmp_path, min_free_disk_mb=10**12) as running:
        await _wait_connected(running.hub)
        body = _not_ready(await running.client.get("/health/ready"))
        assert body["checks"]["disk"] == "low"
        assert body["detail"] == "Failing: disk"
        running.hub.settings.min_free_disk_mb = 1
        ready = await running.client.get("/health/ready")
        assert ready.status_code == 200, ready.text
        assert ready.json()["checks"]["disk"] == "ok"


# --- the outbox backlog ----------------------------------------------------------------


async def test_a_backlog_over_its_bound_is_degraded_not_down(
    running: RunningHub,
) -> None:
    """Routing stalls (the dispatcher's broker is unreachable, the hub's own connection is
    fine): past the bound the hub says degraded, and still answers 200."""
    stalled = AmqpPublisher(UNREACHABLE, timeout=1, prefix=running.config.queue_prefix)
    running.hub.dispatch.publisher = stalled
    running.hub.backlog.limits = BacklogLimits(max_rows=2, max_age_seconds=3600)
    agent = running.agent(AGENT)
    assert (await agent.register()).ok
    for p in _learners(3):
        assert (await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))).ok
    await _until(lambda: running.hub.backlog.rows == 3, "the monitor measured the backlog")
    ready = await running.client.get("/health/ready")
    assert ready.status_code == 200, ready.text
    body = ready.json()
    assert body["status"] == "degraded"
    assert body["checks"]["backlog"] == "over"
    assert {k: v for k, v in body["checks"].items() if k != "backlog"} == {
        "database": "ok",
        "disk": "ok",
        "broker": "ok",
        "broker_users": "disabled",
        "tasks": "ok",
    }
    running.hub.backlog.limits = BacklogLimits(max_rows=100, max_age_seconds=3600)
    assert (await running.client.get("/health/ready")).json()["status"] == "ok"


async def test_backlog_over_its_bound_with_the_broker_unreachable(
    database_url: str, tmp_path: Path
) -> None:
    async with hub_running(database_url, tmp_path, amqp_url=UNREACHABLE) as running:
        running.hub.backlog.limits = BacklogLimits(max_rows=1, max_age_seconds=3600)
        agent = running.agent(AGENT)
        assert (await agent.register()).ok
        for p in _learners(2):
            ack = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))
            assert ack.ok, ack.raw
        await _until(lambda: running.hub.backlog.rows == 2, "the monitor measured the backlog")
        body = _not_ready(await running.client.get("/health/ready"))
        assert body["checks"]["backlog"] == "over"
        assert body["checks"]["broker"] == "unavailable"
        assert body["detail"] == "Failing: broker"
        assert body["tasks"]["broker"] == "running"  # still trying to connect: not a crash


# --- a disk that refuses writes (a real process, a real file-size limit) ---------------


async def test_a_database_that_refuses_writes_fails_readiness(tmp_path: Path) -> None:
    """Reads still work but no write reaches the disk: the `hub serve` process's file-size
    limit (RLIMIT_FSIZE, which binds root too) is set so low that every write to the SQLite
    WAL fails, as on a full or read-only disk. A SELECT-only health check would say ready."""
    async with hub_process(tmp_path) as hub:
        agent = SchoolAgent(hub.client, "derbyshire", AGENT, SECRETS[AGENT])
        assert (await agent.register()).ok
        first, second = _learners(2)
        assert (await agent.send_event("LearnerPersonal", "Add", data.learner_personal(first))).ok
        unlimited = resource.prlimit(hub.process.pid, resource.RLIMIT_FSIZE)
        resource.prlimit(hub.process.pid, resource.RLIMIT_FSIZE, (1, unlimited[1]))
        try:
            await _until(
                lambda: _database_check(hub.client, "unwritable"), "the probe found no disk"
            )
            body = _not_ready(await hub.client.get("/health/ready"))
            assert body["detail"] == "Failing: database"
            # reads still work: the database is there, it just cannot be written
            stats = await hub.client.get(
                "/admin/stats", headers={"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
            )
            assert stats.status_code == 200 and stats.json()["received"]
            refused = await agent.send_event(
                "LearnerPersonal", "Add", data.learner_personal(second)
            )
            assert (refused.error_category, refused.error_code) == (11, 1), refused.raw
        finally:
            resource.prlimit(hub.process.pid, resource.RLIMIT_FSIZE, unlimited)
        await wait_ready(hub.client)
        ack = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(second))
        assert ack.ok, ack.raw


async def _database_check(client: httpx.AsyncClient, expected: str) -> bool:
    response = await client.get("/health/ready")
    return bool(response.json().get("checks", {}).get("database") == expected)
