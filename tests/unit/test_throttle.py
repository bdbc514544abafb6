"""The failed-authentication throttle (hub/api/throttle.py), on a clock the test moves."""

from __future__ import annotations

import pytest

from hub.api.throttle import FailureThrottle, Limit, client_network, retry_after_header


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _throttle(
    burst: int = 3, interval: float = 10.0, max_keys: int = 100
) -> tuple[FailureThrottle, Clock]:
    clock = Clock()
    return FailureThrottle(Limit(burst, interval), max_keys=max_keys, clock=clock), clock


def test_a_burst_is_allowed_then_refused_with_the_wait() -> None:
    throttle, _ = _throttle(burst=3, interval=10)
    assert [throttle.charge(["a"]) for _ in range(3)] == [0, 0, 0]
    assert throttle.charge(["a"]) == pytest.approx(10.0)
    assert throttle.retry_after(["a"]) == pytest.approx(10.0)
    assert throttle.retry_after(["b"]) == 0  # other keys are untouched


def test_a_refused_attempt_costs_nothing_more() -> None:
    throttle, clock = _throttle(burst=2, interval=10)
    throttle.charge(["a"])
    throttle.charge(["a"])
    for _ in range(50):  # hammering while refused does not push the wait further out
        assert throttle.charge(["a"]) == pytest.approx(10.0)
    clock.now += 10
    assert throttle.charge(["a"]) == 0
    assert throttle.charge(["a"]) == pytest.approx(10.0)


def test_one_more_failure_per_interval_and_a_full_bucket_after_a_quiet_spell() -> None:
    throttle, clock = _throttle(burst=3, interval=10)
    for _ in range(3):
        throttle.charge(["a"])
    clock.now += 4
    assert throttle.retry_after(["a"]) == pytest.approx(6.0)
    clock.now += 6
    assert throttle.charge(["a"]) == 0
    assert throttle.charge(["a"]) > 0
    clock.now += 30  # the whole burst is back
    assert [throttle.charge(["a"]) for _ in range(3)] == [0, 0, 0]
    assert throttle.charge(["a"]) > 0


def test_every_key_must_have_room_and_a_refusal_charges_none() -> None:
    throttle, _ = _throttle(burst=1, interval=10)
    assert throttle.charge(["client:1", "agent:x"]) == 0
    # client 2 trying agent x: x has no room left, so nothing is charged to client 2
    assert throttle.charge(["client:2", "agent:x"]) == pytest.approx(10.0)
    assert throttle.charge(["client:2", "agent:y"]) == 0


def test_a_refund_gives_the_attempt_back() -> None:
    throttle, _ = _throttle(burst=2, interval=10)
    for _ in range(5):  # right secrets never use the burst up
        assert throttle.charge(["a"]) == 0
        throttle.refund(["a"])
    throttle.charge(["a"])
    throttle.charge(["a"])
    assert throttle.charge(["a"]) > 0


def test_keys_are_capped_and_full_buckets_forgotten() -> None:
    throttle, clock = _throttle(burst=1, interval=10, max_keys=100)
    for n in range(1000):  # a flood from a thousand addresses
        throttle.charge([f"client:{n}"])
    assert len(throttle) == 100
    assert throttle.charge(["client:999"]) > 0  # the most recent are still remembered
    clock.now += 11
    throttle.charge(["client:new"])
    assert len(throttle) == 1  # every other bucket is full again: forgotten


def test_limit_must_allow_something() -> None:
    with pytest.raises(ValueError, match="burst"):
        Limit(0, 1)
    with pytest.raises(ValueError, match="interval"):
        Limit(1, 0)


def test_retry_after_header_is_whole_seconds_at_least_one() -> None:
    assert retry_after_header(0.2) == "1"
    assert retry_after_header(5.0) == "5"
    assert retry_after_header(5.01) == "6"


def test_client_network() -> None:
    assert client_network("192.0.2.7") == "192.0.2.7"
    assert client_network("2001:db8:1:2:3:4:5:6") == "2001:db8:1:2::/64"
    assert client_network("2001:db8:1:2::9") == client_network("2001:db8:1:2:ffff::1")
    assert client_network(None) == "unknown"
    assert client_network("testclient") == "testclient"
