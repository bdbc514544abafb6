"""/metrics: the Prometheus text exposition (counts and timings only, no personal data)."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response

from hub.api.deps import HubDep
from hub.api.problems import Problem
from hub.composition import Hub
from hub.core.agreements.lifecycle import standing
from hub.core.ports import StoreUnavailable
from hub.metrics.prometheus import CONTENT_TYPE, AgreementLevel, Levels

router = APIRouter()


async def require_metrics_token(
    hub: HubDep, authorization: Annotated[str | None, Header()] = None
) -> None:
    """Open unless HUB_METRICS_TOKEN is set; then Prometheus must send it as a bearer token."""
    expected = hub.settings.metrics_token
    if expected is None:
        return
    scheme, _, token = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(expected.encode(), token.encode()):
        raise Problem(
            401, "Unauthorized", "Metrics bearer token required", {"WWW-Authenticate": "Bearer"}
        )


@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {
            "content": {CONTENT_TYPE: {"schema": {"type": "string"}}},
            "description": "Prometheus text format",
        }
    },
    dependencies=[Depends(require_metrics_token)],
    description="Counters, histograms and levels under the `sifhub_` prefix, for Prometheus. "
    "Open unless HUB_METRICS_TOKEN is set, then a bearer token.",
)
async def metrics(hub: HubDep) -> Response:
    return Response(hub.metrics.render(await levels(hub)), media_type=CONTENT_TYPE)


async def levels(hub: Hub) -> Levels:
    """The backlog monitor's last figures, the held copies read now (one grouped count on
    the unsettled rows' index) and the agreements from the policy snapshot in force."""
    held: dict[str, dict[str, int]] | None
    try:
        async with hub.store.transaction() as tx:
            held = await tx.held.summary()
    except StoreUnavailable:
        held = None
    backlog, policy = hub.backlog, hub.policies.current()
    agreements = [
        AgreementLevel(
            agreement=state.agreement_id,
            status=standing(state.lifecycle, policy.now).status.value,
            review_due=state.lifecycle.review_due,
        )
        for state in policy.agreements
    ]
    return Levels(
        backlog_rows=backlog.rows,
        oldest_age_seconds=backlog.oldest_age_seconds,
        parked_rows=backlog.parked,
        max_rows=backlog.limits.max_rows,
        max_age_seconds=backlog.limits.max_age_seconds,
        refusing=backlog.over() is not None,
        measured_at=backlog.measured_at,
        held=held,
        agreements=agreements,
    )
