"""In-memory hub.core.ports.Webhooks."""

from __future__ import annotations

from datetime import datetime

from hub.core.records import WebhookAttemptRecord
from tests.fakes.state import FakeRepo


class FakeWebhooks(FakeRepo):
    async def secret(self, subscriber: str) -> bytes | None:
        return self._state.webhook_secrets.get(subscriber)

    async def save_secret(self, subscriber: str, sealed: bytes, at: datetime) -> None:
        self._state.webhook_secrets[subscriber] = sealed

    async def add_attempt(self, record: WebhookAttemptRecord) -> None:
        self._state.webhook_attempts.append(record)

    async def attempts(
        self, *, subscriber: str | None = None, copy_msg_id: str | None = None, limit: int = 100
    ) -> list[WebhookAttemptRecord]:
        rows = [
            a
            for a in reversed(self._state.webhook_attempts)
            if subscriber in (None, a.subscriber) and copy_msg_id in (None, a.copy_msg_id)
        ]
        return rows[:limit]
