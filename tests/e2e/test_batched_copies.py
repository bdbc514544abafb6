"""Batched copies end to end: a subscriber that opts in (`delivery: {type: amqp, batch: N}`)
takes one SIF_CopyBatch per N copies of a dispatch pass, each copy filtered exactly as it
would leave alone and each with its own disclosure row; other subscribers are unchanged."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from lxml import etree

from hub.core.config import AmqpDelivery
from hub.core.naming import COPY_BATCH_TYPE
from hub.simulate import sample_data as data
from hub.simulate import sif_messages as m
from hub.simulate.la_consumer import Received
from tests.e2e.conftest import _wait_connected, county_config, hub_running

pytestmark = pytest.mark.integration

HILLTOP = "8302001"
AGENT = "hilltop-mis"
BATCH = 4


def _with_batch(subscriber: str, batch: int) -> object:
    config = county_config()
    subscribers = [
        s.model_copy(update={"delivery": AmqpDelivery(batch=batch)}) if s.id == subscriber else s
        for s in config.subscribers
    ]
    return config.model_copy(update={"subscribers": subscribers})


def _paths(copy: Received) -> set[str]:
    return copy.element_paths()


async def test_a_batching_subscriber_gets_batches_of_copies_filtered_as_singles(
    database_url: str, tmp_path: Path
) -> None:
    config = _with_batch("cme", BATCH)
    async with hub_running(database_url, tmp_path, config=config) as running:  # type: ignore[arg-type]
        await _wait_connected(running.hub)
        learners = [p for p in data.make_learners(40) if p.school.laestab == HILLTOP][:10]
        assert len(learners) == 10
        agent = running.agent(AGENT)
        assert (await agent.register()).ok
        objects = [data.learner_personal(p) for p in learners]
        reply = await agent.post(m.response(AGENT, m.msg_id(), 1, False, objects))
        assert reply.ok, reply.raw
        await running.settle()

        async with running.hub.store.transaction() as tx:
            released = (await tx.disclosures.stats()).delivered.get("cme", 0)
        cme = await running.drain("cme")
        # Every copy arrived once, in batches of at most BATCH, as few as that allows (CME's
        # agreement leaves out a pupil or two, so count what was released).
        assert len({c.message_id for c in cme}) == len(cme) == released >= 8
        batches = {c.batch_id for c in cme}
        assert None not in batches
        assert len(batches) == math.ceil(len(cme) / BATCH)
        for c in cme:
            assert c.headers["hub-subscriber"] == "cme"
            assert c.headers["hub-object"] == "LearnerPersonal"
            assert c.headers["hub-agreement-id"]
            paths = _paths(c)
            assert "UPN" in paths
            assert not any("Ethnicity" in p or "Religion" in p for p in paths)
            # each copy is a whole SIF_Message, as it would leave alone
            assert etree.QName(etree.fromstring(c.body)).localname == "SIF_Message"

        # One disclosure row per copy, named by the copy's own message id.
        async with running.hub.store.transaction() as tx:
            recorded = await tx.disclosures.recorded([c.message_id for c in cme])
        assert set(recorded) == {c.message_id for c in cme}

        # A subscriber that did not opt in still takes one copy per message.
        admissions_like = await running.drain("send-team")
        assert all(c.batch_id is None for c in admissions_like)


async def test_batches_are_marked_by_amqp_type_and_count_header(
    database_url: str, tmp_path: Path
) -> None:
    import aio_pika

    config = _with_batch("cme", BATCH)
    async with hub_running(database_url, tmp_path, config=config) as running:  # type: ignore[arg-type]
        await _wait_connected(running.hub)
        learners = [p for p in data.make_learners(40) if p.school.laestab == HILLTOP][:6]
        agent = running.agent(AGENT)
        assert (await agent.register()).ok
        objects = [data.learner_personal(p) for p in learners]
        assert (await agent.post(m.response(AGENT, m.msg_id(), 1, False, objects))).ok
        await running.settle()
        connection = await aio_pika.connect(running.hub.settings.amqp_url)
        async with connection:
            channel = await connection.channel()
            queue = await channel.get_queue(running.queue("cme"), ensure=True)
            counts = []
            while (message := await queue.get(no_ack=True, fail=False, timeout=5)) is not None:
                assert message.type == COPY_BATCH_TYPE
                root = etree.fromstring(message.body)
                assert root.get("MsgId") == message.message_id
                counts.append(int((message.headers or {})["hub-batch-count"]))  # type: ignore[arg-type]
                assert int(root.get("Count") or 0) == counts[-1] == len(root)
        async with running.hub.store.transaction() as tx:
            released = (await tx.disclosures.stats()).delivered.get("cme", 0)
        assert sum(counts) == released >= 4
        assert all(1 <= c <= BATCH for c in counts) and counts.count(BATCH) >= len(counts) - 1
        assert len(counts) == math.ceil(released / BATCH)
