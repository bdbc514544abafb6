"""Throughput and latency of the whole hub against a raw aio-pika baseline. Measures only.

    .venv/bin/python bench/throughput.py [--events N] [--database sqlite|postgresql]
                                         [--concurrency C]

1. Whole hub: an in-process hub (uvicorn on a free 127.0.0.1 port, a fresh database, the
   county configuration under a private queue prefix). C concurrent simulated school agents
   POST N LearnerAttendance Add events over real HTTP; one aio-pika consumer per entitled
   subscriber queue (3: cme, virtual-school, attendance-team) receives the filtered copies.
2. Raw baseline: the very copy bodies and headers received in 1, published with aio-pika
   straight into 3 queues of the same kind (quorum, same arguments), batches of the hub's
   dispatch size with all confirms of a batch gathered together, consumed the same way.

See bench/README.md for what each printed figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import importlib.util
import io
import logging
import pstats
import random
import sys
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import httpx
import uvicorn
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    COUNTY,
    DEFAULT_AMQP_URL,
    DEFAULT_PG_URL,
    CpuMeter,
    Delivery,
    Sink,
    Summary,
    attendance_refid,
    delete_topology,
    free_port,
    fresh_database,
    hub_code,
    machine_facts,
    postgres_version,
    rabbitmq_version,
)

from adapters import sample_data as data
from adapters import sif_messages
from adapters.school_agent import SchoolAgent
from hub import logs
from hub.amqp.topology import declare_subscriber
from hub.api.app import create_app
from hub.composition import Hub, build_hub, start, stop
from hub.core import naming
from hub.core.config import HubConfig
from hub.demo import SECRETS
from hub.settings import Settings

OBJECT = "LearnerAttendance"
PUPILS_PER_SCHOOL = 300  # a roll of 900 pupils; two sessions a day each
CODES = "////////////\\\\\\\\LIMNCUB"  # mostly present, some late/ill/unauthorised


@dataclass(frozen=True)
class Event:
    agent: SchoolAgent
    refid: str
    body: bytes


@dataclass
class HubRun:
    prefix: str
    receivers: list[str]
    events: int
    concurrency: int
    rewritten: list[str] = field(default_factory=list)
    posted: int = 0
    acked_ok: int = 0
    failures: list[str] = field(default_factory=list)
    post_start: dict[str, float] = field(default_factory=dict)
    ack_rtt: list[float] = field(default_factory=list)
    first_post: float = 0.0
    last_ack: float = 0.0
    deliveries: list[Delivery] = field(default_factory=list)
    complete: bool = False
    # per publish batch: copies, start, end, copies not confirmed (left to the outbox retry)
    batches: list[tuple[int, float, float, int]] = field(default_factory=list)
    cpu: CpuMeter = field(default_factory=CpuMeter)
    lost: list[str] = field(default_factory=list)
    duplicates: int = 0
    profile: str = ""


@dataclass
class RawRun:
    events: int
    copies: int
    batch: int
    body_bytes: float
    publish_start: dict[str, float] = field(default_factory=dict)
    first_publish: float = 0.0
    last_confirm: float = 0.0
    nacked: int = 0
    deliveries: list[Delivery] = field(default_factory=list)
    complete: bool = False
    cpu: CpuMeter = field(default_factory=CpuMeter)
    lost: list[str] = field(default_factory=list)


# -- 1. whole hub -----------------------------------------------------------------------


def bench_config(prefix: str) -> tuple[HubConfig, list[str]]:
    """The shipped county configuration under a private queue prefix, with every agreement
    that covers LearnerAttendance made to release at once: release windows, cohorts and
    per-pupil restrictions are dropped (they hold or narrow copies, which is not what this
    measures). Returns the configuration and what was rewritten."""
    data = yaml.safe_load(COUNTY.read_text(encoding="utf-8"))
    data["queue_prefix"] = prefix
    rewritten = []
    for agreement in data.get("agreements") or []:
        if not any(rule.get("object") == OBJECT for rule in agreement.get("rules") or []):
            continue
        dropped = [key for key in ("schedule", "cohort") if agreement.pop(key, None)]
        for school in agreement.get("schools") or []:
            if isinstance(school, dict) and school.pop("pupils", None):
                dropped.append(f"{school.get('laestab')}.pupils")
        if dropped:
            rewritten.append(f"{agreement.get('id')} (-{', -'.join(dropped)})")
    return HubConfig.model_validate(data), rewritten


def make_events(n: int, agents: dict[str, SchoolAgent], seed: int = 830) -> list[Event]:
    """N realistic attendance marks: each pupil's AM then PM session, day after day."""
    rng = random.Random(seed)
    learners = data.make_learners(PUPILS_PER_SCHOOL * len(data.SCHOOLS))
    first_day = date(2026, 9, 7)
    events = []
    for i in range(n):
        pupil = learners[i % len(learners)]
        sitting = i // len(learners)
        day = first_day + timedelta(days=sitting // 2)
        session = "AM" if sitting % 2 == 0 else "PM"
        refid = uuid.UUID(int=rng.getrandbits(128)).hex.upper()
        agent = agents[pupil.school.laestab]
        xml = data.learner_attendance(pupil, day, session, rng.choice(CODES), refid)
        body = sif_messages.event(agent.agent_id, OBJECT, "Add", xml)
        events.append(Event(agent, refid, body))
    return events


def _instrument_publisher(hub: Hub, record: list[tuple[int, float, float, int]]) -> None:
    """Time every dispatch batch the hub publishes (wraps this instance's method only)."""
    original = getattr(hub.publisher, "publish_batch", None)
    if original is None:
        return

    async def timed(messages: Sequence[Any]) -> Any:
        t0 = time.perf_counter()
        results = await original(messages)
        failed = sum(r is not None for r in results) if isinstance(results, list) else 0
        record.append((len(messages), t0, time.perf_counter(), failed))
        return results

    hub.publisher.publish_batch = timed  # type: ignore[method-assign]


async def _until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.perf_counter() + seconds
    while not condition():
        if time.perf_counter() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def run_hub(args: argparse.Namespace, database_url: str, tmp: Path, prefix: str) -> HubRun:
    config, rewritten = bench_config(prefix)
    run = HubRun(prefix, [], args.events, args.concurrency, rewritten=rewritten)
    settings = Settings(
        data_dir=tmp,
        database_url=database_url,
        amqp_url=args.amqp_url,
        port=free_port(),
        amqp_provision_users=False,  # its consumers read as the hub: no users to leave behind
    )
    hub = await build_hub(settings, config)
    _instrument_publisher(hub, run.batches)
    await start(hub)
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(hub),
            host="127.0.0.1",
            port=settings.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
        )
    )
    serving = asyncio.create_task(server.serve())
    sink: Sink | None = None
    limits = httpx.Limits(max_connections=args.concurrency, max_keepalive_connections=None)
    try:
        await _until(lambda: server.started, 10, "uvicorn to start")
        await _until(lambda: hub.puller.connected, 10, "the hub to connect to RabbitMQ")
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.port}", timeout=30, limits=limits
        ) as client:
            agents = await _register_agents(client, config)
            run.receivers = await _find_receivers(args.amqp_url, config, agents)
            sink = Sink(
                args.amqp_url,
                [naming.subscriber_queue(s, prefix) for s in run.receivers],
                expected=len(run.receivers) * args.events,
                prefetch=args.prefetch,
            )
            await sink.start()
            await _post_and_consume(args, agents, sink, run)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await asyncio.wait_for(serving, 10)
        if sink is not None:
            await sink.close()
            run.deliveries, run.lost, run.duplicates = sink.deliveries, sink.lost, sink.duplicates
        await stop(hub)
        await delete_topology(args.amqp_url, prefix, [s.id for s in config.subscribers])
    return run


