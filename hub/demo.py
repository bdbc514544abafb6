"""`hub demo`: a hub, a simulated school day, and what each LA service received.

Runs the real hub (SQLite in a temporary directory, the configured RabbitMQ) on a free
local port, with queues under a private prefix so a running hub is never disturbed. The
demo hub's clock starts on a Monday at 06:00 and is fast-forwarded to the delivery windows
the agreements name, so held copies can be seen being released.

Each route in and out is shown once: SIF events and a CSV upload in; out, Children Missing
Education consumes its queue over AMQP, Admissions' SIF agent pulls, HR & Payroll takes
webhook pushes (a local endpoint that checks each signature), the Virtual School's provider
reads a JSON feed, and the attendance team's weekly return is written as a CSV file.
"""

from __future__ import annotations

import asyncio
import json
import socket
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from lxml import etree

from adapters.json_feed import json_to_xml
from hub.api.app import create_app
from hub.composition import Hub, build_hub, start, stop
from hub.configfile import load_config
from hub.core import naming
from hub.core.config import (
    ApiDelivery,
    Delivery,
    FileDelivery,
    HubConfig,
    Subscriber,
    WebhookDelivery,
)
from hub.core.envelope import SIF_UK_NS
from hub.core.retry import RetryLadder
from hub.pipeline.release import release_once
from hub.settings import DEV_ADMIN_TOKEN, Settings
from hub.sif.build import event_copy
from hub.simulate import sample_data as data
from hub.simulate.la_consumer import Received, delete_queues, drain
from hub.simulate.la_endpoint import WebhookEndpoint, endpoint_running
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


@dataclass
class Routes:
    """How the demo reads the services that are not consumed over AMQP."""

    endpoint: WebhookEndpoint
    export_dir: Path = Path("/nonexistent")
    feed_key: str = ""
    feed_cursor: int = 0
    seen: dict[str, int] = field(default_factory=dict)  # copies already shown, per service
    feed_example: dict[str, Any] | None = None
    files_seen: int = 0


async def run_demo(config_path: Path) -> int:
    with tempfile.TemporaryDirectory(prefix="sifhub-demo-exports-") as exports:
        async with endpoint_running() as endpoint:
            return await _run(config_path, Routes(endpoint, Path(exports)))


# The weekly attendance return's columns, as its line-of-business import expects them.
ATTENDANCE_EXPORT = {
    "LearnerAttendance": {
        "LearnerRefId": "@LearnerPersonalRefId",
        "Date": "AttendanceDate",
        "Session": "Session",
        "Mark": "AttendanceCode",
    },
    "LearnerExclusion": {
        "LearnerRefId": "@LearnerPersonalRefId",
        "Type": "Category",
        "Reason": "Reason",
        "StartDate": "StartDate",
        "Sessions": "ActualSessions",
    },
}


def _with_routes(config: HubConfig, routes: Routes) -> HubConfig:
    """HR & Payroll by webhook, the Virtual School by JSON feed and the attendance team by
    file, for the demo."""
    deliveries: dict[str, Delivery] = {
        "hr-payroll": WebhookDelivery(type="webhook", url=routes.endpoint.url),
        "virtual-school": ApiDelivery(type="api"),
        "attendance-team": FileDelivery(
            type="file",
            directory=str(routes.export_dir),
            export=ATTENDANCE_EXPORT,
            filename="weekly-attendance-{created:%Y%m%d}-{seq}.csv",
            quiet_seconds=1,
        ),
    }
    subscribers = [
        s.model_copy(update={"delivery": deliveries[s.id]}) if s.id in deliveries else s
        for s in config.subscribers
    ]
    return config.model_copy(update={"subscribers": subscribers})


async def _run(config_path: Path, routes: Routes) -> int:
    config = _with_routes(load_config(config_path), routes)
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
                await _open_routes(client, routes)
                return await _play(hub, client, clock, routes)
        finally:
            server.should_exit = True
            await serving
            await stop(hub)  # its deliverers stop consuming before their queues go
            await delete_queues(settings.amqp_url, _queues(config))


def _queues(config: HubConfig) -> list[str]:
    retry = [
        naming.retry_queue(s.id, delay, config.queue_prefix)
        for s in config.subscribers
        if s.delivery.type != "amqp"
        for delay in RetryLadder().delays_ms
    ]
    return retry + [
        q
        for s in config.subscribers
        for q in (
            naming.subscriber_queue(s.id, config.queue_prefix),
            naming.dead_letter_queue(s.id, config.queue_prefix),
        )
    ]


