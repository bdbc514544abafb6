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


@dataclass(frozen=True)
class RetryLadder:
    """Pushed deliveries wait out a failure in fixed-delay retry queues, one per delay
    (RabbitMQ expires only the head of a queue, so one queue cannot hold mixed delays).

    Attempt n (1-based) that fails waits `delays_ms[n-1]`, the last delay repeating, until
    `max_attempts` attempts have failed: then the copy is dead-lettered."""

    delays_ms: tuple[int, ...] = (10_000, 60_000, 600_000, 3_600_000)
    max_attempts: int = 8

    def delay_after(self, failures: int) -> int | None:
        """Milliseconds before the next try after `failures` failed tries; None: give up."""
        if failures >= self.max_attempts:
            return None
        return self.wait(failures)

    def wait(self, step: int) -> int:
        """The delay of retry step `step` (1-based), the last one repeating."""
        return self.delays_ms[min(max(step, 1), len(self.delays_ms)) - 1]