async def _register_agents(client: httpx.AsyncClient, config: HubConfig) -> dict[str, SchoolAgent]:
    """One simulated MIS agent per school, registered (which also pays each agent's one
    argon2 check before anything is timed)."""
    zone = config.zones[0]
    agents = {
        laestab: SchoolAgent(client, zone, agent.id, SECRETS[agent.id])
        for agent in config.agents
        for laestab in agent.schools
    }
    for agent in agents.values():
        ack = await agent.register("Push")
        if not ack.ok:
            raise RuntimeError(f"register {agent.agent_id} refused: {ack.desc}")
    return agents


async def _find_receivers(
    amqp_url: str, config: HubConfig, agents: dict[str, SchoolAgent]
) -> list[str]:
    """Post one warm-up event and see which subscriber queues get a copy (the county
    agreements give LearnerAttendance to 3); those copies are purged, not measured."""
    warm_up = make_events(1, agents, seed=1)[0]
    ack = await warm_up.agent.post(warm_up.body)
    if not ack.ok:
        raise RuntimeError(f"warm-up event refused: {ack.desc}")
    queues = {s.id: naming.subscriber_queue(s.id, config.queue_prefix) for s in config.subscribers}
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        counts: dict[str, int] = {}
        found: dict[str, aio_pika.abc.AbstractQueue] = {}
        deadline = time.perf_counter() + 15
        while time.perf_counter() < deadline:
            now = {}
            for subscriber, name in queues.items():
                declared = await channel.declare_queue(name, passive=True)
                now[subscriber] = declared.declaration_result.message_count or 0
                found[subscriber] = declared
            if any(now.values()) and now == counts:
                break
            counts = now
            await asyncio.sleep(0.2)
        for subscriber, count in counts.items():
            if count:
                await found[subscriber].purge()
    receivers = [s for s, count in counts.items() if count]
    if not receivers:
        raise RuntimeError("the warm-up event reached no subscriber queue within 15 s")
    return receivers


