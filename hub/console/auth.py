"""Console login and logout. The token is verified by hub.api.admin_auth.authenticate_admin,
the admin API's own path (argon2 through the bounded, throttled authenticator; the bootstrap
identity), then kept only as a signed session (hub.console.session)."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hub.api.admin_auth import authenticate_admin
from hub.api.deps import AuthenticatorDep, HubDep
from hub.api.problems import Problem
from hub.console import session
from hub.console.pages import AnyUser, render, secure

router = APIRouter()


@router.get("/login", response_class=HTMLResponse)
async def login_page(request: Request, hub: HubDep) -> Response:
    return _login_form(request, hub, error=None, status=200)


def _login_form(request: Request, hub: HubDep, error: str | None, status: int) -> Response:
    csrf = secrets.token_urlsafe(24)
    response = render(request, "login.html", None, status, error=error, csrf=csrf)
    session.set_login_csrf(hub, response, csrf, secure(request))
    return response


@router.post("/login", response_class=HTMLResponse)
async def login(
    request: Request,
    hub: HubDep,
    authenticator: AuthenticatorDep,
    token: Annotated[str, Form(max_length=500)] = "",
    csrf: Annotated[str, Form(max_length=100)] = "",
) -> Response:
    if not session.login_csrf_ok(hub, request, csrf):
        return _login_form(request, hub, "The form expired: log in again", 403)
    try:
        identity = await authenticate_admin(request, hub, authenticator, f"Bearer {token.strip()}")
    except Problem as exc:
        return _login_form(request, hub, exc.detail or exc.title, exc.status)
    response = RedirectResponse("/console/", status_code=303)
    session.start(
        hub,
        response,
        name=identity.name,
        role=identity.role,
        token=token.strip(),
        secure=secure(request),
    )
    return response


@router.post("/logout")
async def logout(user: AnyUser) -> Response:
    response = RedirectResponse("/console/login", status_code=303)
    session.end(response)
    return response
