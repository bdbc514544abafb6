"""What `/health/ready` decides from its checks, and the one check that is the host's own:
free disk.

Each check is a short string; "ok" is good. Those in FATAL make the hub not ready (503): it
cannot do its job, and a load balancer should send work elsewhere. A backlog over its bound
only degrades it (200, status "degraded"): ingest already refuses events with SIF 11/1
(send again later), while pulls, responses and the admin API still work; and hubs sharing
one database share one backlog, so a 503 would take every replica out of the pool at once.
"""

from __future__ import annotations

import shutil
from pathlib import Path

FATAL = ("database", "disk", "broker", "tasks")
MIB = 1024 * 1024


def free_disk_mb(path: Path) -> float:
    """Free space (for an unprivileged writer) on the file system holding `path`, or the
    nearest existing directory above it."""
    for candidate in (path, *path.resolve().parents):
        if candidate.exists():
            return shutil.disk_usage(candidate).free / MIB
    return shutil.disk_usage("/").free / MIB


def disk_status(path: Path, min_free_mb: int) -> str:
    return "low" if free_disk_mb(path) < min_free_mb else "ok"


def verdict(checks: dict[str, str]) -> tuple[str, list[str]]:
    """("ok" | "degraded" | "unavailable", the fatal checks that fail)."""
    failing = [name for name in FATAL if checks.get(name, "ok") != "ok"]
    if failing:
        return "unavailable", failing
    return ("degraded" if checks.get("backlog", "ok") != "ok" else "ok"), []
