"""The JSON pull API for subscribers with `delivery: {type: api}` (Wonde-style), and the
admin route that issues their API keys.

A key is "<key id>.<secret>": 16 hex characters that find the subscriber's row and 256
random bits, of which the hub keeps only the SHA-256 (a fast hash is right for a random
256-bit secret, and the key is checked on every request), compared in constant time. A
key opens its own subscriber's feed and no other. A fetch acknowledges, in its own
transaction, the disclosure rows of the items it returns.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from adapters.json_feed import feed_item
from hub.api.admin_auth import AdminRoleDep
from hub.api.deps import HubDep
from hub.api.openapi import problem_doc
from hub.api.problems import Problem
from hub.composition import Hub
from hub.core.config import ApiDelivery
from hub.core.ports import StoreUnavailable
from hub.core.records import FeedItemRecord, FeedKeyRecord, audited

KEY_ID_BYTES = 8  # 16 hex characters: finds the row, is no secret
SECRET_BYTES = 32  # 256 random bits
_KEY = re.compile(rf"([0-9a-f]{{{2 * KEY_ID_BYTES}}})\.([A-Za-z0-9_-]{{20,100}})")
_CHALLENGE = {"WWW-Authenticate": "Bearer"}
MAX_LIMIT = 1000

router = APIRouter()
admin_router = APIRouter(prefix="/admin/subscribers")
bearer = HTTPBearer(
    scheme_name="FeedKey",
    bearerFormat="<key id>.<secret>",
    description="The subscriber's feed key, issued by POST /admin/subscribers/{id}/feed-key",
    auto_error=False,
)


class FeedItem(BaseModel):
    """One released copy. Items never change once written; a later change to the same
    object is a later item."""

    cursor: int = Field(description="Position in this subscriber's feed; only grows")
    id: str = Field(description="The copy's id (its AMQP message_id): de-duplicate on it")
    object: str = Field(description="SIF UK object name, e.g. LearnerAttendance")
    refid: str | None = Field(description="The object's RefId, when it has one")
    action: Literal["Add", "Change", "Delete"]
    deleted: bool = Field(description="A tombstone: remove the object (action Delete)")
    released_at: datetime = Field(description="When the hub kept the released copy")
    data: dict[str, Any] = Field(
        description="{object name: content}, mapped from SIF XML as docs/json-api.md says: "
        "element names kept, repeated items as arrays, attributes as '@Name', text as "
        "'#text' only when mixed. A tombstone holds only what identifies the object."
    )


class FeedPage(BaseModel):
    subscriber: str
    items: list[FeedItem] = Field(description="In cursor order, at most `limit`")
    next_cursor: int = Field(description="Pass as `since` for the next page (the last item's)")
    has_more: bool = Field(description="More items follow: fetch again at once")


class FeedKey(BaseModel):
    subscriber: str
    key: str = Field(
        description="Shown once: send as 'Authorization: Bearer <key>'. Issue again to "
        "rotate (the old key stops at once)"
    )
    url: str = Field(description="The feed this key opens")


Credentials = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


def _feed_path(subscriber: str) -> str:
    return f"/api/v1/feeds/{subscriber}"


@router.get(
    "/api/v1/feeds/{subscriber}",
    response_model=FeedPage,
    responses={
        401: problem_doc("No key, or not a valid feed key"),
        403: problem_doc("The key is another subscriber's"),
        404: problem_doc("No subscriber with api delivery by that id"),
        422: problem_doc("since or limit out of range"),
        503: problem_doc("The database is unreachable: try again"),
    },
)
async def read_feed(
    hub: HubDep,
    credentials: Credentials,
    response: Response,
    subscriber: Annotated[str, Path(description="The subscriber (LA service) id")],
    since: Annotated[
        int, Query(ge=0, description="Cursor of the last item already read; 0 from the start")
    ] = 0,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = 100,
) -> FeedPage:
    """The subscriber's released copies after cursor `since`, oldest first, as JSON. Page
    until `has_more` is false, keeping `next_cursor`; fetching again from a cursor returns
    the same items. The returned items' disclosures are recorded as acknowledged."""
    await _authorise(hub, credentials, subscriber)
    try:
        async with hub.store.transaction() as tx:
            rows = await tx.feeds.page(subscriber, since, limit + 1)
        page = rows[:limit]
        # Mapping a large page is CPU work: off the event loop, as large SIF bodies are.
        items = await hub.ingest.offload.run(
            sum(len(r.body) for r in page),
            lambda: [_item(r, hub.schemas.repeating_paths(r.object_name)) for r in page],
        )
        # Acknowledged once the page is ready to go, never for a page that was not.
        async with hub.store.transaction() as tx:
            await tx.disclosures.acknowledge([r.copy_msg_id for r in page], hub.clock())
    except StoreUnavailable:
        raise Problem(503, "Database unavailable", "Try again") from None
    response.headers["Cache-Control"] = "no-store"
    return FeedPage(
        subscriber=subscriber,
        items=items,
        next_cursor=items[-1].cursor if items else since,
        has_more=len(rows) > limit,
    )


