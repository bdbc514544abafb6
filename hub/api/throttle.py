"""Failed-authentication throttle: a token bucket per key (agent id, client network).

Each key may fail `burst` times at once, then once more every `interval` seconds. Kept as
one number per key, the time its bucket is full again (GCRA), in a dict capped at
`max_keys`, so a flood from many addresses cannot grow memory. Only failures are counted:
a caller charges an attempt before the expensive check (so concurrent attempts cannot all
slip past the bound) and refunds it when the secret was right.

Plain and synchronous: called on the event loop, never blocks, clock injected for tests.
(The `limits` library was considered: its memory storage reads the wall clock itself, and
has no bound on the number of keys.)
"""

from __future__ import annotations

import ipaddress
import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class Limit:
    burst: int  # failures allowed at once
    interval: float  # seconds for one more failure to be allowed, once the burst is spent

    def __post_init__(self) -> None:
        if self.burst < 1 or self.interval <= 0:
            raise ValueError("a limit needs burst >= 1 and interval > 0")


class FailureThrottle:
    def __init__(
        self,
        limit: Limit,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._limit, self._max_keys, self._clock = limit, max_keys, clock
        # key -> when its bucket is full again; least recently charged first
        self._full_at: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._full_at)

    def retry_after(self, keys: Iterable[str]) -> float:
        """Seconds until every key may fail once more; 0 when all may now."""
        now = self._clock()
        return max((self._wait(key, now) for key in keys), default=0.0)

    def charge(self, keys: Iterable[str]) -> float:
        """Count one attempt against every key, unless one has none left: then count
        nothing and return the seconds to wait (else 0)."""
        keys = list(keys)
        now = self._clock()
        wait = max((self._wait(key, now) for key in keys), default=0.0)
        if wait > 0:
            return wait
        for key in keys:
            self._store(key, max(self._full_at.get(key, now), now) + self._limit.interval, now)
        return 0.0

    def refund(self, keys: Iterable[str]) -> None:
        """Give back a charged attempt (the secret was right)."""
        for key in keys:
            full_at = self._full_at.get(key)
            if full_at is not None:
                self._full_at[key] = full_at - self._limit.interval

    def _wait(self, key: str, now: float) -> float:
        full_at = self._full_at.get(key)
        if full_at is None:
            return 0.0
        allowance = (self._limit.burst - 1) * self._limit.interval
        return max(0.0, full_at - now - allowance)

    def _store(self, key: str, full_at: float, now: float) -> None:
        self._full_at[key] = full_at
        self._full_at.move_to_end(key)
        # forget buckets that are full again (from the least recently charged), and over the
        # cap the least recently charged at all: memory stays bounded under any flood
        while self._full_at:
            oldest, when = next(iter(self._full_at.items()))
            if when > now and len(self._full_at) <= self._max_keys:
                break
            del self._full_at[oldest]


def retry_after_header(seconds: float) -> str:
    """Retry-After as whole seconds, at least 1."""
    return str(max(1, math.ceil(seconds)))


def client_network(host: str | None) -> str:
    """The key for a client address: the address itself for IPv4, its /64 for IPv6 (one
    host usually holds a whole /64), the raw text for anything else."""
    if not host:
        return "unknown"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host[:100]
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)
