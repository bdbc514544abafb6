"""Webhook subscribers' sealed signing secrets and the push attempts (implements
hub.core.ports.Webhooks)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from hub.core.records import WebhookAttemptRecord
from hub.store.models import webhook_attempts, webhook_secrets
from hub.store.repos.base import SqlRepo, from_row, values_of


class SqlWebhooks(SqlRepo):
    async def secret(self, subscriber: str) -> bytes | None:
        query = select(webhook_secrets.c.sealed).where(webhook_secrets.c.subscriber == subscriber)
        sealed = (await self._execute(query)).scalar_one_or_none()
        return bytes(sealed) if sealed is not None else None

    async def save_secret(self, subscriber: str, sealed: bytes, at: datetime) -> None:
        values = {"subscriber": subscriber, "sealed": sealed, "issued_at": at}
        await self._upsert(webhook_secrets, values, ["subscriber"])

    async def add_attempt(self, record: WebhookAttemptRecord) -> None:
        await self._execute(webhook_attempts.insert().values(values_of(record)))

    async def attempts(
        self, *, subscriber: str | None = None, copy_msg_id: str | None = None, limit: int = 100
    ) -> list[WebhookAttemptRecord]:
        table = webhook_attempts
        query = select(table).order_by(table.c.id.desc()).limit(limit)
        if subscriber is not None:
            query = query.where(table.c.subscriber == subscriber)
        if copy_msg_id is not None:
            query = query.where(table.c.copy_msg_id == copy_msg_id)
        return [from_row(WebhookAttemptRecord, row) for row in (await self._execute(query)).all()]
