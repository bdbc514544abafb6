"""Who is calling: agents by HTTP Basic against argon2-hashed secrets, and the one way
secrets are hashed and checked (admin users' tokens too: hub.api.admin_auth)."""

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
# argon2 is deliberately slow, so it runs once per secret, not once per request.
_PROCESS_KEY = secrets.token_bytes(32)
_VERIFIED: dict[str, bytes] = {}


def hash_secret(secret: str) -> str:
    return _HASHER.hash(secret)


def verify_secret(secret_hash: str, secret: str) -> bool:
    """argon2-verify `secret`, remembering a success for this process so that a known
    secret costs an HMAC afterwards, not another argon2 run."""
    if _known(secret_hash, secret):
        return True
    if not _verify(secret_hash, secret):
        return False
    _remember(secret_hash, secret)
    return True


def _digest(secret: str) -> bytes:
    return hmac.new(_PROCESS_KEY, secret.encode(), hashlib.sha256).digest()


def _known(secret_hash: str, secret: str) -> bool:
    known = _VERIFIED.get(secret_hash)
    return known is not None and hmac.compare_digest(known, _digest(secret))


def _remember(secret_hash: str, secret: str) -> None:
    _VERIFIED[secret_hash] = _digest(secret)


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
        if agent is not None and _known(agent.secret_hash, secret):
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
        _remember(agent.secret_hash, secret)
        return agent


def _verify(secret_hash: str, secret: str) -> bool:
    try:
        return _HASHER.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False
