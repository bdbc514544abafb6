"""Dependencies shared by routes, as Annotated aliases so signatures read as sentences."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated

from fastapi import Depends, Header, Request

from hub.api.auth import AgentAuthenticator, Throttled
from hub.api.problems import Problem
from hub.api.throttle import client_network, retry_after_header
from hub.composition import Hub
from hub.core.config import Agent

_BASIC_CHALLENGE = {"WWW-Authenticate": 'Basic realm="SIF Hub"'}


# Dependencies are `async def` even when they await nothing: FastAPI runs a plain `def`
# dependency in its thread pool, a thread hand-over per request on the hot path.
async def get_hub(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


async def get_authenticator(request: Request) -> AgentAuthenticator:
    auth: AgentAuthenticator = request.app.state.authenticator
    return auth


async def require_agent(
    request: Request,
    authenticator: Annotated[AgentAuthenticator, Depends(get_authenticator)],
    authorization: Annotated[str | None, Header()] = None,
) -> Agent:
    """HTTP-level refusals (401, 429) come before the SIF message is read, as problem+json:
    there is no authenticated agent to address a SIF_Ack to."""
    user, secret = _basic_credentials(authorization)
    try:
        agent = await authenticator.authenticate(user, secret, client_of(request))
    except Throttled as exc:
        raise too_many_failures(exc) from None
    if agent is None:
        raise Problem(401, "Unauthorized", "Unknown agent or wrong secret", _BASIC_CHALLENGE)
    return agent


def client_of(request: Request) -> str:
    """The throttle's key for the caller: its network, not its exact address."""
    return client_network(request.client.host if request.client else None)


def too_many_failures(exc: Throttled) -> Problem:
    return Problem(
        429,
        "Too many failed authentications",
        "Wait for Retry-After seconds before trying again",
        {"Retry-After": retry_after_header(exc.retry_after)},
    )


def _basic_credentials(header: str | None) -> tuple[str, str]:
    scheme, _, value = (header or "").partition(" ")
    if scheme.lower() != "basic" or not value:
        raise Problem(401, "Unauthorized", "HTTP Basic credentials required", _BASIC_CHALLENGE)
    try:
        user, sep, secret = base64.b64decode(value, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        user, sep, secret = "", "", ""
    if not sep:
        raise Problem(401, "Unauthorized", "Malformed HTTP Basic credentials", _BASIC_CHALLENGE)
    return user, secret


HubDep = Annotated[Hub, Depends(get_hub)]
AuthenticatorDep = Annotated[AgentAuthenticator, Depends(get_authenticator)]
AgentDep = Annotated[Agent, Depends(require_agent)]
