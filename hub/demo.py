"""`hub demo`: a hub, a simulated school day, and what each LA service received.

Runs the real hub (SQLite in a temporary directory, the configured RabbitMQ) on a free
local port, with queues under a private prefix so a running hub is never disturbed.
"""

from __future__ import annotations

import asyncio
import socket
import tempfile
import uuid
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import httpx
import uvicorn
from lxml import etree

from adapters import sample_data as data
from adapters.la_consumer import Received, delete_queues, drain
from adapters.school_agent import SchoolAgent
from hub.api.app import create_app
from hub.composition import Hub, build_hub, start, stop
from hub.configfile import load_config
from hub.core import naming
from hub.settings import Settings

SECRETS = {
    "hilltop-mis": "hilltop-demo-secret",
    "dovedale-mis": "dovedale-demo-secret",
    "matlock-mis": "matlock-demo-secret",
    "capita-one": "capita-demo-secret",
}


async def run_demo(config_path: Path) -> int:
    config = load_config(config_path)
    config = config.model_copy(update={"queue_prefix": f"sifhub-demo-{uuid.uuid4().hex[:6]}"})
    with tempfile.TemporaryDirectory(prefix="sifhub-demo-") as tmp:
        settings = Settings(data_dir=Path(tmp), port=_free_port())
        hub = await build_hub(settings, config)
        await start(hub)
        server = uvicorn.Server(
            uvicorn.Config(
                create_app(hub),
                host="127.0.0.1",
                port=settings.port,
                log_level="warning",
                lifespan="off",
            )
        )
        serving = asyncio.create_task(server.serve())
        try:
            await _wait_started(server)
            return await _play(hub, f"http://127.0.0.1:{settings.port}")
        finally:
            server.should_exit = True
            await serving
            queues = [
                q
                for s in config.subscribers
                for q in (
                    naming.subscriber_queue(s.id, config.queue_prefix),
                    naming.dead_letter_queue(s.id, config.queue_prefix),
                )
            ]
            await delete_queues(settings.amqp_url, queues)
            await stop(hub)


async def _play(hub: Hub, base_url: str) -> int:
    zone = hub.config.zones[0]
    learners = data.make_learners(6)
    staff = data.make_staff(2)
    print(f"SIF Hub demo: zone {zone!r}, {len(learners)} pupils, {len(staff)} staff\n")
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        agents = {
            s.laestab: SchoolAgent(client, zone, a.id, SECRETS[a.id])
            for a in hub.config.agents
            for s in data.SCHOOLS
            if s.laestab in a.schools
        }
        for agent in agents.values():
            _show("register", agent.agent_id, await agent.register())
        sent = await _school_day(agents, learners, staff)
        print(f"\nSchool agents sent {sent} events; waiting for the hub to route them...\n")
        await _wait_routed(hub)
        await _report(hub, client, zone)
    return 0


async def _school_day(
    agents: dict[str, SchoolAgent], learners: list[data.Learner], staff: list[data.Staff]
) -> int:
    day = date(2026, 11, 23)
    sent = 0
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


async def _report(hub: Hub, client: httpx.AsyncClient, zone: str) -> None:
    for sub in hub.config.subscribers:
        queue = naming.subscriber_queue(sub.id, hub.config.queue_prefix)
        if sub.pull_agent:
            copies = await _pull_all(
                SchoolAgent(client, zone, sub.pull_agent, SECRETS[sub.pull_agent])
            )
            how = f"pulled by SIF agent {sub.pull_agent} with SIF_GetMessage"
        else:
            copies = await drain(hub.settings.amqp_url, queue)
            how = f"consumed over AMQP from {queue}"
        _print_subscriber(sub.name, how, copies)


async def _pull_all(agent: SchoolAgent) -> list[Received]:
    await agent.register("Pull")
    copies: list[Received] = []
    while True:
        ack = await agent.get_message()
        if ack.data is None:
            return copies
        body = etree.tostring(ack.data)
        msg_id = ack.data.findtext(f"*/*/{{{ack.data.nsmap[None]}}}SIF_MsgId") or ""
        copies.append(Received(msg_id, {}, body, 2))
        await agent.ack(msg_id)


def _print_subscriber(name: str, how: str, copies: list[Received]) -> None:
    kinds = Counter(etree.QName(c.object).localname for c in copies)
    print(f"== {name}: {len(copies)} copies ({how})")
    for object_name, count in sorted(kinds.items()):
        example = next(c for c in copies if etree.QName(c.object).localname == object_name)
        fields = sorted(
            p
            for p in example.element_paths()
            if not any(o.startswith(p + "/") for o in example.element_paths())
        )
        print(f"   {object_name} x{count}: {', '.join(fields)}")
    if not copies:
        print("   (nothing: no agreement covers what the schools sent)")
    elif name.startswith("Virtual School"):
        example = next(c for c in copies if c.headers.get(naming.H_OBJECT) == "LearnerPersonal")
        print("   one copy as delivered:")
        pretty = etree.tostring(example.object, pretty_print=True).decode()
        print("\n".join(f"     {line}" for line in pretty.splitlines()))
    print()


def _show(what: str, agent_id: str, ack: object) -> None:
    status = getattr(ack, "status_code", None)
    error = getattr(ack, "error_category", None)
    outcome = (
        f"SIF_Status {status}"
        if error is None
        else f"SIF_Error {error}/{getattr(ack, 'error_code', '')}"
    )
    print(f"  {agent_id:<14} {what:<18} -> {outcome}")


async def _wait_routed(hub: Hub, seconds: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while loop.time() < deadline:
        async with hub.store.transaction() as tx:
            if (await tx.stats()).pending == 0:
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
