"""CSV uploads (Integris-style): `POST /ingest/{zone}/csv/{kind}` as the school's agent
(HTTP Basic, the SIF agents' credentials and school binding), and the upload's report,
`GET /ingest/transactions/{id}` (JSON, or CSV with `?format=csv` / `Accept: text/csv`).

The body is streamed to a temporary file (never held in memory) while its SHA-256 and its
UTF-8 are checked; the whole file's CSV structure and header are checked before any row is
stored, so a bad file stores nothing. Then adapters.csv_upload maps rows and
hub.pipeline.csv_ingest stores them in chunks.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import logging
import tempfile
from collections.abc import Callable
from typing import IO, Annotated, Any

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from adapters.csv_upload import CsvFileError, RowMapper, read_rows
from hub.api.deps import AgentDep, HubDep
from hub.api.openapi import problem_doc
from hub.api.problems import Problem
from hub.composition import Hub
from hub.core.ports import StoreUnavailable
from hub.core.records import CsvRowError, CsvTransactionRecord
from hub.pipeline.csv_ingest import Upload, ingest_rows, open_transaction, report

router = APIRouter()
log = logging.getLogger("hub.api.csv")
PROBLEM_BASE = "https://sif-hub.example/problems/csv/"
SPOOL_IN_MEMORY = 1024 * 1024  # a small file stays in memory; a larger one goes to disk


class RowProblem(BaseModel):
    line: int
    column: str
    problem: str


class TransactionOut(BaseModel):
    id: str
    kind: str
    zone: str
    status: str
    mapping_version: int
    sha256: str
    rows: int
    accepted: int
    rejected: int
    errors_not_listed: int
    created_at: str
    updated_at: str
    errors: list[RowProblem] | None = None


_PROBLEM_DOC: dict[int | str, dict[str, Any]] = {
    status: problem_doc(text)
    for status, text in (
        (400, "Not UTF-8, or not well-formed CSV"),
        (401, "No or wrong agent credentials"),
        (404, "Unknown zone, kind or transaction"),
        (413, "The file exceeds HUB_CSV_MAX_BODY_BYTES"),
        (422, "A mandatory column is missing, or the file has no header"),
        (503, "The hub is behind or its database is unavailable; send the same file again"),
    )
}


@router.post(
    "/ingest/{zone}/csv/{kind}",
    status_code=202,
    response_model=TransactionOut,
    responses=_PROBLEM_DOC,
    summary="Upload a school's CSV file (attendance, exclusions, pupils)",
)
async def upload_csv(
    zone: str, kind: str, request: Request, agent: AgentDep, hub: HubDep
) -> JSONResponse:
    """Stream an Integris-style CSV (columns as deploy/examples/csv-mapping-v1.yaml says)
    into the same ingest as SIF events; 202 with the transaction. Bad rows are reported by
    line, column and problem (never the value); good rows go on. The same file again is
    the same transaction."""
    _known(hub, zone, kind)
    behind = hub.ingest.behind()
    if behind is not None:
        raise Problem(503, "Hub is behind", f"{behind}; send again later", {"Retry-After": "30"})
    mapper = RowMapper(hub.csv_mapping, kind, _schools(hub))
    with tempfile.SpooledTemporaryFile(SPOOL_IN_MEMORY) as spool:
        sha256 = await _spool(request, spool, hub.settings.csv_max_body_bytes)
        text = io.TextIOWrapper(spool, encoding="utf-8-sig", newline="")
        header = await _offload(hub, lambda: _check_file(text, mapper))
        upload = Upload(
            agent=agent,
            zone=zone,
            kind=kind,
            sha256=sha256,
            mapping_version=hub.csv_mapping.version,
        )
        try:
            record = await _ingest(hub, upload, text, mapper, header)
        except StoreUnavailable:
            raise Problem(
                503, "Database unavailable", "Send the same file again later; it resumes"
            ) from None
        except Exception:  # a bug is still answered as a problem, never a bare 500
            log.exception("csv.unexpected agent=%s kind=%s", agent.id, kind)
            raise Problem(
                503, "Upload interrupted", "Send the same file again to resume it"
            ) from None
    body = _out(record).model_dump(exclude_none=True)
    location = f"/ingest/transactions/{record.id}"
    return JSONResponse(body, status_code=202, headers={"Location": location})


@router.get(
    "/ingest/transactions/{transaction_id}",
    response_model=TransactionOut,
    responses={
        **_PROBLEM_DOC,
        200: {
            "content": {"text/csv": {"schema": {"type": "string"}}},
            "description": "The report (JSON or CSV)",
        },
    },
    summary="An upload's status, counts and refused rows (line, column, problem)",
)
async def get_transaction(
    transaction_id: str,
    agent: AgentDep,
    hub: HubDep,
    format: Annotated[str | None, Query(pattern="^(json|csv)$")] = None,
    accept: Annotated[str | None, Header()] = None,
) -> Response:
    """The uploading agent's view of its upload: status, counts and the refused rows,
    as JSON or (format=csv or Accept: text/csv) CSV."""
    found = await report(hub.ingest, agent.id, transaction_id)
    if found is None:  # another agent's transaction is not told apart from none
        raise Problem(404, "Not found", "No such upload for this agent")
    record, errors = found
    if format == "csv" or (format is None and "text/csv" in (accept or "")):
        return Response(_errors_csv(errors), media_type="text/csv; charset=utf-8")
    return JSONResponse(_out(record, errors).model_dump())


def _known(hub: Hub, zone: str, kind: str) -> None:
    if zone not in hub.config.zones:
        raise Problem(404, "Unknown zone", f"No zone named {zone!r} on this hub")
    if kind not in hub.csv_mapping.kinds:
        raise Problem(
            404,
            "Unknown CSV kind",
            f"Kinds: {', '.join(sorted(hub.csv_mapping.kinds))}",
            type=PROBLEM_BASE + "unknown-kind",
        )


def _schools(hub: Hub) -> dict[str, str | None]:
    return {s.laestab: s.school_info_refid for s in hub.config.schools}


async def _spool(request: Request, spool: IO[bytes], limit: int) -> str:
    """Write the body to `spool` as it arrives; its SHA-256. Refuses (413) a body over
    `limit` and (400) one that is not UTF-8, before anything is stored."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    digest, decoder = hashlib.sha256(), codecs.getincrementaldecoder("utf-8")()
    size, lines = 0, 1
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            digest.update(chunk)
            lines += decoder.decode(chunk).count("\n")
            spool.write(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise _bad_file(400, "not-utf8", f"line {lines}: the file is not UTF-8") from None
    spool.seek(0)
    return digest.hexdigest()


def _check_file(text: io.TextIOWrapper, mapper: RowMapper) -> list[str]:
    """The header (mandatory columns present) and every line well-formed CSV; the header."""
    try:
        reader = csv.reader(text, strict=True)
        header = next(reader, None)
        if header is None:
            raise CsvFileError("empty", "the file has no header row")
        mapper.header(header)
        for _ in reader:
            pass
    except csv.Error:
        raise CsvFileError("malformed", f"line {reader.line_num}: not well-formed CSV") from None
    finally:
        text.seek(0)
    return header


async def _ingest(
    hub: Hub, upload: Upload, text: io.TextIOWrapper, mapper: RowMapper, header: list[str]
) -> CsvTransactionRecord:
    record, run = await open_transaction(hub.ingest, upload)
    if not run:
        return record
    text.seek(0)
    rows = read_rows(text, mapper)
    return await ingest_rows(
        hub.ingest, upload.agent, record, header, rows, chunk_rows=hub.settings.csv_chunk_rows
    )


async def _offload(hub: Hub, work: Callable[[], list[str]]) -> list[str]:
    try:
        return await hub.ingest.offload.run(hub.ingest.offload.threshold_bytes, work)
    except CsvFileError as error:
        status = 400 if error.type == "malformed" else 422
        raise _bad_file(status, error.type, error.detail) from None


def _out(record: CsvTransactionRecord, errors: list[CsvRowError] | None = None) -> TransactionOut:
    return TransactionOut(
        id=record.id,
        kind=record.kind,
        zone=record.zone,
        status=record.status,
        mapping_version=record.mapping_version,
        sha256=record.sha256,
        rows=record.rows,
        accepted=record.accepted,
        rejected=record.rejected,
        errors_not_listed=record.errors_not_listed,
        created_at=record.created_at.isoformat(),
        updated_at=record.updated_at.isoformat(),
        errors=None
        if errors is None
        else [RowProblem(line=e.line, column=e.column, problem=e.problem) for e in errors],
    )


def _errors_csv(errors: list[CsvRowError]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["line", "column", "problem"])
    writer.writerows([e.line, e.column, e.problem] for e in errors)
    return out.getvalue()


def _too_large(limit: int) -> Problem:
    return Problem(
        413,
        "File too large",
        f"The file exceeds the limit of {limit} bytes",
        type=PROBLEM_BASE + "too-large",
        limit=limit,
    )


def _bad_file(status: int, type_: str, detail: str) -> Problem:
    return Problem(status, "Unusable CSV file", detail, type=PROBLEM_BASE + type_)
