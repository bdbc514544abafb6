"""Who is calling: agents by HTTP Basic (argon2-hashed secrets), ops staff by admin token."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.api.throttle import FailureThrottle
from hub.core.config import Agent, HubConfig

_HASHER = PasswordHasher()
# Verified (stored hash -> keyed digest of the secret), shared by every app in the process:
# argon2 is deliberately slow, so it runs once per agent secret, not once per message.
_PROCESS_KEY = secrets.token_bytes(32)
_VERIFIED: dict[str, bytes] = {}


def hash_secret(secret: str) -> str:
    return _HASHER.hash(secret)


class Throttled(Exception):
    """Too many failed authentications from this client or for this agent id."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("too many failed authentications")
        self.retry_after = retry_after


class AgentAuthenticator:
    """Verifies agent credentials against the configured argon2 hashes.

    A secret already verified in this process is recognised by a keyed digest, with no
    argon2 and no throttle: a real agent is served whatever a flood does. Anything else is
    first charged to the failure throttle (the client's network and the agent id), then
    verified by argon2 (64 MiB each) in a worker thread, at most `max_concurrent` at once.
    """

    def __init__(self, config: HubConfig, throttle: FailureThrottle, max_concurrent: int) -> None:
        self._config, self._throttle = config, throttle
        self._argon2 = asyncio.Semaphore(max_concurrent)

    async def authenticate(self, user: str, secret: str, client: str) -> Agent | None:
        """The agent, or None for a wrong id or secret; raises Throttled before argon2."""
        agent = self._config.agent(user)
        digest = hmac.new(_PROCESS_KEY, secret.encode(), hashlib.sha256).digest()
        if agent is not None:
            known = _VERIFIED.get(agent.secret_hash)
            if known is not None and hmac.compare_digest(known, digest):
                return agent
        keys = [f"client:{client}"] + ([f"agent:{agent.id}"] if agent is not None else [])
        wait = self._throttle.charge(keys)
        if wait > 0:
            raise Throttled(wait)
        if agent is None:
            return None
        async with self._argon2:
            ok = await asyncio.to_thread(_verify, agent.secret_hash, secret)
        if not ok:
            return None
        self._throttle.refund(keys)
        _VERIFIED[agent.secret_hash] = digest
        return agent


def _verify(secret_hash: str, secret: str) -> bool:
    try:
        return _HASHER.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False


def admin_token_ok(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())
