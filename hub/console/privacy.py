"""Suppressions and the subject access export (DPO, as GET /admin/suppressions and GET
/admin/disclosures). The learner is POSTed, never put in a URL; the export downloads as
JSON or CSV through hub.sar, as the admin API's does, and is audited."""

from __future__ import annotations

import csv
import io
import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from hub.api.deps import HubDep
from hub.console.pages import Dpo, Refused, actor, render
from hub.core.identifiers import InvalidIdentifier, is_upn, learner_id
from hub.core.records import audited
from hub.sar import SAR_FIELDS, sar_rows

router = APIRouter()


@router.get("/privacy", response_class=HTMLResponse)
async def privacy(request: Request, hub: HubDep, user: Dpo) -> Response:
    async with hub.store.transaction() as tx:
        suppressions = await tx.privacy.suppressions(active_only=False)
    return render(request, "privacy.html", user, suppressions=suppressions)


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
