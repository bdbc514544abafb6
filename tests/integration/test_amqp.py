"""hub.amqp against the real RabbitMQ on loopback (no mocks).

Every test works under its own queue prefix and deletes what it declared. Broker outages are
simulated with a loopback TCP proxy in front of the shared broker (dropped or frozen), never
by stopping RabbitMQ itself, which other test runs share.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import aio_pika
import pytest
from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractIncomingMessage
from aio_pika.exceptions import ChannelPreconditionFailed, DeliveryError, PublishError

from hub.amqp.publisher import AmqpPublisher, waves
from hub.amqp.puller import AmqpPuller
from hub.amqp.topology import subscriber_queue_arguments
from hub.core import naming
from hub.core.ports import BrokerUnavailable, Outgoing, Pulled

pytestmark = pytest.mark.integration

AMQP_URL = os.environ.get("HUB_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")
CLOSED_PORT_URL = "amqp://guest:guest@127.0.0.1:1/"


# --- helpers ------------------------------------------------------------------------------


@dataclass
class Names:
    """A private namespace on the shared broker: one prefix, any number of subscribers."""

    prefix: str = field(default_factory=lambda: f"it-{uuid.uuid4().hex[:10]}")
    subscribers: list[str] = field(default_factory=list)

    def new(self) -> str:
        subscriber_id = f"la-{uuid.uuid4().hex[:6]}"
        self.subscribers.append(subscriber_id)
        return subscriber_id

    def queue(self, subscriber_id: str) -> str:
        return naming.subscriber_queue(subscriber_id, self.prefix)

    def dlq(self, subscriber_id: str) -> str:
        return naming.dead_letter_queue(subscriber_id, self.prefix)


class Proxy:
    """Loopback TCP proxy to the broker: stop() drops every connection as a restart would,
    freeze() stalls traffic as a hung broker would."""

    def __init__(self) -> None:
        self.port = 0
        self.flowing = asyncio.Event()
        self.flowing.set()
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._writers):
                writer.transport.abort()
            await self._server.wait_closed()
            self._server = None

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5672)
        self._writers.update({writer, up_writer})
        await asyncio.gather(
            self._pipe(reader, up_writer), self._pipe(up_reader, writer), return_exceptions=True
        )
        self._writers.difference_update({writer, up_writer})

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                await self.flowing.wait()
                writer.write(data)
                await writer.drain()
        finally:
            writer.transport.abort()


async def eventually(check: Callable[[], Awaitable[bool]], attempts: int = 40) -> None:
    """Poll (0.25 s apart) until `check` passes; fails the test if it never does."""
    for _ in range(attempts):
        if await check():
            return
        await asyncio.sleep(0.25)
    pytest.fail("condition never became true")


def outgoing(queue: str, n: int, tag: str = "m") -> list[Outgoing]:
    return [
        Outgoing(
            queue=queue,
            body=f"<SIF_Message n='{i}'/>".encode(),
            message_id=f"{tag}-{i}-{uuid.uuid4().hex[:8]}",
            headers={naming.H_MESSAGE_ID: f"hub-{i}", naming.H_SUBSCRIBER: queue},
        )
        for i in range(n)
    ]


async def drain(channel: AbstractChannel, queue: str) -> list[AbstractIncomingMessage]:
    """Every message now in `queue`, acked, in queue order."""
    q = await channel.get_queue(queue, ensure=False)
    messages = []
    while (message := await q.get(no_ack=True, fail=False, timeout=5)) is not None:
        messages.append(message)
    return messages


async def get_one(channel: AbstractChannel, queue: str) -> AbstractIncomingMessage | None:
    q = await channel.get_queue(queue, ensure=False)
    return await q.get(no_ack=False, fail=False, timeout=5)


# --- fixtures -----------------------------------------------------------------------------


@pytest.fixture
async def admin() -> AsyncIterator[AbstractConnection]:
    """A plain connection for the test's own looking and cleaning."""
    connection = await aio_pika.connect(AMQP_URL, timeout=5)
    yield connection
    await connection.close()


@pytest.fixture
async def channel(admin: AbstractConnection) -> AbstractChannel:
    return await admin.channel()


