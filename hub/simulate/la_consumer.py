"""An LA service's side: reads the filtered copies from its own queue over AMQP.

URL form: amqp://user:pass@host:port/vhost; queue name from GET /admin/subscribers.
Each copy is a SIF_Message/SIF_Event; de-duplicate on the AMQP message_id. A subscriber
that takes batches (`delivery: {type: amqp, batch: N}`) gets SIF_CopyBatch messages; `drain`
splits them, so callers see copies either way.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import aio_pika
from lxml import etree

from hub.core.envelope import SIF_UK_NS
from hub.core.naming import COPY_BATCH_TYPE

_NS = {"s": SIF_UK_NS}
BATCH_NS = "urn:sifhub:copy-batch:1"


@dataclass(frozen=True)
class Received:
    message_id: str
    headers: dict[str, Any]
    body: bytes
    delivery_mode: int | None
    batch_id: str | None = None  # the SIF_CopyBatch this copy came in, if any

    @property
    def object(self) -> etree._Element:
        root = etree.fromstring(self.body)
        holder = root.find("s:SIF_Event/s:SIF_ObjectData/s:SIF_EventObject", _NS)
        assert holder is not None
        return holder[0]

    def element_paths(self) -> set[str]:
        """Every element path below the object root, e.g. PersonalInformation/Name/FamilyName."""
        out: set[str] = set()
        root = self.object

        def walk(node: etree._Element, prefix: str) -> None:
            for child in node.iterchildren(tag=etree.Element):
                path = f"{prefix}{etree.QName(child).localname}"
                out.add(path)
                walk(child, path + "/")

        walk(root, "")
        return out


async def drain(
    amqp_url: str, queue: str, *, expect: int | None = None, wait_seconds: float = 10.0
) -> list[Received]:
    """Take every message from `queue` (acking each); with `expect`, wait up to
    `wait_seconds` for that many to arrive, then also take any extra that are there."""
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        q = await channel.get_queue(queue, ensure=True)
        got: list[Received] = []
        deadline = asyncio.get_running_loop().time() + wait_seconds
        while True:
            message = await q.get(no_ack=False, fail=False, timeout=5)
            if message is None:
                if expect is None or len(got) >= expect:
                    return got
                if asyncio.get_running_loop().time() > deadline:
                    return got
                await asyncio.sleep(0.05)
                continue
            got += copies(
                Received(
                    message.message_id or "",
                    dict(message.headers or {}),
                    message.body,
                    message.delivery_mode,
                ),
                message.type,
            )
            await message.ack()


async def delete_queues(amqp_url: str, names: list[str]) -> None:
    """Remove queues (demo and test clean-up)."""
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        for name in names:
            await channel.queue_delete(name)


def copies(message: Received, amqp_type: str | None) -> list[Received]:
    """The copies a message carries: itself, or each Copy of a SIF_CopyBatch, with the
    headers it would have had alone and its own SIF_MsgId as message id."""
    if amqp_type != COPY_BATCH_TYPE:
        return [message]
    out = []
    for copy in etree.fromstring(message.body).iterchildren(f"{{{BATCH_NS}}}Copy"):
        sif = copy[0]
        msg_id = sif.findtext("s:SIF_Event/s:SIF_Header/s:SIF_MsgId", namespaces=_NS) or ""
        out.append(
            Received(
                msg_id,
                {str(k): str(v) for k, v in copy.attrib.items()},
                etree.tostring(sif),
                message.delivery_mode,
                batch_id=message.message_id,
            )
        )
    return out
