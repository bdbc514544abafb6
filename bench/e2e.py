"""The whole hub as production runs it, against raw aio-pika in the same run. Measures only.

    .venv/bin/python bench/e2e.py [--db sqlite|postgres] [--duration S] [--posters N]
                                  [--rate R] [--load-procs P] [--hub-cmd CMD] [--idle S]
                                  [--serve-args ARGS] [--worker-procs M]

Every part is its own process: the hub (`hub serve [ARGS]`, a subprocess on a fresh SQLite
file or a fresh PostgreSQL database, plus M `hub worker` processes beside it, e.g.
`--serve-args="--workers 2 --no-dispatch" --worker-procs 2`; the hub's CPU is summed over
all of them and their children), P load-generator processes (N closed-loop posting agents
between them, or an open-loop offered rate), one consumer process (prefetch, acks batched
with multiple=True). The raw baseline publishes the very copy bodies the hub delivered, with
the same 3-way fan-out into quorum queues (the hub's own topology code), pipelined confirms,
from its own process, consumed the same way. Everything AMQP lives in a vhost of its own,
created for the run and deleted afterwards. See bench/README.md for the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing as mp
import os
import pickle
import random
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import aio_pika
import asyncpg  # type: ignore[import-untyped]
import httpx
import yaml
from _common import (
    COUNTY,
    DEFAULT_AMQP_URL,
    DEFAULT_PG_URL,
    Summary,
    attendance_refid,
    free_port,
    fresh_database,
    machine_facts,
    postgres_version,
    rabbitmq_version,
)

from hub.amqp.provision import management_target
from hub.amqp.topology import declare_subscriber
from hub.core import naming
from hub.demo import SECRETS
from hub.simulate import sample_data as data
from hub.simulate import sif_messages
from hub.simulate.school_agent import SchoolAgent

OBJECT = "LearnerAttendance"
PUPILS_PER_SCHOOL = 300  # a roll of 900 pupils; two sessions a day each
CODES = "////////////\\\\\\\\LIMNCUB"  # mostly present, some late/ill/unauthorised
SPAWN = mp.get_context("spawn")
CLK_TCK = os.sysconf("SC_CLK_TCK")
CONNECTIONS = 64  # per load process: concurrent HTTP requests at most
GRACE_SECONDS = 10.0  # open loop: how long after its last send a loader waits for acks


# -- the load: realistic attendance marks ------------------------------------------------


def bench_config(prefix: str, copy_batch: int = 1) -> tuple[dict[str, Any], list[str]]:
    """The shipped county configuration with every agreement that covers LearnerAttendance
    made to release at once (release windows, cohorts and per-pupil restrictions hold or
    narrow copies, which is not what this measures), its recipients taking batched copies
    when `copy_batch` > 1. Returns it and what was rewritten."""
    config = yaml.safe_load(COUNTY.read_text(encoding="utf-8"))
    config["queue_prefix"] = prefix
    rewritten = []
    for agreement in config.get("agreements") or []:
        if not any(rule.get("object") == OBJECT for rule in agreement.get("rules") or []):
            continue
        if copy_batch > 1:
            for subscriber in config["subscribers"]:
                if subscriber["id"] in agreement["recipients"] and not subscriber.get("pull_agent"):
                    subscriber["delivery"] = {"type": "amqp", "batch": copy_batch}
        dropped = [key for key in ("schedule", "cohort") if agreement.pop(key, None)]
        for school in agreement.get("schools") or []:
            if isinstance(school, dict) and school.pop("pupils", None):
                dropped.append(f"{school.get('laestab')}.pupils")
        if dropped:
            rewritten.append(f"{agreement.get('id')} (-{', -'.join(dropped)})")
    return config, rewritten


def events(seed: int, agents: dict[str, SchoolAgent]) -> Any:
    """Endless attendance marks, (agent, LearnerAttendance RefId, SIF_Message body): each
    pupil's AM then PM session, day after day; a unique RefId per mark."""
    rng = random.Random(seed)
    learners = data.make_learners(PUPILS_PER_SCHOOL * len(data.SCHOOLS))
    first_day = date(2026, 9, 7)
    i = 0
    while True:
        pupil = learners[i % len(learners)]
        sitting = i // len(learners)
        day = first_day + timedelta(days=sitting // 2)
        session = "AM" if sitting % 2 == 0 else "PM"
        refid = uuid.UUID(int=rng.getrandbits(128)).hex.upper()
        agent = agents[pupil.school.laestab]
        xml = data.learner_attendance(pupil, day, session, rng.choice(CODES), refid)
        yield agent, refid, sif_messages.event(agent.agent_id, OBJECT, "Add", xml)
        i += 1


# -- processes ---------------------------------------------------------------------------


async def until_start(start_at: Any) -> None:
    """Wait for the common start time the orchestrator sets in shared memory (a value
    another process writes: there is no event to await)."""
    while start_at.value == 0.0:  # noqa: ASYNC110
        await asyncio.sleep(0.01)
    await asyncio.sleep(max(0.0, start_at.value - time.monotonic()))


@dataclass(frozen=True)
class LoadPlan:
    base_url: str
    zone: str
    agents: dict[str, str]  # laestab -> agent id
    posters: int  # closed loop: concurrent posting agents in this process (0: open loop)
    rate: float  # open loop: events/s offered by this process
    duration: float
    seed: int


def load_process(plan: LoadPlan, start_at: Any, ready: Any, out: str) -> None:
    """One load-generator process; writes [(refid, t_start, t_ack, error or "")] to `out`.
    Open loop: t_start is the scheduled send time (no coordinated omission)."""
    records = asyncio.run(_load(plan, start_at, ready))
    Path(out).write_bytes(pickle.dumps(records))


async def _load(plan: LoadPlan, start_at: Any, ready: Any) -> list[tuple[str, float, float, str]]:
    records: list[tuple[str, float, float, str]] = []
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=None)
    async with httpx.AsyncClient(base_url=plan.base_url, timeout=120, limits=limits) as client:
        agents = {
            laestab: SchoolAgent(client, plan.zone, agent_id, SECRETS[agent_id])
            for laestab, agent_id in plan.agents.items()
        }
        stream = events(plan.seed, agents)
        # Generate ahead so building XML is not timed (open loop: the whole run).
        ahead = [
            next(stream) for _ in range(int(plan.rate * plan.duration) + 1 if plan.rate else 2000)
        ]
        ready.set()
        await until_start(start_at)
        end = start_at.value + plan.duration

        # httpx's pool rescans its whole wait list on every request: thousands queued there
        # (a hub behind an open loop) cost the loader more CPU than the posting. Requests
        # wait here instead; their latency still counts from the scheduled time.
        connections = asyncio.Semaphore(CONNECTIONS)

        async def post(item: Any, t0: float) -> None:
            agent, refid, body = item
            try:
                async with connections:
                    ack = await agent.post(body)
                error = "" if ack.ok else f"{ack.error_category}/{ack.error_code} {ack.desc}"
            except httpx.HTTPError as exc:
                error = repr(exc)
            records.append((refid, t0, time.monotonic(), error))

        if plan.posters:
            pending = iter(ahead)

            async def poster() -> None:
                while time.monotonic() < end:
                    await post(next(pending, None) or next(stream), time.monotonic())

            await asyncio.gather(*(poster() for _ in range(plan.posters)))
        else:
            tasks = []
            for i, item in enumerate(ahead):
                at = start_at.value + i / plan.rate
                if at >= end:
                    break
                await asyncio.sleep(max(0.0, at - time.monotonic()))
                tasks.append(asyncio.create_task(post(item, at)))
            # A hub far behind would keep the run going for minutes: what is not acked
            # GRACE_SECONDS after the last send is given up, as an agent's timeout would.
            _, late = await asyncio.wait(
                tasks, timeout=max(0.1, end + GRACE_SECONDS - time.monotonic())
            )
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
            given_up = len(late)
            records.extend(("", 0.0, 0.0, "given up: no ack in time") for _ in range(given_up))
    return records