async def _post_and_consume(
    args: argparse.Namespace, agents: dict[str, SchoolAgent], sink: Sink, run: HubRun
) -> None:
    events = make_events(args.events, agents)
    pending = iter(events)

    async def poster() -> None:
        for event in pending:
            t0 = time.perf_counter()
            run.post_start[event.refid] = t0
            run.posted += 1
            ack = await event.agent.post(event.body)
            t1 = time.perf_counter()
            run.ack_rtt.append(t1 - t0)
            run.last_ack = max(run.last_ack, t1)
            if ack.ok:
                run.acked_ok += 1
            else:
                run.failures.append(
                    f"HTTP {ack.http_status} SIF_Error {ack.error_category}/"
                    f"{ack.error_code} {ack.desc}"
                )

    profiler = cProfile.Profile() if args.profile else None
    run.batches.clear()  # the warm-up event's batch is not measured
    run.cpu.start()
    if profiler:
        profiler.enable()
    run.first_post = time.perf_counter()
    deadline = run.first_post + args.timeout
    try:
        await asyncio.wait_for(
            asyncio.gather(*(poster() for _ in range(args.concurrency))), args.timeout
        )
    except TimeoutError:
        print(f"  ! posting stopped by the {args.timeout:.0f} s timeout", file=sys.stderr)
    sink.expected = len(run.receivers) * run.acked_ok
    if len(sink.deliveries) >= sink.expected:
        sink.done.set()
    run.complete = await sink.wait(deadline - time.perf_counter())
    if profiler:
        profiler.disable()
        run.profile = _top(profiler, args.profile)
    run.cpu.stop()


def _top(profiler: cProfile.Profile, count: int) -> str:
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(count)
    out.write("\n")
    stats.sort_stats("cumulative").print_stats(count)
    return out.getvalue()


# -- 2. raw aio-pika baseline -----------------------------------------------------------


