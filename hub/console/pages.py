"""What every console page shares: the templates, rendering with the user and the CSRF
token, the `needs(...)` dependency (logged in, the roles the matching admin API route
needs, and a valid CSRF token on every POST), and the handlers that turn refusals into
pages: a redirect to the login page, or a 403 page naming the roles needed."""

from __future__ import annotations

import hmac
import inspect
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from hub.api.admin_auth import audit_note
from hub.api.deps import HubDep
from hub.composition import Hub
from hub.console import session
from hub.console.session import ConsoleUser
from hub.core.admins import Role, may
from hub.core.errors import explain
from hub.core.records import Actor

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
templates.env.globals["explain_sif"] = explain


class LoginNeeded(Exception):
    pass


class Refused(Exception):
    """A page the user's role may not see, an action it may not take, or a bad form."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.title, self.detail = status, title, detail


# Pages show personal data: never cached; no script, no framing (confirm buttons cannot be
# clickjacked), nothing loaded from elsewhere.
HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def render(
    request: Request, name: str, user: ConsoleUser | None, status: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"user": user, "may": _may_for(user), **context},
        status_code=status,
        headers=HEADERS,
    )


def _may_for(user: ConsoleUser | None) -> Any:
    def check(*roles: str) -> bool:
        return user is not None and may(user.role, *(Role(r) for r in roles))

    return check


def secure(request: Request) -> bool:
    return request.url.scheme == "https"


def needs(*roles: Role) -> Any:
    """Logged in with one of `roles` (admin always may); POSTs must carry the CSRF token."""

    async def check(request: Request, hub: HubDep) -> ConsoleUser:
        user = await session.current(hub, request)
        if user is None:
            raise LoginNeeded()
        if not may(user.role, *roles):
            needed = " or ".join(sorted({*roles, Role.ADMIN}))
            raise Refused(403, "Not for your role", f"The {user.role} role may not; {needed} may")
        if request.method == "POST":
            submitted = str((await request.form()).get("csrf", ""))
            if not hmac.compare_digest(submitted, user.csrf):
                raise Refused(403, "Form expired", "Reload the page and submit the form again")
        return user

    return Depends(check)


def actor(user: ConsoleUser, note: str | None = None) -> Actor:
    """The audit actor: who logged in, and the note they typed on the form."""
    return Actor(user.name, audit_note(note))


def hub_of(request: Request) -> Hub:
    hub: Hub = request.app.state.hub
    return hub


def install_handlers(app: FastAPI) -> None:
    async def login(request: Request, exc: Exception) -> Response:
        return RedirectResponse("/console/login", status_code=303)

    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refused)
        user = await session.current(hub_of(request), request)
        return render(request, "error.html", user, exc.status, title=exc.title, detail=exc.detail)

    api_invalid = app.exception_handlers.get(RequestValidationError)

    async def invalid(request: Request, exc: Exception) -> Response:
        """A console form with a bad field gets a page; the API keeps its problem+json."""
        if request.url.path.startswith("/console/") or api_invalid is None:
            return await refused(request, Refused(422, "Invalid form", "Check the fields"))
        answer = api_invalid(request, exc)
        return await answer if inspect.isawaitable(answer) else answer

    app.add_exception_handler(LoginNeeded, login)
    app.add_exception_handler(Refused, refused)
    app.add_exception_handler(RequestValidationError, invalid)


ANY_ROLE = tuple(Role)
AnyUser = Annotated[ConsoleUser, needs(*ANY_ROLE)]
Operator = Annotated[ConsoleUser, needs(Role.OPERATOR)]
OperatorOrDpo = Annotated[ConsoleUser, needs(Role.OPERATOR, Role.DPO)]
Dpo = Annotated[ConsoleUser, needs(Role.DPO)]
