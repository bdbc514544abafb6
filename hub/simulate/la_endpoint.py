"""An LA service's HTTPS endpoint for webhook delivery, as the demo runs it (plain HTTP on
loopback): verifies each push's Standard Webhooks signature with the secret the hub issued,
de-duplicates on `webhook-id`, and keeps the copies it accepted."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import uvicorn
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from hub.simulate.la_consumer import Received


@dataclass
class WebhookEndpoint:
    secret: str | None = None
    copies: dict[str, Received] = field(default_factory=dict)
    refused: int = 0
    url: str = ""

    async def receive(self, request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        if self.secret is None:
            return Response(status_code=503)  # not set up yet: the hub retries
        try:
            Webhook(self.secret).verify(body, headers, json_parse=False)  # the body is XML
        except WebhookVerificationError:
            self.refused += 1
            return Response(status_code=401)
        copy_id = headers["webhook-id"]
        self.copies.setdefault(copy_id, Received(copy_id, headers, body, 2))
        return Response(status_code=204)


@contextlib.asynccontextmanager
async def endpoint_running() -> AsyncIterator[WebhookEndpoint]:
    """The endpoint served on a free loopback port until the block ends."""
    endpoint = WebhookEndpoint()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint.url = f"http://127.0.0.1:{port}/sif-copies"
    app = Starlette(routes=[Route("/sif-copies", endpoint.receive, methods=["POST"])])
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
            await asyncio.sleep(0.02)
        yield endpoint
    finally:
        server.should_exit = True
        await serving
