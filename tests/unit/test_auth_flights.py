"""Concurrent requests with one secret share one argon2 verification (hub/api/auth.py): a
fresh hub process taking an agent's burst does not throttle it; a burst of wrong secrets
is still charged and throttled."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from hub.api.auth import AgentAuthenticator, Throttled, hash_secret
from hub.api.throttle import FailureThrottle, Limit
from hub.configfile import load_config
from tests.e2e.conftest import COUNTY

BURST = 3
CONCURRENT = 12


def _authenticator() -> AgentAuthenticator:
    throttle = FailureThrottle(Limit(BURST, 60.0), max_keys=100)
    return AgentAuthenticator(load_config(COUNTY), throttle, max_concurrent=1)


async def test_a_burst_with_the_right_secret_is_verified_once_and_never_throttled() -> None:
    secret = uuid.uuid4().hex  # new to this process: nothing is cached yet
    secret_hash = await asyncio.to_thread(hash_secret, secret)
    auth = _authenticator()
    answers = await asyncio.gather(
        *(auth.check(secret_hash, secret, ["agent:a"]) for _ in range(CONCURRENT))
    )
    assert answers == [True] * CONCURRENT


async def test_a_burst_of_wrong_secrets_is_still_throttled() -> None:
    secret_hash = await asyncio.to_thread(hash_secret, uuid.uuid4().hex)
    auth = _authenticator()
    answers = await asyncio.gather(
        *(auth.check(secret_hash, "wrong", ["agent:b"]) for _ in range(CONCURRENT)),
        return_exceptions=True,
    )
    assert sum(isinstance(a, Throttled) for a in answers) >= CONCURRENT - BURST
    assert all(a is False or isinstance(a, Throttled) for a in answers)
    with pytest.raises(Throttled):
        await auth.check(secret_hash, "wrong", ["agent:b"])
