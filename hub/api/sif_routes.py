"""The SIF 2.x HTTP binding: agents POST a SIF_Message and always get a SIF_Ack back."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from hub.api.deps import AgentDep, HubDep
from hub.api.problems import Problem
from hub.core.errors import system_error
from hub.pipeline.ingest import Incoming, handle
from hub.sif.build import ack_error

router = APIRouter()
log = logging.getLogger("hub.api.sif")
XML = "application/xml"


@router.post(
    "/sif/{zone}",
    response_class=Response,
    responses={
        200: {
            "content": {XML: {"schema": {"type": "string", "format": "xml"}}},
            "description": "A SIF_Ack: SIF_Status on success, SIF_Error (category, code) if not",
        }
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {XML: {"schema": {"type": "string", "format": "xml"}}},
            "description": "A SIF_Message (SIF 2.x, UK namespace), validated against the "
            "hub's XSDs (message_schemas/)",
        }
    },
)
async def post_message(zone: str, request: Request, agent: AgentDep, hub: HubDep) -> Response:
    """The SIF 2.x HTTP binding: register, provision, publish events, answer requests,
    pull queued messages. Every SIF-level outcome is a SIF_Ack (HTTP 200); HTTP-level
    refusals (401, 413, 429) are problem+json."""
    if zone not in hub.config.zones:
        raise Problem(404, "Unknown zone", f"No zone named {zone!r} on this hub")
    body = await _read_capped(request, hub.settings.max_body_bytes)
    try:
        reply = await handle(hub.ingest, Incoming(agent, zone, body))
    except Exception:  # a bug must still be answered in SIF terms, never as a bare 500
        log.exception("sif.unexpected agent=%s zone=%s", agent.id, zone)
        reply = ack_error(
            "2.4",
            hub.config.source_id,
            agent.id,
            None,
            system_error("Unexpected error; the message was not accepted"),
        )
    return Response(reply, media_type=XML)


async def _read_capped(request: Request, limit: int) -> bytes:
    """Refuse an oversized body before parsing, whether or not it declares its length."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise _too_large(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def _too_large(limit: int) -> Problem:
    return Problem(
        413, "Message too large", f"The body exceeds the limit of {limit} bytes", limit=limit
    )
