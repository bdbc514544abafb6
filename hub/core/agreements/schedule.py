"""Delivery windows: when a held copy may be released."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from hub.core.agreements.model import DAYS, Schedule


def next_window(schedule: Schedule, now: datetime) -> datetime | None:
    """The first window at or after `now` (UTC), or None for immediate delivery."""
    if schedule.mode == "immediate":
        return None
    zone = ZoneInfo(schedule.timezone)
    local = now.astimezone(zone)
    for offset in range(8):
        day = (local + timedelta(days=offset)).date()
        if DAYS[day.weekday()] not in schedule.days:
            continue
        for at in sorted(schedule.times):
            candidate = datetime.combine(day, at, tzinfo=zone)
            if candidate >= local:
                return candidate.astimezone(UTC)
    raise ValueError("schedule has no window")  # unreachable: validated to have one
