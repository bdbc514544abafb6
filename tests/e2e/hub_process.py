"""A real `hub serve` process on a SQLite file, for tests about the process itself (signals,
from hub.core.config import HubConfig
the disk under it)."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from hub.core.config import HubConfig
from hub.simulate.la_consumer import delete_queues
from tests.e2e.conftest import AMQP_URL, COUNTY, _queues, county_config


@dataclass
class HubProcess:
    process: subprocess.Popen[bytes]
    client: httpx.AsyncClient
    database: Path
    queue_prefix: str = ""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_ready(client: httpx.AsyncClient) -> None:
    for _ in range(300):
        try:
            if (await client.get("/health/ready")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("hub did not become ready")


@asynccontextmanager
async def hub_process(
    tmp_path: Path,
    example: Path = COUNTY,
    edit: Callable[[dict[str, Any]], None] | None = None,
    *,
    env: dict[str, str] | None = None,
    config_update: dict[str, Any] | None = None,
) -> AsyncIterator[HubProcess]:
    """`hub serve` with the county configuration (or another `example`, changed by `edit`;
    `config_update` replaces top-level sections; a private queue prefix) and its SQLite
    database in tmp_path, `env` added to its environment; stopped (SIGTERM, then SIGKILL)
    and its queues deleted after."""
    raw = yaml.safe_load(example.read_text())
    raw["queue_prefix"] = county_config().queue_prefix
    raw.update(config_update or {})
    if edit is not None:
        edit(raw)
    config = HubConfig.model_validate(raw)
    config_file = tmp_path / "county.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    database = tmp_path / "data" / "hub.db"
    port = _free_port()
    env = {
        **os.environ,
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "HUB_AMQP_URL": AMQP_URL,
        "HUB_PORT": str(port),
        "HUB_DATA_DIR": str(database.parent),
        "HUB_LOG_LEVEL": "WARNING",
        "HUB_AMQP_PROVISION_USERS": "false",
        **(env or {}),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "hub", "serve", "--config", str(config_file)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            await wait_ready(client)
            yield HubProcess(process, client, database, config.queue_prefix)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        await delete_queues(AMQP_URL, _queues(config))
