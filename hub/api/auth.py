"""Who is calling: agents by HTTP Basic (argon2-hashed secrets), ops staff by admin token."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from hub.core.config import Agent, HubConfig

_HASHER = PasswordHasher()
# Verified (stored hash -> keyed digest of the secret), shared by every app in the process:
# argon2 is deliberately slow, so it runs once per agent secret, not once per message.
_PROCESS_KEY = secrets.token_bytes(32)
_VERIFIED: dict[str, bytes] = {}


def hash_secret(secret: str) -> str:
    return _HASHER.hash(secret)


class AgentAuthenticator:
    """Verifies agent credentials against the configured argon2 hashes."""

    def __init__(self, config: HubConfig) -> None:
        self._config = config

    def authenticate(self, user: str, secret: str) -> Agent | None:
        agent = self._config.agent(user)
        if agent is None:
            return None
        digest = hmac.new(_PROCESS_KEY, secret.encode(), hashlib.sha256).digest()
        known = _VERIFIED.get(agent.secret_hash)
        if known is not None and hmac.compare_digest(known, digest):
            return agent
        try:
            _HASHER.verify(agent.secret_hash, secret)
        except (VerificationError, InvalidHashError):
            return None
        _VERIFIED[agent.secret_hash] = digest
        return agent


def admin_token_ok(expected: str, presented: str | None) -> bool:
    return presented is not None and hmac.compare_digest(expected.encode(), presented.encode())
