"""Retry policy as data; backoff as a pure function."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 0.5
    factor: float = 2.0
    max_seconds: float = 60.0


def compute_backoff(attempts: int, policy: RetryPolicy = RetryPolicy()) -> float:
    """Seconds to wait before attempt number `attempts + 1` (attempts already made)."""
    return min(policy.max_seconds, policy.base_seconds * policy.factor ** max(0, attempts))
