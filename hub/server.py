"""Runs a composed hub under uvicorn in the current event loop."""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator

import uvicorn

from hub.api.app import create_app
from hub.api.slow_clients import HeaderDeadline, header_deadline_protocol
from hub.composition import build_hub, start, stop
from hub.core.config import HubConfig
from hub.settings import Settings, check_secret_key, check_serving

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


async def serve(settings: Settings, config: HubConfig) -> None:
    """Until SIGTERM or SIGINT: then uvicorn finishes the requests in flight, and the hub
    stops its background tasks, closes the broker and checkpoints the database."""
    check_serving(settings)  # before touching anything: UnsafeToServe says why not
    check_secret_key(settings, webhooks=bool(config.webhook_subscribers()))
    # The header deadline is built on httptools' protocol; h11 (HUB_HTTP_PARSER=h11) goes
    # without it and relies on a reverse proxy's client timeouts.
    http: type[HeaderDeadline] | str = (
        header_deadline_protocol(
            settings.http_header_timeout_seconds, settings.http_max_header_bytes
        )
        if settings.http_parser == "httptools"
        else "h11"
    )
    hub = await build_hub(settings, config)
    await start(hub)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(hub),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            http=http,
            ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
            ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
            lifespan="off",
            access_log=False,
            # idle and slow clients (README, "Limits under hostile load")
            timeout_keep_alive=settings.http_keep_alive_seconds,
            limit_concurrency=settings.http_limit_concurrency,
            backlog=settings.http_backlog,
        )
    )
    try:
        with _signal_stops_the_server_only():
            await server.serve()
    finally:
        await stop(hub)


@contextlib.contextmanager
def _signal_stops_the_server_only() -> Iterator[None]:
    """uvicorn handles the stop signal itself, then raises it again under the handlers it
    found. With the default ones the process would die right there, before the hub's own
    clean stop; these ignore that repeat. A second signal during the hub's stop (the
    defaults are back by then) still ends the process at once."""
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
