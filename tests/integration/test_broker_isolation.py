"""Broker isolation per LA service, proven with a real AMQP client against the shared broker.

The hub provisions users through the real management API under a private queue prefix;
each check then logs in as subscriber A with aio-pika and tries what an LA service with
broker access might try against B (or against the hub). Users, queues and the vhost made
here are removed afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from typing import Any

import aio_pika
import httpx
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from aio_pika.exceptions import ChannelNotFoundEntity
from aiormq.exceptions import ChannelAccessRefused, ProbableAuthenticationError

from hub.amqp.provision import (
    MANAGED_TAG,
    BrokerUsers,
    Credentials,
    ManagementTarget,
    UserConflict,
    read_only_queue_pattern,
)
from hub.amqp.topology import declare_subscriber
from hub.core import naming
from hub.core.ports import BrokerUnavailable

pytestmark = pytest.mark.integration

GUEST_URL = "amqp://guest:guest@127.0.0.1:5672/"
HUB_HEADERS: dict[str, Any] = {
    naming.H_MESSAGE_ID: "forged",
    naming.H_SUBSCRIBER: "la-a",
    naming.H_AGREEMENT: "DSA-FORGED",
    naming.H_AGREEMENT_VERSION: 1,
}
Operation = Callable[[AbstractChannel], Awaitable[object]]


def amqp_url(username: str, password: str) -> str:
    return f"amqp://{username}:{password}@127.0.0.1:5672/"


@asynccontextmanager
async def channel_as(url: str) -> AsyncIterator[AbstractChannel]:
    """A confirm channel, so a refused publish raises instead of vanishing."""
    connection = await aio_pika.connect(url, timeout=10)
    async with connection:
        yield await connection.channel(publisher_confirms=True, on_return_raises=True)


@asynccontextmanager
async def management_api(target: ManagementTarget) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(
        base_url=f"{target.base_url}/api/", auth=(target.username, target.password), timeout=10
    ) as client:
        yield client


@dataclass
class World:
    prefix: str
    users: BrokerUsers
    target: ManagementTarget
    a: Credentials
    b: Credentials

    @property
    def dlx(self) -> str:
        return naming.dead_letter_exchange(self.prefix)

    def url(self, creds: Credentials) -> str:
        return amqp_url(creds.username, creds.password)


async def declare(prefix: str, *subscribers: str) -> None:
    async with channel_as(GUEST_URL) as channel:
        for subscriber_id in subscribers:
            await declare_subscriber(channel, subscriber_id, prefix)


async def delete_topology(prefix: str, subscribers: list[str]) -> None:
    async with channel_as(GUEST_URL) as channel:
        underlay = await channel.get_underlay_channel()
        for subscriber_id in subscribers:
            await underlay.queue_delete(naming.subscriber_queue(subscriber_id, prefix))
            await underlay.queue_delete(naming.dead_letter_queue(subscriber_id, prefix))
        await underlay.exchange_delete(naming.dead_letter_exchange(prefix))


SUBSCRIBERS = ["la-a", "la-b", "la-c", "la-r"]


@pytest.fixture(scope="module")
async def world(management: ManagementTarget) -> AsyncIterator[World]:
    prefix = f"iso-{uuid.uuid4().hex[:10]}"
    users = BrokerUsers(management, prefix=prefix)
    await declare(prefix, *SUBSCRIBERS)
    try:
        report = await users.sync(["la-a", "la-b"])
        assert set(report.created) == {users.username("la-a"), users.username("la-b")}
        a, b = await users.issue("la-a"), await users.issue("la-b")
        yield World(prefix, users, management, a, b)
    finally:
        await users.sync([])
        await delete_topology(prefix, SUBSCRIBERS)


async def publish_as_guest(queue: str, body: bytes = b"<copy/>") -> None:
    async with channel_as(GUEST_URL) as channel:
        await channel.default_exchange.publish(
            aio_pika.Message(body, message_id=uuid.uuid4().hex), routing_key=queue, timeout=10
        )


async def message_count(queue: str) -> int:
    async with channel_as(GUEST_URL) as channel:
        declared = await channel.declare_queue(queue, passive=True)
        count = declared.declaration_result.message_count
        assert count is not None
        return int(count)


async def refused(url: str, operation: Operation) -> str:
    """Run `operation` on a fresh channel; it must be refused. Returns the broker's reason."""
    async with channel_as(url) as channel:
        with pytest.raises(ChannelAccessRefused) as caught:
            await operation(channel)
    return str(caught.value)