@dataclass(frozen=True)
class ConsumePlan:
    amqp_url: str
    queues: list[str]
    kind: str  # "hub": key copies by the LearnerAttendance RefId; "raw": by message id
    prefetch: int
    ack_every: int
    keep_bodies: int  # hub: keep the copies of this many events for the raw run


def consume_process(plan: ConsumePlan, control: Any, ready: Any, out: str) -> None:
    """One consumer process for all queues; control takes (expected copies, deadline)."""
    Path(out).write_bytes(pickle.dumps(asyncio.run(_consume(plan, control, ready))))


async def _consume(plan: ConsumePlan, control: Any, ready: Any) -> dict[str, Any]:
    seen: set[tuple[str, str]] = set()
    arrivals: list[tuple[str, str, float]] = []  # (queue, key, t)
    bodies: dict[str, list[tuple[str, dict[str, Any], bytes]]] = defaultdict(list)
    duplicates = 0
    unacked: dict[str, aio_pika.abc.AbstractIncomingMessage] = {}
    acked: dict[str, int] = {}
    counts: dict[str, int] = defaultdict(int)
    expected = [sys.maxsize]
    done = asyncio.Event()
    lost: list[str] = []

    def handler(queue: str) -> Any:
        async def on_message(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal duplicates
            t = time.monotonic()
            mid = message.message_id or ""
            if (queue, mid) in seen:
                duplicates += 1
            else:
                seen.add((queue, mid))
                if plan.kind == "hub":
                    key = attendance_refid(message.body) or ""
                    if len(bodies) < plan.keep_bodies or key in bodies:
                        bodies[key].append((queue, dict(message.headers or {}), message.body))
                else:
                    key = mid.split(".", 1)[0]
                arrivals.append((queue, key, t))
                if len(arrivals) >= expected[0]:
                    done.set()
            unacked[queue] = message
            counts[queue] += 1
            if counts[queue] % plan.ack_every == 0:
                await ack_upto(queue)

        return on_message

    async def ack_upto(queue: str) -> None:
        """Ack everything delivered on `queue` so far, once (a tag acked twice would be a
        channel error)."""
        message = unacked.pop(queue, None)
        if message is None or (message.delivery_tag or 0) <= acked.get(queue, 0):
            return
        acked[queue] = message.delivery_tag or 0
        await message.ack(multiple=True)

    connection = await aio_pika.connect(plan.amqp_url, timeout=10)
    connection.close_callbacks.add(lambda *_: lost.append("consumer connection closed"))
    channels = []
    for name in plan.queues:
        channel = await connection.channel()
        await channel.set_qos(prefetch_count=plan.prefetch)
        queue = await channel.get_queue(name, ensure=True)
        await queue.consume(handler(name))
        channels.append(channel)

    async def flush() -> None:  # the tail of a batch is acked within 50 ms
        while True:
            await asyncio.sleep(0.05)
            for queue in list(unacked):
                await ack_upto(queue)

    flusher = asyncio.create_task(flush())
    ready.set()
    loop = asyncio.get_running_loop()
    want, deadline = await loop.run_in_executor(None, control.get)
    expected[0] = want
    if len(arrivals) >= want:
        done.set()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), max(0.1, deadline - time.monotonic()))
    flusher.cancel()
    for queue in list(unacked):  # nothing is redelivered to the next phase's consumer
        with contextlib.suppress(Exception):
            await ack_upto(queue)
    lost_now = list(lost)
    with contextlib.suppress(Exception):
        await connection.close()
    return {
        "arrivals": arrivals,
        "duplicates": duplicates,
        "bodies": dict(bodies),
        "lost": lost_now,
    }


