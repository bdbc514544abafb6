"""CPU-heavy work on large inputs runs in worker threads, a bounded number at once, so the
event loop keeps answering (health probes, other agents) while a large body is parsed.

lxml releases the GIL while it parses and validates, so the loop really runs meanwhile.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class Offload:
    def __init__(self, threshold_bytes: int = 256 * 1024, max_threads: int = 2) -> None:
        self.threshold_bytes = threshold_bytes
        self._slots = asyncio.Semaphore(max_threads)

    async def run(self, size: int, work: Callable[[], T]) -> T:
        """`work()` in a worker thread when `size` (bytes of input) reaches the threshold,
        else here: a small body costs less than the hand-over to a thread."""
        if size < self.threshold_bytes:
            return work()
        async with self._slots:
            return await asyncio.to_thread(work)
