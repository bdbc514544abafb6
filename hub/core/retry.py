"""Retry policy as data; backoff as a pure function."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    base_seconds: float = 0.5
    factor: float = 2.0
    max_seconds: float = 60.0


def compute_backoff(
    attempts: int, policy: RetryPolicy = RetryPolicy(), jitter: float | None = None
) -> float:
    """Seconds to wait before attempt number `attempts + 1` (attempts already made).

    With `jitter` (a number in [0, 1), e.g. random.random()), "equal jitter": half the
    backoff plus a random part of the other half, so that rows failing together do not
    all come back in the same instant."""
    backoff = min(policy.max_seconds, policy.base_seconds * policy.factor ** max(0, attempts))
    return backoff if jitter is None else backoff / 2 + backoff / 2 * jitter