@pytest.fixture
async def names(admin: AbstractConnection) -> AsyncIterator[Names]:
    names = Names()
    yield names
    cleanup = await admin.channel()
    underlay = await cleanup.get_underlay_channel()
    for subscriber_id in names.subscribers:
        await underlay.queue_delete(names.queue(subscriber_id))
        await underlay.queue_delete(names.dlq(subscriber_id))
    await underlay.exchange_delete(naming.dead_letter_exchange(names.prefix))
    await cleanup.close()


@pytest.fixture
async def publisher(names: Names) -> AsyncIterator[AmqpPublisher]:
    publisher = AmqpPublisher(AMQP_URL, timeout=5, prefix=names.prefix)
    await publisher.start()
    yield publisher
    await publisher.close()


@pytest.fixture
async def puller() -> AsyncIterator[AmqpPuller]:
    puller = AmqpPuller(AMQP_URL, timeout=5)
    await puller.start()
    yield puller
    await puller.close()


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    proxy = Proxy()
    await proxy.start()
    yield proxy
    proxy.flowing.set()
    await proxy.stop()


# --- topology -----------------------------------------------------------------------------


def test_subscriber_queue_arguments_are_quorum_with_at_least_once_dead_lettering() -> None:
    assert subscriber_queue_arguments("la1", "px", delivery_limit=3) == {
        "x-queue-type": "quorum",
        "x-dead-letter-exchange": "px.dlx",
        "x-dead-letter-routing-key": "px.sub.la1.dlq",
        "x-delivery-limit": 3,
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    assert subscriber_queue_arguments("la1")["x-delivery-limit"] == 10


async def test_declared_queue_has_exactly_the_quorum_dead_letter_arguments(
    publisher: AmqpPublisher, names: Names, admin: AbstractConnection
) -> None:
    sub = names.new()
    await publisher.ensure_queues([sub])
    args = subscriber_queue_arguments(sub, names.prefix)

    same = await admin.channel()
    await same.declare_queue(names.queue(sub), durable=True, arguments=args)
    await same.declare_queue(names.dlq(sub), durable=True, arguments={"x-queue-type": "quorum"})
    await same.declare_exchange(
        naming.dead_letter_exchange(names.prefix), aio_pika.ExchangeType.DIRECT, durable=True
    )
    differences: list[tuple[str, str | int]] = [
        ("x-queue-type", "classic"),
        ("x-delivery-limit", 11),
        ("x-dead-letter-strategy", "at-most-once"),
        ("x-overflow", "drop-head"),
    ]
    for key, other in differences:
        differing = await admin.channel()
        with pytest.raises(ChannelPreconditionFailed):
            await differing.declare_queue(
                names.queue(sub), durable=True, arguments={**args, key: other}
            )


async def test_ensure_queues_is_idempotent_across_publishers(
    publisher: AmqpPublisher, names: Names
) -> None:
    subs = [names.new(), names.new()]
    await publisher.ensure_queues(subs)
    await publisher.ensure_queues(subs)
    other = AmqpPublisher(AMQP_URL, timeout=5, prefix=names.prefix)
    try:
        await other.ensure_queues([*subs, subs[0]])
        assert await other.publish_batch(outgoing(names.queue(subs[1]), 1)) == [None]
    finally:
        await other.close()


async def test_ensure_queues_reports_a_conflicting_queue_as_unavailable(
    publisher: AmqpPublisher, names: Names, channel: AbstractChannel
) -> None:
    sub = names.new()
    await channel.declare_queue(names.queue(sub), durable=True)  # classic, no dead-lettering
    with pytest.raises(BrokerUnavailable):
        await publisher.ensure_queues([sub])
    assert await publisher.publish_batch(outgoing(names.queue(sub), 1)) == [None]


# --- publishing ---------------------------------------------------------------------------


async def test_batch_to_three_queues_is_confirmed_and_consumable_as_published(
    publisher: AmqpPublisher, names: Names, channel: AbstractChannel
) -> None:
    subs = [names.new() for _ in range(3)]
    await publisher.ensure_queues(subs)
    batch = [m for i in range(500) for m in outgoing(names.queue(subs[i % 3]), 1, tag=f"b{i}")]

    assert await publisher.publish_batch(batch) == [None] * 500

    for sub in subs:
        expected = [m for m in batch if m.queue == names.queue(sub)]
        got = await drain(channel, names.queue(sub))
        assert [g.message_id for g in got] == [m.message_id for m in expected]  # FIFO
        assert [g.body for g in got] == [m.body for m in expected]
        first = got[0]
        assert first.delivery_mode == aio_pika.DeliveryMode.PERSISTENT
        assert first.content_type == "application/xml"
        assert first.type == "SIF_Event"
        assert first.timestamp is not None
        assert {k: v for k, v in first.headers.items() if not k.startswith("x-")} == (
            expected[0].headers
        )  # quorum queues add x-delivery-count


async def test_unroutable_copy_fails_alone(publisher: AmqpPublisher, names: Names) -> None:
    sub = names.new()
    await publisher.ensure_queues([sub])
    good = outgoing(names.queue(sub), 2)
    missing = outgoing(f"{names.prefix}.sub.nobody", 1)[0]

    results = await publisher.publish_batch([good[0], missing, good[1]])

    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], PublishError)


