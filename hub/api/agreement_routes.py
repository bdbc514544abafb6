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
from hub.core.agreements.diff import ObjectDiff
from hub.core.agreements.lifecycle import Standing, Transition, TransitionError, standing
from hub.core.agreements.model import Agreement, Laestab, PupilAccess
from hub.core.errors import SifError
from hub.core.records import ApprovalRecord, LifecycleRecord
from hub.pipeline import agreements as service
from hub.pipeline.preview import PreviewCopy, preview

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


class AgreementSummary(BaseModel):
    id: str
    title: str
    latest_version: int
    status: str = Field(description="draft, live, suspended, terminating or terminated, now")
    reason: str
    warning: str = Field(description="e.g. a review falling due within 30 days")
    recipients: list[str]
    review_due: datetime | None
    schools: list[str] = Field(description="Schools that have approved some version")
    held: dict[str, int] = Field(description="Copies held per reason (window, suspension, ...)")


class VersionOut(BaseModel):
    version: int
    created_at: datetime
    created_by: str
    widens: bool
    widened_for: list[str] | None = Field(
        description="Recipients whose scope this version widens (each needs re-approval)"
    )
    body: dict[str, Any] = Field(description="The agreement as submitted (see POST)")


class PupilCount(BaseModel):
    school: str
    mode: str = Field(description="all, all_except or only")
    count: int


class AgreementDetail(BaseModel):
    id: str
    lifecycle: LifecycleRecord
    standing: Standing
    versions: list[VersionOut]
    approvals: list[ApprovalRecord]
    pupils: list[PupilCount]


class VersionAdded(BaseModel):
    id: str
    version: int
    widens: bool
    widened_for: list[str] | None
    created: bool = Field(description="False when the same version was already there")


class LifecycleChanged(BaseModel):
    id: str
    status: str | None


class HeldDecided(BaseModel):
    id: str
    decision: Literal["release", "discard"]
    copies: int


class RecipientDiffOut(BaseModel):
    widens: bool
    gained: bool
    lost: bool
    cohort_relaxed: bool
    objects: dict[str, ObjectDiff]


class DiffOut(BaseModel):
    id: str
    from_version: int | None = Field(serialization_alias="from")
    to: int
    widens: bool
    recipients_gained: list[str]
    recipients_lost: list[str]
    objects: dict[str, ObjectDiff]
    widened_for: list[str]
    recipients: dict[str, RecipientDiffOut] = Field(description="Each recipient's own scope")


class PreviewOut(BaseModel):
    id: str
    school: str
    copies: list[PreviewCopy]


# The request body is validated by the service (its problems come back as one 422 listing
# each), so the route takes it raw; the document still shows the agreement's schema.
AGREEMENT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": Agreement.model_json_schema()}},
    }
}


def _invalid(exc: service.AgreementInvalid) -> Problem:
    return Problem(
        422, "Invalid agreement", str(exc), agreement=exc.agreement_id, problems=exc.problems
    )


@router.get("", response_model=list[AgreementSummary])
async def list_agreements(hub: HubDep, _: OperatorOrDpoDep) -> list[AgreementSummary]:
    """Every agreement's latest version and where it stands now."""
    policy = hub.policies.current()
    async with hub.store.transaction() as tx:
        held = await tx.held.summary()
    return [
        _summary(state, policy.now, held.get(state.agreement_id, {})) for state in policy.agreements
    ]


def _summary(state: Any, now: datetime, held: dict[str, int]) -> AgreementSummary:
    latest = state.versions[-1].spec
    now_standing = standing(state.lifecycle, now)
    return AgreementSummary(
        id=latest.id,
        title=latest.title,
        latest_version=latest.version,
        status=now_standing.status.value,
        reason=now_standing.reason,
        warning=now_standing.warning,
        recipients=latest.recipients,
        review_due=state.lifecycle.review_due,
        schools=sorted(state.approvals),
        held=held,
    )


@router.get("/{agreement_id}", response_model=AgreementDetail)
async def get_agreement(agreement_id: str, hub: HubDep, _: OperatorOrDpoDep) -> AgreementDetail:
    """One agreement: lifecycle, every version, school approvals and pupil-list sizes."""
    async with hub.store.transaction() as tx:
        versions = await tx.agreements.versions(agreement_id)
        lifecycle = next(
            (r for r in await tx.agreements.lifecycles() if r.agreement_id == agreement_id), None
        )
        approvals = await tx.agreements.approvals(agreement_id)
        pupils = await tx.privacy.pupil_access(agreement_id)
    if not versions or lifecycle is None:
        raise Problem(404, "Unknown agreement", f"No agreement {agreement_id!r}")
    return AgreementDetail(
        id=agreement_id,
        lifecycle=lifecycle,
        standing=standing(lifecycle, hub.clock()),
        versions=[
            VersionOut(
                version=v.version,
                created_at=v.created_at,
                created_by=v.created_by,
                widens=v.widens,
                widened_for=None if v.widened_for is None else sorted(v.widened_for),
                body=v.body,
            )
            for v in versions
        ],
        approvals=list(approvals),
        pupils=[PupilCount(school=p.laestab, mode=p.mode, count=len(p.learners)) for p in pupils],
    )


