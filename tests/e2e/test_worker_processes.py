"""Separate processes (docs/processes.md): `hub serve --workers 2 --no-dispatch` and two
`hub worker` processes on one database (SQLite and PostgreSQL), real RabbitMQ.

Every acked message reaches each entitled subscriber, once after de-duplication on the
message id as consumers do, and is disclosed once; and kill -9 of a worker and of an HTTP
process mid-stream loses nothing acked (the other worker takes the dead one's claims when
their lease runs out; the dead HTTP process is started again).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml
from sqlalchemy import text

from hub.composition import Role, build_hub, start, stop
from hub.core import naming
from hub.demo import SECRETS
from hub.settings import Settings
from hub.simulate import sample_data as data
from hub.simulate.la_consumer import delete_queues, drain
from hub.simulate.school_agent import SchoolAgent
from hub.store.store import open_store
from tests.db_fixtures import sqlite_url
from tests.e2e.conftest import AMQP_URL, COUNTY, _queues, county_config
from tests.e2e.hub_process import _free_port, wait_ready

pytestmark = [pytest.mark.integration, pytest.mark.slow]

AGENT, SCHOOL = "dovedale-mis", "8304012"  # no pupil exclusions for cme
SUBSCRIBER = "cme"
POSTERS = 4  # concurrent agents' connections: both HTTP processes take some
LEASE_SECONDS = "3"  # a killed worker's claims are free again this soon


@dataclass
class Processes:
    serve: subprocess.Popen[bytes]
    base: str
    database_url: str
    queue: str
    workers: list[subprocess.Popen[bytes]] = field(default_factory=list)


def _hub(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:  # kept with the test's tmp_path
        return subprocess.Popen(
            [sys.executable, "-m", "hub", *command], env=env, stdout=out, stderr=subprocess.STDOUT
        )


@asynccontextmanager
async def hub_processes(database_url: str, tmp_path: Path) -> AsyncIterator[Processes]:
    config = county_config()
    raw = yaml.safe_load(COUNTY.read_text())
    raw["queue_prefix"] = config.queue_prefix
    config_file = tmp_path / "county.yaml"
    config_file.write_text(yaml.safe_dump(raw))
    port = _free_port()
    env = {
        **os.environ,
        "HUB_DATABASE_URL": database_url,
        "HUB_AMQP_URL": AMQP_URL,
        "HUB_PORT": str(port),
        "HUB_DATA_DIR": str(tmp_path),
        "HUB_LOG_LEVEL": "WARNING",
        "HUB_AMQP_PROVISION_USERS": "false",
        "HUB_DISPATCH_LEASE_SECONDS": LEASE_SECONDS,
    }
    at = ["--config", str(config_file)]
    serve = _hub(["serve", *at, "--workers", "2", "--no-dispatch"], env, tmp_path / "serve.log")
    queue = naming.subscriber_queue(SUBSCRIBER, config.queue_prefix)
    started = Processes(serve, f"http://127.0.0.1:{port}", database_url, queue)
    try:
        async with httpx.AsyncClient(base_url=started.base, timeout=10) as client:
            await wait_ready(client)  # migrated: the workers find the schema in place
        started.workers = [_hub(["worker", *at], env, tmp_path / f"worker{i}.log") for i in (0, 1)]
        yield started
    finally:
        for process in [serve, *started.workers]:
            if process.poll() is None:
                process.terminate()
        for process in [serve, *started.workers]:
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        await delete_queues(AMQP_URL, _queues(config))


def _children(pid: int) -> list[int]:
    """The HTTP processes `hub serve --workers N` started (multiprocessing's spawn children;
    not its resource tracker)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            cmdline = (entry / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if ppid == pid and b"spawn_main" in cmdline:
            found.append(int(entry.name))
    return sorted(found)


async def _children_when(pid: int, ready: Callable[[list[int]], bool]) -> list[int]:
    """The HTTP processes once a replacement was started (within a second or so of a death),
    or as they are after a minute."""
    for _ in range(600):
        children = _children(pid)
        if len(children) == 2 and ready(children):
            return children
        await asyncio.sleep(0.1)
    return _children(pid)


def _learners(n: int) -> list[data.Learner]:
    return [p for p in data.make_learners(n * 3) if p.school.laestab == SCHOOL][:n]


async def _post_all(
    base: str, learners: list[data.Learner], on_sent: dict[int, Callable[[], None]] | None = None
) -> list[str]:
    """POSTERS agents post one LearnerPersonal Add each, in turn; `on_sent[i]` (a callable)
    runs once the i-th post is answered. Returns the RefIds acked."""
    acked: list[str] = []
    todo = list(enumerate(learners))
    sent = 0

    async def poster() -> None:
        nonlocal sent
        limits = httpx.Limits(max_keepalive_connections=1, max_connections=1)
        async with httpx.AsyncClient(base_url=base, timeout=20, limits=limits) as client:
            agent = SchoolAgent(client, "derbyshire", AGENT, SECRETS[AGENT])
            while todo:
                _, p = todo.pop(0)
                try:
                    ack = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))
                    if ack.status_code == 0:
                        acked.append(p.refid)
                except httpx.TransportError:
                    pass  # its process died: not acked, so not promised
                sent += 1
                hook = (on_sent or {}).get(sent)
                if hook is not None:
                    hook()

    await asyncio.gather(*(poster() for _ in range(POSTERS)))
    return acked