@dataclass(frozen=True)
class PublishPlan:
    amqp_url: str
    per_event: list[list[tuple[str, dict[str, Any], bytes]]]  # (queue, headers, body)
    duration: float
    window: int  # copies published and not yet confirmed


def publish_process(plan: PublishPlan, start_at: Any, out: str) -> None:
    """The raw publisher: the hub's copy bodies, as fast as confirms allow, for `duration`;
    writes [(event seq, t_publish)] and the count of failed confirms."""
    Path(out).write_bytes(pickle.dumps(asyncio.run(_publish(plan, start_at))))


async def _publish(plan: PublishPlan, start_at: Any) -> dict[str, Any]:
    connection = await aio_pika.connect(plan.amqp_url, timeout=10)
    sent: list[tuple[str, float]] = []
    failed = 0
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        exchange = channel.default_exchange
        window = asyncio.Semaphore(plan.window)
        inflight: set[asyncio.Task[None]] = set()

        async def confirm(message: aio_pika.Message, queue: str) -> None:
            nonlocal failed
            try:
                await exchange.publish(message, routing_key=queue, mandatory=True, timeout=30)
            except Exception:
                failed += 1
            finally:
                window.release()

        await until_start(start_at)
        end = start_at.value + plan.duration
        seq = 0
        while time.monotonic() < end:
            copies = plan.per_event[seq % len(plan.per_event)]
            key = f"r{seq}"
            sent.append((key, time.monotonic()))
            for i, (queue, headers, body) in enumerate(copies):
                await window.acquire()
                message = aio_pika.Message(
                    body,
                    headers=headers,
                    content_type="application/xml",
                    delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
                    message_id=f"{key}.{i}",
                    type="SIF_Event",
                )
                task = asyncio.create_task(confirm(message, queue))
                inflight.add(task)
                task.add_done_callback(inflight.discard)
            seq += 1
        await asyncio.gather(*inflight)
    return {"sent": sent, "failed": failed}


# -- the hub subprocess and what it costs ------------------------------------------------


def cpu_seconds(pid: int) -> float:
    """User + system CPU of `pid` and all its descendants (all threads), from /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    times: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        children[int(fields[1])].append(int(entry.name))
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo += children.get(current, [])
    return total


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` and all its descendants, MiB, from /proc."""
    children: dict[int, list[int]] = defaultdict(list)
    rss: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        children[int(stat.rsplit(")", 1)[1].split()[1])].append(int(entry.name))
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss[int(entry.name)] = int(line.split()[1]) / 1024
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += rss.get(current, 0.0)
        todo += children.get(current, [])
    return total


async def sample_rss(pids: list[int], into: list[float], stop: asyncio.Event) -> None:
    """The hub processes' total RSS every 5 s until `stop` (the soak's memory figure)."""
    while not stop.is_set():
        into.append(sum(rss_mib(pid) for pid in pids))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 5.0)


