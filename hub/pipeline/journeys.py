"""Message journeys for the ops console: search, and one message's whole journey, with
every look at personal data audited (who, what, when) in the same transaction.

A search that names a learner (UPN or RefId) is itself a disclosure: its audit row records
the criteria used and the messages found, never the identifier typed (audit rows must not
become a second index of children). Opening a journey records the message and whether its
raw payload was shown.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime

from hub.core.ports import Store
from hub.core.records import (
    Actor,
    Journey,
    JourneyQuery,
    MessageSummary,
    RejectionRecord,
    audited,
)

_PERSONAL = ("upn", "learner_refid")


@dataclass(frozen=True, kw_only=True)
class JourneyView:
    journey: Journey
    payload: bytes | None  # None unless the caller's role may see it (or it was purged)


async def search(
    store: Store, query: JourneyQuery, *, actor: Actor, now: datetime
) -> list[MessageSummary]:
    async with store.transaction() as tx:
        found = await tx.journeys.search(query)
        if any(getattr(query, name) is not None for name in _PERSONAL):
            detail = {"criteria": criteria(query), "messages": [m.id for m in found]}
            await tx.audit.add(audited(actor, now, "console.search", "messages", detail))
    return found


async def rejections(store: Store, query: JourneyQuery) -> list[RejectionRecord]:
    """Refused messages (no payload was ever kept): why each was refused."""
    async with store.transaction() as tx:
        return await tx.journeys.rejections(query)


async def view(
    store: Store, message_id: str, *, with_payload: bool, actor: Actor, now: datetime
) -> JourneyView | None:
    async with store.transaction() as tx:
        journey = await tx.journeys.journey(message_id)
        if journey is None:
            return None
        payload = await tx.messages.payload(message_id) if with_payload else None
        learners = sorted({d.subject_refid for d in journey.disclosures if d.subject_refid})
        detail = {"payload": payload is not None, "learners": learners}
        await tx.audit.add(audited(actor, now, "console.journey", message_id, detail))
    return JourneyView(journey=journey, payload=payload)


def criteria(query: JourneyQuery) -> list[str]:
    """The names of the criteria a search used (for the audit row; never their values)."""
    skip = {"limit", "before"}
    return [f.name for f in fields(query) if f.name not in skip and getattr(query, f.name)]
