"""Webhook push: each released copy POSTed to the subscriber's endpoint, signed the Standard
Webhooks way (https://www.standardwebhooks.com/).

Features: body = the copy exactly as the AMQP route carries it (a SIF_Message/SIF_Event,
`application/xml`); headers `webhook-id` (the copy's message id, the same on every retry:
de-duplicate on it), `webhook-timestamp` (Unix seconds of this attempt), `webhook-signature`
("v1,<base64 HMAC-SHA256 of id.timestamp.body>", from the `standardwebhooks` package), and
the copy's `hub-*` headers (informational, not signed; the body says the same). 2xx is
success; anything else, a timeout or a connection error is a failure for the retry
ladder. Redirects are not followed. Secrets are `whsec_<base64 of 32 random bytes>`,
issued by the admin API and kept sealed (Fernet, key derived from HUB_SECRET_KEY): the
hub must sign with the clear secret, so it cannot keep only a hash.

Config form (in a subscriber):
    delivery: {type: webhook, url: https://hr.example.gov.uk/sif, timeout_seconds: 10,
               concurrency: 4}
"""

from __future__ import annotations

import base64
import secrets
from datetime import UTC, datetime

import httpx
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from standardwebhooks.webhooks import Webhook

from hub import __version__
from hub.core.ports import Delivered, PushResult

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
SECRET_BYTES = 32
CONTENT_TYPE = "application/xml"


class SealError(Exception):
    """A stored secret cannot be opened: HUB_SECRET_KEY changed since it was issued."""


class SecretBox:
    """Seals webhook secrets for storage, and opens them to sign."""

    def __init__(self, key: str) -> None:
        derived = HKDF(
            algorithm=hashes.SHA256(), length=32, salt=None, info=b"sif-hub webhook secrets"
        ).derive(key.encode())
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def issue(self) -> tuple[str, bytes]:
        """A new secret: (shown once to the subscriber, sealed for the store)."""
        secret = SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()
        return secret, self.seal(secret)

    def seal(self, secret: str) -> bytes:
        return self._fernet.encrypt(secret.encode())

    def open(self, sealed: bytes) -> str:
        try:
            return self._fernet.decrypt(sealed).decode()
        except InvalidToken:
            raise SealError("webhook secret sealed under another HUB_SECRET_KEY") from None


def signed_headers(secret: str, copy: Delivered, at: datetime) -> dict[str, str]:
    """The Standard Webhooks headers for one attempt, plus the copy's own hub-* headers."""
    signature = Webhook(secret).sign(copy.message_id, at, copy.body.decode("utf-8"))
    return {
        **copy.headers,
        "content-type": CONTENT_TYPE,
        "user-agent": f"sif-hub/{__version__}",
        "webhook-id": copy.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


class WebhookPusher:
    """POSTs copies with one pooled HTTP client (implements hub.core.ports.Pusher)."""

    def __init__(self, box: SecretBox, client: httpx.AsyncClient | None = None) -> None:
        self._box = box
        self._client = client or httpx.AsyncClient(follow_redirects=False)

    async def close(self) -> None:
        await self._client.aclose()

    async def push(
        self, url: str, sealed_secret: bytes, copy: Delivered, *, timeout_seconds: float
    ) -> PushResult:
        try:
            secret = self._box.open(sealed_secret)
        except SealError:
            return PushResult(error="secret_unreadable")  # issue the secret again
        headers = signed_headers(secret, copy, datetime.now(UTC))
        try:
            # Streamed and never read: the hub needs the status only, whatever the body.
            async with self._client.stream(
                "POST", url, content=copy.body, headers=headers, timeout=timeout_seconds
            ) as response:
                status = response.status_code
        except httpx.TimeoutException:
            return PushResult(error="timeout")
        except httpx.ConnectError:
            return PushResult(error="connect_error")
        except httpx.TransportError as exc:
            return PushResult(error=type(exc).__name__)
        return PushResult(status=status, error=None if 200 <= status < 300 else f"http_{status}")