@dataclass
class Hub:
    process: subprocess.Popen[bytes]
    base_url: str
    amqp_url: str
    config: dict[str, Any]
    log: Path
    receivers: list[str] = field(default_factory=list)
    agents: dict[str, str] = field(default_factory=dict)
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def cpu_parts(self) -> dict[str, float]:
        """CPU seconds of every hub process: `hub serve` (with the HTTP processes it
        started) and each `hub worker`."""
        parts = {"serve": cpu_seconds(self.process.pid)}
        return parts | {f"worker{i}": cpu_seconds(w.pid) for i, w in enumerate(self.workers)}

    def cpu_seconds(self) -> float:
        return sum(self.cpu_parts().values())


async def start_hub(args: argparse.Namespace, tmp: Path, db_url: str, amqp_url: str) -> Hub:
    prefix = f"sifhub-bench-{uuid.uuid4().hex[:8]}"
    config, rewritten = bench_config(prefix, getattr(args, "copy_batch", 1))
    args.rewritten = rewritten
    config_path = tmp / "county.yaml"
    config_path.write_text(yaml.safe_dump(config), encoding="utf-8")
    port = free_port()
    env = {
        **os.environ,
        "HUB_DATABASE_URL": db_url,
        "HUB_AMQP_URL": amqp_url,
        "HUB_AMQP_PROVISION_USERS": "false",  # consumers read as guest: no users to remove
        "HUB_DATA_DIR": str(tmp),
        "HUB_LOG_LEVEL": args.log_level,
        **dict(kv.split("=", 1) for kv in args.hub_env),
    }
    log = tmp / "hub.log"
    command = [*shlex.split(args.hub_cmd), "serve", "--config", str(config_path)]
    process = _spawn([*command, "--port", str(port), *shlex.split(args.serve_args)], env, log)
    hub = Hub(process, f"http://127.0.0.1:{port}", amqp_url, config, log)
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(base_url=hub.base_url, timeout=5) as client:
            while True:
                if process.poll() is not None:
                    raise RuntimeError(
                        f"hub exited ({process.returncode}): {log.read_text()[-2000:]}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get("/health/ready")).status_code == 200:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"hub not ready in 60 s: {log.read_text()[-2000:]}")
                await asyncio.sleep(0.2)
            worker = [*shlex.split(args.hub_cmd), "worker", "--config", str(config_path)]
            hub.workers = [
                _spawn(worker, env, tmp / f"worker{i}.log") for i in range(args.worker_procs)
            ]
            zone = config["zones"][0]
            for agent in config["agents"]:
                register = SchoolAgent(client, zone, agent["id"], SECRETS[agent["id"]])
                for laestab in agent.get("schools") or []:
                    hub.agents[str(laestab)] = agent["id"]
                ack = await register.register("Push")
                if not ack.ok:
                    raise RuntimeError(f"register {agent['id']} refused: {ack.desc}")
            hub.receivers = await _find_receivers(hub, client, zone)
    except BaseException:
        stop_hub(hub)  # a hub that failed to start is not left running
        raise
    return hub


async def _find_receivers(hub: Hub, client: httpx.AsyncClient, zone: str) -> list[str]:
    """Post one warm-up event and see which subscriber queues get a copy (the county
    agreements give LearnerAttendance to 3); those copies are purged, not measured."""
    agents = {k: SchoolAgent(client, zone, v, SECRETS[v]) for k, v in hub.agents.items()}
    agent, _, body = next(events(1, agents))
    ack = await agent.post(body)
    if not ack.ok:
        raise RuntimeError(f"warm-up event refused: {ack.desc}")
    prefix = hub.config["queue_prefix"]
    names = [naming.subscriber_queue(s["id"], prefix) for s in hub.config["subscribers"]]
    connection = await aio_pika.connect(hub.amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        counts: dict[str, int] = {}
        deadline, stable = time.monotonic() + 30, 0
        # Stable for a second: on a loaded machine the queues' counts (quorum queues, one
        # Raft log each) do not all show a pipelined batch's copies at the same poll.
        while time.monotonic() < deadline and stable < 5:
            now = {}
            for name in names:
                declared = await channel.declare_queue(name, passive=True)
                now[name] = declared.declaration_result.message_count or 0
            stable = stable + 1 if any(now.values()) and now == counts else 0
            counts = now
            await asyncio.sleep(0.2)
        for name, count in counts.items():
            if count:
                await (await channel.get_queue(name)).purge()
    receivers = [name for name, count in counts.items() if count]
    if not receivers:
        raise RuntimeError("the warm-up event reached no subscriber queue within 30 s")
    return receivers


def _spawn(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        command, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT, start_new_session=True
    )


def stop_hub(hub: Hub) -> None:
    processes = [hub.process, *hub.workers]
    for process in processes:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGINT)
    for process in processes:
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)


# -- PostgreSQL backends ------------------------------------------------------------------


@dataclass
class Backends:
    """Backends serving the hub's database, sampled every 0.25 s, and sessions counted
    by PostgreSQL itself (pg_stat_database.sessions)."""

    pids: set[int] = field(default_factory=set)
    most: int = 0
    sessions: int = 0


