"""Message search and one message's journey. Searches are POSTed forms (a UPN never
appears in a URL); pages of results carry the keyset cursor in hidden fields. Learner
identifiers, learner searches and raw payloads are for PERSONAL_DATA_ROLES only; each look
is audited by hub.pipeline.journeys."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from hub.api.deps import HubDep
from hub.console.pages import AnyUser, Refused, actor, render
from hub.console.session import ConsoleUser
from hub.core.admins import PERSONAL_DATA_ROLES, may
from hub.core.identifiers import canonical
from hub.core.records import JOURNEY_STATUSES, JourneyQuery, MessageSummary, RejectionRecord
from hub.pipeline import journeys

router = APIRouter()
PAGE = 50
STATUSES = (*JOURNEY_STATUSES, "rejected")
Text = Annotated[str, Form(max_length=200)]


@router.get("/messages", response_class=HTMLResponse)
async def latest(request: Request, hub: HubDep, user: AnyUser) -> Response:
    query = JourneyQuery(limit=PAGE + 1)
    found = await journeys.search(hub.store, query, actor=actor(user), now=hub.clock())
    return _results(request, user, found, [], {})


@router.post("/messages", response_class=HTMLResponse)
async def search(
    request: Request,
    hub: HubDep,
    user: AnyUser,
    upn: Text = "",
    refid: Text = "",
    school: Text = "",
    agent: Text = "",
    object_name: Text = "",
    agreement: Text = "",
    status: Text = "",
    since: Text = "",
    until: Text = "",
    before_at: Text = "",
    before_id: Text = "",
) -> Response:
    form = {
        "upn": upn.strip(),
        "refid": refid.strip(),
        "school": school.strip(),
        "agent": agent.strip(),
        "object_name": object_name.strip(),
        "agreement": agreement.strip(),
        "status": status.strip(),
        "since": since.strip(),
        "until": until.strip(),
    }
    if (form["upn"] or form["refid"]) and not may(user.role, *PERSONAL_DATA_ROLES):
        raise Refused(403, "Not for your role", f"The {user.role} role may not search by learner")
    query = JourneyQuery(
        upn=canonical(form["upn"]) or None,
        learner_refid=canonical(form["refid"]) or None,
        school=form["school"] or None,
        agent=form["agent"] or None,
        object_name=form["object_name"] or None,
        agreement_id=form["agreement"] or None,
        status=None if form["status"] in ("", "rejected") else _status(form["status"]),
        since=_when(form["since"]),
        until=_when(form["until"]),
        before=_cursor(before_at, before_id),
        limit=PAGE + 1,
    )
    if form["status"] == "rejected":
        refused = await journeys.rejections(hub.store, query)
        return _results(request, user, [], refused, form)
    found = await journeys.search(hub.store, query, actor=actor(user), now=hub.clock())
    return _results(request, user, found, [], form)


def _results(
    request: Request,
    user: ConsoleUser,
    found: Sequence[MessageSummary],
    refused: Sequence[RejectionRecord],
    form: dict[str, str],
) -> Response:
    more = len(found) > PAGE or len(refused) > PAGE
    return render(
        request,
        "messages.html",
        user,
        messages=found[:PAGE],
        rejections=refused[:PAGE],
        more=more,
        form=form,
        statuses=STATUSES,
        personal=may(user.role, *PERSONAL_DATA_ROLES),
    )


def _status(value: str) -> str:
    if value not in JOURNEY_STATUSES:
        raise Refused(422, "Unknown status", f"Status is one of {', '.join(STATUSES)}")
    return value


def _cursor(at: str, message_id: str) -> tuple[datetime, str] | None:
    when = _when(at)
    return None if when is None or not message_id else (when, message_id)


def _when(value: str) -> datetime | None:
    """A datetime-local field (UTC, as the page says) or an ISO time."""
    if not value:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise Refused(422, "Bad time", "Give times as YYYY-MM-DDTHH:MM (UTC)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


@router.get("/messages/{message_id}", response_class=HTMLResponse)
async def journey(message_id: str, request: Request, hub: HubDep, user: AnyUser) -> Response:
    personal = may(user.role, *PERSONAL_DATA_ROLES)
    view = await journeys.view(
        hub.store, message_id, with_payload=personal, actor=actor(user), now=hub.clock()
    )
    if view is None:
        raise Refused(404, "Unknown message", "No message has that id")
    payload = None if view.payload is None else view.payload.decode("utf-8", "replace")
    return render(request, "journey.html", user, j=view.journey, payload=payload, personal=personal)
