"""RabbitMQ management fixtures (pytest plugin: `pytest_plugins = ["tests.broker_fixtures"]`).

- `management`: the shared broker's management API as guest on loopback (the broker at
  amqp://guest:guest@127.0.0.1:5672/ every test uses). If it does not answer,
  the `rabbitmq_management` plugin is enabled first (`rabbitmq-plugins enable`, additive:
  the node is never restarted), as scripts/ensure-rabbitmq does for CI.
- `remove_broker_users(prefix)`: delete every user a hub manages under that queue prefix.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess

import httpx
import pytest

from hub.amqp.provision import BrokerUsers, ManagementTarget, management_target

AMQP_URL = "amqp://guest:guest@127.0.0.1:5672/"
PLUGIN_WAIT_SECONDS = 60.0


@pytest.fixture(scope="session")
async def management() -> ManagementTarget:
    target = management_target(AMQP_URL)
    if not await _answers(target):
        _enable_plugin()
        await _wait_until_answers(target)
    return target


async def remove_broker_users(prefix: str) -> None:
    """sync([]) is the hub's own path for 'no subscriber left': every managed user goes."""
    await BrokerUsers(management_target(AMQP_URL), prefix=prefix).sync([])


async def _answers(target: ManagementTarget) -> bool:
    try:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(
                f"{target.base_url}/api/overview", auth=(target.username, target.password)
            )
    except httpx.TransportError:
        return False
    return response.status_code == 200


def _enable_plugin() -> None:
    tool = shutil.which("rabbitmq-plugins") or "/usr/sbin/rabbitmq-plugins"
    done = subprocess.run(
        [tool, "enable", "rabbitmq_management"], capture_output=True, text=True, timeout=120
    )
    if done.returncode != 0:
        pytest.fail(f"cannot enable rabbitmq_management: {done.stderr or done.stdout}")


async def _wait_until_answers(target: ManagementTarget) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PLUGIN_WAIT_SECONDS
    while not await _answers(target):
        if loop.time() > deadline:
            pytest.fail(f"RabbitMQ management API at {target.base_url} did not answer")
        await asyncio.sleep(0.5)
