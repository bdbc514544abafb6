"""Bulk loads: SIF_Responses of N LearnerAttendance objects through the whole hub, for
subscribers taking one copy per message and for subscribers taking batched copies
(`delivery: {type: amqp, batch: B}`), each against raw aio-pika in the same run. Measures only.

    .venv/bin/python bench/bulk.py [--db sqlite|postgres] [--objects N] [--responses R]
                                   [--posters P] [--batch B]

Every part is its own process: the hub (`hub serve` on a fresh database), one loader
process (P agents posting R responses of N objects between them, closed loop), one consumer
process (prefetch, acks batched with multiple=True). The raw baseline publishes the very
messages the hub delivered (single copies, or the same SIF_CopyBatch bodies), with the same
3-way fan-out into quorum queues, pipelined confirms, from its own process, consumed the
same way. Objects/s counts objects whose copies arrived (copies / fan-out) over the time
from the first POST (raw: the first publish) to the last copy. Everything AMQP lives in a
vhost of the run's own.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import pickle
import random
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aio_pika
import httpx
from _common import DEFAULT_AMQP_URL, DEFAULT_PG_URL, fresh_database, machine_facts
from e2e import CODES, fresh_vhost, start_hub, stop_hub

from hub.core import naming
from hub.demo import SECRETS
from hub.simulate import sample_data as data
from hub.simulate import sif_messages
from hub.simulate.school_agent import SchoolAgent

SPAWN = mp.get_context("spawn")
KEEP_MESSAGES = 400  # delivered messages kept per queue for the raw run


@dataclass(frozen=True)
class LoadPlan:
    base_url: str
    zone: str
    agents: dict[str, str]  # laestab -> agent id
    posters: int
    responses: int
    objects: int


def load_process(plan: LoadPlan, out: str) -> None:
    Path(out).write_bytes(pickle.dumps(asyncio.run(_load(plan))))


def _responses(plan: LoadPlan) -> list[tuple[str, bytes]]:
    """(agent id, SIF_Response body): each response holds one school's marks."""
    rng = random.Random(7)
    learners = data.make_learners(300 * len(data.SCHOOLS))
    by_school: dict[str, list[data.Learner]] = {}
    for p in learners:
        by_school.setdefault(p.school.laestab, []).append(p)
    schools = sorted(s for s in by_school if s in plan.agents)
    out = []
    for i in range(plan.responses):
        school = schools[i % len(schools)]
        agent = plan.agents[school]
        pupils = by_school[school]
        day = date(2026, 9, 7) + timedelta(days=i // len(schools))
        marks = [
            data.learner_attendance(
                pupils[(i * plan.objects + k) % len(pupils)],
                day,
                "AM" if k % 2 == 0 else "PM",
                rng.choice(CODES),
                uuid.UUID(int=rng.getrandbits(128)).hex.upper(),
            )
            for k in range(plan.objects)
        ]
        out.append((agent, sif_messages.response(agent, sif_messages.msg_id(), 1, False, marks)))
    return out


async def _load(plan: LoadPlan) -> dict[str, Any]:
    bodies = _responses(plan)
    acked = refused = 0
    first = 0.0
    async with httpx.AsyncClient(base_url=plan.base_url, timeout=120) as client:
        agents = {a: SchoolAgent(client, plan.zone, a, SECRETS[a]) for a in plan.agents.values()}
        pending = iter(bodies)

        async def poster() -> None:
            nonlocal acked, refused
            for agent_id, body in pending:
                ack = await agents[agent_id].post(body)
                if ack.ok:
                    acked += 1
                else:
                    refused += 1

        first = time.monotonic()
        await asyncio.gather(*(poster() for _ in range(plan.posters)))
        last = time.monotonic()
    return {"first": first, "last": last, "acked": acked, "refused": refused}


@dataclass(frozen=True)
class ConsumePlan:
    amqp_url: str
    queues: list[str]
    expected_copies: int
    deadline_seconds: float


def consume_process(plan: ConsumePlan, ready: Any, out: str) -> None:
    Path(out).write_bytes(pickle.dumps(asyncio.run(_consume(plan, ready))))


async def _consume(plan: ConsumePlan, ready: Any) -> dict[str, Any]:
    copies = 0
    last = 0.0
    kept: dict[str, list[tuple[dict[str, Any], bytes, str | None]]] = {}
    done = asyncio.Event()
    unacked: dict[str, aio_pika.abc.AbstractIncomingMessage] = {}

    def handler(queue: str) -> Any:
        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal copies, last
            headers = dict(message.headers or {})
            count = int(str(headers.get(naming.H_BATCH_COUNT, 1)))
            copies += count
            last = time.monotonic()
            mine = kept.setdefault(queue, [])
            if len(mine) < KEEP_MESSAGES:
                mine.append((headers, message.body, message.type))
            unacked[queue] = message
            if copies >= plan.expected_copies:
                done.set()

        return on_message

    connection = await aio_pika.connect(plan.amqp_url, timeout=10)
    async with connection:
        for name in plan.queues:
            channel = await connection.channel()
            await channel.set_qos(prefetch_count=200)
            queue = await channel.get_queue(name, ensure=True)
            await queue.consume(handler(name))

        async def flush() -> None:
            while True:
                await asyncio.sleep(0.05)
                for queue in list(unacked):
                    await unacked.pop(queue).ack(multiple=True)

        flusher = asyncio.create_task(flush())
        ready.set()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), plan.deadline_seconds)
        flusher.cancel()
        for queue in list(unacked):
            with contextlib.suppress(Exception):
                await unacked.pop(queue).ack(multiple=True)
    return {"copies": copies, "last": last, "kept": kept}