async def test_unroutable_copy_is_found_even_when_another_copy_shares_its_message_id(
    publisher: AmqpPublisher, names: Names, channel: AbstractChannel
) -> None:
    # aiormq matches basic.return by message_id: the dropped copy must not count as sent.
    sub = names.new()
    await publisher.ensure_queues([sub])
    copies = [
        Outgoing(q, b"<x/>", "same-id")
        for q in [names.queue(sub), f"{names.prefix}.sub.nobody", names.queue(sub)]
    ]

    results = await publisher.publish_batch(copies)

    assert results[0] is None
    assert results[2] is None
    assert isinstance(results[1], PublishError)
    assert len(await drain(channel, names.queue(sub))) == 2


async def test_nacked_copy_is_reported_as_an_error(
    publisher: AmqpPublisher, names: Names, channel: AbstractChannel
) -> None:
    queue = f"{names.prefix}.full"
    full = await channel.declare_queue(
        queue, arguments={"x-max-length": 1, "x-overflow": "reject-publish"}, auto_delete=True
    )
    try:
        assert await publisher.publish_batch(outgoing(queue, 1)) == [None]
        [result] = await publisher.publish_batch(outgoing(queue, 1))
        assert isinstance(result, DeliveryError)
        assert not isinstance(result, PublishError)  # a nack, not a return
        assert await publisher.publish_batch(outgoing(queue, 0)) == []
    finally:
        await full.delete(if_unused=False, if_empty=False)


def test_waves_never_repeat_a_message_id_and_keep_each_queues_order() -> None:
    def out(queue: str, message_id: str) -> Outgoing:
        return Outgoing(queue, b"", message_id)

    unique = [out("a", "1"), out("b", "2"), out("a", "3")]
    assert waves(unique) == [[0, 1, 2]]
    fan_out = [out("a", "1"), out("b", "1"), out("c", "1"), out("a", "2"), out("b", "2")]
    assert waves(fan_out) == [[0, 3], [1, 4], [2]]
    # "2" may not go to wave 0 for queue b: b already has "1" in wave 1.
    uneven = [out("a", "1"), out("b", "1"), out("b", "2"), out("c", "")]
    assert waves(uneven) == [[0, 3], [1, 2]]
    assert waves([out("a", ""), out("a", "")]) == [[0, 1]]  # no id: the client makes one


async def test_publisher_connects_on_demand_and_can_be_restarted(names: Names) -> None:
    sub = names.new()
    publisher = AmqpPublisher(AMQP_URL, timeout=5, prefix=names.prefix)
    try:
        await publisher.ensure_queues([sub])
        assert await publisher.publish_batch(outgoing(names.queue(sub), 3)) == [None] * 3
        await publisher.ping()
        await publisher.close()
        assert not publisher.connected
        await publisher.start()  # a closed publisher can be started again
        assert await publisher.publish_batch(outgoing(names.queue(sub), 1)) == [None]
    finally:
        await publisher.close()