def copies_by_event(hub_run: HubRun, n: int) -> list[list[Delivery]]:
    """The hub's copies grouped per event (all receivers), in POST order; topped up by
    repeating (same bytes) when the hub run delivered fewer than N complete events."""
    grouped: dict[str, dict[str, Delivery]] = defaultdict(dict)
    for d in hub_run.deliveries:
        refid = attendance_refid(d.body)
        if refid:
            grouped[refid][d.queue] = d
    wanted = len(hub_run.receivers)
    complete = [
        list(grouped[refid].values())
        for refid in sorted(hub_run.post_start, key=hub_run.post_start.__getitem__)
        if len(grouped.get(refid, {})) == wanted
    ]
    if not complete:
        return []
    return [complete[i % len(complete)] for i in range(n)]


async def run_raw(args: argparse.Namespace, hub_run: HubRun, prefix: str) -> RawRun | None:
    per_event = copies_by_event(hub_run, args.events)
    if not per_event:
        return None
    receivers = hub_run.receivers
    queue_of = {naming.subscriber_queue(s, hub_run.prefix): s for s in receivers}
    total_bytes = sum(len(d.body) for copies in per_event for d in copies)
    run = RawRun(args.events, len(receivers) * args.events, args.raw_batch, 0.0)
    run.body_bytes = total_bytes / run.copies
    sink = Sink(
        args.amqp_url,
        [naming.subscriber_queue(s, prefix) for s in receivers],
        expected=run.copies,
        prefetch=args.prefetch,
    )
    connection = await aio_pika.connect(args.amqp_url, timeout=10)
    try:
        async with connection:
            topology = await connection.channel()
            for subscriber in receivers:
                await declare_subscriber(topology, subscriber, prefix)
            await sink.start()
            channel = await connection.channel(publisher_confirms=True)
            await _publish_all(args, channel, per_event, queue_of, prefix, sink, run)
    finally:
        await sink.close()
        await delete_topology(args.amqp_url, prefix, receivers)
    run.deliveries, run.lost = sink.deliveries, sink.lost
    return run


async def _publish_all(
    args: argparse.Namespace,
    channel: aio_pika.abc.AbstractChannel,
    per_event: list[list[Delivery]],
    queue_of: dict[str, str],
    prefix: str,
    sink: Sink,
    run: RawRun,
) -> None:
    exchange = channel.default_exchange

    def publish(d: Delivery, seq: int, t0: float) -> Awaitable[object]:
        message_id = f"{d.message_id}-{seq}"
        run.publish_start[message_id] = t0
        message = aio_pika.Message(
            d.body,
            headers=d.headers,
            content_type="application/xml",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            message_id=message_id,
            type="SIF_Event",
        )
        queue = naming.subscriber_queue(queue_of[d.queue], prefix)
        return exchange.publish(message, routing_key=queue, mandatory=True, timeout=10)

    run.cpu.start()
    run.first_publish = time.perf_counter()
    deadline = run.first_publish + args.timeout
    seq = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(args.timeout):
            for i in range(0, len(per_event), args.raw_batch):
                t0 = time.perf_counter()
                batch = []
                for copies in per_event[i : i + args.raw_batch]:
                    seq += 1
                    batch += [publish(d, seq, t0) for d in copies]
                outcomes = await asyncio.gather(*batch, return_exceptions=True)
                run.nacked += sum(isinstance(o, BaseException) for o in outcomes)
                run.last_confirm = time.perf_counter()
    run.complete = await sink.wait(deadline - time.perf_counter())
    run.cpu.stop()


# -- figures ----------------------------------------------------------------------------


def hub_latencies(run: HubRun) -> tuple[list[float], int]:
    out, unmapped = [], 0
    for d in run.deliveries:
        refid = attendance_refid(d.body)
        start_at = run.post_start.get(refid or "")
        if start_at is None:
            unmapped += 1
            continue
        out.append(d.at - start_at)
    return out, unmapped


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def _rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else float("nan")