@dataclass(frozen=True)
class PublishPlan:
    amqp_url: str
    messages: list[tuple[str, dict[str, Any], bytes, str | None]]  # queue, headers, body, type
    window: int


def publish_process(plan: PublishPlan, out: str) -> None:
    Path(out).write_bytes(pickle.dumps(asyncio.run(_publish(plan))))


async def _publish(plan: PublishPlan) -> dict[str, Any]:
    connection = await aio_pika.connect(plan.amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        window = asyncio.Semaphore(plan.window)

        async def one(queue: str, headers: dict[str, Any], body: bytes, kind: str | None) -> None:
            async with window:
                message = aio_pika.Message(
                    body,
                    headers=headers,
                    message_id=uuid.uuid4().hex,
                    type=kind,
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                )
                await channel.default_exchange.publish(message, routing_key=queue)

        first = time.monotonic()
        await asyncio.gather(*(one(*m) for m in plan.messages))
    return {"first": first}


async def _declare(amqp_url: str, queues: list[str]) -> None:
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        for name in queues:
            await channel.declare_queue(name, durable=True, arguments={"x-queue-type": "quorum"})


def _run(target: Any, *args: Any) -> Any:
    with tempfile.NamedTemporaryFile(delete=False) as f:
        out = f.name
    process = SPAWN.Process(target=target, args=(*args, out))
    process.start()
    return process, out


async def _join(process: Any, out: str) -> dict[str, Any]:
    while process.is_alive():  # noqa: ASYNC110 - a child process offers no awaitable
        await asyncio.sleep(0.05)
    raw = await asyncio.to_thread(Path(out).read_bytes)
    result: dict[str, Any] = pickle.loads(raw)
    return result


async def run_mode(args: argparse.Namespace, batch: int) -> dict[str, Any]:
    """One fresh hub whose receivers take `batch` copies per message, then raw."""
    hub_args = argparse.Namespace(
        hub_cmd=args.hub_cmd,
        hub_env=[],
        log_level="WARNING",
        serve_args="",
        worker_procs=0,
        copy_batch=batch,
    )
    objects = args.objects * args.responses
    with tempfile.TemporaryDirectory(prefix="sifhub-bulk-") as tmp:
        async with (
            fresh_database(args.db, Path(tmp), args.pg_url) as db_url,
            fresh_vhost(args.amqp_url) as (amqp_url, _),
        ):
            hub = await start_hub(hub_args, Path(tmp), db_url, amqp_url)
            try:
                fanout = len(hub.receivers)
                ready = SPAWN.Event()
                consumer, c_out = _run(
                    consume_process,
                    ConsumePlan(amqp_url, hub.receivers, objects * fanout, args.deadline),
                    ready,
                )
                while not ready.is_set():  # noqa: ASYNC110
                    await asyncio.sleep(0.05)
                cpu0 = hub.cpu_seconds()
                plan = LoadPlan(
                    hub.base_url,
                    hub.config["zones"][0],
                    hub.agents,
                    args.posters,
                    args.responses,
                    args.objects,
                )
                loader, l_out = _run(load_process, plan)
                load = await _join(loader, l_out)
                got = await _join(consumer, c_out)
                cpu = hub.cpu_seconds() - cpu0
            finally:
                stop_hub(hub)
            kept = [
                (queue, headers, body, kind)
                for queue, messages in got["kept"].items()
                for headers, body, kind in messages
            ]
            per_message = got["copies"] / max(1, sum(len(m) for m in got["kept"].values()))
            # Raw: the hub's own delivered messages, as many as it delivered, same queues.
            raw_queues = [f"bulk-raw-{uuid.uuid4().hex[:6]}-{i}" for i in range(fanout)]
            rename = dict(zip(hub.receivers, raw_queues, strict=True))
            await _declare(amqp_url, raw_queues)
            messages = [(rename[q], h, b, k) for q, h, b, k in kept]
            want = int(got["copies"] / per_message) if per_message else 0
            messages = (messages * (want // max(1, len(messages)) + 1))[:want]
            ready = SPAWN.Event()
            consumer, c_out = _run(
                consume_process,
                ConsumePlan(amqp_url, raw_queues, got["copies"], args.deadline),
                ready,
            )
            while not ready.is_set():  # noqa: ASYNC110
                await asyncio.sleep(0.05)
            publisher, p_out = _run(publish_process, PublishPlan(amqp_url, messages, 1000))
            raw_pub = await _join(publisher, p_out)
            raw_got = await _join(consumer, c_out)
    hub_seconds = max(1e-9, got["last"] - load["first"])
    raw_seconds = max(1e-9, raw_got["last"] - raw_pub["first"])
    return {
        "batch": batch,
        "fanout": fanout,
        "objects_acked": load["acked"] * args.objects,
        "refused": load["refused"],
        "copies": got["copies"],
        "hub_objects_s": got["copies"] / fanout / hub_seconds,
        "raw_objects_s": raw_got["copies"] / fanout / raw_seconds,
        "ingest_objects_s": load["acked"] * args.objects / max(1e-9, load["last"] - load["first"]),
        "cpu_ms_per_object": cpu * 1000 / max(1, load["acked"] * args.objects),
        "messages": len(messages),
    }


def report(args: argparse.Namespace, rows: list[dict[str, Any]]) -> None:
    print()
    print("SIF Hub bulk benchmark: SIF_Response of N objects (measures only)")
    for key, value in machine_facts().items():
        print(f"  {key:<15} {value}")
    print(
        f"  load            {args.responses} responses x {args.objects} LearnerAttendance, "
        f"{args.posters} posting agents, {args.db}"
    )
    print()
    head = (
        "| copies per AMQP message | fan-out | objects acked | ingest objects/s "
        "| end-to-end objects/s | raw objects/s | hub / raw | hub CPU ms/object |"
    )
    print(head)
    print("|" + "---|" * 8)
    for r in rows:
        label = "1 (one object per message)" if r["batch"] == 1 else f"up to {r['batch']}"
        print(
            f"| {label} | {r['fanout']} | {r['objects_acked']:,} (refused {r['refused']}) "
            f"| {r['ingest_objects_s']:,.0f} | {r['hub_objects_s']:,.0f} "
            f"| {r['raw_objects_s']:,.0f} | {r['hub_objects_s'] / r['raw_objects_s']:.2f} "
            f"| {r['cpu_ms_per_object']:.2f} |"
        )


async def main_async(args: argparse.Namespace) -> int:
    rows = [await run_mode(args, 1), await run_mode(args, args.batch)]
    report(args, rows)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--objects", type=int, default=100, help="objects per SIF_Response")
    parser.add_argument("--responses", type=int, default=200, help="responses in all")
    parser.add_argument("--posters", type=int, default=4, help="agents posting at once")
    parser.add_argument("--batch", type=int, default=100, help="copies per batch message")
    parser.add_argument("--deadline", type=float, default=300.0, help="seconds to wait")
    parser.add_argument(
        "--hub-cmd",
        default=f"{sys.executable} -m hub",
        help="the hub command, e.g. 'py-spy record -o hub.txt -f raw -- python -m hub'",
    )
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    return asyncio.run(main_async(parser.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