# --- dead-lettering -----------------------------------------------------------------------


async def test_message_rejected_by_consumer_lands_in_dead_letter_queue(
    publisher: AmqpPublisher, names: Names, channel: AbstractChannel
) -> None:
    sub = names.new()
    await publisher.ensure_queues([sub])
    [message] = outgoing(names.queue(sub), 1)
    assert await publisher.publish_batch([message]) == [None]

    delivered = await get_one(channel, names.queue(sub))
    assert delivered is not None
    await delivered.nack(requeue=False)

    dead: list[AbstractIncomingMessage] = []

    async def in_dlq() -> bool:
        dead.extend(await drain(channel, names.dlq(sub)))
        return bool(dead)

    await eventually(in_dlq)
    assert dead[0].message_id == message.message_id
    assert dead[0].body == message.body


async def test_poison_message_is_dead_lettered_after_the_delivery_limit(
    names: Names, channel: AbstractChannel
) -> None:
    sub = names.new()
    publisher = AmqpPublisher(AMQP_URL, timeout=5, prefix=names.prefix, delivery_limit=2)
    try:
        await publisher.ensure_queues([sub])
        assert await publisher.publish_batch(outgoing(names.queue(sub), 1)) == [None]
    finally:
        await publisher.close()

    redeliveries = 0
    while (delivered := await get_one(channel, names.queue(sub))) is not None:
        redeliveries += 1
        await delivered.nack(requeue=True)
        assert redeliveries < 10, "delivery limit not enforced"

    async def in_dlq() -> bool:
        return bool(await drain(channel, names.dlq(sub)))

    await eventually(in_dlq)
    assert redeliveries == 3


# --- pull mode ----------------------------------------------------------------------------


async def test_puller_hands_out_one_message_until_it_is_acked_in_fifo_order(
    publisher: AmqpPublisher, puller: AmqpPuller, names: Names
) -> None:
    sub = names.new()
    queue = names.queue(sub)
    await publisher.ensure_queues([sub])
    assert await puller.next_message(queue) is None

    batch = outgoing(queue, 3)
    assert await publisher.publish_batch(batch) == [None] * 3

    first = await puller.next_message(queue)
    assert first == Pulled(batch[0].message_id, batch[0].body)
    assert await puller.next_message(queue) == first  # SIF: ack before the next
    assert await puller.ack(queue, "not-the-held-id") is False
    assert await puller.ack(queue, first.message_id) is True
    assert await puller.ack(queue, first.message_id) is False  # nothing held any more

    for expected in batch[1:]:
        pulled = await puller.next_message(queue)
        assert pulled is not None
        assert pulled.message_id == expected.message_id
        assert await puller.ack(queue, pulled.message_id)
    assert await puller.next_message(queue) is None


async def test_puller_keeps_queues_apart(
    publisher: AmqpPublisher, puller: AmqpPuller, names: Names
) -> None:
    one, two = names.new(), names.new()
    await publisher.ensure_queues([one, two])
    [m1] = outgoing(names.queue(one), 1)
    [m2] = outgoing(names.queue(two), 1)
    assert await publisher.publish_batch([m1, m2]) == [None, None]

    assert (await puller.next_message(names.queue(one))) == Pulled(m1.message_id, m1.body)
    assert await puller.next_message(f"{names.prefix}.sub.undeclared") is None
    assert (await puller.next_message(names.queue(two))) == Pulled(m2.message_id, m2.body)
    assert await puller.ack(names.queue(two), m1.message_id) is False
    assert await puller.ack(names.queue(one), m1.message_id) is True
    assert await puller.ack(names.queue(two), m2.message_id) is True