def report(
    args: argparse.Namespace, versions: dict[str, str], hub_run: HubRun, raw: RawRun | None
) -> None:
    facts = machine_facts()
    print()
    print("SIF Hub throughput benchmark (measures only)")
    for key, value in {**facts, **versions}.items():
        print(f"  {key:<15} {value}")
    print(
        f"  settings        events={args.events} concurrency={args.concurrency} "
        f"database={args.database} prefetch={args.prefetch} raw_batch={args.raw_batch} "
        f"dispatch_batch={Settings().dispatch_batch} timeout={args.timeout:.0f}s"
    )
    print(f"  hub code        {hub_code()}")
    print(
        f"  configuration   {COUNTY.name}, rewritten: {'; '.join(hub_run.rewritten) or 'nothing'}"
    )
    note = "" if len(hub_run.receivers) == 3 else "  (NOTE: not the 3 expected)"
    print(f"  fan-out         {OBJECT} Add -> {', '.join(hub_run.receivers)}{note}")

    n_copies = len(hub_run.deliveries)
    last_copy = max((d.at for d in hub_run.deliveries), default=hub_run.first_post)
    ingest_s = hub_run.last_ack - hub_run.first_post
    e2e_s = last_copy - hub_run.first_post
    hub_lat, unmapped = hub_latencies(hub_run)
    ack = Summary.of(hub_run.ack_rtt)
    hub_copy = Summary.of(hub_lat)
    hub_events = n_copies / max(1, len(hub_run.receivers))
    hub_rate = _rate(round(hub_events), e2e_s)
    mean_body = sum(len(d.body) for d in hub_run.deliveries) / max(1, n_copies)

    print()
    print(f"  {'':<30}{'events/s':>10}{'copies/s':>10}   {'p50 ms':>8}{'p99 ms':>9}{'max ms':>9}")
    print(
        f"  {'hub ingest (POST -> ack)':<30}{_rate(hub_run.acked_ok, ingest_s):10.0f}"
        f"{'':>10}   {_ms(ack.p50)}{_ms(ack.p99)} {_ms(ack.max)}"
    )
    print(
        f"  {'hub end-to-end (POST -> copy)':<30}{hub_rate:10.0f}"
        f"{_rate(n_copies, e2e_s):10.0f}   {_ms(hub_copy.p50)}{_ms(hub_copy.p99)} "
        f"{_ms(hub_copy.max)}"
    )
    if raw is not None:
        raw_last = max((d.at for d in raw.deliveries), default=raw.first_publish)
        raw_s = raw_last - raw.first_publish
        raw_lat = [
            d.at - raw.publish_start[d.message_id]
            for d in raw.deliveries
            if d.message_id in raw.publish_start
        ]
        raw_copy = Summary.of(raw_lat)
        raw_rate = _rate(round(len(raw.deliveries) / len(hub_run.receivers)), raw_s)
        print(
            f"  {'raw aio-pika (publish -> copy)':<30}{raw_rate:10.0f}"
            f"{_rate(len(raw.deliveries), raw_s):10.0f}   {_ms(raw_copy.p50)}"
            f"{_ms(raw_copy.p99)} {_ms(raw_copy.max)}"
        )
        print(
            f"  {'ratio hub / raw':<30}{hub_rate / raw_rate:10.2f}{'':>10}   "
            f"{hub_copy.p50 / raw_copy.p50:7.1f}x{hub_copy.p99 / raw_copy.p99:8.1f}x"
        )
    print()
    print("  hub run")
    print(
        f"    acked {hub_run.acked_ok}/{hub_run.events} in {ingest_s:.2f} s; "
        f"copies consumed {n_copies}/{len(hub_run.receivers) * hub_run.acked_ok} "
        f"in {e2e_s:.2f} s{'' if hub_run.complete else '  (INCOMPLETE)'}"
    )
    for lost in hub_run.lost:
        print(f"    ! consumer connection closed by the broker mid-run ({lost}): figures void")
    if hub_run.duplicates:
        print(
            f"    {hub_run.duplicates} duplicate deliveries (same message_id re-sent by the "
            "hub: at-least-once); not counted above"
        )
    if hub_run.failures:
        print(f"    refused {len(hub_run.failures)}; first: {hub_run.failures[0]}")
    if unmapped:
        print(f"    {unmapped} copies had no LearnerAttendance RefId to map to a POST")
    drain = (
        f"; last copy {(last_copy - hub_run.last_ack) * 1000:.0f} ms after the last ack"
        if hub_run.complete
        else ""
    )
    print(f"    copy body {mean_body:.0f} bytes mean{drain}")
    if hub_run.batches:
        sizes = [b[0] for b in hub_run.batches]
        busy = sum(b[2] - b[1] for b in hub_run.batches)
        slowest = max(b[2] - b[1] for b in hub_run.batches)
        failed = sum(b[3] for b in hub_run.batches)
        print(
            f"    dispatch: {len(sizes)} publish batches, {sum(sizes) / len(sizes):.1f} copies "
            f"mean (max {max(sizes)}), publish+confirm {busy:.2f} s of the {e2e_s:.2f} s "
            f"(slowest batch {slowest:.2f} s); {failed} copies not confirmed (re-sent later)"
        )
    print(f"    cpu: {hub_run.cpu.describe(hub_run.acked_ok)}")
    if raw is not None:
        print("  raw run")
        print(
            f"    published {raw.copies} copies ({raw.body_bytes:.0f} bytes mean) in batches of "
            f"{raw.batch} events; all confirmed after "
            f"{raw.last_confirm - raw.first_publish:.2f} s, {raw.nacked} failed; consumed "
            f"{len(raw.deliveries)}{'' if raw.complete else '  (INCOMPLETE)'}"
        )
        for lost in raw.lost:
            print(f"    ! consumer connection closed by the broker mid-run ({lost}): figures void")
        print(f"    cpu: {raw.cpu.describe(raw.events)}")
    else:
        print("  raw run: skipped (the hub delivered no complete event to copy bodies from)")
    if hub_run.profile:
        print("\n  cProfile of the hub run (bench process, all coroutines; slows it down):")
        print(hub_run.profile)


