"""The composition root: the one place concrete store, broker and schema objects are built
from settings and handed to the pipeline."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field

from hub.amqp.publisher import AmqpPublisher
from hub.amqp.puller import AmqpPuller
from hub.core.config import HubConfig
from hub.core.policy import Policy, compile_policy
from hub.core.ports import BrokerUnavailable
from hub.core.retry import compute_backoff
from hub.core.schools import SchoolIndex
from hub.pipeline.dispatch import DispatchContext, run_dispatcher
from hub.pipeline.ingest import IngestContext
from hub.settings import Settings
from hub.sif.schemas import load_schemas
from hub.store.store import SqlStore, open_store

log = logging.getLogger("hub")


@dataclass
class Hub:
    settings: Settings
    config: HubConfig
    store: SqlStore
    publisher: AmqpPublisher
    puller: AmqpPuller
    ingest: IngestContext
    dispatch: DispatchContext
    policy: Policy
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


async def build_hub(settings: Settings, config: HubConfig) -> Hub:
    """Open the database (migrating it) and the broker; a broker that is down is retried in
    the background while agents keep being acked from the outbox."""
    schemas = load_schemas()
    store = await open_store(settings.resolved_database_url())
    publisher = AmqpPublisher(
        settings.amqp_url, timeout=settings.publish_timeout_seconds, prefix=config.queue_prefix
    )
    puller = AmqpPuller(settings.amqp_url, timeout=settings.publish_timeout_seconds)
    policy = compile_policy(config)
    ingest = IngestContext(store, config, SchoolIndex.of(config), schemas, puller)
    dispatch = DispatchContext(
        store,
        publisher,
        lambda: policy,
        config.queue_prefix,
        batch=settings.dispatch_batch,
        idle_seconds=settings.dispatch_idle_seconds,
    )
    return Hub(settings, config, store, publisher, puller, ingest, dispatch, policy)


async def start(hub: Hub) -> None:
    """Connect to the broker (or keep trying) and start the dispatcher."""
    hub.tasks.append(asyncio.create_task(_keep_broker(hub), name="broker"))
    hub.tasks.append(asyncio.create_task(run_dispatcher(hub.dispatch, hub.stop), name="dispatch"))


async def _keep_broker(hub: Hub) -> None:
    """Connect publisher and puller, declaring every subscriber queue; retry while down."""
    attempt = 0
    subscribers = [s.id for s in hub.config.subscribers]
    while not hub.stop.is_set():
        try:
            await hub.publisher.start()
            await hub.publisher.ensure_queues(subscribers)
            await hub.puller.start()
            log.info("broker.connected subscribers=%d", len(subscribers))
            return
        except BrokerUnavailable:
            attempt += 1
            log.warning("broker.unavailable attempt=%d", attempt)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(hub.stop.wait(), compute_backoff(attempt))


async def stop(hub: Hub) -> None:
    hub.stop.set()
    for task in hub.tasks:
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(task, timeout=10)
    await hub.puller.close()
    await hub.publisher.close()
    await hub.store.close()