# --- what A may do ----------------------------------------------------------------------


async def test_a_consumes_and_acks_its_own_queue(world: World) -> None:
    await publish_as_guest(world.a.queue, b"<first/>")
    await publish_as_guest(world.a.queue, b"<second/>")
    async with channel_as(world.url(world.a)) as channel:
        queue = await channel.get_queue(world.a.queue, ensure=False)
        async with asyncio.timeout(30), queue.iterator() as messages:
            async for message in messages:
                assert message.body == b"<first/>"
                await message.ack()
                break
        fetched = await queue.get(no_ack=False, timeout=10)
        assert fetched.body == b"<second/>"
        await fetched.ack()
    assert await message_count(world.a.queue) == 0


# --- what A may not do ------------------------------------------------------------------


async def _ignore(_message: AbstractIncomingMessage) -> None:
    return None


def _consume(queue: str) -> Operation:
    async def run(channel: AbstractChannel) -> object:
        q = await channel.get_queue(queue, ensure=False)
        return await q.consume(_ignore, timeout=10)

    return run


def _get(queue: str) -> Operation:
    async def run(channel: AbstractChannel) -> object:
        q = await channel.get_queue(queue, ensure=False)
        return await q.get(no_ack=False, fail=False, timeout=10)

    return run


def _purge(queue: str) -> Operation:
    async def run(channel: AbstractChannel) -> object:
        return await (await channel.get_queue(queue, ensure=False)).purge(timeout=10)

    return run


def _delete(queue: str) -> Operation:
    async def run(channel: AbstractChannel) -> object:
        q = await channel.get_queue(queue, ensure=False)
        return await q.delete(if_unused=False, if_empty=False, timeout=10)

    return run


TARGETS: dict[str, Callable[[World], str]] = {
    "b-queue": lambda w: w.b.queue,
    "b-dlq": lambda w: f"{w.b.queue}.dlq",
    "own-dlq": lambda w: f"{w.a.queue}.dlq",
}


@pytest.mark.parametrize("target", list(TARGETS))
@pytest.mark.parametrize(
    "operation", [_consume, _get, _purge, _delete], ids=["consume", "get", "purge", "delete"]
)
async def test_a_cannot_touch_b_or_any_dead_letter_queue(
    world: World, target: str, operation: Callable[[str], Operation]
) -> None:
    queue = TARGETS[target](world)
    await publish_as_guest(queue)
    before = await message_count(queue)
    reason = await refused(world.url(world.a), operation(queue))
    assert "ACCESS_REFUSED" in reason and f"queue '{queue}'" in reason
    assert await message_count(queue) == before  # nothing taken, nothing purged, still there


async def test_a_cannot_delete_its_own_queue(world: World) -> None:
    reason = await refused(world.url(world.a), _delete(world.a.queue))
    assert f"queue '{world.a.queue}'" in reason
    assert await message_count(world.a.queue) >= 0  # still declared


def _publish(exchange: str | None, routing_key: str) -> Operation:
    """A copy forged with the hub's headers; exchange None is the default exchange."""

    async def run(channel: AbstractChannel) -> object:
        target = (
            channel.default_exchange
            if exchange is None
            else await channel.get_exchange(exchange, ensure=False)
        )
        message = aio_pika.Message(b"<forged/>", headers=HUB_HEADERS, message_id="forged-1")
        return await target.publish(message, routing_key=routing_key, timeout=10)

    return run


PUBLISHES: dict[str, Callable[[World], tuple[str | None, str]]] = {
    "default-exchange-to-own-queue": lambda w: (None, w.a.queue),
    "default-exchange-to-b": lambda w: (None, w.b.queue),
    "default-exchange-to-own-dlq": lambda w: (None, f"{w.a.queue}.dlq"),
    "dlx-to-own-dlq": lambda w: (w.dlx, f"{w.a.queue}.dlq"),
    "dlx-to-b-dlq": lambda w: (w.dlx, f"{w.b.queue}.dlq"),
    "amq.direct": lambda w: ("amq.direct", w.b.queue),
    "amq.topic": lambda w: ("amq.topic", "#"),
    "amq.fanout": lambda w: ("amq.fanout", ""),
}