# -- entry point ------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=2000, help="events to post (N)")
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    parser.add_argument("--concurrency", type=int, default=16, help="concurrent posters (C)")
    parser.add_argument("--prefetch", type=int, default=200, help="consumer prefetch")
    parser.add_argument(
        "--raw-batch",
        type=int,
        default=Settings().dispatch_batch,
        help="events per confirm batch in the raw baseline (default: the hub's dispatch batch)",
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        help="seconds each phase may take (posting + consuming); the run stays bounded",
    )
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument(
        "--pg-url",
        default=DEFAULT_PG_URL,
        help="PostgreSQL server for --database postgresql (a database is created and dropped)",
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="K",
        help="also cProfile the hub run and print the top K functions (slows it down)",
    )
    parser.add_argument("--log-level", default="WARNING", help="hub log level")
    return parser.parse_args(argv)


async def main_async(args: argparse.Namespace) -> int:
    prefix = f"sifhub-bench-{uuid.uuid4().hex[:8]}"
    versions = {"rabbitmq": await rabbitmq_version(args.amqp_url)}
    if args.database == "postgresql":
        versions["postgresql"] = await postgres_version(args.pg_url)
    print(f"hub run: {args.events} events, {args.concurrency} posters, {args.database} ...")
    with tempfile.TemporaryDirectory(prefix="sifhub-bench-") as tmp:
        async with fresh_database(args.database, Path(tmp), args.pg_url) as url:
            hub_run = await run_hub(args, url, Path(tmp), prefix)
    print("raw aio-pika run ...")
    raw = await run_raw(args, hub_run, f"{prefix}-raw")
    report(args, versions, hub_run, raw)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    # httpcore tries `import sniffio` on every request; where it is not installed each try
    # searches sys.path again (~0.3 ms of the posters' time per POST, in the hub's event
    # loop). Recording the absence once makes the same ImportError immediate.
    if importlib.util.find_spec("sniffio") is None:
        sys.modules.setdefault("sniffio", None)  # type: ignore[arg-type]
    logs.configure(args.log_level)
    for chatty in ("httpx", "httpcore"):  # one line per request at INFO
        logging.getLogger(chatty).setLevel(logging.WARNING)
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    sys.exit(main())