async def _open_routes(client: httpx.AsyncClient, routes: Routes) -> None:
    """What an admin does once per service: a signing secret for HR & Payroll's endpoint,
    a feed key for the Virtual School's provider (each shown once)."""
    issued = await client.post("/admin/subscribers/hr-payroll/webhook-secret", headers=ADMIN)
    routes.endpoint.secret = issued.json()["secret"]
    issued = await client.post("/admin/subscribers/virtual-school/feed-key", headers=ADMIN)
    routes.feed_key = issued.json()["key"]


async def _play(hub: Hub, client: httpx.AsyncClient, clock: DemoClock, routes: Routes) -> int:
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
    print(f"\nSchool agents sent {sent} events; the hub routes what each agreement allows.")
    await _csv_upload(client, zone, learners)
    await _wait_routed(hub)
    copies = await _collect(hub, client, zone, routes)
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
        sub = _sub(hub, sub_id)
        if sub.delivery.type == "file":
            print(f"== {sub.name} (written to its export directory, then listed and downloaded)")
            await _from_files(hub, client, sub_id, routes)
            continue
        got = await _collect_one(hub, client, zone, sub_id, routes)
        _print_subscriber(_sub(hub, sub_id), got)
        if sub_id == "virtual-school" and routes.feed_example:
            print("   one feed item's data, as the provider reads it:")
            text = json.dumps(routes.feed_example["data"], indent=2)
            print("\n".join(f"     {line}" for line in text.splitlines()))
            print()
    await _suppression(hub, client, agents, learners[0], routes)
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


async def _csv_upload(client: httpx.AsyncClient, zone: str, learners: list[data.Learner]) -> None:
    """Matlock's MIS cannot speak SIF: it uploads the day's marks as an Integris-style CSV,
    with one row whose UPN has a wrong check letter."""
    matlock = [p for p in learners if p.school.laestab == "8302105"] or learners[:1]
    rows = ["UPN,DfE No,Date,Session,Mark"]
    rows += [f"{p.upn},{p.school.laestab},2026-11-25,AM,/" for p in matlock]
    bad = matlock[0].upn[:-1] + ("A" if matlock[0].upn[-1] != "A" else "B")
    rows.append(f"{bad},{matlock[0].school.laestab},2026-11-25,PM,/")
    answer = await client.post(
        f"/ingest/{zone}/csv/attendance",
        content="\n".join(rows).encode(),
        headers={"Content-Type": "text/csv"},
        auth=("matlock-mis", SECRETS["matlock-mis"]),
    )
    auth = ("matlock-mis", SECRETS["matlock-mis"])
    report = (await client.get(answer.headers["location"], auth=auth)).json()
    print(
        f"\nmatlock-mis uploads a CSV of {report.get('rows')} attendance rows -> "
        f"{answer.status_code}: {report.get('accepted')} accepted, "
        f"{report.get('rejected')} refused"
    )
    for problem in report.get("errors") or []:
        print(f"   line {problem['line']}, column {problem['column']}: {problem['problem']}")
    print()


async def _collect(
    hub: Hub, client: httpx.AsyncClient, zone: str, routes: Routes
) -> dict[str, list[Received]]:
    return {
        s.id: await _collect_one(hub, client, zone, s.id, routes) for s in hub.config.subscribers
    }


async def _collect_one(
    hub: Hub, client: httpx.AsyncClient, zone: str, sub_id: str, routes: Routes
) -> list[Received]:
    sub = _sub(hub, sub_id)
    if sub.delivery.type == "webhook":
        return await _pushed(hub, sub_id, routes)
    if sub.delivery.type == "api":
        return await _from_feed(hub, client, sub_id, routes)
    if sub.delivery.type == "file":
        return await _from_files(hub, client, sub_id, routes)
    if sub.pull_agent:
        return await _pull_all(SchoolAgent(client, zone, sub.pull_agent, SECRETS[sub.pull_agent]))
    return await drain(
        hub.settings.amqp_url, naming.subscriber_queue(sub.id, hub.config.queue_prefix)
    )


async def _pushed(hub: Hub, sub_id: str, routes: Routes) -> list[Received]:
    """The copies the endpoint accepted since the last look, once all released have come."""
    endpoint = routes.endpoint
    await _until_all_came(hub, sub_id, routes, lambda: len(endpoint.copies))
    copies = list(endpoint.copies.values())
    endpoint.copies.clear()
    return copies


