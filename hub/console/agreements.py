"""Agreements: their versions with the diff each made, schools' approvals and pupil lists,
cohort sizes, lifecycle state with the transitions open to the role, held copies, and the
preview of what each recipient would receive from a pasted message. Reading needs the
operator or DPO role, as GET /admin/agreements does; every change goes through the admin
API's service functions."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from hub.api.deps import HubDep
from hub.composition import policy_changed
from hub.console.pages import OperatorOrDpo, Refused, actor, render
from hub.core.agreements.lifecycle import Transition, TransitionError, allowed, standing
from hub.core.errors import SifError
from hub.pipeline import agreements as service
from hub.pipeline.preview import preview

router = APIRouter()
Text = Annotated[str, Form(max_length=500)]


@router.get("/agreements", response_class=HTMLResponse)
async def agreements(request: Request, hub: HubDep, user: OperatorOrDpo) -> Response:
    policy = hub.policies.current()
    async with hub.store.transaction() as tx:
        held = await tx.held.summary()
    rows = [
        {
            "id": s.agreement_id,
            "title": s.versions[-1].spec.title,
            "version": s.versions[-1].spec.version,
            "standing": standing(s.lifecycle, policy.now),
            "recipients": s.recipients,
            "review_due": s.lifecycle.review_due,
            "held": held.get(s.agreement_id, {}),
        }
        for s in policy.agreements
    ]
    return render(request, "agreements.html", user, rows=rows)


@router.get("/agreements/{agreement_id}", response_class=HTMLResponse)
async def agreement(
    agreement_id: str, request: Request, hub: HubDep, user: OperatorOrDpo
) -> Response:
    return await _page(agreement_id, request, hub, user)


async def _page(
    agreement_id: str,
    request: Request,
    hub: HubDep,
    user: OperatorOrDpo,
    **extra: Any,
) -> Response:
    found = await service.detail(hub.store, agreement_id)
    if found is None:
        raise Refused(404, "Unknown agreement", f"No agreement {agreement_id!r}")
    diffs = {}
    numbers = [v.version for v in found.versions]
    for before, after in zip([None, *numbers], numbers, strict=False):
        diffs[after] = await service.version_diff(
            hub.store, agreement_id, before, after, hub.schemas.element_paths
        )
    async with hub.store.transaction() as tx:
        cohorts = await tx.privacy.cohorts()
    now_standing = standing(found.lifecycle, hub.clock())
    recipients = sorted({r for v in found.versions for r in v.body.get("recipients", [])})
    return render(
        request,
        "agreement.html",
        user,
        a=found,
        agreement_id=agreement_id,
        diffs=diffs,
        standing=now_standing,
        transitions=allowed(now_standing.status),
        cohorts={k: len(v) for k, v in cohorts.items() if k[0] in recipients},
        schools=[s.laestab for s in hub.config.schools],
        **extra,
    )


@router.post("/agreements/{agreement_id}/lifecycle", response_class=HTMLResponse)
async def lifecycle(
    agreement_id: str,
    request: Request,
    hub: HubDep,
    user: OperatorOrDpo,
    transition: Annotated[Transition, Form()],
    reason: Text = "",
    days: Annotated[str, Form(max_length=5)] = "",
    confirmed: Annotated[str, Form(max_length=10)] = "",
) -> Response:
    if confirmed != "yes":
        return render(
            request,
            "confirm.html",
            user,
            title=f"{transition.value.replace('_', ' ')}: {agreement_id}",
            action=f"/console/agreements/{agreement_id}/lifecycle",
            items=[f"reason: {reason or '(none)'}", f"days: {days or 'default'}"],
            ids=[],
            hidden={"transition": transition.value, "reason": reason, "days": days},
            button=transition.value.replace("_", " "),
        )
    try:
        async with hub.store.transaction() as tx:
            found = await service.change_lifecycle(
                tx,
                agreement_id,
                transition,
                actor=actor(user),
                now=hub.clock(),
                reason=reason,
                days=int(days) if days.isdigit() else None,
            )
    except TransitionError as exc:
        raise Refused(409, "Transition not allowed", str(exc)) from None
    if not found:
        raise Refused(404, "Unknown agreement", f"No agreement {agreement_id!r}")
    await policy_changed(hub)
    return await _page(agreement_id, request, hub, user, flash=f"{transition.value}: done")


@router.post("/agreements/{agreement_id}/preview", response_class=HTMLResponse)
async def preview_copies(
    agreement_id: str,
    request: Request,
    hub: HubDep,
    user: OperatorOrDpo,
    school: Annotated[str, Form(max_length=20)],
    message: Annotated[str, Form(max_length=1_000_000)],
    version: Annotated[str, Form(max_length=5)] = "",
) -> Response:
    try:
        copies = await preview(
            hub.store,
            hub.schemas,
            agreement_id,
            school,
            message.encode(),
            int(version) if version.isdigit() else None,
            hub.clock(),
        )
    except SifError as exc:
        raise Refused(422, "Invalid sample message", f"{exc.desc} {exc.extended or ''}") from None
    if copies is None:
        raise Refused(404, "Unknown agreement version", f"{agreement_id!r} lacks that version")
    return await _page(agreement_id, request, hub, user, copies=copies, sample=message)