async def test_unacked_message_returns_when_the_pullers_connection_drops(
    publisher: AmqpPublisher, names: Names, proxy: Proxy
) -> None:
    sub = names.new()
    queue = names.queue(sub)
    await publisher.ensure_queues([sub])
    [message] = outgoing(queue, 1)
    assert await publisher.publish_batch([message]) == [None]
    puller = AmqpPuller(proxy.url, timeout=2, reconnect_interval=0.2)
    try:
        await puller.start()
        assert (await puller.next_message(queue)) == Pulled(message.message_id, message.body)

        await proxy.stop()

        async def noticed() -> bool:
            return not puller.connected

        await eventually(noticed)
        with pytest.raises(BrokerUnavailable):
            await puller.next_message(queue)
        assert await puller.ack(queue, message.message_id) is False  # held entry forgotten
        await proxy.start()

        async def redelivered() -> bool:
            with contextlib.suppress(BrokerUnavailable):
                return await puller.next_message(queue) == Pulled(message.message_id, message.body)
            return False

        await eventually(redelivered)
        assert await puller.ack(queue, message.message_id) is True
        assert await puller.next_message(queue) is None
    finally:
        await puller.close()


# --- broker unavailable -------------------------------------------------------------------


async def test_start_against_a_closed_port_raises_broker_unavailable() -> None:
    publisher = AmqpPublisher(CLOSED_PORT_URL, timeout=2)
    with pytest.raises(BrokerUnavailable):
        await publisher.start()
    with pytest.raises(BrokerUnavailable):
        await publisher.ping()
    [result] = await publisher.publish_batch(outgoing("sifhub.sub.x", 1))
    assert isinstance(result, BrokerUnavailable)
    with pytest.raises(BrokerUnavailable):
        await publisher.start()  # may be called again
    await publisher.close()

    puller = AmqpPuller(CLOSED_PORT_URL, timeout=2)
    with pytest.raises(BrokerUnavailable):
        await puller.start()
    with pytest.raises(BrokerUnavailable):
        await puller.next_message("sifhub.sub.x")
    await puller.close()


async def test_start_against_a_silent_broker_times_out_as_broker_unavailable() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read()  # accept the TCP connection, never speak AMQP
        writer.close()

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    publisher = AmqpPublisher(f"amqp://guest:guest@127.0.0.1:{port}/", timeout=0.5)
    try:
        with pytest.raises(BrokerUnavailable):
            await publisher.start()
    finally:
        await publisher.close()
        server.close()
        await server.wait_closed()


async def test_publisher_fails_fast_while_broker_is_gone_and_recovers_after(
    names: Names, proxy: Proxy, channel: AbstractChannel
) -> None:
    sub = names.new()
    queue = names.queue(sub)
    publisher = AmqpPublisher(proxy.url, timeout=2, prefix=names.prefix, reconnect_interval=0.2)
    try:
        await publisher.start()
        await publisher.ensure_queues([sub])
        assert await publisher.publish_batch(outgoing(queue, 2, "before")) == [None, None]

        await proxy.stop()
        results = await publisher.publish_batch(outgoing(queue, 3, "down"))
        assert all(isinstance(r, Exception) for r in results)
        with pytest.raises(BrokerUnavailable):
            await publisher.ping()
        await proxy.start()

        async def confirms() -> bool:
            return await publisher.publish_batch(outgoing(queue, 1, "after")) == [None]

        await eventually(confirms)
        await publisher.ensure_queues([sub])  # declared again after the reconnect
        await publisher.ping()
    finally:
        await publisher.close()
    ids = [m.message_id or "" for m in await drain(channel, queue)]
    assert [i.split("-")[0] for i in ids[:2]] == ["before", "before"]
    assert ids[-1].startswith("after")


async def test_timed_out_batch_returns_errors_and_leaves_the_publisher_usable(
    names: Names, proxy: Proxy, channel: AbstractChannel
) -> None:
    sub = names.new()
    queue = names.queue(sub)
    publisher = AmqpPublisher(proxy.url, timeout=1, prefix=names.prefix)
    try:
        await publisher.start()
        await publisher.ensure_queues([sub])
        proxy.flowing.clear()  # the broker hangs
        results = await publisher.publish_batch(outgoing(queue, 20, "stalled"))
        assert all(isinstance(r, TimeoutError) for r in results)
        proxy.flowing.set()

        async def confirms() -> bool:
            return await publisher.publish_batch(outgoing(queue, 5, "later")) == [None] * 5

        await eventually(confirms)
    finally:
        await publisher.close()
    ids = [m.message_id or "" for m in await drain(channel, queue)]
    assert sum(i.startswith("later") for i in ids) >= 5
