"""Builds the FastAPI application around an already composed Hub."""

from __future__ import annotations

from fastapi import FastAPI

from hub import __version__
from hub.api import (
    agreement_routes,
    broker_routes,
    held_routes,
    ops_routes,
    outbox_routes,
    privacy_routes,
    problems,
    sif_routes,
    webhook_routes,
)
from hub.api.auth import AgentAuthenticator
from hub.composition import Hub


def create_app(hub: Hub) -> FastAPI:
    app = FastAPI(
        title="SIF Hub",
        version=__version__,
        description="Routes SIF UK data from schools to LA services per agreement.",
    )
    app.state.hub = hub
    app.state.authenticator = AgentAuthenticator(hub.config)
    problems.install(app)
    app.include_router(sif_routes.router, tags=["SIF agents"])
    app.include_router(ops_routes.router, tags=["Operations"])
    app.include_router(broker_routes.router, tags=["Broker credentials"])
    app.include_router(webhook_routes.router, tags=["Webhook delivery"])
    app.include_router(agreement_routes.router, tags=["Agreements"])
    app.include_router(held_routes.router, tags=["Held copies"])
    app.include_router(outbox_routes.router, tags=["Outbox"])
    app.include_router(privacy_routes.router, tags=["Privacy and disclosures"])
    return app
