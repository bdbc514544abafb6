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
from hub.composition import policy_changed
from hub.core.identifiers import InvalidIdentifier, learner_id, learner_ids
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


@router.get("/suppressions")
async def suppressions(hub: HubDep, _: DpoDep, active_only: bool = True) -> list[dict[str, Any]]:
    async with hub.store.transaction() as tx:
        return [vars(s) for s in await tx.privacy.suppressions(active_only)]


@router.post("/suppressions", status_code=201)
async def suppress(body: Suppression, hub: HubDep, actor: DpoDep) -> dict[str, Any]:
    reason = f"{body.reason}: {body.note}" if body.note else body.reason
    async with hub.store.transaction() as tx:
        record = await service.suppress(tx, body.learner, reason, actor=actor, now=hub.clock())
    await policy_changed(hub)
    return vars(record)


@router.post("/suppressions/{suppression_id}/lift")
async def lift(suppression_id: str, body: Lift, hub: HubDep, actor: DpoDep) -> dict[str, Any]:
    async with hub.store.transaction() as tx:
        lifted = await service.lift_suppression(
            tx, suppression_id, body.reason, actor=actor, now=hub.clock()
        )
    if not lifted:
        raise Problem(404, "No active suppression", f"No active suppression {suppression_id!r}")
    await policy_changed(hub)
    return {"id": suppression_id, "lifted": True}


@router.put("/subscribers/{subscriber_id}/cohorts/{cohort}")
async def replace_cohort(
    subscriber_id: str, cohort: str, body: Cohort, hub: HubDep, actor: DpoDep
) -> dict[str, Any]:
    if hub.config.subscriber(subscriber_id) is None:
        raise Problem(404, "Unknown subscriber", f"No subscriber {subscriber_id!r}")
    members = body.learners
    async with hub.store.transaction() as tx:
        await service.replace_cohort(
            tx, subscriber_id, cohort, members, actor=actor, now=hub.clock()
        )
    await policy_changed(hub)
    return {"subscriber": subscriber_id, "cohort": cohort, "members": len(members)}


@router.get("/disclosures", response_model=None)
async def disclosures(
    hub: HubDep,
    _: DpoDep,
    upn: str | None = None,
    refid: str | None = None,
    format: Literal["json", "csv"] = Query("json"),
) -> Any:
    """Subject access: everything disclosed about one child, by UPN or RefId."""
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


@router.post("/disclosures/acknowledge")
async def acknowledge(body: Acknowledgement, hub: HubDep, _: OperatorOrDpoDep) -> dict[str, int]:
    """A recipient service confirms receipt of copies (by AMQP message_id)."""
    async with hub.store.transaction() as tx:
        count = await tx.disclosures.acknowledge(body.message_ids, hub.clock())
    return {"acknowledged": count}
