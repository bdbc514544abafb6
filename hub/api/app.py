"""Builds the FastAPI application around an already composed Hub."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from fastapi import FastAPI

from hub import __version__
from hub.api import (
    admin_user_routes,
    agreement_routes,
    alert_routes,
    broker_routes,
    csv_routes,
    dead_letter_routes,
    export_routes,
    feed_routes,
    held_routes,
    metrics_routes,
    openapi,
    ops_routes,
    outbox_routes,
    privacy_routes,
    problems,
    sif_routes,
    webhook_routes,
)
from hub.api.auth import AgentAuthenticator
from hub.api.slow_clients import BodyDeadline
from hub.api.throttle import FailureThrottle, Limit
from hub.composition import Hub
from hub.console import install as install_console

Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


def create_app(hub: Hub, lifespan: Lifespan | None = None) -> FastAPI:
    """The app factory: `lifespan` (hub.server) starts the hub's background stages when
    uvicorn starts serving and stops them, and closes the hub, after the last request."""
    app = FastAPI(
        lifespan=lifespan,
        title="SIF Hub",
        version=__version__,
        description="Routes SIF UK data from schools to LA services per agreement.",
    )
    app.state.hub = hub
    settings = hub.settings
    app.state.authenticator = AgentAuthenticator(
        hub.config,
        FailureThrottle(
            Limit(settings.auth_failure_burst, settings.auth_failure_interval_seconds),
            max_keys=settings.auth_throttle_max_keys,
        ),
        max_concurrent=settings.auth_max_concurrent,
    )
    problems.install(app)
    openapi.install(app)
    app.add_middleware(BodyDeadline, seconds=settings.http_body_timeout_seconds)
    app.include_router(sif_routes.router, tags=["SIF agents"])
    app.include_router(csv_routes.router, tags=["CSV uploads"])
    app.include_router(ops_routes.router, tags=["Operations"])
    app.include_router(metrics_routes.router, tags=["Operations"])
    app.include_router(broker_routes.router, tags=["Broker credentials"])
    app.include_router(webhook_routes.router, tags=["Webhook delivery"])
    app.include_router(export_routes.router, tags=["File exports"])
    app.include_router(feed_routes.router, tags=["JSON feeds (pull)"])
    app.include_router(feed_routes.admin_router, tags=["JSON feeds (pull)"])
    app.include_router(agreement_routes.router, tags=["Agreements"])
    app.include_router(held_routes.router, tags=["Held copies"])
    app.include_router(outbox_routes.router, tags=["Outbox"])
    app.include_router(dead_letter_routes.router, tags=["Outbox"])
    app.include_router(privacy_routes.router, tags=["Privacy and disclosures"])
    app.include_router(admin_user_routes.router, tags=["Admin users"])
    install_console(app)  # the ops console at /console (HTML pages, not in the OpenAPI)
    app.include_router(alert_routes.router, tags=["Alerts"])
    return app
