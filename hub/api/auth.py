"""Who is calling: agents by HTTP Basic against argon2-hashed secrets, and the one way
secrets are hashed and checked (admin users' tokens too: hub.api.admin_auth)."""

from __future__ import annotations

import hashlib
import hmac
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

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
    digest = hmac.new(_PROCESS_KEY, secret.encode(), hashlib.sha256).digest()
    known = _VERIFIED.get(secret_hash)
    if known is not None and hmac.compare_digest(known, digest):
        return True
    try:
        _HASHER.verify(secret_hash, secret)
    except (VerificationError, InvalidHashError):
        return False
    _VERIFIED[secret_hash] = digest
    return True


class AgentAuthenticator:
    """Verifies agent credentials against the configured argon2 hashes."""

    def __init__(self, config: HubConfig) -> None:
        self._config = config

    def authenticate(self, user: str, secret: str) -> Agent | None:
        agent = self._config.agent(user)
        if agent is None or not verify_secret(agent.secret_hash, secret):
            return None
        return agent
