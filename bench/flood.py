"""Hostile load on a real `hub serve`: a wrong-password flood and a burst of large bodies.

Figures only; nothing is asserted. The hub runs in its own process (`python -m hub serve`,
a temporary SQLite database, the shipped county configuration under a private queue
prefix, provisioning off); the flood runs in another process; this process is the real
agent and the health probe.

1. Flood: `hilltop-mis` registers and pings (its secret is now verified); then C clients
   (another process, one connection each) post SIF_Ping as `hilltop-mis` with a wrong
   password as fast as the hub answers, for S seconds, while the real agent pings every
   50 ms. Printed: the real agent's ping p50 / p99 / max during the flood (and before, as a
   baseline), the flood's answers by HTTP status, and the hub's RSS before, at its peak and
   after.
2. Large bodies: N valid LearnerPersonal Add events of about B MB each (one learner with a
   long OtherPhoneNumberList) posted at once, while /health/live is probed every 20 ms.
   Printed: /health/live latency p50 / max, the acks, how long routing took after the
   last answer (outbox empty in /admin/stats, at most --drain-seconds), and the hub's RSS
   before, at its peak, once the posts are answered and 5 s after routing.

    .venv/bin/python bench/flood.py                       # both, defaults below
    .venv/bin/python bench/flood.py --skip-large --flood-seconds 30
    PYTHONPATH=/path/to/other/checkout .venv/bin/python bench/flood.py   # another hub's code

RSS comes from psutil when installed, else /proc/<pid>/status (Linux).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import (
    COUNTY,
    DEFAULT_AMQP_URL,
    Summary,
    delete_topology,
    free_port,
    hub_code,
    machine_facts,
)

from hub.configfile import load_config
from hub.demo import SECRETS
from hub.settings import DEV_ADMIN_TOKEN
from hub.simulate import sample_data as data
from hub.simulate import sif_messages as m
from hub.simulate.school_agent import read_ack

AGENT = "hilltop-mis"
HILLTOP = "8302001"
ZONE = "derbyshire"
ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}


# -- the hub process and its memory ------------------------------------------------------


def rss_mb(pid: int) -> float:
    try:
        import psutil  # type: ignore[import-not-found, unused-ignore]

        return float(psutil.Process(pid).memory_info().rss) / 2**20
    except ImportError:
        pass
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


class RssPeak:
    """Samples a process's RSS every 0.2 s while running; keeps the largest."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak = pid, 0.0
        self._task: asyncio.Task[None] | None = None

    async def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_mb(self.pid))
            await asyncio.sleep(0.2)

    def __enter__(self) -> RssPeak:
        self._task = asyncio.get_running_loop().create_task(self._sample())
        return self

    def __exit__(self, *_: object) -> None:
        if self._task is not None:
            self._task.cancel()


def start_hub(tmp: Path, port: int, prefix: str, log: Path) -> subprocess.Popen[bytes]:
    config = tmp / "county.yaml"
    text = COUNTY.read_text()
    config.write_text(text.replace("queue_prefix: sifhub ", f"queue_prefix: {prefix} ", 1))
    env = {
        **os.environ,
        "HUB_DATA_DIR": str(tmp),
        "HUB_DATABASE_URL": f"sqlite+aiosqlite:///{tmp / 'hub.db'}",
        "HUB_AMQP_URL": DEFAULT_AMQP_URL,
        "HUB_AMQP_PROVISION_USERS": "false",
        "HUB_LOG_LEVEL": "WARNING",
    }
    with log.open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hub", "serve", "--config", str(config), "--port", str(port)],
            cwd=tmp,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def wait_live(base: str, hub: subprocess.Popen[bytes], seconds: float = 90) -> None:
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(base_url=base, timeout=2) as client:
        while time.perf_counter() < deadline:
            if hub.poll() is not None:
                raise SystemExit(f"hub exited with {hub.returncode}")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/health/live")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise SystemExit("hub did not start")


# -- the real agent ----------------------------------------------------------------------


async def timed(call: Callable[[], Awaitable[Any]]) -> tuple[float, Any]:
    began = time.perf_counter()
    result = await call()
    return time.perf_counter() - began, result


