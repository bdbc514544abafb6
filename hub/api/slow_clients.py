"""Idle and slow clients: deadlines uvicorn does not set itself.

uvicorn closes a keep-alive connection idle after a response (`timeout_keep_alive`), but a
connection that never completes its request headers (idle from the start, or a slow-loris
trickle) is kept for ever, and httptools puts no bound on header size. `HeaderDeadline`
closes such a connection after `header_timeout` seconds or `max_header_bytes`. A request
body must then arrive within `body_timeout` seconds (`BodyDeadline`, ASGI), else 408.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http import h11_impl, httptools_impl
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from hub.api.problems import PROBLEM

_OVERLOADED = json.dumps(
    {
        "type": "about:blank",
        "title": "Too many connections",
        "status": 503,
        "detail": "The hub is at its connection limit (HUB_HTTP_LIMIT_CONCURRENCY); "
        "send again later",
    }
).encode()


async def overloaded(scope: Scope, receive: Receive, send: Send) -> None:
    """What uvicorn answers past `limit_concurrency`, as problem+json like every other
    error (uvicorn's own answer is plain text)."""
    await send(
        {
            "type": "http.response.start",
            "status": 503,
            "headers": [
                (b"content-type", PROBLEM.encode()),
                (b"content-length", str(len(_OVERLOADED)).encode()),
                (b"retry-after", b"1"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _OVERLOADED, "more_body": False})


# uvicorn picks its overload answer by this module-level name when a request arrives.
httptools_impl.service_unavailable = overloaded  # type: ignore[attr-defined,assignment]
h11_impl.service_unavailable = overloaded  # type: ignore[attr-defined,assignment]


class HeaderDeadline(HttpToolsProtocol):
    """uvicorn's httptools protocol, closing a connection whose request headers do not
    arrive in time or grow too large. Configure with `header_deadline_protocol`."""

    header_timeout: float = 10.0
    max_header_bytes: int = 64 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for: object | None = None  # the request cycle current when armed
        self._header_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.transport.is_closing():
            return
        if self.cycle is not self._armed_for:  # a new request's headers are complete
            self._disarm()
        elif self._timer is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # the first bytes of the next request on a kept-alive connection
        if self._timer is not None:
            self._header_bytes += len(data)
            if self._header_bytes > self.max_header_bytes:
                self.send_400_response("Request headers too large.")

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._armed_for, self._header_bytes = self.cycle, 0
        self._timer = self.loop.call_later(self.header_timeout, self._expired)

    def _disarm(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._armed_for = None, self.cycle

    def _expired(self) -> None:
        self._timer = None
        if self.cycle is self._armed_for and not self.transport.is_closing():
            self.transport.close()


def header_deadline_protocol(header_timeout: float, max_header_bytes: int) -> type[HeaderDeadline]:
    """The protocol class to give uvicorn (`http=`), with these limits."""
    return type(
        "HubHttpProtocol",
        (HeaderDeadline,),
        {"header_timeout": header_timeout, "max_header_bytes": max_header_bytes},
    )


class BodyDeadline:
    """ASGI middleware: the request body must be complete within `seconds` of the request
    starting, else the request is answered 408 problem+json (by the one Problem handler)."""

    def __init__(self, app: ASGIApp, seconds: float) -> None:
        self.app, self.seconds = app, seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = asyncio.get_running_loop().time() + self.seconds
        body_done = False

        async def timed_receive() -> Message:
            nonlocal body_done
            if body_done:  # after the body, receive only waits for a disconnect
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                # an HTTPException, which FastAPI lets through its body reading as it is
                raise HTTPException(
                    408,
                    f"Request body too slow: not complete within {self.seconds:g} seconds",
                    {"Connection": "close"},
                ) from None
            body_done = message["type"] != "http.request" or not message.get("more_body")
            return message

        await self.app(scope, timed_receive, send)
