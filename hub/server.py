"""Runs a composed hub under uvicorn in the current event loop."""

from __future__ import annotations

import uvicorn

from hub.api.app import create_app
from hub.composition import build_hub, start, stop
from hub.core.config import HubConfig
from hub.settings import Settings


async def serve(settings: Settings, config: HubConfig) -> None:
    hub = await build_hub(settings, config)
    await start(hub)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(hub),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            http=settings.http_parser,
            ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
            ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
            lifespan="off",
            access_log=False,
        )
    )
    try:
        await server.serve()
    finally:
        await stop(hub)