async def ping_loop(client: httpx.AsyncClient, until: float, every: float) -> list[float]:
    """The real agent's SIF_Ping, one at a time, until `until`; latencies of OK answers."""
    seconds: list[float] = []
    while time.perf_counter() < until:
        took, response = await timed(
            lambda: client.post(
                f"/sif/{ZONE}",
                content=m.system_control(AGENT, "SIF_Ping"),
                auth=(AGENT, SECRETS[AGENT]),
                headers={"Content-Type": "application/xml"},
            )
        )
        ack = read_ack(response.status_code, response.content)
        if ack.ok:
            seconds.append(took)
        else:
            print(f"  ! real agent's ping answered {response.status_code}", file=sys.stderr)
        await asyncio.sleep(max(0.0, every - took))
    return seconds


# -- the flood (its own process) ---------------------------------------------------------


async def flood(base: str, seconds: float, concurrency: int) -> dict[str, int]:
    statuses: Counter[str] = Counter()
    body = m.system_control(AGENT, "SIF_Ping")
    until = time.perf_counter() + seconds

    async def one() -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as client:
            while time.perf_counter() < until:
                try:
                    response = await client.post(
                        f"/sif/{ZONE}", content=body, auth=(AGENT, "wrong-password")
                    )
                    statuses[str(response.status_code)] += 1
                except httpx.HTTPError as exc:
                    statuses[type(exc).__name__] += 1

    await asyncio.gather(*(one() for _ in range(concurrency)))
    return dict(statuses)


def run_flood_process(base: str, seconds: float, concurrency: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, __file__, "_flood", base, str(seconds), str(concurrency)],
        stdout=subprocess.PIPE,
    )


# -- the two cases -----------------------------------------------------------------------


async def case_flood(
    base: str, pid: int, seconds: float, concurrency: int
) -> list[tuple[str, str]]:
    async with httpx.AsyncClient(base_url=base, timeout=120) as client:
        baseline = await ping_loop(client, time.perf_counter() + 5, 0.05)
        before = rss_mb(pid)
        with RssPeak(pid) as peak:
            flooder = run_flood_process(base, seconds, concurrency)
            await asyncio.sleep(1)  # let the flood reach full speed
            during = await ping_loop(client, time.perf_counter() + seconds - 2, 0.05)
            out, _ = await asyncio.to_thread(flooder.communicate)
        await asyncio.sleep(5)
        after = rss_mb(pid)
    answers = json.loads(out or b"{}")
    b, d = Summary.of(baseline), Summary.of(during)
    return [
        ("real agent ping before flood p50 / p99", f"{b.p50 * 1e3:.1f} / {b.p99 * 1e3:.1f} ms"),
        (
            f"real agent ping during {concurrency}-concurrent flood p50 / p99 / max",
            f"{d.p50 * 1e3:.1f} / {d.p99 * 1e3:.1f} / {d.max * 1e3:.1f} ms ({d.count} pings)",
        ),
        ("flood answers by status", ", ".join(f"{k}: {v}" for k, v in sorted(answers.items()))),
        (
            "hub RSS before / peak / 5 s after flood",
            f"{before:.0f} / {peak.peak:.0f} / {after:.0f} MB",
        ),
    ]


async def wait_routed(client: httpx.AsyncClient, seconds: float) -> str:
    """Seconds until /admin/stats shows nothing pending, or that it did not drain."""
    began = time.perf_counter()
    while time.perf_counter() - began < seconds:
        with contextlib.suppress(httpx.HTTPError):
            stats = await client.get("/admin/stats", headers=ADMIN)
            if stats.status_code == 200 and stats.json().get("pending") == 0:
                return f"{time.perf_counter() - began:.0f} s after the last answer"
        await asyncio.sleep(1)
    return f"not within {seconds:.0f} s (RSS taken then)"


def large_body(megabytes: float) -> bytes:
    learner = next(p for p in data.make_learners(9) if p.school.laestab == HILLTOP)
    xml = data.learner_personal(learner)
    phone = f'<PhoneNumber Type="H"><Number>01629 {learner.local_id}0</Number></PhoneNumber>'
    count = int(megabytes * 1_000_000) // len(phone)
    many = f"{phone}<OtherPhoneNumberList>{phone * count}</OtherPhoneNumberList>"
    return m.event(AGENT, "LearnerPersonal", "Add", xml.replace(phone, many, 1))


