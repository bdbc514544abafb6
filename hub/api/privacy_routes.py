"""Admin API for the child's side of things: suppression (overrides every agreement),
recipient-supplied cohorts, the disclosure log and subject access reports."""

from __future__ import annotations

import csv
import io
from typing import Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field, field_validator

from hub.api.admin_auth import DpoDep, OperatorOrDpoDep
from hub.api.deps import HubDep
from hub.api.problems import Problem
from hub.composition import Hub, policy_changed
from hub.core.identifiers import InvalidIdentifier, learner_id, learner_ids
from hub.core.records import SuppressionRecord
from hub.pipeline import agreements as service
from hub.sar import SAR_FIELDS, sar_rows

router = APIRouter(prefix="/admin")


class Suppression(BaseModel):
    learner: str = Field(
        min_length=1,
        max_length=64,
        description="LearnerPersonal RefId or UPN (any case and spacing; a UPN's check "
        "letter must be right)",
    )
    reason: Literal["deceased", "adopted", "confidential-placement", "other"]
    note: str = Field(default="", max_length=500)

    @field_validator("learner")
    @classmethod
    def _canonical(cls, learner: str) -> str:
        return learner_id(learner)


class Lift(BaseModel):
    reason: str = Field(min_length=1, max_length=500)


class Cohort(BaseModel):
    learners: list[str] = Field(description="UPNs or LearnerPersonal RefIds", max_length=100_000)

    @field_validator("learners")
    @classmethod
    def _canonical(cls, learners: list[str]) -> list[str]:
        return list(learner_ids(learners))


class Acknowledgement(BaseModel):
    message_ids: list[str] = Field(min_length=1, max_length=10_000)


class Lifted(BaseModel):
    id: str
    lifted: bool


class CohortReplaced(BaseModel):
    subscriber: str
    cohort: str
    members: int


class Acknowledged(BaseModel):
    acknowledged: int = Field(description="Copies newly marked acknowledged")


class SubjectAccess(BaseModel):
    upn: str | None
    refid: str | None
    count: int
    disclosures: list[dict[str, Any]] = Field(
        description=f"One row per copy that left, with: {', '.join(SAR_FIELDS)}"
    )


SUBJECT_ACCESS_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "JSON, or CSV with the same columns when format=csv",
        "content": {
            "application/json": {"schema": SubjectAccess.model_json_schema()},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


@router.get("/suppressions", response_model=list[SuppressionRecord])
async def suppressions(hub: HubDep, _: DpoDep, active_only: bool = True) -> list[SuppressionRecord]:
    """Learners whose records must not leave (deceased, adopted, ...), active or all."""
    async with hub.store.transaction() as tx:
        return list(await tx.privacy.suppressions(active_only))


@router.post("/suppressions", status_code=201, response_model=SuppressionRecord)
async def suppress(body: Suppression, hub: HubDep, actor: DpoDep) -> SuppressionRecord:
    """Hide a learner from every agreement at once, from now on, on every path."""
    reason = f"{body.reason}: {body.note}" if body.note else body.reason
    async with hub.store.transaction() as tx:
        record = await service.suppress(tx, body.learner, reason, actor=actor, now=hub.clock())
    await policy_changed(hub)
    return record


@router.post("/suppressions/{suppression_id}/lift", response_model=Lifted)
async def lift(suppression_id: str, body: Lift, hub: HubDep, actor: DpoDep) -> Lifted:
    """End a suppression, with the reason recorded."""
    async with hub.store.transaction() as tx:
        lifted = await service.lift_suppression(
            tx, suppression_id, body.reason, actor=actor, now=hub.clock()
        )
    if not lifted:
        raise Problem(404, "No active suppression", f"No active suppression {suppression_id!r}")
    await policy_changed(hub)
    return Lifted(id=suppression_id, lifted=True)


@router.put("/subscribers/{subscriber_id}/cohorts/{cohort}", response_model=CohortReplaced)
async def replace_cohort(
    subscriber_id: str, cohort: str, body: Cohort, hub: HubDep, actor: DpoDep
) -> CohortReplaced:
    """Replace a recipient's cohort (e.g. the Virtual School's children in care)."""
    if hub.config.subscriber(subscriber_id) is None:
        raise Problem(404, "Unknown subscriber", f"No subscriber {subscriber_id!r}")
    members = body.learners
    async with hub.store.transaction() as tx:
        await service.replace_cohort(
            tx, subscriber_id, cohort, members, actor=actor, now=hub.clock()
        )
    await policy_changed(hub)
    return CohortReplaced(subscriber=subscriber_id, cohort=cohort, members=len(members))


class SubjectAccessRequest(BaseModel):
    upn: str | None = Field(default=None, max_length=64, description="The child's UPN")
    refid: str | None = Field(default=None, max_length=64, description="LearnerPersonal RefId")
    format: Literal["json", "csv"] = "json"


@router.post(
    "/disclosures/search",
    response_model=None,
    responses=SUBJECT_ACCESS_RESPONSES,
    operation_id="subject_access",
)
async def subject_access(body: SubjectAccessRequest, hub: HubDep, _: DpoDep) -> Any:
    """Subject access: everything disclosed about one child, by UPN or RefId. The
    identifier travels in the body, so it never lands in a URL or a proxy's log."""
    return await _subject_access(hub, body.upn, body.refid, body.format)


@router.get(
    "/disclosures",
    response_model=None,
    responses=SUBJECT_ACCESS_RESPONSES,
    operation_id="subject_access_by_query",
)
async def disclosures(
    hub: HubDep,
    _: DpoDep,
    upn: str | None = Query(
        None,
        deprecated=True,
        description="Puts personal data in the URL: use POST /admin/disclosures/search",
    ),
    refid: str | None = None,
    format: Literal["json", "csv"] = Query("json"),
) -> Any:
    """Subject access by LearnerPersonal RefId (an opaque id); as POST
    /admin/disclosures/search, which is the way to look a child up by UPN."""
    return await _subject_access(hub, upn, refid, format)


async def _subject_access(
    hub: Hub, upn: str | None, refid: str | None, format: Literal["json", "csv"]
) -> Any:
    if not (upn or refid):
        raise Problem(422, "A learner is needed", "Give upn or refid")
    try:
        upn, refid = (learner_id(x) if x else None for x in (upn, refid))
    except InvalidIdentifier as exc:
        raise Problem(422, "Invalid learner identifier", str(exc)) from None
    rows = await sar_rows(hub.store, upn=upn, refid=refid)
    if format == "json":
        return {"upn": upn, "refid": refid, "count": len(rows), "disclosures": rows}
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=SAR_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv")


@router.post("/disclosures/acknowledge", response_model=Acknowledged)
async def acknowledge(body: Acknowledgement, hub: HubDep, _: OperatorOrDpoDep) -> Acknowledged:
    """A recipient service confirms receipt of copies (by AMQP message_id)."""
    async with hub.store.transaction() as tx:
        count = await tx.disclosures.acknowledge(body.message_ids, hub.clock())
    return Acknowledged(acknowledged=count)