async def _register(base: str) -> None:
    async with httpx.AsyncClient(base_url=base, timeout=20) as client:
        assert (await SchoolAgent(client, "derbyshire", AGENT, SECRETS[AGENT]).register()).ok


async def _collect(queue: str, want: set[str], wait_seconds: float) -> dict[str, set[str]]:
    """{RefId: message ids} of every copy in `queue`, waiting until each of `want` came."""
    got: dict[str, set[str]] = {}
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait_seconds
    while True:
        for copy in await drain(AMQP_URL, queue, wait_seconds=1):
            got.setdefault(str(copy.object.get("RefId")), set()).add(copy.message_id)
        if want <= got.keys() or loop.time() > deadline:
            return got
        await asyncio.sleep(0.2)


async def _disclosed(database_url: str) -> list[tuple[str, int]]:
    """(copy message id, rows) for every copy disclosed to the subscriber."""
    store = await open_store(database_url, migrate=False)
    try:
        async with store.engine.connect() as conn:
            rows = await conn.execute(
                text(
                    "SELECT copy_msg_id, count(*) FROM disclosures "
                    "WHERE subscriber = :s GROUP BY copy_msg_id"
                ),
                {"s": SUBSCRIBER},
            )
            return [(str(r[0]), int(r[1])) for r in rows.all()]
    finally:
        await store.close()


async def test_two_http_processes_and_two_workers_deliver_each_ack_once(
    database_url: str, tmp_path: Path
) -> None:
    async with hub_processes(database_url, tmp_path) as hub:
        assert len(_children(hub.serve.pid)) == 2
        await _register(hub.base)
        learners = _learners(40)
        acked = await _post_all(hub.base, learners)
        assert sorted(acked) == sorted(p.refid for p in learners)  # nothing was killed
        got = await _collect(hub.queue, set(acked), wait_seconds=90)
        disclosed = await _disclosed(hub.database_url)
        http = _children(hub.serve.pid)
        hub.serve.terminate()  # SIGTERM: every HTTP process stops cleanly, then the parent
        assert await asyncio.to_thread(hub.serve.wait, 60) == 0
        assert not [pid for pid in http if Path(f"/proc/{pid}").exists()]
    assert got.keys() == set(acked)
    assert all(len(ids) == 1 for ids in got.values())  # one copy id per object
    assert len(disclosed) == len(acked)  # one disclosure per copy...
    assert all(rows == 1 for _, rows in disclosed)  # ...recorded once


async def test_kill_9_of_a_worker_and_an_http_process_loses_nothing_acked(
    database_url: str, tmp_path: Path
) -> None:
    async with hub_processes(database_url, tmp_path) as hub:
        http = _children(hub.serve.pid)
        assert len(http) == 2
        await _register(hub.base)

        def kill_worker() -> None:
            hub.workers[0].send_signal(signal.SIGKILL)

        def kill_http() -> None:
            os.kill(http[0], signal.SIGKILL)

        acked = await _post_all(hub.base, _learners(80), {25: kill_worker, 45: kill_http})
        assert hub.workers[0].wait(timeout=10) == -signal.SIGKILL
        assert len(acked) >= 60  # the stream went on through both kills
        got = await _collect(hub.queue, set(acked), wait_seconds=120)
        respawned = await _children_when(hub.serve.pid, lambda pids: http[0] not in pids)
        disclosed = await _disclosed(hub.database_url)
    assert set(acked) <= got.keys()  # nothing acked is lost
    assert http[0] not in respawned and len(respawned) == 2  # the dead process was replaced
    assert all(rows == 1 for _, rows in disclosed)  # a re-sent copy is disclosed once


async def test_a_refused_configuration_stops_every_http_process(tmp_path: Path) -> None:
    """Exit status 2, as for one process: restarting would be refused again and again."""
    config_file = tmp_path / "county.yaml"
    config_file.write_text("zones: [\n")
    env = {**os.environ, "HUB_DATA_DIR": str(tmp_path), "HUB_PORT": str(_free_port())}
    command = ["serve", "--config", str(config_file), "--workers", "2", "--no-dispatch"]
    serve = _hub(command, env, tmp_path / "serve.log")
    try:
        assert await asyncio.to_thread(serve.wait, 120) == 2
    finally:
        if serve.poll() is None:
            serve.kill()
            serve.wait()
    assert "county.yaml" in (tmp_path / "serve.log").read_text()


WORK = {"dispatch", "release", "purge", "wakeups"}


@pytest.mark.parametrize(
    ("role", "runs", "not_run"),
    [
        (Role.ALL, WORK | {"broker", "policy", "backlog"}, set()),
        (Role.HTTP, {"broker", "policy", "backlog"}, WORK),
        (Role.WORKER, WORK | {"broker", "policy"}, {"backlog"}),
    ],
)
async def test_each_role_runs_its_own_stages(
    role: Role, runs: set[str], not_run: set[str], tmp_path: Path
) -> None:
    config = county_config()
    settings = Settings(data_dir=tmp_path, database_url=sqlite_url(tmp_path), amqp_url=AMQP_URL)
    hub = await build_hub(settings, config, role=role)
    try:
        await start(hub)
        tasks = set(hub.supervisor.statuses())
    finally:
        await stop(hub)
        await delete_queues(AMQP_URL, _queues(config, settings))
    assert runs <= tasks
    assert not tasks & not_run
