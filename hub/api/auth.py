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
    """Verifies agent credentials against the configured argon2 hashes, and any other
    argon2-hashed secret (admin users' tokens) through the same bounded path.

    A secret already verified in this process is recognised by a keyed digest, with no
    argon2 and no throttle: a real caller is served whatever a flood does. Anything else is
    first charged to the failure throttle (the client's network and the identity), then
    verified by argon2 (64 MiB each) in a worker thread, at most `max_concurrent` at once.
    Concurrent requests with the same secret share one verification (and one charge): a
    freshly started hub process (`hub serve --workers N`, a restart) taking an agent's
    burst of requests must not throttle a real agent for its own concurrency.
    """

    def __init__(self, config: HubConfig, throttle: FailureThrottle, max_concurrent: int) -> None:
        self._config, self._throttle = config, throttle
        self._argon2 = asyncio.Semaphore(max_concurrent)
        # (hash, keyed digest of the secret) -> the verification in flight: True, False,
        # or None when its caller went away before an answer.
        self._flights: dict[tuple[str, bytes], asyncio.Future[bool | None]] = {}

    async def authenticate(self, user: str, secret: str, client: str) -> Agent | None:
        """The agent, or None for a wrong id or secret; raises Throttled before argon2."""
        agent = self._config.agent(user)
        keys = [f"client:{client}"] + ([f"agent:{agent.id}"] if agent is not None else [])
        if agent is None:
            self.charge(keys)
            return None
        return agent if await self.check(agent.secret_hash, secret, keys) else None

    async def check(self, secret_hash: str, secret: str, keys: list[str]) -> bool:
        """Whether `secret` matches `secret_hash`; a failure counts against `keys`, and
        raises Throttled (before any argon2 run) once they have failed too often."""
        while not _known(secret_hash, secret):
            flight = (secret_hash, _digest(secret))
            pending = self._flights.get(flight)
            if pending is None:
                return await self._verify(flight, secret, keys)
            answer = await asyncio.shield(pending)
            if answer is False:
                self.charge(keys)
                return False
            # True: known now; None: its verifier went away, so verify again
        return True

    async def _verify(self, flight: tuple[str, bytes], secret: str, keys: list[str]) -> bool:
        self.charge(keys)
        answer: asyncio.Future[bool | None] = asyncio.get_running_loop().create_future()
        self._flights[flight] = answer
        ok: bool | None = None
        try:
            async with self._argon2:
                ok = await asyncio.to_thread(_verify, flight[0], secret)
            if ok:
                self._throttle.refund(keys)
                _remember(flight[0], secret)
            return ok
        finally:
            del self._flights[flight]
            answer.set_result(ok)

    def charge(self, keys: list[str]) -> None:
        wait = self._throttle.charge(keys)
        if wait > 0:
            raise Throttled(wait)


def _verify(secret_hash: str, secret: str) -> bool:
    try:
        return _HASHER.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False
