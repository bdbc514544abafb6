"""Admin API for file subscribers: list the export files written for a subscriber, and
download one (operator role). A file holds personal data, so every download is audited
with the actor; URLs carry only the subscriber id and the file's opaque id."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from fastapi import APIRouter, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field

from hub.api.admin_auth import OperatorDep
from hub.api.deps import HubDep
from hub.api.openapi import problem_doc
from hub.api.problems import Problem
from hub.composition import Hub
from hub.core.config import FileDelivery
from hub.core.ports import StoreUnavailable
from hub.core.records import ExportFileRecord, audited

router = APIRouter(prefix="/admin")
CSV = "text/csv; charset=utf-8"


class ExportFile(BaseModel):
    id: str = Field(description="The file's opaque id, for the download")
    seq: int = Field(description="The subscriber's file number, 1, 2, ...")
    file_name: str
    manifest_name: str
    rows: int
    counts: dict[str, int] = Field(description="Rows per object")
    agreements: list[str] = Field(description="<agreement id>@<version> of its rows")
    sha256: str = Field(description="SHA-256 of the CSV file, as in its manifest")
    size_bytes: int
    created_at: datetime
    delete_after: datetime = Field(description="When retention deletes the file")


def _export_file(r: ExportFileRecord) -> ExportFile:
    return ExportFile(
        id=r.id,
        seq=r.seq,
        file_name=r.file_name,
        manifest_name=r.manifest_name,
        rows=r.rows,
        counts=r.counts,
        agreements=r.agreements,
        sha256=r.sha256,
        size_bytes=r.size_bytes,
        created_at=r.created_at,
        delete_after=r.purge_after,
    )


def _file_subscriber(hub: Hub, subscriber_id: str) -> FileDelivery:
    subscriber = hub.config.subscriber(subscriber_id)
    if subscriber is None:
        raise Problem(404, "Unknown subscriber", f"No subscriber {subscriber_id!r}")
    if not isinstance(subscriber.delivery, FileDelivery):
        raise Problem(409, "Not a file subscriber", "Its delivery type is not file")
    return subscriber.delivery


@router.get(
    "/subscribers/{subscriber_id}/exports",
    responses={
        404: problem_doc("Unknown subscriber"),
        409: problem_doc("The subscriber is not delivered by file"),
        503: problem_doc("The database is unreachable"),
    },
)
async def export_files(
    subscriber_id: str, hub: HubDep, _: OperatorDep, limit: int = Query(default=100, ge=1, le=1000)
) -> list[ExportFile]:
    """The export files written for this subscriber and not yet deleted, newest first."""
    _file_subscriber(hub, subscriber_id)
    try:
        async with hub.store.transaction() as tx:
            rows = await tx.exports.files(subscriber_id, limit)
    except StoreUnavailable:
        raise Problem(503, "Database unavailable", "Try again") from None
    return [_export_file(r) for r in rows]


@router.get(
    "/exports/{export_id}",
    response_class=FileResponse,
    responses={
        200: {
            "content": {CSV: {"schema": {"type": "string", "format": "binary"}}},
            "description": "The CSV file",
        },
        404: problem_doc("No export file with this id (or retention deleted it)"),
        410: problem_doc("The file is recorded but no longer on disk"),
        503: problem_doc("The database is unreachable"),
    },
)
async def download_export(export_id: str, hub: HubDep, actor: OperatorDep) -> FileResponse:
    """Download one export file. Audited (`export.downloaded`, with the actor) before a
    byte is sent, since the file holds personal data."""
    try:
        async with hub.store.transaction() as tx:
            record = await tx.exports.file(export_id)
            if record is None:
                raise Problem(404, "Unknown export file", "No export file with this id")
            path = Path(record.directory) / record.file_name
            if not path.is_file():
                raise Problem(410, "Export file gone", "The file is no longer in its directory")
            detail = {"subscriber": record.subscriber, "seq": record.seq, "rows": record.rows}
            await tx.audit.add(audited(actor, hub.clock(), "export.downloaded", export_id, detail))
    except StoreUnavailable:
        raise Problem(503, "Database unavailable", "Try again") from None
    return FileResponse(
        path,
        media_type=CSV,
        filename=record.file_name,
        headers={"Cache-Control": "no-store", "X-Content-SHA256": record.sha256},
    )