async def case_large(
    base: str, pid: int, bodies: int, megabytes: float, drain_seconds: float
) -> list[tuple[str, str]]:
    payloads = [large_body(megabytes) for _ in range(bodies)]
    size = len(payloads[0]) / 1e6
    health: list[float] = []
    done = asyncio.Event()

    async def probe(client: httpx.AsyncClient) -> None:
        while not done.is_set():
            took, _ = await timed(lambda: client.get("/health/live"))
            health.append(took)
            await asyncio.sleep(0.02)

    async with (
        httpx.AsyncClient(base_url=base, timeout=300) as prober,
        httpx.AsyncClient(
            base_url=base, timeout=300, limits=httpx.Limits(max_connections=bodies)
        ) as poster,
    ):
        before = rss_mb(pid)
        with RssPeak(pid) as peak:
            probing = asyncio.create_task(probe(prober))
            began = time.perf_counter()
            responses = await asyncio.gather(
                *(
                    poster.post(
                        f"/sif/{ZONE}",
                        content=body,
                        auth=(AGENT, SECRETS[AGENT]),
                        headers={"Content-Type": "application/xml"},
                    )
                    for body in payloads
                )
            )
            answered = time.perf_counter() - began
            await asyncio.sleep(2)
            done.set()
            await probing
        del payloads
        after = rss_mb(pid)
        drained = await wait_routed(prober, drain_seconds)
        await asyncio.sleep(5)
        later = rss_mb(pid)
    acks = Counter(
        "ok" if a.ok else f"{a.http_status} {a.error_category}/{a.error_code}"
        for a in (read_ack(r.status_code, r.content) for r in responses)
    )
    h = Summary.of(health)
    return [
        (
            f"{bodies} x {size:.1f} MB bodies at once: acks",
            ", ".join(f"{k}: {v}" for k, v in acks.items()),
        ),
        ("all answered after", f"{answered:.1f} s"),
        (
            "/health/live meanwhile p50 / max",
            f"{h.p50 * 1e3:.1f} / {h.max * 1e3:.1f} ms ({h.count} probes)",
        ),
        ("all routed (outbox empty) after", drained),
        (
            "hub RSS before / peak / answered / 5 s after routed",
            f"{before:.0f} / {peak.peak:.0f} / {after:.0f} / {later:.0f} MB",
        ),
    ]


async def main(args: argparse.Namespace) -> None:
    prefix = f"sifhub-flood-{uuid.uuid4().hex[:8]}"
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    rows: list[tuple[str, str]] = [("hub code", hub_code())]
    rows += list(machine_facts().items())
    with tempfile.TemporaryDirectory(prefix="hub-flood-") as tmp_name:
        tmp = Path(tmp_name)
        hub = start_hub(tmp, port, prefix, tmp / "hub.log")
        try:
            await wait_live(base, hub)
            async with httpx.AsyncClient(base_url=base, timeout=60) as client:
                register = await client.post(
                    f"/sif/{ZONE}",
                    content=m.register(AGENT, "Push"),
                    auth=(AGENT, SECRETS[AGENT]),
                )
                assert read_ack(register.status_code, register.content).ok, register.text
            rows.append(("hub RSS after start-up and one agent", f"{rss_mb(hub.pid):.0f} MB"))
            if not args.skip_flood:
                rows += await case_flood(base, hub.pid, args.flood_seconds, args.concurrency)
            if not args.skip_large:
                rows += await case_large(
                    base, hub.pid, args.bodies, args.body_mb, args.drain_seconds
                )
        finally:
            hub.send_signal(signal.SIGINT)
            try:
                hub.wait(30)
            except subprocess.TimeoutExpired:
                hub.kill()
            await delete_topology(
                DEFAULT_AMQP_URL, prefix, [s.id for s in load_config(COUNTY).subscribers]
            )
            log = (tmp / "hub.log").read_text(errors="replace")
            tracebacks = log.count("Traceback")
            rows.append(("tracebacks in the hub's log", str(tracebacks)))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        print(f"{key:<{width}}  {value}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--flood-seconds", type=float, default=20.0)
    parser.add_argument("--concurrency", type=int, default=48)
    parser.add_argument("--bodies", type=int, default=20)
    parser.add_argument("--body-mb", type=float, default=9.9)
    parser.add_argument(
        "--drain-seconds", type=float, default=300.0, help="wait this long for routing"
    )
    parser.add_argument("--skip-flood", action="store_true")
    parser.add_argument("--skip-large", action="store_true")
    return parser


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_flood":
        _, _, url, secs, conc = sys.argv
        print(json.dumps(asyncio.run(flood(url, float(secs), int(conc)))))
    else:
        asyncio.run(main(_parser().parse_args()))
