"""Idle and slow clients against a real uvicorn server with the hub's protocol and
middleware (hub/api/slow_clients.py): connections that never finish their headers are
closed, oversized headers refused, slow bodies answered 408; normal and kept-alive
requests are served."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request

from hub.api import problems
from hub.api.slow_clients import BodyDeadline, header_deadline_protocol

HEADER_TIMEOUT = 0.5
BODY_TIMEOUT = 0.5
MAX_HEADER_BYTES = 8192
WAIT = 15.0  # bound on each wait for the server's move; never an asserted duration


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _app() -> FastAPI:
    app = FastAPI()
    problems.install(app)
    app.add_middleware(BodyDeadline, seconds=BODY_TIMEOUT)

    @app.post("/echo")
    async def echo(request: Request) -> dict[str, int]:
        return {"size": len(await request.body())}

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        return {"status": "ok"}

    return app


@pytest.fixture
async def server() -> AsyncIterator[int]:
    port = free_port()
    config = uvicorn.Config(
        _app(),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        http=header_deadline_protocol(HEADER_TIMEOUT, MAX_HEADER_BYTES),
        timeout_keep_alive=5,
    )
    srv = uvicorn.Server(config)
    task = asyncio.create_task(srv.serve())
    for _ in range(200):
        if srv.started:
            break
        await asyncio.sleep(0.02)
    yield port
    srv.should_exit = True
    await asyncio.wait_for(task, WAIT)


async def _closed(reader: asyncio.StreamReader) -> bytes:
    """Everything the server sends until it closes the connection."""
    return await asyncio.wait_for(reader.read(), WAIT)


async def test_an_idle_connection_is_closed(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    assert await _closed(reader) == b""  # closed without a byte sent or received
    writer.close()


async def test_headers_trickling_in_are_cut_off(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n")
    await writer.drain()
    for _ in range(100):  # slow-loris: one header line now and then, never the blank line
        if reader.at_eof():
            break
        writer.write(b"X-Slow: 1\r\n")
        try:
            await writer.drain()
        except ConnectionError:
            break
        await asyncio.sleep(0.1)
    assert await _closed(reader) == b""
    writer.close()


async def test_oversized_headers_are_refused(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"GET /ok HTTP/1.1\r\nHost: x\r\n" + b"X-Big: " + b"a" * 20000 + b"\r\n")
    await writer.drain()
    answer = await _closed(reader)
    assert answer.startswith(b"HTTP/1.1 400"), answer[:100]
    writer.close()


async def test_a_slow_body_is_answered_408(server: int) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", server)
    writer.write(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n\r\n" + b"x" * 100)
    await writer.drain()  # then the rest never comes
    answer = await _closed(reader)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408"), answer[:200]
    assert b"content-type: application/problem+json" in head.lower()
    assert json.loads(body)["status"] == 408
    writer.close()


async def test_normal_and_kept_alive_requests_are_served(server: int) -> None:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server}", timeout=WAIT) as client:
        for _ in range(3):  # one connection, kept alive across requests
            assert (await client.get("/ok")).json() == {"status": "ok"}
            assert (await client.post("/echo", content=b"z" * 5000)).json() == {"size": 5000}
        await asyncio.sleep(HEADER_TIMEOUT * 3)  # idle between requests: keep-alive's 5 s
        assert (await client.get("/ok")).status_code == 200


async def test_past_the_connection_limit_the_answer_is_problem_json() -> None:
    """uvicorn's own overload answer is plain text; the hub's is problem+json."""
    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(
            _app(),
            host="127.0.0.1",
            port=port,
            log_level="error",
            lifespan="off",
            http=header_deadline_protocol(WAIT, MAX_HEADER_BYTES),
            limit_concurrency=2,
        )
    )
    task = asyncio.create_task(srv.serve())
    for _ in range(200):
        if srv.started:
            break
        await asyncio.sleep(0.02)
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(2)]
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=WAIT) as client:
            response = await client.get("/ok")
        assert response.status_code == 503
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["title"] == "Too many connections"
        assert response.headers["retry-after"] == "1"
    finally:
        for _, writer in held:
            writer.close()
        srv.should_exit = True
        await asyncio.wait_for(task, WAIT)
