"""Webhook push throughput: N WorkforcePersonal events posted to a whole hub (SQLite, real
RabbitMQ) whose HR & Payroll service receives by webhook, pushed to a local HTTP receiver
that answers 200. The copies are routed before the signing secret is issued, so they wait
in the queue; the clock runs from issuing the secret until every copy has been received
and every attempt row written: the push stage alone (consume, disclosure check, sign,
POST, attempt row + acknowledgement, ack). Figures only; nothing is asserted.

    .venv/bin/python bench/webhook.py --events 500 --concurrency 4
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub.api.app import create_app
from hub.composition import Hub, build_hub, start, stop
from hub.demo import SECRETS
from hub.settings import Settings
from hub.simulate import sample_data as data
from hub.simulate.school_agent import SchoolAgent
from tests.e2e.conftest import ADMIN, _queues
from tests.e2e.test_webhook import HR, webhook_config
from tests.webhook_receiver import Receiver, receiver_running

AGENT_FOR = {"8302001": "hilltop-mis", "8304012": "dovedale-mis", "8302105": "matlock-mis"}


async def run(events: int, concurrency: int, database_url: str | None) -> None:
    from hub.simulate.la_consumer import delete_queues

    with receiver_running(Receiver()) as receiver, tempfile.TemporaryDirectory() as tmp:
        config = webhook_config(receiver.url, f"sifhub-bench-{uuid.uuid4().hex[:8]}")
        config = config.model_copy(
            update={
                "subscribers": [
                    s.model_copy(
                        update={
                            "delivery": s.delivery.model_copy(update={"concurrency": concurrency})
                        }
                    )
                    if s.id == HR
                    else s
                    for s in config.subscribers
                ]
            }
        )
        settings = Settings(
            database_url=database_url,
            data_dir=Path(tmp),
            amqp_provision_users=False,
            dispatch_idle_seconds=0.02,
        )
        hub = await build_hub(settings, config)
        await start(hub)
        transport = httpx.ASGITransport(app=create_app(hub))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://hub") as client:
                agents = {
                    a: SchoolAgent(client, config.zones[0], a, SECRETS[a])
                    for a in AGENT_FOR.values()
                }
                for agent in agents.values():
                    assert (await agent.register()).ok
                for s in data.make_staff(events):
                    agent = agents[AGENT_FOR[s.school.laestab]]
                    assert (
                        await agent.send_event(
                            "WorkforcePersonal", "Add", data.workforce_personal(s)
                        )
                    ).ok
                await _routed(hub, events)
                began = time.perf_counter()
                issued = await client.post(f"/admin/subscribers/{HR}/webhook-secret", headers=ADMIN)
                assert issued.status_code == 200
                rows = await _attempted(hub, events)
                took = time.perf_counter() - began
                received = len(receiver.received())
        finally:
            await stop(hub)
            await delete_queues(settings.amqp_url, _queues(config, settings))
    print(
        f"copies={events} webhook_concurrency={concurrency} pushed_in={took:.2f}s "
        f"copies_per_s={events / took:.0f} requests_received={received} attempt_rows={rows}"
    )


async def _routed(hub: Hub, events: int) -> None:
    while True:
        async with hub.store.transaction() as tx:
            if (await tx.disclosures.stats()).delivered.get(HR, 0) >= events:
                return
        await asyncio.sleep(0.05)


async def _attempted(hub: Hub, events: int) -> int:
    while True:
        async with hub.store.transaction() as tx:
            rows = len(await tx.webhooks.attempts(subscriber=HR, limit=events * 2))
        if rows >= events:
            return rows
        await asyncio.sleep(0.02)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--database-url", help="default: SQLite in a temporary directory")
    args = parser.parse_args()
    asyncio.run(run(args.events, args.concurrency, args.database_url))


if __name__ == "__main__":
    main()
