"""Supervision of the hub's background tasks (dispatcher, releaser, backlog monitor, purger,
broker connection...): one place that starts them, restarts one that crashes with backoff,
and tells readiness and ops how each is doing.

A task's coroutine handles the failures it expects (database or broker away) itself; any
other exception is a bug or a fault nobody planned for. The supervisor logs one line for it
(task, attempt, error class and where it was raised: never the message, which may carry
personal data), counts it, waits (exponential backoff with jitter) and starts the task again.
A restarted task counts as recovered once it has run as long as it waited; until then, and
while it waits, readiness fails. Consecutive failures are forgotten after a run of
`reset_after_seconds`, so a task that crashes again soon after each restart backs off further
and further rather than flapping between ready and not ready.

A coroutine that returns has finished its job (connecting to the broker, say) and is not
started again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import traceback
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any, Literal

from hub.core.retry import RetryPolicy, compute_backoff

log = logging.getLogger("hub.supervise")

State = Literal["running", "recovering", "backoff", "done", "stopped"]
# A task in one of these states is not doing its job: readiness fails. Only the hub's own
# shutdown stops a task; stopped at any other time, it is dead.
FAILING: frozenset[State] = frozenset({"recovering", "backoff", "stopped"})
Factory = Callable[[], Coroutine[Any, Any, None]]


@dataclass
class TaskStatus:
    """One supervised task, as readiness and /admin/stats show it (mutated in place)."""

    name: str
    state: State = "running"
    restarts: int = 0
    last_error: str | None = None  # the exception's class name
    failures: int = 0  # consecutive, drives the backoff
    started_at: float = 0.0  # loop time of the current run
    waited: float = 0.0  # the backoff before the current run

    def current(self, now: float) -> State:
        if self.state == "recovering" and now - self.started_at >= self.waited:
            self.state = "running"
        return self.state


class Supervisor:
    """Starts, restarts and stops the background tasks of one hub process."""

    def __init__(
        self,
        stop: asyncio.Event,
        retry: RetryPolicy | None = None,
        reset_after_seconds: float = 60.0,
    ) -> None:
        self._stop = stop
        self._retry = retry or RetryPolicy()
        self._reset_after = reset_after_seconds
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._status: dict[str, TaskStatus] = {}

    def start(self, name: str, factory: Factory) -> None:
        """Run `factory()` under supervision until it returns or the hub stops."""
        if name in self._tasks:
            raise ValueError(f"a task named {name!r} is already supervised")
        status = TaskStatus(name)
        self._status[name] = status
        self._tasks[name] = asyncio.create_task(self._run(status, factory), name=name)

    def statuses(self) -> dict[str, TaskStatus]:
        now = asyncio.get_running_loop().time()
        for status in self._status.values():
            status.current(now)
        return dict(self._status)

    def failing(self) -> list[str]:
        return [name for name, s in self.statuses().items() if s.state in FAILING]

    def cancel(self, name: str) -> None:
        """Stop one task for good (tests that drive a stage by hand; readiness then
        fails, as for a dead task)."""
        self._tasks[name].cancel()

    async def stop(self, grace_seconds: float = 10.0) -> None:
        """After the hub's stop event is set: give the tasks `grace_seconds` to finish
        what they are doing, then cancel what is left."""
        tasks = list(self._tasks.values())
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def _run(self, status: TaskStatus, factory: Factory) -> None:
        loop = asyncio.get_running_loop()
        try:
            while True:
                status.started_at = loop.time()
                try:
                    await factory()
                    status.state = "done"
                    return
                except Exception as exc:
                    delay = self._failed(status, exc, loop.time())
                status.state = "backoff"
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), delay)
                if self._stop.is_set():
                    status.state = "stopped"
                    return
                status.state = "recovering"
                status.waited = delay
                status.restarts += 1
        except asyncio.CancelledError:
            status.state = "stopped"
            raise

    def _failed(self, status: TaskStatus, exc: Exception, now: float) -> float:
        if now - status.started_at >= self._reset_after:
            status.failures = 0  # it had been running well: a new fault, not the same one
        status.failures += 1
        status.last_error = type(exc).__name__
        delay = compute_backoff(status.failures - 1, self._retry, random.random())
        log.error(
            "task.crashed task=%s attempt=%d error=%s at=%s restart_in=%.2f",
            status.name,
            status.failures,
            status.last_error,
            _where(exc),
            delay,
        )
        return delay


def _where(exc: BaseException) -> str:
    """file:line where the exception was raised: enough to find the bug, no data."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "unknown"
    last = frames[-1]
    return f"{PurePath(last.filename).name}:{last.lineno}"
