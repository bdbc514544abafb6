"""Admin API for webhook subscribers: issue (rotate) the signing secret, and read the
attempts to push each copy (ids, statuses and errors only; never a body)."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from hub.api.admin_auth import AdminRoleDep, OperatorDep
from hub.api.deps import HubDep
from hub.api.openapi import problem_doc
from hub.api.problems import Problem
from hub.composition import Hub
from hub.core.config import WebhookDelivery
from hub.core.ports import StoreUnavailable
from hub.core.records import audited

router = APIRouter(prefix="/admin/subscribers")


class WebhookSecret(BaseModel):
    subscriber: str
    secret: str = Field(
        description="whsec_<base64>: shown once; verify webhook-signature with it. "
        "Issue again to rotate (the old one stops at once)"
    )
    url: str = Field(description="The endpoint copies are pushed to")


class WebhookAttempt(BaseModel):
    copy_msg_id: str = Field(description="The copy's id: its webhook-id header")
    attempt: int
    attempted_at: datetime
    outcome: str = Field(description="delivered, retry or dead_lettered")
    status_code: int | None = Field(description="None when no HTTP answer came")
    error: str | None = Field(description="timeout, connect_error, http_<status>, ...")
    retry_in_ms: int | None


def _webhook(hub: Hub, subscriber_id: str) -> WebhookDelivery:
    subscriber = hub.config.subscriber(subscriber_id)
    if subscriber is None:
        raise Problem(404, "Unknown subscriber", f"No subscriber {subscriber_id!r}")
    if not isinstance(subscriber.delivery, WebhookDelivery):
        raise Problem(409, "Not a webhook subscriber", "Its delivery type is not webhook")
    return subscriber.delivery


@router.post(
    "/{subscriber_id}/webhook-secret",
    responses={
        404: problem_doc("Unknown subscriber"),
        409: problem_doc("The subscriber is not delivered by webhook"),
        503: problem_doc("The database is unreachable"),
    },
)
async def issue_webhook_secret(
    subscriber_id: str, hub: HubDep, actor: AdminRoleDep, response: Response
) -> WebhookSecret:
    """Issue (or rotate) the subscriber's signing secret. Stored sealed; audited with the
    actor, never the secret. Copies waiting for a first secret start moving at once."""
    target = _webhook(hub, subscriber_id)
    secret, sealed = hub.secrets.issue()
    at = hub.clock()
    audit = audited(actor, at, "webhook.secret_issued", subscriber_id)
    try:
        async with hub.store.transaction() as tx:
            await tx.webhooks.save_secret(subscriber_id, sealed, at)
            await tx.audit.add(audit)
    except StoreUnavailable:
        raise Problem(503, "Database unavailable", "No secret was issued: try again") from None
    hub.push.secret_issued.set()
    response.headers["Cache-Control"] = "no-store"
    return WebhookSecret(subscriber=subscriber_id, secret=secret, url=target.url)


@router.get(
    "/{subscriber_id}/webhook-attempts",
    responses={
        404: problem_doc("Unknown subscriber"),
        409: problem_doc("The subscriber is not delivered by webhook"),
        503: problem_doc("The database is unreachable"),
    },
)
async def webhook_attempts(
    subscriber_id: str,
    hub: HubDep,
    _: OperatorDep,
    copy_msg_id: str | None = None,
    limit: int = Query(default=100, ge=1, le=1000),
) -> list[WebhookAttempt]:
    """Attempts to push this subscriber's copies (or one copy's), newest first."""
    _webhook(hub, subscriber_id)
    try:
        async with hub.store.transaction() as tx:
            rows = await tx.webhooks.attempts(
                subscriber=subscriber_id, copy_msg_id=copy_msg_id, limit=limit
            )
    except StoreUnavailable:
        raise Problem(503, "Database unavailable", "Try again") from None
    return [
        WebhookAttempt(
            copy_msg_id=r.copy_msg_id,
            attempt=r.attempt,
            attempted_at=r.attempted_at,
            outcome=r.outcome,
            status_code=r.status_code,
            error=r.error,
            retry_in_ms=r.retry_in_ms,
        )
        for r in rows
    ]