async def sample_backends(admin: Any, database: str, into: Backends, stop: asyncio.Event) -> None:
    while not stop.is_set():
        pids = await admin.fetchval(
            "SELECT coalesce(array_agg(pid), '{}') FROM pg_stat_activity "
            "WHERE datname = $1 AND pid <> pg_backend_pid()",
            database,
        )
        into.pids.update(pids)
        into.most = max(into.most, len(pids))
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.25)


async def sessions_of(admin: Any, database: str) -> int:
    with contextlib.suppress(asyncpg.PostgresError):
        value = await admin.fetchval(
            "SELECT sessions FROM pg_stat_database WHERE datname = $1", database
        )
        return int(value or 0)
    return 0


# -- one phase: load -> hub -> consumers -------------------------------------------------


@dataclass
class Phase:
    name: str
    offered: float = 0.0  # open loop: events/s offered; 0 for closed loop
    posted: int = 0
    acked: int = 0
    errors: list[str] = field(default_factory=list)
    ack_latency: Summary = field(default_factory=lambda: Summary.of([]))
    copy_latency: Summary = field(default_factory=lambda: Summary.of([]))
    complete_events: int = 0
    copies: int = 0
    expected_copies: int = 0
    seconds: float = 0.0  # first POST (publish) to last copy
    drain: float = 0.0  # last ack (publish) to last copy
    cpu_ms_per_event: float = float("nan")
    cpu_ms_by_process: dict[str, float] = field(default_factory=dict)
    rss_mib: list[float] = field(default_factory=list)  # the hub's, every 5 s under load
    duplicates: int = 0
    lost: list[str] = field(default_factory=list)
    backends: Backends | None = None

    @property
    def rate(self) -> float:
        return self.complete_events / self.seconds if self.seconds > 0 else float("nan")

    @property
    def kept_up(self) -> bool:
        return (
            self.acked == self.posted > 0
            and self.copies == self.expected_copies
            and self.rate >= 0.95 * self.offered
            and self.drain < 1.0
        )


def _start_consumer(
    plan: ConsumePlan, tmp: Path
) -> tuple[Any, Any, Path]:  # (process, control queue, out)
    control, ready = SPAWN.Queue(), SPAWN.Event()
    out = tmp / f"consume-{uuid.uuid4().hex[:6]}.pickle"
    process = SPAWN.Process(
        target=consume_process, args=(plan, control, ready, str(out)), daemon=True
    )
    process.start()
    if not ready.wait(30):
        process.kill()
        raise RuntimeError("consumer process did not start")
    return process, control, out


async def _join(process: Any, seconds: float) -> None:
    await asyncio.get_running_loop().run_in_executor(None, process.join, seconds)
    if process.is_alive():
        process.kill()


def _summarise(
    phase: Phase,
    starts: dict[str, float],
    acks: dict[str, float],
    consumed: dict[str, Any],
    fanout: int,
) -> None:
    by_key: dict[str, list[float]] = defaultdict(list)
    for _, key, t in consumed["arrivals"]:
        by_key[key].append(t)
    phase.copies = len(consumed["arrivals"])
    phase.duplicates = consumed["duplicates"]
    phase.lost = consumed["lost"]
    complete = {k: ts for k, ts in by_key.items() if k in starts and len(ts) >= fanout}
    phase.complete_events = len(complete)
    latencies = [t - starts[k] for k, ts in by_key.items() if k in starts for t in ts]
    phase.copy_latency = Summary.of(latencies)
    if starts and by_key:
        first = min(starts.values())
        last_copy = max(t for ts in by_key.values() for t in ts)
        phase.seconds = last_copy - first
        phase.drain = last_copy - max(acks.values(), default=first)


