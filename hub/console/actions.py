"""Replay with preview, re-drive of parked outbox rows and of dead letters, and decisions
on held copies. Each
action shows what it will do and asks for confirmation first; the confirmed action calls
the same service function as its admin API route (hub.pipeline.replay, .redrive,
.dead_letters, .agreements), which writes the audit row."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from hub.api.deps import HubDep
from hub.composition import dead_letter_mover, policy_changed, work_waiting
from hub.console.dashboard import subscriber_queues
from hub.console.pages import Operator, Refused, actor, render
from hub.console.session import ConsoleUser
from hub.core.ports import BrokerUnavailable
from hub.pipeline import agreements as agreement_service
from hub.pipeline import dead_letters
from hub.pipeline import redrive as redrive_service
from hub.pipeline import replay as replay_service
from hub.pipeline.dead_letters import MAX_REDRIVE

router = APIRouter()
Ids = Annotated[list[str] | None, Form(max_length=replay_service.MAX_REPLAY * 100)]
Note = Annotated[str, Form(max_length=500)]
Flag = Annotated[str, Form(max_length=10)]


@router.post("/replay", response_class=HTMLResponse)
async def replay(
    request: Request,
    hub: HubDep,
    user: Operator,
    ids: Ids = None,
    confirmed: Flag = "",
    note: Note = "",
) -> Response:
    chosen = list(dict.fromkeys(ids or []))[: replay_service.MAX_REPLAY]
    if not chosen:
        raise Refused(422, "Nothing selected", "Tick the messages to replay first")
    if confirmed != "yes":
        plans = await replay_service.plan_replay(
            hub.store, hub.policies.current(), chosen, actor=actor(user), now=hub.clock()
        )
        return render(request, "replay.html", user, plans=plans, ids=chosen)
    new = await replay_service.replay(hub.store, chosen, actor=actor(user, note), now=hub.clock())
    work_waiting(hub)  # this process's dispatcher, and the workers'
    return _done(request, user, f"Replayed {len(chosen)} message(s): {len(new)} object(s) queued")


@router.get("/outbox", response_class=HTMLResponse)
async def outbox(request: Request, hub: HubDep, user: Operator) -> Response:
    async with hub.store.transaction() as tx:
        parked = await tx.outbox.parked(200)
        held = await tx.held.unsettled(limit=200)
        summary = await tx.held.summary()
    policy = hub.policies.current()
    suspended_held = {
        agreement_id: counts.get("suspended", 0)
        for agreement_id, counts in summary.items()
        if counts.get("suspended")
    }
    standing = {a: policy.standing(a) for a in suspended_held}
    queues, broker_error = await subscriber_queues(hub)
    return render(
        request,
        "outbox.html",
        user,
        queues=queues,
        broker_error=broker_error,
        parked=parked,
        held=held,
        suspended_held=suspended_held,
        standing=standing,
    )


@router.post("/outbox/redrive", response_class=HTMLResponse)
async def redrive(
    request: Request,
    hub: HubDep,
    user: Operator,
    ids: Ids = None,
    confirmed: Flag = "",
    note: Note = "",
) -> Response:
    chosen = list(dict.fromkeys(ids or []))
    if confirmed != "yes":
        return render(
            request,
            "confirm.html",
            user,
            title="Re-drive parked rows",
            action="/console/outbox/redrive",
            items=chosen or ["every parked row"],
            ids=chosen,
            hidden={},
            button="Re-drive",
        )
    done = await redrive_service.redrive(
        hub.store, chosen or None, actor=actor(user, note), now=hub.clock()
    )
    work_waiting(hub)  # this process's dispatcher, and the workers'
    return _done(request, user, f"Re-drove {len(done)} parked row(s)")


@router.post("/subscribers/{subscriber_id}/dead-letters/redrive", response_class=HTMLResponse)
async def redrive_dead_letters(
    subscriber_id: str,
    request: Request,
    hub: HubDep,
    user: Operator,
    confirmed: Flag = "",
    note: Note = "",
) -> Response:
    if hub.config.subscriber(subscriber_id) is None:
        raise Refused(404, "Unknown subscriber", f"No subscriber {subscriber_id!r}")
    if confirmed != "yes":
        return render(
            request,
            "confirm.html",
            user,
            title=f"Re-drive {subscriber_id}'s dead letters",
            action=f"/console/subscribers/{subscriber_id}/dead-letters/redrive",
            items=[f"move up to {MAX_REDRIVE:,} copies from its dead-letter queue to its queue"],
            ids=[],
            hidden={},
            button="Re-drive dead letters",
        )
    try:
        moved = await dead_letters.redrive_dead_letters(
            hub.store,
            dead_letter_mover(hub),
            subscriber_id,
            limit=MAX_REDRIVE,
            actor=actor(user, note),
            now=hub.clock(),
        )
    except BrokerUnavailable:
        raise Refused(503, "Broker unavailable", "RabbitMQ did not answer") from None
    return _done(request, user, f"Moved {moved} dead letter(s) back to {subscriber_id}'s queue")


@router.post("/agreements/{agreement_id}/held", response_class=HTMLResponse)
async def decide_held(
    agreement_id: str,
    request: Request,
    hub: HubDep,
    user: Operator,
    decision: Annotated[str, Form(pattern="^(release|discard)$")],
    confirmed: Flag = "",
    note: Note = "",
) -> Response:
    if confirmed != "yes":
        return render(
            request,
            "confirm.html",
            user,
            title=f"{decision.title()} the copies {agreement_id} held while suspended",
            action=f"/console/agreements/{agreement_id}/held",
            items=[f"{decision} every copy held under {agreement_id} during its suspension"],
            ids=[],
            hidden={"decision": decision},
            button=decision.title(),
        )
    try:
        count = await agreement_service.decide_suspension_held(
            hub.store,
            hub.policies.current(),
            agreement_id,
            decision,
            actor=actor(user, note),
            now=hub.clock(),
        )
    except agreement_service.HeldNotDecidable as exc:
        raise Refused(404 if exc.missing else 409, "Not now", str(exc)) from None
    await policy_changed(hub)
    return _done(request, user, f"{decision.title()}d {count} held cop(ies) of {agreement_id}")


def _done(request: Request, user: ConsoleUser, message: str) -> Response:
    return render(request, "done.html", user, message=message)
