"""CPU-heavy work on large inputs runs in worker threads, a bounded number at once, so the
event loop keeps answering (health probes, other agents) while a large body is parsed.

lxml releases the GIL while it parses, validates, copies and serializes, so the loop
really runs meanwhile. A large tree leaves its memory in glibc's free lists (one arena
per thread), never handed back to the system: after the last large job, once its trees
are gone, `malloc_trim` hands it back (measured: a 10 MB body's 90 MB tree is returned).
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import logging
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("hub.offload")
TRIM_AFTER_SECONDS = 2.0  # after the last large job: long enough for its request to end


class Offload:
    def __init__(self, threshold_bytes: int = 256 * 1024, max_threads: int = 2) -> None:
        self.threshold_bytes = threshold_bytes
        self._slots = asyncio.Semaphore(max_threads)
        self._trim: asyncio.TimerHandle | None = None

    async def run(self, size: int, work: Callable[[], T]) -> T:
        """`work()` in a worker thread when `size` (bytes of input) reaches the threshold,
        else here: a small body costs less than the hand-over to a thread."""
        if size < self.threshold_bytes:
            return work()
        try:
            async with self._slots:
                return await asyncio.to_thread(work)
        finally:
            self._trim_later()

    def _trim_later(self) -> None:
        """One trim, TRIM_AFTER_SECONDS after the last large job (each job re-arms it)."""
        if self._trim is not None:
            self._trim.cancel()
        loop = asyncio.get_running_loop()
        self._trim = loop.call_later(TRIM_AFTER_SECONDS, self._start_trim, loop)

    def _start_trim(self, loop: asyncio.AbstractEventLoop) -> None:
        self._trim = None
        task = loop.create_task(asyncio.to_thread(trim_memory))
        task.add_done_callback(_log_failure)


def trim_memory() -> None:
    """Hand freed heap memory back to the system (glibc's malloc_trim; elsewhere nothing)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@cache
def _malloc_trim() -> Any:
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    return getattr(libc, "malloc_trim", None)


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("offload.trim_failed error=%r", task.exception())