async def _from_feed(
    hub: Hub, client: httpx.AsyncClient, sub_id: str, routes: Routes
) -> list[Received]:
    """The provider reads the feed from its cursor, as JSON (shown, then as the XML it maps)."""
    auth = {"Authorization": f"Bearer {routes.feed_key}"}
    items: list[dict[str, Any]] = []

    async def read() -> int:
        while True:
            page = (
                await client.get(
                    f"/api/v1/feeds/{sub_id}", params={"since": routes.feed_cursor}, headers=auth
                )
            ).json()
            items.extend(page["items"])
            routes.feed_cursor = page["next_cursor"]
            if not page["has_more"]:
                return len(items)

    await _until_all_came(hub, sub_id, routes, None, read)
    if items:
        routes.feed_example = next((i for i in items if i["object"] == "LearnerPersonal"), None)
    return [Received(i["id"], {}, json_to_copy(i), 2) for i in items]


async def _from_files(
    hub: Hub, client: httpx.AsyncClient, sub_id: str, routes: Routes
) -> list[Received]:
    """The files written since the last look, listed and downloaded through the admin API
    (as a line-of-business import job would pick them up from the directory)."""
    files: list[dict[str, Any]] = []

    async def listed() -> int:
        answer = await client.get(f"/admin/subscribers/{sub_id}/exports", headers=ADMIN)
        files[:] = [f for f in answer.json() if f["seq"] > routes.files_seen]
        return sum(f["rows"] for f in files)

    await _until_all_came(hub, sub_id, routes, None, listed)
    for f in files:
        routes.files_seen = max(routes.files_seen, f["seq"])
        body = (await client.get(f"/admin/exports/{f['id']}", headers=ADMIN)).text
        counts = ", ".join(f"{n} {o}" for o, n in sorted(f["counts"].items()))
        print(f"   file {f['file_name']}: {f['rows']} rows ({counts}), sha256 {f['sha256'][:12]}…")
        print("\n".join(f"     {line}" for line in body.splitlines()[:4]))
    print()
    return []


def json_to_copy(item: dict[str, Any]) -> bytes:
    """A feed item as the SIF copy it was mapped from (namespace restored), so the demo
    prints every route's copies alike."""
    element = etree.fromstring(json_to_xml(item["data"]))
    for node in element.iter():
        node.tag = f"{{{SIF_UK_NS}}}{etree.QName(node).localname}"
    return event_copy("2.0r1", "feed", item["id"], item["object"], item["action"], element)


async def _until_all_came(
    hub: Hub,
    sub_id: str,
    routes: Routes,
    have: Callable[[], int] | None,
    fetch: Callable[[], Awaitable[int]] | None = None,
) -> None:
    """Wait (up to 30 s) until the route has brought every copy released to the service
    since the last look: pushes arrive by themselves, a feed is read again."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    got = 0
    while loop.time() < deadline:
        got = await fetch() if fetch else have() if have else 0
        async with hub.store.transaction() as tx:
            released = (await tx.disclosures.stats()).delivered.get(sub_id, 0)
        if got >= released - routes.seen.get(sub_id, 0):
            break
        await asyncio.sleep(0.1)
    routes.seen[sub_id] = routes.seen.get(sub_id, 0) + got


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
    how = {
        "webhook": "pushed to its endpoint, signed",
        "api": "read from its JSON feed",
    }.get(
        sub.delivery.type,
        f"pulled by SIF agent {sub.pull_agent}" if sub.pull_agent else "consumed over AMQP",
    )
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
    elif sub.id == "virtual-school" and sub.delivery.type == "amqp":
        example = next(c for c in copies if etree.QName(c.object).localname == "LearnerPersonal")
        pretty = etree.tostring(example.object, pretty_print=True).decode()
        print("   one copy as delivered:")
        print("\n".join(f"     {line}" for line in pretty.splitlines()))
    print()


async def _suppression(
    hub: Hub,
    client: httpx.AsyncClient,
    agents: dict[str, SchoolAgent],
    p: data.Learner,
    routes: Routes,
) -> None:
    print("-- Suppression: ops record that a child has died --")
    await client.post(
        "/admin/suppressions", json={"learner": p.upn, "reason": "deceased"}, headers=ADMIN
    )
    await agents[p.school.laestab].send_event(
        "LearnerAttendance", "Add", data.learner_attendance(p, date(2026, 11, 24), "AM", "/")
    )
    await _wait_routed(hub)
    collected = await _collect(hub, client, hub.config.zones[0], routes)
    got = sum(len(v) for v in collected.values())
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
