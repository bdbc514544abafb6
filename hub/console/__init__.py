"""The ops console at /console: server-rendered pages (Jinja2, plain HTML forms, no script
and no asset fetched from the internet) over the same service functions as the admin API.

Features: login with a named admin identity's API token (verified by
hub.api.admin_auth.authenticate_admin, the admin API's one path) into a signed, HttpOnly,
SameSite=Strict session cookie that expires; every POST form carries a CSRF token; every
page and action needs the roles its admin API route needs (hub.core.admins.may). Pages:
dashboard, message search and journeys, replay with preview, parked rows and held copies,
agreements, suppressions and subject access.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from hub.console import actions, agreements, auth, dashboard, messages, pages, privacy

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Mount the console on the app at /console (kept out of the OpenAPI document)."""
    for module in (auth, dashboard, messages, actions, agreements, privacy):
        app.include_router(module.router, prefix="/console", include_in_schema=False)
    app.mount("/console/static", StaticFiles(directory=STATIC), name="console-static")
    pages.install_handlers(app)
