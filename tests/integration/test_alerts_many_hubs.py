"""Several hubs on one database (SQLite and PostgreSQL), each with its own store and alert
loop, evaluating the same condition at the same moments: it is notified once when it
starts and once when it resolves, and each notification is delivered once per target (the
alert lock, the delivery lease)."""

from __future__ import annotations

import asyncio

import pytest

from hub.core.config import HubConfig
from hub.core.policy import Policy
from hub.core.records import RejectionRecord
from hub.pipeline.alerts import AlertContext, current_alerts, deliver_once, evaluate_once
from hub.store import open_store
from tests.unit.test_alerts_pipeline import Clock, Target, _config

pytestmark = pytest.mark.integration
HUBS = 3


async def test_many_hubs_notify_once_each_way(database_url: str) -> None:
    config: HubConfig = _config(ingest_refusals={"per_minute": 0, "for_minutes": 0})
    clock, shared = Clock(), Target()
    stores = [await open_store(database_url) for _ in range(HUBS)]
    try:
        hubs = [
            AlertContext(
                store=store,
                config=config,
                queues=None,
                notifiers={"webhook:1": shared},
                policy=Policy,
                clock=clock,
            )
            for store in stores
        ]
        async with stores[0].transaction() as tx:
            await tx.audit.add_rejection(RejectionRecord(clock(), "agent", "z", 1, 3))
        for _ in range(5):
            await asyncio.gather(*(evaluate_once(h) for h in hubs))
            await asyncio.gather(*(deliver_once(h) for h in hubs))
        clock.advance(minutes=10)  # the refusal leaves the window
        for _ in range(5):
            await asyncio.gather(*(evaluate_once(h) for h in hubs))
            await asyncio.gather(*(deliver_once(h) for h in hubs))
        assert [e.kind for e in shared.taken] == ["firing", "resolved"]
        history = (await current_alerts(stores[1])).history
        assert [item.event.kind for item in history] == ["resolved", "firing"]
        assert all(len(item.deliveries) == 2 for item in history)  # webhook:1 and email
    finally:
        for store in stores:
            await store.close()