@router.post("", status_code=201, response_model=VersionAdded, openapi_extra=AGREEMENT_BODY)
async def add_version(
    hub: HubDep, actor: DpoDep, body: Annotated[dict[str, Any], Body()]
) -> VersionAdded:
    """Add an agreement, or a new version of one. A version that widens a recipient's scope
    flows to that recipient only once each school has approved it."""
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
    return VersionAdded(
        id=record.agreement_id,
        version=record.version,
        widens=record.widens,
        widened_for=None if record.widened_for is None else sorted(record.widened_for),
        created=new,
    )


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


@router.post("/{agreement_id}/lifecycle", response_model=LifecycleChanged)
async def change_lifecycle(
    agreement_id: str, change: LifecycleChange, hub: HubDep, actor: OperatorOrDpoDep
) -> LifecycleChanged:
    """Go live, suspend (30 days by default, on a breach), reinstate, give notice
    (terminated after 30 days by default) or record a review (sets the next review date)."""
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
    return LifecycleChanged(
        id=agreement_id, status=now_standing.status.value if now_standing else None
    )


@router.post("/{agreement_id}/approvals", status_code=201, response_model=ApprovalRecord)
async def approve(
    agreement_id: str, approval: Approval, hub: HubDep, actor: DpoDep
) -> ApprovalRecord:
    """Record a school's receipt: who approved which version, and when."""
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
    return record


@router.put("/{agreement_id}/schools/{laestab}/pupils", response_model=PupilCount)
async def set_pupils(
    agreement_id: str, laestab: str, access: PupilAccess, hub: HubDep, actor: DpoDep
) -> PupilCount:
    """A school's choice of pupils under this agreement: all, all except, or only these."""
    async with hub.store.transaction() as tx:
        if not await tx.agreements.versions(agreement_id):
            raise Problem(404, "Unknown agreement", f"No agreement {agreement_id!r}")
        await service.set_pupils(tx, agreement_id, laestab, access, actor=actor, now=hub.clock())
    await policy_changed(hub)
    return PupilCount(school=laestab, mode=access.mode, count=len(access.learners))


@router.post("/{agreement_id}/held", response_model=HeldDecided)
async def decide_held(
    agreement_id: str, decision: HeldDecision, hub: HubDep, actor: OperatorDep
) -> HeldDecided:
    """Release or discard what a suspension held: decided once the suspension has ended."""
    now_standing = hub.policies.current().standing(agreement_id)
    if now_standing is None:
        raise Problem(404, "Unknown agreement", f"No agreement {agreement_id!r}")
    if now_standing.holds:
        raise Problem(
            409,
            "Agreement still suspended",
            "Reinstate the agreement (or wait for the suspension to end) first",
        )
    async with hub.store.transaction() as tx:
        count = await service.decide_held(
            tx, agreement_id, decision.decision, actor=actor, now=hub.clock()
        )
    await policy_changed(hub)
    return HeldDecided(id=agreement_id, decision=decision.decision, copies=count)


@router.get("/{agreement_id}/diff", response_model=DiffOut)
async def diff(
    agreement_id: str,
    hub: HubDep,
    _: OperatorOrDpoDep,
    to_version: int,
    from_version: int | None = None,
) -> DiffOut:
    """What a version gains and loses against another (or the one before), per recipient:
    elements, actions, filters and cohorts; `widened_for` need the schools' re-approval."""
    result = await service.version_diff(
        hub.store, agreement_id, from_version, to_version, hub.schemas.element_paths
    )
    if result is None:
        raise Problem(404, "Unknown agreement version", f"{agreement_id!r} lacks that version")
    return DiffOut(
        id=agreement_id,
        from_version=from_version,
        to=to_version,
        widens=result.widens,
        recipients_gained=result.recipients_gained,
        recipients_lost=result.recipients_lost,
        objects=result.objects,
        widened_for=sorted(result.widened_for),
        recipients={
            r: RecipientDiffOut(
                widens=d.widens,
                gained=d.gained,
                lost=d.lost,
                cohort_relaxed=d.cohort_relaxed,
                objects=d.objects,
            )
            for r, d in result.recipients.items()
        },
    )


@router.post("/{agreement_id}/preview", response_model=PreviewOut)
async def preview_copies(
    agreement_id: str, request: PreviewRequest, hub: HubDep, _: OperatorOrDpoDep
) -> PreviewOut:
    """Each recipient's copy of a sample message under a version (default: the latest),
    or why it would be held; nothing is stored or sent."""
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
    return PreviewOut(id=agreement_id, school=request.school, copies=copies)
