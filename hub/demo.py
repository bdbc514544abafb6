"""`hub demo`: a hub, a simulated school day, and what each LA service received.

Runs the real hub (SQLite in a temporary directory, the configured RabbitMQ) on a free
local port, with queues under a private prefix so a running hub is never disturbed. The
demo hub's clock starts on a Monday at 06:00 and is fast-forwarded to the delivery windows
the agreements name, so held copies can be seen being released.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import httpx
import uvicorn
from lxml import etree

from hub.api.app import create_app
from hub.composition import Hub, build_hub, start, stop
from hub.configfile import load_config
from hub.core import naming
from hub.core.config import HubConfig, Subscriber
from hub.pipeline.release import release_once
from hub.settings import DEV_ADMIN_TOKEN, Settings
from hub.simulate import sample_data as data
from hub.simulate.la_consumer import Received, delete_queues, drain
from hub.simulate.school_agent import SchoolAgent

SECRETS = {
    "hilltop-mis": "hilltop-demo-secret",
    "dovedale-mis": "dovedale-demo-secret",
    "matlock-mis": "matlock-demo-secret",
    "capita-one": "capita-demo-secret",
}
ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}", "X-Hub-Note": "demo"}


class DemoClock:
    """Monday 06:00 UTC next week, running with real time; `jump` moves it ahead."""

    def __init__(self) -> None:
        today = datetime.now(UTC).date()
        monday = today + timedelta(days=7 - today.weekday())
        self.start = datetime(monday.year, monday.month, monday.day, 6, tzinfo=UTC)
        self._began = time.monotonic()
        self._offset = timedelta()

    def __call__(self) -> datetime:
        return self.start + self._offset + timedelta(seconds=time.monotonic() - self._began)

    def jump_to(self, hour: int, minute: int) -> None:
        target = self.start.replace(hour=hour, minute=minute)
        self._offset += max(timedelta(), target - self())


async def run_demo(config_path: Path) -> int:
    config = load_config(config_path)
    config = config.model_copy(update={"queue_prefix": f"sifhub-demo-{uuid.uuid4().hex[:6]}"})
    clock = DemoClock()
    with tempfile.TemporaryDirectory(prefix="sifhub-demo-") as tmp:
        # Its LA services read as the hub's own broker user: no per-service users to leave behind.
        settings = Settings(data_dir=Path(tmp), port=_free_port(), amqp_provision_users=False)
        hub = await build_hub(settings, config, clock)
        await start(hub)
        app = create_app(hub)
        server = uvicorn.Server(
            uvicorn.Config(
                app, host="127.0.0.1", port=settings.port, log_level="warning", lifespan="off"
            )
        )
        serving = asyncio.create_task(server.serve())
        try:
            await _wait_started(server)
            async with httpx.AsyncClient(
                base_url=f"http://127.0.0.1:{settings.port}", timeout=30
            ) as client:
                return await _play(hub, client, clock)
        finally:
            server.should_exit = True
            await serving
            await delete_queues(settings.amqp_url, _queues(config))
            await stop(hub)


def _queues(config: HubConfig) -> list[str]:
    return [
        q
        for s in config.subscribers
        for q in (
            naming.subscriber_queue(s.id, config.queue_prefix),
            naming.dead_letter_queue(s.id, config.queue_prefix),
        )
    ]


async def _play(hub: Hub, client: httpx.AsyncClient, clock: DemoClock) -> int:
    zone = hub.config.zones[0]
    learners = data.make_learners(8)
    staff = data.make_staff(2)
    in_care = [p for p in learners if p.in_care]
    print(
        f"SIF Hub demo: zone {zone!r}, {len(learners)} pupils ({len(in_care)} in care), "
        f"{len(staff)} staff; the hub's clock reads {clock():%A %H:%M} UTC\n"
    )
    agents = {
        s.laestab: SchoolAgent(client, zone, a.id, SECRETS[a.id])
        for a in hub.config.agents
        for s in data.SCHOOLS
        if s.laestab in a.schools
    }
    cohort = [p.upn for p in in_care]
    await client.put(
        "/admin/subscribers/virtual-school/cohorts/children-in-care",
        json={"learners": cohort},
        headers=ADMIN,
    )
    print(f"The Virtual School supplies its cohort of children in care ({len(cohort)}).")
    for agent in agents.values():
        _show("register", agent.agent_id, await agent.register())
    sent = await _school_day(agents, learners, staff)
    print(f"\nSchool agents sent {sent} events; the hub routes what each agreement allows.\n")
    await _wait_routed(hub)
    copies = await _collect(hub, client, zone)
    immediate = [
        s for s in hub.config.subscribers if s.id not in ("virtual-school", "attendance-team")
    ]
    notes = {"cme": "one Hilltop pupil is withheld: the school recorded a parent's objection"}
    for sub in immediate:
        _print_subscriber(sub, copies[sub.id], notes.get(sub.id))
    for hour, minute, sub_id, why in (
        (7, 1, "attendance-team", "the weekly Monday 07:00 return"),
        (9, 31, "virtual-school", "the Virtual School's 09:30 window"),
    ):
        clock.jump_to(hour, minute)
        await release_once(hub.dispatch)
        print(f"-- {clock():%H:%M}: {why} releases the copies held for it --\n")
        _print_subscriber(_sub(hub, sub_id), await _collect_one(hub, client, zone, sub_id))
    await _suppression(hub, client, agents, learners[0])
    await _subject_access(client, learners[2])
    return 0


async def _school_day(
    agents: dict[str, SchoolAgent], learners: list[data.Learner], staff: list[data.Staff]
) -> int:
    day = date(2026, 11, 23)
    sent = 0
    for school in data.SCHOOLS:
        await agents[school.laestab].send_event("SchoolInfo", "Add", data.school_info(school))
        sent += 1
    for p in learners:
        agent = agents[p.school.laestab]
        await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))
        for session, code in (("AM", "/"), ("PM", "\\" if p.refid[-1] < "C" else "N")):
            await agent.send_event(
                "LearnerAttendance", "Add", data.learner_attendance(p, day, session, code)
            )
            sent += 1
        sent += 1
    suspended = learners[1]
    ack = await agents[suspended.school.laestab].send_event(
        "LearnerExclusion", "Add", data.learner_exclusion(suspended, day + timedelta(days=1), 4)
    )
    _show("LearnerExclusion", agents[suspended.school.laestab].agent_id, ack)
    other = next(p for p in learners if p.school.laestab != data.SCHOOLS[0].laestab)
    wrong = agents[data.SCHOOLS[0].laestab]
    ack = await wrong.send_event(
        "LearnerAttendance", "Add", data.learner_attendance(other, day, "AM", "/")
    )
    _show("another school's", wrong.agent_id, ack)
    print(f"  {'':<14} {'':<18}    ({ack.desc})")
    for s in staff:
        await agents[s.school.laestab].send_event(
            "WorkforcePersonal", "Add", data.workforce_personal(s)
        )
    return sent + 1 + len(staff)


async def _collect(hub: Hub, client: httpx.AsyncClient, zone: str) -> dict[str, list[Received]]:
    return {s.id: await _collect_one(hub, client, zone, s.id) for s in hub.config.subscribers}


async def _collect_one(
    hub: Hub, client: httpx.AsyncClient, zone: str, sub_id: str
) -> list[Received]:
    sub = _sub(hub, sub_id)
    if sub.pull_agent:
        return await _pull_all(SchoolAgent(client, zone, sub.pull_agent, SECRETS[sub.pull_agent]))
    return await drain(
        hub.settings.amqp_url, naming.subscriber_queue(sub.id, hub.config.queue_prefix)
    )


def _sub(hub: Hub, sub_id: str) -> Subscriber:
    sub = hub.config.subscriber(sub_id)
    assert sub is not None
    return sub


async def _pull_all(agent: SchoolAgent) -> list[Received]:
    await agent.register("Pull")
    copies: list[Received] = []
    while True:
        ack = await agent.get_message()
        if ack.data is None:
            return copies
        msg_id = ack.data.findtext(f"*/*/{{{ack.data.nsmap[None]}}}SIF_MsgId") or ""
        copies.append(Received(msg_id, {}, etree.tostring(ack.data), 2))
        await agent.ack(msg_id)


def _print_subscriber(sub: Subscriber, copies: list[Received], note: str | None = None) -> None:
    how = f"pulled by SIF agent {sub.pull_agent}" if sub.pull_agent else "consumed over AMQP"
    kinds = Counter(etree.QName(c.object).localname for c in copies)
    print(f"== {sub.name}: {len(copies)} copies ({how})")
    for object_name, count in sorted(kinds.items()):
        example = next(c for c in copies if etree.QName(c.object).localname == object_name)
        paths = example.element_paths()
        leaves = sorted(p for p in paths if not any(o.startswith(p + "/") for o in paths))
        print(f"   {object_name} x{count}: {', '.join(leaves) or '(keys only)'}")
    if note:
        print(f"   ({note})")
    if not copies:
        print("   (nothing: no live agreement covers what the schools sent)")
    elif sub.id == "virtual-school":
        example = next(c for c in copies if etree.QName(c.object).localname == "LearnerPersonal")
        pretty = etree.tostring(example.object, pretty_print=True).decode()
        print("   one copy as delivered:")
        print("\n".join(f"     {line}" for line in pretty.splitlines()))
    print()


async def _suppression(
    hub: Hub, client: httpx.AsyncClient, agents: dict[str, SchoolAgent], p: data.Learner
) -> None:
    print("-- Suppression: ops record that a child has died --")
    await client.post(
        "/admin/suppressions", json={"learner": p.upn, "reason": "deceased"}, headers=ADMIN
    )
    await agents[p.school.laestab].send_event(
        "LearnerAttendance", "Add", data.learner_attendance(p, date(2026, 11, 24), "AM", "/")
    )
    await _wait_routed(hub)
    got = sum(len(v) for v in (await _collect(hub, client, hub.config.zones[0])).values())
    print(f"   a later mark for that child reached {got} services (every agreement overridden)\n")


async def _subject_access(client: httpx.AsyncClient, p: data.Learner) -> None:
    report = (
        await client.post("/admin/disclosures/search", json={"upn": p.upn}, headers=ADMIN)
    ).json()
    print(f"-- Subject access report for one child: {report['count']} disclosures --")
    for row in report["disclosures"][:6]:
        print(
            f"   {row['subscriber']:<16} {row['object_name']:<18} {row['agreement_id']}"
            f" v{row['agreement_version']}  {row['lawful_basis']}"
        )
    print()


def _show(what: str, agent_id: str, ack: object) -> None:
    status = getattr(ack, "status_code", None)
    error = getattr(ack, "error_category", None)
    code = getattr(ack, "error_code", "")
    outcome = f"SIF_Status {status}" if error is None else f"SIF_Error {error}/{code}"
    print(f"  {agent_id:<14} {what:<18} -> {outcome}")


async def _wait_routed(hub: Hub, seconds: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        async with hub.store.transaction() as tx:
            if (await tx.disclosures.stats()).pending == 0:
                return
        await asyncio.sleep(0.1)
    print("warning: some messages are still waiting to be routed (is RabbitMQ up?)")


async def _wait_started(server: uvicorn.Server) -> None:
    while not server.started:  # noqa: ASYNC110 - uvicorn offers no event for this
        await asyncio.sleep(0.02)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port