async def run_hub_phase(
    args: argparse.Namespace,
    hub: Hub,
    tmp: Path,
    name: str,
    *,
    posters: int,
    rate: float,
    backends: tuple[Any, str] | None,
) -> tuple[Phase, dict[str, Any]]:
    phase = Phase(name, offered=rate)
    consumer, control, consumed_at = _start_consumer(
        ConsumePlan(hub.amqp_url, hub.receivers, "hub", args.prefetch, args.ack_every, 2000), tmp
    )
    procs = max(1, min(args.load_procs, posters or args.load_procs))
    start_at = SPAWN.Value("d", 0.0)
    plans = [
        LoadPlan(
            hub.base_url,
            hub.config["zones"][0],
            hub.agents,
            posters=posters // procs + (i < posters % procs) if posters else 0,
            rate=rate / procs,
            duration=args.duration,
            seed=1000 * (i + 1) + int(time.time()) % 1000,
        )
        for i in range(procs)
    ]
    run = uuid.uuid4().hex[:6]
    outs = [tmp / f"load-{run}-{i}.pickle" for i in range(procs)]
    ready = [SPAWN.Event() for _ in plans]
    loaders = [
        SPAWN.Process(target=load_process, args=(plan, start_at, up, str(out)), daemon=True)
        for plan, up, out in zip(plans, ready, outs, strict=True)
    ]
    for loader in loaders:
        loader.start()
    sampled, stop_sampling, sampler = Backends(), asyncio.Event(), None
    if backends:
        sampled.sessions = -await sessions_of(*backends)
        sampler = asyncio.create_task(sample_backends(*backends, sampled, stop_sampling))
    loop = asyncio.get_running_loop()
    for up in ready:  # the loaders have imported and built their events
        await loop.run_in_executor(None, up.wait, 120)
    cpu0 = hub.cpu_parts()
    start_at.value = time.monotonic() + 0.5
    stop_rss = asyncio.Event()
    pids = [hub.process.pid, *(w.pid for w in hub.workers)]
    rss_task = asyncio.create_task(sample_rss(pids, phase.rss_mib, stop_rss))
    for loader in loaders:
        await _join(loader, args.duration + 180)
    stop_rss.set()
    await rss_task
    records = [r for out in outs if out.exists() for r in pickle.loads(out.read_bytes())]
    phase.posted = len(records)
    phase.acked = sum(1 for r in records if not r[3])
    phase.errors = [r[3] for r in records if r[3]]
    starts = {r[0]: r[1] for r in records if not r[3]}
    acks = {r[0]: r[2] for r in records if not r[3]}
    phase.ack_latency = Summary.of([r[2] - r[1] for r in records if not r[3]])
    phase.expected_copies = phase.acked * len(hub.receivers)
    control.put((phase.expected_copies, time.monotonic() + args.drain))
    await _join(consumer, args.drain + 30)
    cpu1 = hub.cpu_parts()
    if sampler:
        stop_sampling.set()
        await sampler
        assert backends is not None
        sampled.sessions += await sessions_of(*backends)
        phase.backends = sampled
    consumed = pickle.loads(consumed_at.read_bytes()) if consumed_at.exists() else {}
    consumed = consumed or {"arrivals": [], "duplicates": 0, "bodies": {}, "lost": ["no result"]}
    _summarise(phase, starts, acks, consumed, len(hub.receivers))
    if phase.complete_events:
        phase.cpu_ms_by_process = {
            name: (cpu1[name] - cpu0[name]) / phase.complete_events * 1000 for name in cpu0
        }
        phase.cpu_ms_per_event = sum(phase.cpu_ms_by_process.values())
    return phase, consumed["bodies"]


