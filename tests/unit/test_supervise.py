"""The supervisor's rules: restart what crashes, counting; leave what finished; back off
further while crashes follow restarts; stop promptly, even in the middle of a backoff."""

from __future__ import annotations

import asyncio
import logging

import pytest

from hub.core.retry import RetryPolicy
from hub.pipeline.supervise import Supervisor

QUICK = RetryPolicy(base_seconds=0.001, factor=2.0, max_seconds=0.01)


async def _until(condition: object, limit: int = 2000) -> None:
    for _ in range(limit):
        if callable(condition) and condition():
            return
        await asyncio.sleep(0.005)
    raise AssertionError("condition never held")


async def test_a_task_that_returns_is_done_and_not_started_again() -> None:
    stop, runs = asyncio.Event(), []
    supervisor = Supervisor(stop, QUICK)

    async def once() -> None:
        runs.append(1)

    supervisor.start("once", once)
    await _until(lambda: supervisor.statuses()["once"].state == "done")
    await asyncio.sleep(0.05)
    assert runs == [1]
    assert supervisor.failing() == []
    stop.set()
    await supervisor.stop()


async def test_a_crash_is_counted_restarted_and_recovers() -> None:
    stop, runs = asyncio.Event(), []
    supervisor = Supervisor(stop, QUICK)

    async def crashes_once() -> None:
        runs.append(1)
        if len(runs) == 1:
            raise KeyError("unplanned")
        await stop.wait()

    supervisor.start("worker", crashes_once)
    await _until(lambda: supervisor.statuses()["worker"].state == "running" and len(runs) == 2)
    status = supervisor.statuses()["worker"]
    assert (status.restarts, status.last_error) == (1, "KeyError")
    assert supervisor.failing() == []
    stop.set()
    await supervisor.stop()
    assert supervisor.statuses()["worker"].state == "done"


async def test_crashes_soon_after_each_restart_back_off_further(
    caplog: pytest.LogCaptureFixture,
) -> None:
    stop = asyncio.Event()
    supervisor = Supervisor(stop, QUICK, reset_after_seconds=3600)

    async def always() -> None:
        raise ValueError

    with caplog.at_level(logging.ERROR, logger="hub.supervise"):
        supervisor.start("bad", always)
        await _until(lambda: supervisor.statuses()["bad"].restarts >= 3)
    assert supervisor.failing() == ["bad"]
    attempts = [r.getMessage().split()[2] for r in caplog.records]
    assert attempts[:3] == ["attempt=1", "attempt=2", "attempt=3"]
    stop.set()
    await supervisor.stop()


async def test_stop_ends_a_backoff_at_once_and_cancels_what_does_not_stop() -> None:
    stop = asyncio.Event()
    supervisor = Supervisor(stop, RetryPolicy(base_seconds=3600, max_seconds=3600))

    async def crashes() -> None:
        raise RuntimeError

    async def ignores_stop() -> None:
        await asyncio.Event().wait()

    supervisor.start("waiting", crashes)
    supervisor.start("stubborn", ignores_stop)
    await _until(lambda: supervisor.statuses()["waiting"].state == "backoff")
    stop.set()
    await asyncio.wait_for(supervisor.stop(grace_seconds=0.1), timeout=60)
    states = {name: s.state for name, s in supervisor.statuses().items()}
    assert states == {"waiting": "stopped", "stubborn": "stopped"}


async def test_a_name_is_supervised_once() -> None:
    stop = asyncio.Event()
    supervisor = Supervisor(stop, QUICK)

    async def waits() -> None:
        await stop.wait()

    supervisor.start("one", waits)
    with pytest.raises(ValueError, match="already supervised"):
        supervisor.start("one", waits)
    stop.set()
    await supervisor.stop()
