"""Backpressure: how far routing is behind, and the bound above which ingest stops taking
work it cannot deliver in time.

A monitor measures the outbox backlog (rows waiting to be routed, parked rows aside), the
age of its oldest row and the parked rows every second, in each hub process, from the
database (so several hubs see the same figure). Ingest reads the last measurement, never
the database: above either bound, an agent's event or response is answered SIF_Error 11/1
(not accepted; send again later), and readiness reports it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from hub.core.ports import Store, StoreUnavailable

log = logging.getLogger("hub.backlog")
MEASURE_SECONDS = 1.0


@dataclass(frozen=True, kw_only=True)
class BacklogLimits:
    max_rows: int = 100_000
    max_age_seconds: float = 3600.0


@dataclass
class BacklogGauge:
    """The last measurement (mutable: the monitor updates it in place)."""

    limits: BacklogLimits
    rows: int = 0
    oldest_age_seconds: float = 0.0
    parked: int = 0  # rows set aside for ops: not backlog, but worth an alert
    measured_at: datetime | None = None

    def over(self) -> str | None:
        """Why the hub should refuse new work now, or None."""
        if self.rows > self.limits.max_rows:
            return f"{self.rows} objects wait to be routed (bound {self.limits.max_rows})"
        if self.oldest_age_seconds > self.limits.max_age_seconds:
            return (
                f"the oldest object has waited {self.oldest_age_seconds:.0f} s to be routed "
                f"(bound {self.limits.max_age_seconds:.0f} s)"
            )
        return None


async def measure(store: Store, gauge: BacklogGauge, now: datetime) -> None:
    async with store.transaction() as tx:
        figures = await tx.outbox.backlog()
    oldest = figures.oldest
    gauge.rows = figures.waiting
    gauge.oldest_age_seconds = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
    gauge.parked = figures.parked
    gauge.measured_at = now


async def run_backlog_monitor(
    store: Store, gauge: BacklogGauge, clock: Callable[[], datetime], stop: asyncio.Event
) -> None:
    was_over = False
    while not stop.is_set():
        try:
            await measure(store, gauge, clock())
        except StoreUnavailable:
            log.warning("backlog.unmeasured")
        over = gauge.over()
        if bool(over) != was_over:
            log.warning("backlog.%s rows=%d", "over" if over else "under", gauge.rows)
            was_over = bool(over)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), MEASURE_SECONDS)