async def run_raw_phase(
    args: argparse.Namespace, amqp_url: str, tmp: Path, bodies: dict[str, Any], fanout: int
) -> Phase:
    phase = Phase("raw aio-pika")
    complete = [copies for copies in bodies.values() if len(copies) >= fanout]
    if not complete:
        phase.errors.append("the hub delivered no complete event to copy bodies from")
        return phase
    prefix = f"sifhub-raw-{uuid.uuid4().hex[:8]}"
    subscribers = sorted({queue for copies in complete for queue, _, _ in copies})
    raw_queue = {q: naming.subscriber_queue(f"s{i}", prefix) for i, q in enumerate(subscribers)}
    connection = await aio_pika.connect(amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        for i in range(len(subscribers)):
            await declare_subscriber(channel, f"s{i}", prefix)
    per_event = [[(raw_queue[q], h, b) for q, h, b in copies] for copies in complete]
    consumer, control, consumed_at = _start_consumer(
        ConsumePlan(amqp_url, list(raw_queue.values()), "raw", args.prefetch, args.ack_every, 0),
        tmp,
    )
    start_at = SPAWN.Value("d", 0.0)
    out = tmp / "publish.pickle"
    publisher = SPAWN.Process(
        daemon=True,
        target=publish_process,
        args=(PublishPlan(amqp_url, per_event, args.duration, args.raw_window), start_at, str(out)),
    )
    publisher.start()
    await asyncio.sleep(2.0)
    start_at.value = time.monotonic() + 0.5
    await _join(publisher, args.duration + 120)
    published = pickle.loads(out.read_bytes()) if out.exists() else {"sent": [], "failed": 0}
    starts = dict(published["sent"])
    phase.posted = len(starts)
    phase.acked = phase.posted
    if published["failed"]:
        phase.errors.append(f"{published['failed']} copies not confirmed")
    phase.expected_copies = phase.posted * fanout
    control.put((phase.expected_copies, time.monotonic() + args.drain))
    await _join(consumer, args.drain + 30)
    consumed = pickle.loads(consumed_at.read_bytes()) if consumed_at.exists() else {}
    consumed = consumed or {"arrivals": [], "duplicates": 0, "bodies": {}, "lost": ["no result"]}
    _summarise(phase, starts, {k: t for k, t in starts.items()}, consumed, fanout)
    return phase


# -- the vhost ----------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def fresh_vhost(amqp_url: str) -> Any:
    """A vhost of the run's own on the shared broker (guest may use it); deleted after."""
    target = management_target(amqp_url)
    name = f"sifhub-bench-{uuid.uuid4().hex[:8]}"
    auth = (target.username, target.password)
    async with httpx.AsyncClient(base_url=f"{target.base_url}/api", auth=auth, timeout=10) as api:
        (await api.put(f"vhosts/{quote(name, safe='')}")).raise_for_status()
        everything = {"configure": ".*", "write": ".*", "read": ".*"}
        path = f"permissions/{quote(name, safe='')}/{quote(target.username, safe='')}"
        (await api.put(path, json=everything)).raise_for_status()
        try:
            yield urlsplit(amqp_url)._replace(path="/" + quote(name, safe="")).geturl(), name
        finally:
            await api.delete(f"vhosts/{quote(name, safe='')}")


# -- the table ----------------------------------------------------------------------------


def _ms(value: float) -> str:
    return "—" if value != value else f"{value * 1000:.1f}"


def report(args: argparse.Namespace, versions: dict[str, str], phases: list[Phase]) -> None:
    print()
    print("SIF Hub end-to-end benchmark (measures only; every part its own process)")
    for key, value in {**machine_facts(), **versions}.items():
        print(f"  {key:<15} {value}")
    print(
        f"  settings        db={args.db} duration={args.duration:.0f}s posters={args.posters} "
        f"rate={args.rate:g}/s load_procs={args.load_procs} prefetch={args.prefetch} "
        f"ack_every={args.ack_every} raw_window={args.raw_window} hub_env={args.hub_env}"
    )
    print(f"  hub command     {args.hub_cmd} ({hub_describe(args.hub_cmd)})")
    print(
        f"  hub processes   serve {args.serve_args or '(one process)'}; workers {args.worker_procs}"
    )
    print(f"  configuration   county.yaml, rewritten: {'; '.join(args.rewritten) or 'nothing'}")
    print(f"  fan-out         {OBJECT} Add -> {', '.join(args.receivers)}")
    raw = next((p for p in phases if p.name.startswith("raw")), None)
    header = (
        f"  {'':<24}{'events/s':>9}{'ratio':>7}{'CPU ms/ev':>10}"
        f"{'ack p50':>9}{'ack p99':>9}{'copy p50':>10}{'copy p99':>10}  {'kept up':<8}"
    )
    print()
    print(header)
    print(f"  {'':<24}{'':>9}{'/raw':>7}{'(hub)':>10}{'ms':>9}{'ms':>9}{'ms':>10}{'ms':>10}")
    for p in phases:
        ratio = f"{p.rate / raw.rate:.2f}" if raw and raw.rate == raw.rate and raw.rate else "—"
        cpu = "—" if p.cpu_ms_per_event != p.cpu_ms_per_event else f"{p.cpu_ms_per_event:.1f}"
        kept = ("yes" if p.kept_up else "NO") if p.offered else ""
        ack = ("—", "—") if p is raw else (_ms(p.ack_latency.p50), _ms(p.ack_latency.p99))
        print(
            f"  {p.name:<24}{p.rate:9.0f}{ratio:>7}{cpu:>10}{ack[0]:>9}{ack[1]:>9}"
            f"{_ms(p.copy_latency.p50):>10}{_ms(p.copy_latency.p99):>10}  {kept:<8}"
        )
    print()
    for p in phases:
        line = (
            f"  {p.name}: posted {p.posted}, acked {p.acked}, copies {p.copies}/"
            f"{p.expected_copies} in {p.seconds:.1f} s, last copy {p.drain * 1000:.0f} ms "
            f"after the last ack"
        )
        if p.duplicates:
            line += f", {p.duplicates} duplicate deliveries"
        print(line)
        if len(p.rss_mib) >= 4:
            # after a tenth of the run (warm-up: pools, caches, imports) to the end
            first, last = p.rss_mib[len(p.rss_mib) // 10], p.rss_mib[-1]
            growth = (last - first) / first * 100 if first else float("nan")
            print(f"    hub RSS: {first:.0f} -> {last:.0f} MiB ({growth:+.1f} %) under load")
        if len(p.cpu_ms_by_process) > 1:
            parts = ", ".join(f"{k} {v:.1f}" for k, v in p.cpu_ms_by_process.items())
            print(f"    hub CPU ms/event by process: {parts}")
        if p.errors:
            kinds = Counter(e.split(":")[0][:80] for e in p.errors).most_common(3)
            print(
                f"    refused/failed {len(p.errors)}: " + "; ".join(f"{n} x {k}" for k, n in kinds)
            )
        for lost in p.lost:
            print(f"    ! {lost}: figures void")
        if p.backends:
            b = p.backends
            print(
                f"    PostgreSQL backends: {len(b.pids)} distinct pids seen, at most {b.most} "
                f"at once; {b.sessions} new sessions (pg_stat_database)"
            )


def hub_describe(command: str) -> str:
    """The git commit of the checkout a `.venv/bin/hub` command belongs to."""
    path = Path(shlex.split(command)[0])
    root = path.resolve().parents[2] if path.parent.name == "bin" else Path.cwd()
    try:
        return (
            subprocess.run(
                ["git", "-C", str(root), "describe", "--always", "--dirty"],
                capture_output=True,
                text=True,
                timeout=5,
                check=True,
            ).stdout.strip()
            + f" at {root}"
        )
    except (OSError, subprocess.SubprocessError):
        return f"{root}, not a git checkout"


# -- entry point ----------------------------------------------------------------------------


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    default_hub = str(Path(sys.executable).parent / "hub")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load per phase")
    parser.add_argument(
        "--posters", type=int, default=16, help="closed-loop posting agents (0: skip the phase)"
    )
    parser.add_argument(
        "--rate", type=float, default=300.0, help="open-loop offered events/s (0: skip)"
    )
    parser.add_argument("--load-procs", type=int, default=2, help="load-generator processes")
    parser.add_argument("--prefetch", type=int, default=200, help="consumer prefetch")
    parser.add_argument("--ack-every", type=int, default=50, help="acks batched (multiple=True)")
    parser.add_argument("--raw-window", type=int, default=1000, help="raw copies unconfirmed")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for copies")
    parser.add_argument("--hub-cmd", default=default_hub, help="the hub command to measure")
    parser.add_argument(
        "--hub-env", action="append", default=[], metavar="K=V", help="extra hub environment"
    )
    parser.add_argument(
        "--serve-args", default="", help='extra `hub serve` arguments ("--workers 2 --no-dispatch")'
    )
    parser.add_argument(
        "--worker-procs", type=int, default=0, help="`hub worker` processes beside `hub serve`"
    )
    parser.add_argument("--idle", type=float, default=0.0, help="only measure idle CPU for S s")
    parser.add_argument("--amqp-url", default=DEFAULT_AMQP_URL)
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL)
    parser.add_argument("--log-level", default="WARNING", help="hub log level")
    args = parser.parse_args(argv)
    args.rewritten, args.receivers = [], []
    return args


async def main_async(args: argparse.Namespace) -> int:
    versions = {"rabbitmq": await rabbitmq_version(args.amqp_url)}
    kind = "sqlite" if args.db == "sqlite" else "postgresql"
    if kind == "postgresql":
        versions["postgresql"] = await postgres_version(args.pg_url)
    phases: list[Phase] = []
    with tempfile.TemporaryDirectory(prefix="sifhub-e2e-") as tmp_name:
        tmp = Path(tmp_name)
        async with (
            fresh_vhost(args.amqp_url) as (amqp_url, _),
            fresh_database(kind, tmp, args.pg_url) as db_url,
        ):
            hub = await start_hub(args, tmp, db_url, amqp_url)
            args.receivers = [r.rsplit(".", 1)[-1] for r in hub.receivers]
            admin = None
            try:
                if args.idle:
                    await asyncio.sleep(5)  # start-up work settles
                    cpu0, t0 = hub.cpu_seconds(), time.monotonic()
                    await asyncio.sleep(args.idle)
                    share = (hub.cpu_seconds() - cpu0) / (time.monotonic() - t0)
                    print(f"\nidle hub: {share:.1%} of one core over {args.idle:.0f} s")
                    print(f"  hub command {args.hub_cmd} ({hub_describe(args.hub_cmd)})")
                    return 0
                backends = None
                if kind == "postgresql":
                    admin = await asyncpg.connect(
                        db_url.replace("postgresql+asyncpg", "postgresql"), timeout=5
                    )
                    backends = (admin, db_url.rsplit("/", 1)[-1])
                bodies: dict[str, Any] = {}
                if args.posters:
                    print(f"closed loop: {args.posters} posters, {args.duration:.0f} s ...")
                    closed, bodies = await run_hub_phase(
                        args,
                        hub,
                        tmp,
                        f"hub closed ({args.posters} posters)",
                        posters=args.posters,
                        rate=0.0,
                        backends=backends,
                    )
                    phases.append(closed)
                if args.rate:
                    print(f"open loop: {args.rate:g} events/s offered, {args.duration:.0f} s ...")
                    opened, more = await run_hub_phase(
                        args,
                        hub,
                        tmp,
                        f"hub open ({args.rate:g}/s offered)",
                        posters=0,
                        rate=args.rate,
                        backends=backends,
                    )
                    phases.append(opened)
                    bodies = bodies or more
            finally:
                if admin is not None:
                    await admin.close()
                stop_hub(hub)
            if args.posters:
                print("raw aio-pika ...")
                phases.insert(
                    1, await run_raw_phase(args, amqp_url, tmp, bodies, len(hub.receivers))
                )
    report(args, versions, phases)
    return 0


def main(argv: list[str] | None = None) -> int:
    return asyncio.run(main_async(parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
