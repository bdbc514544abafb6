"""Who is calling: agents by HTTP Basic (argon2-hashed secrets), ops staff by admin token."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.core.config import Agent, HubConfig

_HASHER = PasswordHasher()


def hash_secret(secret: str) -> str:
    return _HASHER.hash(secret)


class AgentAuthenticator:
    """Verifies agent credentials; a verified (agent, secret digest) is remembered so the
    deliberately slow argon2 check runs once per agent secret, not once per message."""

    def __init__(self, config: HubConfig) -> None:
        self._config = config
        self._verified: dict[str, bytes] = {}
        self._key = secrets.token_bytes(32)

    def authenticate(self, user: str, secret: str) -> Agent | None:
        agent = self._config.agent(user)
        if agent is None:
            return None
        digest = hmac.new(self._key, secret.encode(), hashlib.sha256).digest()
        known = self._verified.get(agent.id)
        if known is not None and hmac.compare_digest(known, digest):
            return agent
        try:
            _HASHER.verify(agent.secret_hash, secret)
        except (VerificationError, InvalidHashError):
            return None
        self._verified[agent.id] = digest
        return agent


def admin_token_ok(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())
