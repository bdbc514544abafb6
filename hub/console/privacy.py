"""Suppressions (list, suppress, lift) and the subject access export (DPO, as
/admin/suppressions and GET /admin/disclosures, through the same service functions). The
learner is POSTed, never put in a URL; the export downloads as JSON or CSV through hub.sar,
as the admin API's does, and is audited."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from hub.api.deps import HubDep
from hub.composition import policy_changed
from hub.console.pages import Dpo, Refused, actor, render
from hub.console.session import ConsoleUser
from hub.core.identifiers import InvalidIdentifier, is_upn, learner_id
from hub.core.records import audited
from hub.pipeline import agreements as service
from hub.sar import SAR_FIELDS, sar_rows

router = APIRouter()


@router.get("/privacy", response_class=HTMLResponse)
async def privacy(request: Request, hub: HubDep, user: Dpo) -> Response:
    return await _page(request, hub, user)


async def _page(
    request: Request, hub: HubDep, user: ConsoleUser, flash: str | None = None
) -> Response:
    async with hub.store.transaction() as tx:
        suppressions = await tx.privacy.suppressions(active_only=False)
    return render(
        request,
        "privacy.html",
        user,
        suppressions=suppressions,
        reasons=REASONS,
        flash=flash,
    )


REASONS = ("deceased", "adopted", "confidential-placement", "other")
Flag = Annotated[str, Form(max_length=10)]
Text = Annotated[str, Form(max_length=500)]


@router.post("/privacy/suppress", response_class=HTMLResponse)
async def suppress(
    request: Request,
    hub: HubDep,
    user: Dpo,
    learner: Annotated[str, Form(max_length=100)],
    reason: Annotated[str, Form(pattern="^(deceased|adopted|confidential-placement|other)$")],
    note: Text = "",
    confirmed: Flag = "",
) -> Response:
    """Suppress a learner (as POST /admin/suppressions): nothing about them leaves again."""
    try:
        wanted = learner_id(learner)
    except InvalidIdentifier as exc:
        raise Refused(422, "Invalid learner identifier", str(exc)) from None
    if confirmed != "yes":
        return render(
            request,
            "confirm.html",
            user,
            title="Suppress a learner",
            action="/console/privacy/suppress",
            items=[f"no copy about this learner leaves the hub again ({reason})"],
            ids=[],
            hidden={"learner": wanted, "reason": reason, "note": note},
            button="Suppress",
        )
    why = f"{reason}: {note}" if note else reason
    async with hub.store.transaction() as tx:
        record = await service.suppress(tx, wanted, why, actor=actor(user), now=hub.clock())
    await policy_changed(hub)
    return await _page(request, hub, user, flash=f"Suppressed ({record.id})")


@router.post("/privacy/{suppression_id}/lift", response_class=HTMLResponse)
async def lift(
    suppression_id: str,
    request: Request,
    hub: HubDep,
    user: Dpo,
    reason: Annotated[str, Form(min_length=1, max_length=500)],
    confirmed: Flag = "",
) -> Response:
    """Lift a suppression (as POST /admin/suppressions/{id}/lift)."""
    if confirmed != "yes":
        return render(
            request,
            "confirm.html",
            user,
            title=f"Lift suppression {suppression_id}",
            action=f"/console/privacy/{suppression_id}/lift",
            items=[f"copies about this learner may flow again: {reason}"],
            ids=[],
            hidden={"reason": reason},
            button="Lift",
        )
    async with hub.store.transaction() as tx:
        lifted = await service.lift_suppression(
            tx, suppression_id, reason, actor=actor(user), now=hub.clock()
        )
    if not lifted:
        raise Refused(404, "No active suppression", f"No active suppression {suppression_id!r}")
    await policy_changed(hub)
    return await _page(request, hub, user, flash=f"Lifted {suppression_id}")


@router.post("/privacy/export")
async def export(
    hub: HubDep,
    user: Dpo,
    learner: Annotated[str, Form(max_length=100)],
    format: Annotated[str, Form(pattern="^(json|csv)$")] = "json",
) -> Response:
    try:
        wanted = learner_id(learner)
    except InvalidIdentifier as exc:
        raise Refused(422, "Invalid learner identifier", str(exc)) from None
    rows = await sar_rows(
        hub.store, upn=wanted if is_upn(wanted) else None, refid=None if is_upn(wanted) else wanted
    )
    async with hub.store.transaction() as tx:
        detail = {"rows": len(rows), "format": format}
        await tx.audit.add(
            audited(actor(user), hub.clock(), "console.sar_export", "learner", detail)
        )
    headers = {
        "Content-Disposition": f'attachment; filename="subject-access.{format}"',
        "Cache-Control": "no-store",
    }
    if format == "json":
        body = json.dumps({"count": len(rows), "disclosures": rows}, default=str, indent=2)
        return Response(body, media_type="application/json", headers=headers)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=SAR_FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return Response(out.getvalue(), media_type="text/csv", headers=headers)