@pytest.mark.parametrize("route", list(PUBLISHES))
async def test_a_cannot_publish_anything_anywhere(world: World, route: str) -> None:
    exchange, routing_key = PUBLISHES[route](world)
    queues = [world.a.queue, world.b.queue, f"{world.a.queue}.dlq", f"{world.b.queue}.dlq"]
    before = [await message_count(q) for q in queues]
    reason = await refused(world.url(world.a), _publish(exchange, routing_key))
    # Permission checks name the default exchange amq.default: "" refuses it too.
    assert f"exchange '{exchange or 'amq.default'}'" in reason, reason
    assert [await message_count(q) for q in queues] == before


@pytest.mark.parametrize("write", ["", "^$"])
async def test_neither_empty_write_pattern_lets_a_publish_to_the_default_exchange(
    world: World, management: ManagementTarget, write: str
) -> None:
    """Why "" is enough: RabbitMQ checks the default exchange under the name amq.default,
    so "^$" does not match it either; the hub grants "", RabbitMQ's documented "nothing"."""
    grant = {"configure": "", "write": write, "read": read_only_queue_pattern(world.a.queue)}
    async with management_api(management) as api:
        (await api.put(f"permissions/%2F/{world.a.username}", json=grant)).raise_for_status()
    try:
        reason = await refused(world.url(world.a), _publish(None, world.a.queue))
        assert "exchange 'amq.default'" in reason
    finally:
        await world.users.sync(["la-a", "la-b"])


async def test_a_cannot_declare_queues_or_exchanges_or_bind(world: World) -> None:
    own_name = f"{world.a.queue}.mine"
    url = world.url(world.a)

    async def named_queue(channel: AbstractChannel) -> object:
        return await channel.declare_queue(own_name, durable=True)

    async def server_named_queue(channel: AbstractChannel) -> object:
        return await channel.declare_queue(exclusive=True)

    async def exchange(channel: AbstractChannel) -> object:
        return await channel.declare_exchange(f"{world.prefix}.mine", durable=True)

    async def bind_own_queue(channel: AbstractChannel) -> object:
        q = await channel.get_queue(world.a.queue, ensure=False)
        return await q.bind("amq.fanout")

    for operation in (named_queue, server_named_queue, exchange, bind_own_queue):
        assert "ACCESS_REFUSED" in await refused(url, operation)
    async with channel_as(GUEST_URL) as channel:
        with pytest.raises(ChannelNotFoundEntity):
            await channel.declare_queue(own_name, passive=True)
    async with channel_as(GUEST_URL) as channel:
        with pytest.raises(ChannelNotFoundEntity):
            await channel.declare_exchange(f"{world.prefix}.mine", passive=True)


async def test_subscriber_users_have_no_management_access(world: World) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.get(
            f"{world.target.base_url}/api/whoami", auth=(world.a.username, world.a.password)
        )
    assert response.status_code == 401


# --- passwords: none until issued, rotation, start-up keeps them -------------------------


async def login(url: str) -> AbstractConnection:
    return await aio_pika.connect(url, timeout=10)


async def test_a_user_never_issued_credentials_cannot_log_in(world: World) -> None:
    c_user = world.users.username("la-c")
    report = await world.users.sync(["la-a", "la-b", "la-c"])
    assert report.created == (c_user,)
    async with management_api(world.target) as api:
        stored = (await api.get(f"users/{c_user}")).json()
    assert stored["password_hash"] == "" and stored["tags"] == [MANAGED_TAG]
    for password in ["", "guest", c_user]:
        with pytest.raises(ProbableAuthenticationError):
            await login(amqp_url(c_user, password))
    # The same start-up sync kept A's issued password.
    async with await login(world.url(world.a)):
        pass


async def test_rotation_refuses_the_old_password_and_closes_its_sessions(world: World) -> None:
    first = await world.users.issue("la-r")
    old = await login(world.url(first))
    closed = asyncio.Event()
    old.close_callbacks.add(lambda *_: closed.set())
    second = await world.users.issue("la-r")
    assert second.password != first.password
    assert (second.username, second.queue) == (first.username, first.queue)
    async with asyncio.timeout(30):
        await closed.wait()  # the broker ends the old session (asynchronously)
    with pytest.raises(ProbableAuthenticationError):
        await login(world.url(first))
    async with channel_as(world.url(second)) as channel:
        queue = await channel.get_queue(second.queue, ensure=False)
        assert await queue.get(no_ack=False, fail=False, timeout=10) is None


# --- start-up sync: what it removes, what it leaves alone, what it repairs ---------------


