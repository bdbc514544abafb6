"""Subject access reports: every disclosure about one child, as rows for JSON or CSV.
Shared by the admin API and the `hub disclosures` command."""

from __future__ import annotations

from typing import Any

from hub.core.ports import Store

SAR_FIELDS = [
    "published_at",
    "subscriber",
    "agreement_id",
    "agreement_version",
    "lawful_basis",
    "purpose",
    "object_name",
    "action",
    "school",
    "subject_refid",
    "upn",
    "paths",
    "message_id",
    "copy_msg_id",
    "acknowledged_at",
]


async def sar_rows(store: Store, *, upn: str | None, refid: str | None) -> list[dict[str, Any]]:
    async with store.transaction() as tx:
        records = await tx.disclosures.for_subject(upn=upn, refid=refid)
    rows = []
    for r in records:
        row = {name: getattr(r, name) for name in SAR_FIELDS}
        row["paths"] = " ".join(r.paths)
        row["action"] = r.action.value
        rows.append(row)
    return rows