def _item(row: FeedItemRecord, repeating: frozenset[str]) -> FeedItem:
    return FeedItem.model_validate(
        feed_item(
            cursor=row.cursor,
            copy_msg_id=row.copy_msg_id,
            object_name=row.object_name,
            refid=row.refid,
            action=row.action.value,
            released_at=row.released_at,
            body=row.body,
            repeating=repeating,
        )
    )


async def _authorise(
    hub: Hub, credentials: HTTPAuthorizationCredentials | None, subscriber: str
) -> None:
    """401 without a valid key, 403 for another subscriber's, 404 when the key's own
    subscriber no longer pulls (removed from the configuration)."""
    match = _KEY.fullmatch(credentials.credentials) if credentials else None
    if match is None:
        raise Problem(401, "Unauthorized", "A feed key is required", _CHALLENGE)
    try:
        async with hub.store.transaction() as tx:
            stored = await tx.feeds.key(match.group(1))
    except StoreUnavailable:
        raise Problem(503, "Database unavailable", "Keys are checked in the database") from None
    presented = hashlib.sha256(match.group(2).encode()).hexdigest()
    if stored is None or not hmac.compare_digest(presented, stored.secret_sha256):
        raise Problem(401, "Unauthorized", "Unknown or rotated feed key", _CHALLENGE)
    if stored.subscriber != subscriber:
        raise Problem(403, "Forbidden", "This key opens another subscriber's feed")
    _api_subscriber(hub, subscriber)


def _api_subscriber(hub: Hub, subscriber_id: str) -> ApiDelivery:
    subscriber = hub.config.subscriber(subscriber_id)
    if subscriber is None:
        raise Problem(404, "Unknown subscriber", f"No subscriber {subscriber_id!r}")
    if not isinstance(subscriber.delivery, ApiDelivery):
        raise Problem(404, "Not an api subscriber", "Its copies are not served as a feed")
    return subscriber.delivery


@admin_router.post(
    "/{subscriber_id}/feed-key",
    responses={
        404: problem_doc("Unknown subscriber, or not delivered by the api"),
        503: problem_doc("The database is unreachable"),
    },
)
async def issue_feed_key(
    subscriber_id: str, hub: HubDep, actor: AdminRoleDep, response: Response
) -> FeedKey:
    """Issue (or rotate) the subscriber's feed key. Only its SHA-256 is stored; audited with
    the actor, never the key."""
    _api_subscriber(hub, subscriber_id)
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    at = hub.clock()
    record = FeedKeyRecord(
        subscriber=subscriber_id,
        key_id=key_id,
        secret_sha256=hashlib.sha256(secret.encode()).hexdigest(),
        issued_at=at,
    )
    try:
        async with hub.store.transaction() as tx:
            await tx.feeds.save_key(record)
            await tx.audit.add(audited(actor, at, "feed.key_issued", subscriber_id))
    except StoreUnavailable:
        raise Problem(503, "Database unavailable", "No key was issued: try again") from None
    response.headers["Cache-Control"] = "no-store"
    return FeedKey(
        subscriber=subscriber_id, key=f"{key_id}.{secret}", url=_feed_path(subscriber_id)
    )