async def test_sync_removes_only_managed_users_of_gone_subscribers(
    world: World, management: ManagementTarget
) -> None:
    other_prefix = BrokerUsers(management, prefix=f"{world.prefix}x")
    manual = f"{world.prefix}.sub.manual"
    try:
        async with management_api(management) as api:
            await api.put(f"users/{manual}", json={"password_hash": "", "tags": ""})
        await other_prefix.sync(["la-a"])
        await world.users.sync(["la-a", "la-b", "la-c"])
        report = await world.users.sync(["la-a", "la-b"])
        assert report.removed == (world.users.username("la-c"),)
        async with management_api(management) as api:
            names = {u["name"] for u in (await api.get("users")).json()}
        assert world.users.username("la-c") not in names
        assert {manual, other_prefix.username("la-a"), world.a.username} <= names
    finally:
        await other_prefix.sync([])
        async with management_api(management) as api:
            await api.delete(f"users/{manual}")


async def test_a_same_named_user_the_hub_does_not_manage_is_never_touched(
    management: ManagementTarget,
) -> None:
    users = BrokerUsers(management, prefix=f"iso-{uuid.uuid4().hex[:10]}")
    name = users.username("la-x")
    try:
        async with management_api(management) as api:
            await api.put(f"users/{name}", json={"password": "theirs-123456", "tags": "monitoring"})
        report = await users.sync(["la-x"])
        assert report.conflicts == (name,) and not report.created
        with pytest.raises(UserConflict):
            await users.issue("la-x")
        async with management_api(management) as api:
            assert (await api.get(f"users/{name}")).json()["tags"] == ["monitoring"]
            assert (await api.get(f"users/{name}/permissions")).json() == []
        async with httpx.AsyncClient(timeout=10) as client:  # still their password
            whoami = await client.get(
                f"{management.base_url}/api/whoami", auth=(name, "theirs-123456")
            )
        assert whoami.status_code == 200
    finally:
        async with management_api(management) as api:
            await api.delete(f"users/{name}")


async def test_sync_takes_back_tags_and_permissions_granted_behind_its_back(
    world: World, management: ManagementTarget
) -> None:
    vhost = f"{world.prefix}-vhost"
    name = world.a.username
    everything = {"configure": ".*", "write": ".*", "read": ".*"}
    async with management_api(management) as api:
        stored = (await api.get(f"users/{name}")).json()
        await api.put(
            f"users/{name}",
            json={
                "password_hash": stored["password_hash"],
                "hashing_algorithm": stored["hashing_algorithm"],
                "tags": f"{MANAGED_TAG},management",
            },
        )
        (await api.put(f"vhosts/{vhost}")).raise_for_status()
        (await api.put(f"permissions/{vhost}/{name}", json=everything)).raise_for_status()
        (await api.put(f"permissions/%2F/{name}", json=everything)).raise_for_status()
    try:
        await world.users.sync(["la-a", "la-b"])
        async with management_api(management) as api:
            assert (await api.get(f"users/{name}")).json()["tags"] == [MANAGED_TAG]
            grants: list[dict[str, Any]] = (await api.get(f"users/{name}/permissions")).json()
        assert [(g["vhost"], g["configure"], g["write"], g["read"]) for g in grants] == [
            ("/", "", "", read_only_queue_pattern(world.a.queue))
        ]
        assert "ACCESS_REFUSED" in await refused(world.url(world.a), _get(world.b.queue))
    finally:
        async with management_api(management) as api:
            await api.delete(f"vhosts/{vhost}")


# --- failures are BrokerUnavailable, with the reason ------------------------------------


async def test_a_refusing_or_wrong_management_api_is_broker_unavailable(
    management: ManagementTarget,
) -> None:
    wrong_password = replace(management, password="not-the-password")
    with pytest.raises(BrokerUnavailable, match=r"HTTP 401.*administrator tag"):
        await BrokerUsers(wrong_password, prefix="iso-none").sync([])
    wrong_path = replace(management, base_url=f"{management.base_url}/not-the-api")
    with pytest.raises(BrokerUnavailable, match="HTTP 404"):
        await BrokerUsers(wrong_path, prefix="iso-none").sync([])
    closed_port = replace(management, base_url="http://127.0.0.1:1")
    with pytest.raises(BrokerUnavailable, match="ConnectError"):
        await BrokerUsers(closed_port, prefix="iso-none").sync([])
