"""Admin API for data sharing agreements: versions, lifecycle, school approvals, pupil
lists, held copies, diffs between versions and previews of what would be released."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body
from pydantic import BaseModel, Field

from hub.api.admin_auth import DpoDep, OperatorDep, OperatorOrDpoDep
from hub.api.deps import HubDep
from hub.api.problems import Problem
from hub.composition import policy_changed
from hub.core.agreements.lifecycle import Transition, TransitionError, standing
from hub.core.agreements.model import Laestab, PupilAccess
from hub.core.errors import SifError
from hub.core.records import ApprovalRecord
from hub.pipeline import agreements as service
from hub.pipeline.preview import preview

router = APIRouter(prefix="/admin/agreements")


class LifecycleChange(BaseModel):
    transition: Transition
    reason: str = Field(default="", max_length=500)
    days: int | None = Field(default=None, ge=0, le=3650)


class Approval(BaseModel):
    laestab: Laestab
    approved_by: str = Field(min_length=1, max_length=200)
    version: int = Field(ge=1)
    approved_at: datetime | None = None


class HeldDecision(BaseModel):
    decision: Literal["release", "discard"]


class PreviewRequest(BaseModel):
    school: Laestab
    message: str = Field(min_length=1, description="A SIF_Message holding one SIF_Event")
    version: int | None = Field(default=None, ge=1)


def _invalid(exc: service.AgreementInvalid) -> Problem:
    return Problem(
        422, "Invalid agreement", str(exc), agreement=exc.agreement_id, problems=exc.problems
    )


@router.get("")
async def list_agreements(hub: HubDep, _: OperatorOrDpoDep) -> list[dict[str, Any]]:
    policy = hub.policies.current()
    async with hub.store.transaction() as tx:
        held = await tx.held.summary()
    return [
        _summary(state, policy.now, held.get(state.agreement_id, {})) for state in policy.agreements
    ]


def _summary(state: Any, now: datetime, held: dict[str, int]) -> dict[str, Any]:
    latest = state.versions[-1].spec
    now_standing = standing(state.lifecycle, now)
    return {
        "id": latest.id,
        "title": latest.title,
        "latest_version": latest.version,
        "status": now_standing.status.value,
        "reason": now_standing.reason,
        "warning": now_standing.warning,
        "recipients": latest.recipients,
        "review_due": state.lifecycle.review_due,
        "schools": sorted(state.approvals),
        "held": held,
    }


@router.get("/{agreement_id}")
async def get_agreement(agreement_id: str, hub: HubDep, _: OperatorOrDpoDep) -> dict[str, Any]:
    found = await service.detail(hub.store, agreement_id)
    if found is None:
        raise Problem(404, "Unknown agreement", f"No agreement {agreement_id!r}")
    versions, lifecycle = found.versions, found.lifecycle
    approvals, pupils = found.approvals, found.pupils
    return {
        "id": agreement_id,
        "lifecycle": vars(lifecycle),
        "standing": vars(standing(lifecycle, hub.clock())),
        "versions": [
            {
                "version": v.version,
                "created_at": v.created_at,
                "created_by": v.created_by,
                "widens": v.widens,
                "widened_for": None if v.widened_for is None else sorted(v.widened_for),
                "body": v.body,
            }
            for v in versions
        ],
        "approvals": [vars(a) for a in approvals],
        "pupils": [{"school": p.laestab, "mode": p.mode, "count": len(p.learners)} for p in pupils],
    }


@router.post("", status_code=201)
async def add_version(
    hub: HubDep, actor: DpoDep, body: Annotated[dict[str, Any], Body()]
) -> dict[str, Any]:
    try:
        spec = service.parse_agreement(body)
        _check_references(hub, spec)
        async with hub.store.transaction() as tx:
            record, new = await service.add_version(
                tx, spec, actor=actor, now=hub.clock(), paths_of=hub.schemas.element_paths
            )
    except service.AgreementInvalid as exc:
        raise _invalid(exc) from None
    await policy_changed(hub)
    return {
        "id": record.agreement_id,
        "version": record.version,
        "widens": record.widens,
        "widened_for": None if record.widened_for is None else sorted(record.widened_for),
        "created": new,
    }


def _check_references(hub: Any, spec: Any) -> None:
    problems = [
        f"recipients: unknown subscriber {r!r}"
        for r in spec.recipients
        if hub.config.subscriber(r) is None
    ]
    problems += [
        f"schools: unknown school {s.laestab!r}"
        for s in spec.schools
        if hub.config.school(s.laestab) is None
    ]
    if problems:
        raise service.AgreementInvalid(spec.id, problems)


@router.post("/{agreement_id}/lifecycle")
async def change_lifecycle(
    agreement_id: str, change: LifecycleChange, hub: HubDep, actor: OperatorOrDpoDep
) -> dict[str, Any]:
    try:
        async with hub.store.transaction() as tx:
            found = await service.change_lifecycle(
                tx,
                agreement_id,
                change.transition,
                actor=actor,
                now=hub.clock(),
                reason=change.reason,
                days=change.days,
            )
    except TransitionError as exc:
        raise Problem(409, "Transition not allowed", str(exc)) from None
    if not found:
        raise Problem(404, "Unknown agreement", f"No agreement {agreement_id!r}")
    await policy_changed(hub)
    policy = hub.policies.current()
    now_standing = policy.standing(agreement_id)
    return {"id": agreement_id, "status": now_standing.status.value if now_standing else None}


@router.post("/{agreement_id}/approvals", status_code=201)
async def approve(
    agreement_id: str, approval: Approval, hub: HubDep, actor: DpoDep
) -> dict[str, Any]:
    async with hub.store.transaction() as tx:
        versions = {v.version for v in await tx.agreements.versions(agreement_id)}
        if approval.version not in versions:
            raise Problem(
                404,
                "Unknown agreement version",
                f"{agreement_id!r} has no version {approval.version}",
            )
        if hub.config.school(approval.laestab) is None:
            raise Problem(422, "Unknown school", f"No school {approval.laestab!r}")
        record = ApprovalRecord(
            agreement_id,
            approval.laestab,
            approval.version,
            approval.approved_by,
            approval.approved_at or hub.clock(),
        )
        await service.approve(tx, record, actor=actor, now=hub.clock())
    await policy_changed(hub)
    return vars(record)


@router.put("/{agreement_id}/schools/{laestab}/pupils")
async def set_pupils(
    agreement_id: str, laestab: str, access: PupilAccess, hub: HubDep, actor: DpoDep
) -> dict[str, Any]:
    async with hub.store.transaction() as tx:
        if not await tx.agreements.versions(agreement_id):
            raise Problem(404, "Unknown agreement", f"No agreement {agreement_id!r}")
        await service.set_pupils(tx, agreement_id, laestab, access, actor=actor, now=hub.clock())
    await policy_changed(hub)
    return {"school": laestab, "mode": access.mode, "count": len(access.learners)}


@router.post("/{agreement_id}/held")
async def decide_held(
    agreement_id: str, decision: HeldDecision, hub: HubDep, actor: OperatorDep
) -> dict[str, Any]:
    """Release or discard what a suspension held: decided once the suspension has ended."""
    try:
        count = await service.decide_suspension_held(
            hub.store,
            hub.policies.current(),
            agreement_id,
            decision.decision,
            actor=actor,
            now=hub.clock(),
        )
    except service.HeldNotDecidable as exc:
        if exc.missing:
            raise Problem(404, "Unknown agreement", str(exc)) from None
        raise Problem(409, "Agreement still suspended", str(exc)) from None
    await policy_changed(hub)
    return {"id": agreement_id, "decision": decision.decision, "copies": count}


@router.get("/{agreement_id}/diff")
async def diff(
    agreement_id: str,
    hub: HubDep,
    _: OperatorOrDpoDep,
    to_version: int,
    from_version: int | None = None,
) -> dict[str, Any]:
    result = await service.version_diff(
        hub.store, agreement_id, from_version, to_version, hub.schemas.element_paths
    )
    if result is None:
        raise Problem(404, "Unknown agreement version", f"{agreement_id!r} lacks that version")
    return {
        "id": agreement_id,
        "from": from_version,
        "to": to_version,
        "widens": result.widens,
        "recipients_gained": result.recipients_gained,
        "recipients_lost": result.recipients_lost,
        "objects": {name: vars(d) for name, d in result.objects.items()},
        "widened_for": sorted(result.widened_for),
        "recipients": {
            r: {
                "widens": d.widens,
                "gained": d.gained,
                "lost": d.lost,
                "cohort_relaxed": d.cohort_relaxed,
                "objects": {name: vars(o) for name, o in d.objects.items()},
            }
            for r, d in result.recipients.items()
        },
    }


@router.post("/{agreement_id}/preview")
async def preview_copies(
    agreement_id: str, request: PreviewRequest, hub: HubDep, _: OperatorOrDpoDep
) -> dict[str, Any]:
    try:
        copies = await preview(
            hub.store,
            hub.schemas,
            agreement_id,
            request.school,
            request.message.encode(),
            request.version,
            hub.clock(),
        )
    except SifError as exc:
        raise Problem(
            422,
            "Invalid sample message",
            exc.desc,
            sif_category=int(exc.category),
            sif_code=exc.code,
            where=exc.extended,
        ) from None
    if copies is None:
        raise Problem(404, "Unknown agreement version", f"{agreement_id!r} lacks that version")
    return {"id": agreement_id, "school": request.school, "copies": [vars(c) for c in copies]}
