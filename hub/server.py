"""Runs the hub's processes (docs/processes.md):

- `serve`: one HTTP process under uvicorn, in the current event loop. Its role says what
  else it runs: everything (Role.ALL, the embedded default) or ingest and admin only
  (Role.HTTP, when `hub worker` processes do the rest).
- `serve_processes`: N such processes sharing one listening socket (`hub serve --workers N`),
  each started again if it dies; SIGTERM or SIGINT stops them all cleanly.
- `work`: a worker process (`hub worker`): dispatch, release, webhook delivery, purge; no HTTP.
- `run`: loads the configuration and runs one of those, turning a refusal into exit status 2.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import multiprocessing
import multiprocessing.connection
import signal
import socket
import sys
import threading
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI

from hub import logs
from hub.api.app import Lifespan, create_app
from hub.api.slow_clients import HeaderDeadline, header_deadline_protocol
from hub.composition import Hub, Role, build_hub, start, stop
from hub.configfile import ConfigError, load_config
from hub.core.config import HubConfig
from hub.settings import Settings, UnsafeToServe, check_secret_key, check_serving

log = logging.getLogger("hub.server")
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
EXIT_REFUSED = 2  # a configuration or setting the hub will not run with: never restarted
CHILD_STOP_SECONDS = 60.0  # a stopping HTTP process finishes requests, then closes the hub
RESPAWN_DELAY_SECONDS = 1.0
Main = Callable[[Settings, HubConfig], Coroutine[Any, Any, None]]


def run(settings: Settings, config_path: Path, main: Main) -> int:
    """Load the configuration and run `main` to its end: the exit status (2 when refused)."""
    from hub.pipeline.agreements import AgreementInvalid
    from hub.pipeline.export import ExportSpecInvalid

    logs.configure(settings.log_level)
    try:
        config = load_config(config_path)
        with _runner(settings) as runner:
            runner.run(main(settings, config))
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_REFUSED
    except (AgreementInvalid, ExportSpecInvalid) as exc:
        print(f"{config_path}: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    except UnsafeToServe as exc:
        print(f"hub: {exc}", file=sys.stderr)
        return EXIT_REFUSED
    return 0


def _runner(settings: Settings) -> asyncio.Runner:
    if settings.event_loop == "uvloop":
        import uvloop

        return asyncio.Runner(loop_factory=uvloop.new_event_loop)
    return asyncio.Runner()


async def serve(
    settings: Settings,
    config: HubConfig,
    *,
    role: Role = Role.ALL,
    sockets: list[socket.socket] | None = None,
) -> None:
    """Until SIGTERM or SIGINT: then uvicorn finishes the requests in flight, and the app's
    lifespan stops the hub's background tasks, closes the broker and checkpoints the
    database. The hub is built first, so that a refused configuration stops the start."""
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
    hub = await build_hub(settings, config, role=role)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(hub, lifespan=hub_lifespan(hub)),
            host=settings.host,
            port=settings.port,
            log_level="warning",
            http=http,
            ssl_certfile=str(settings.ssl_certfile) if settings.ssl_certfile else None,
            ssl_keyfile=str(settings.ssl_keyfile) if settings.ssl_keyfile else None,
            lifespan="on",
            access_log=False,
            # idle and slow clients (README, "Limits under hostile load")
            timeout_keep_alive=settings.http_keep_alive_seconds,
            limit_concurrency=settings.http_limit_concurrency,
            backlog=settings.http_backlog,
        )
    )
    try:
        with _signal_stops_the_server_only():
            await server.serve(sockets=sockets)
    finally:
        if not hub.stop.is_set():  # uvicorn never started the lifespan (or never ended it)
            await stop(hub)


def hub_lifespan(hub: Hub) -> Lifespan:
    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await start(hub)
        try:
            yield
        finally:
            await stop(hub)

    return lifespan


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


async def work(settings: Settings, config: HubConfig) -> None:
    """A worker process until SIGTERM or SIGINT, then a clean stop: a batch being published
    is settled (or left to its lease) and the database closed."""
    check_secret_key(settings, webhooks=bool(config.webhook_subscribers()))
    hub = await build_hub(settings, config, role=Role.WORKER)
    loop = asyncio.get_running_loop()
    stopping = asyncio.Event()
    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, stopping.set)
    try:
        await start(hub)
        log.info("worker.started")
        await stopping.wait()
    finally:
        for sig in STOP_SIGNALS:
            loop.remove_signal_handler(sig)
        await stop(hub)


# -- N HTTP processes on one socket ---------------------------------------------------------


def serve_processes(settings: Settings, config_path: Path, *, processes: int, role: Role) -> int:
    """`processes` HTTP processes sharing one listening socket (the kernel spreads the
    connections), each run as `serve` does, each started again if it dies (kill -9
    included: what it acked is committed; what it had not acked its agents send again).
    A process refused at start (exit 2) stops them all: every restart would be refused."""
    listener = _bind(settings)
    spawn = multiprocessing.get_context("spawn")
    stopping = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stopping.set()) for sig in STOP_SIGNALS}
    start_one = functools.partial(_start_child, spawn, settings, config_path, role, listener)
    children = [start_one() for _ in range(processes)]
    status = 0
    try:
        while not stopping.is_set():
            multiprocessing.connection.wait([c.sentinel for c in children], timeout=0.5)
            for i, child in enumerate(children):
                if child.is_alive() or stopping.is_set():
                    continue
                if child.exitcode == EXIT_REFUSED:
                    status = EXIT_REFUSED
                    stopping.set()
                    break
                log.warning("serve.process_died pid=%s exitcode=%s", child.pid, child.exitcode)
                stopping.wait(RESPAWN_DELAY_SECONDS)
                children[i] = start_one()
    finally:
        _stop_children(children)
        listener.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return status


def _bind(settings: Settings) -> socket.socket:
    where = uvicorn.Config(
        "hub", host=settings.host, port=settings.port, backlog=settings.http_backlog
    )
    return where.bind_socket()


def _start_child(
    spawn: Any, settings: Settings, config_path: Path, role: Role, listener: socket.socket
) -> BaseProcess:
    child: BaseProcess = spawn.Process(
        target=_child_main, args=(settings, config_path, role, listener), daemon=False
    )
    child.start()
    return child


def _child_main(settings: Settings, config_path: Path, role: Role, listener: socket.socket) -> None:
    main = functools.partial(serve, role=role, sockets=[listener])
    sys.exit(run(settings, config_path, main))


def _stop_children(children: list[BaseProcess]) -> None:
    for child in children:
        if child.is_alive():
            child.terminate()  # SIGTERM: a clean stop, as for one process
    for child in children:
        child.join(CHILD_STOP_SECONDS)
        if child.is_alive():
            child.kill()
            child.join()
