"""The JSON pull feed end to end: Derbyshire schedule 6 as configured in
deploy/examples/derbyshire-virtual-school.yaml (SIF in, the Virtual School's provider pulls
JSON twice a day, children in care only), over real RabbitMQ and the real database. An AMQP
mirror on the same agreement shows the feed releases exactly what the queue route does;
then a real `hub serve` process is read over real sockets."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sqlite3
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import select

from adapters.json_feed import copy_object
from hub.api.app import create_app
from hub.core.config import HubConfig
from hub.demo import SECRETS
from hub.settings import DEV_ADMIN_TOKEN
from hub.simulate import sample_data as data
from hub.simulate.school_agent import SchoolAgent
from hub.store.models import disclosures
from tests.e2e.conftest import RunningHub, _wait_connected, county_config, hub_running
from tests.e2e.hub_process import hub_process

pytestmark = pytest.mark.integration

EXAMPLE = Path(__file__).resolve().parents[2] / "deploy/examples/derbyshire-virtual-school.yaml"
VS = "virtual-school"
MIRROR = "vs-mirror"  # AMQP, same agreement, same cohort
OTHER = "other-provider"  # pulls too, under no agreement: its key must never open VS's feed
AGREEMENT = "DCC-ISS6-2026"
COHORT = "children-in-care"
EXCLUDED_BY_SCHOOL = "P830200123843"  # Hilltop's all_except entry in the example
AGENT_FOR = {"8302001": "hilltop-mis", "8304012": "dovedale-mis", "8302105": "matlock-mis"}
DAY = date(2026, 11, 23)
PROBLEM = "application/problem+json"
# What schedule 6 allows, as JSON keys (anything else in a JSON dump is a leak).
NEVER = ["Ethnicity", "Religion", "InCare", "Address", "PhoneNumber", "Gender", "LocalId",
         "AttendanceNote", "AttendanceDomain", "InputSource", "CurrentSchoolEnrolment"]  # fmt: skip


def example(edit: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    raw: dict[str, Any] = yaml.safe_load(EXAMPLE.read_text())
    raw["queue_prefix"] = county_config().queue_prefix
    raw["subscribers"] += [
        {"id": MIRROR, "name": "Virtual School audit mirror (AMQP)"},
        {"id": OTHER, "name": "Another pulling provider", "delivery": {"type": "api"}},
    ]
    raw["agreements"][0]["recipients"].append(MIRROR)
    if edit is not None:
        edit(raw)
    return raw


async def _until(check: Callable[[], Any], what: str, seconds: float = 30.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while not (result := await check()):
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
    return result


async def _school_day(client: httpx.AsyncClient, learners: list[data.Learner]) -> str:
    """Each learner's record and AM mark; the in-care learner's mark is then withdrawn
    (Delete). Returns that mark's RefId."""
    agents = {a: SchoolAgent(client, "derbyshire", a, SECRETS[a]) for a in AGENT_FOR.values()}
    for agent in agents.values():
        assert (await agent.register()).ok
    mark_refid = "D" * 32
    for p in learners:
        agent = agents[AGENT_FOR[p.school.laestab]]
        assert (await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))).ok
        mark = data.learner_attendance(p, DAY, "AM", "/", refid=mark_refid if p.in_care else None)
        assert (await agent.send_event("LearnerAttendance", "Add", mark)).ok
        if p.in_care:
            assert (await agent.send_event("LearnerAttendance", "Delete", mark)).ok
    return mark_refid


def _cohort(learners: list[data.Learner]) -> tuple[list[data.Learner], list[str]]:
    """One child in care, plus (if the sample has them) the pupil Hilltop excluded."""
    in_care = [learners[1]]
    upns = [learners[1].upn] + [p.upn for p in learners if p.upn == EXCLUDED_BY_SCHOOL]
    return in_care, upns


def _in_care(learners: list[data.Learner]) -> list[data.Learner]:
    return [dataclasses.replace(p, in_care=i == 1) for i, p in enumerate(learners)]


async def _fetch(client: httpx.AsyncClient, key: str, **params: Any) -> httpx.Response:
    return await client.get(
        f"/api/v1/feeds/{params.pop('subscriber', VS)}",
        params=params,
        headers={"Authorization": f"Bearer {key}"},
    )


async def _pages(client: httpx.AsyncClient, key: str, limit: int) -> list[dict[str, Any]]:
    """Every page from the start, following next_cursor until has_more is false."""
    pages: list[dict[str, Any]] = []
    since = 0
    while True:
        response = await _fetch(client, key, since=since, limit=limit)
        assert response.status_code == 200, response.text
        pages.append(response.json())
        since = pages[-1]["next_cursor"]
        if not pages[-1]["has_more"]:
            return pages


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


async def test_schedule_6_feed_releases_exactly_what_the_queue_route_does(
    database_url: str, tmp_path: Path
) -> None:
    config = HubConfig.model_validate(example())
    learners = _in_care(data.make_learners(6))
    in_care, upns = _cohort(learners)
    async with hub_running(database_url, tmp_path, config) as running:
        await _wait_connected(running.hub)
        for subscriber in (VS, MIRROR):
            path = f"/admin/subscribers/{subscriber}/cohorts/{COHORT}"
            assert (await running.admin("PUT", path, json={"learners": upns})).status_code == 200
        key = (await running.admin("POST", f"/admin/subscribers/{VS}/feed-key")).json()["key"]
        mark_refid = await _school_day(running.client, learners)
        await running.settle()
        before_window = (await _fetch(running.client, key)).json()
        running.clock.advance(hours=3, minutes=31)  # Monday 09:31 in London (GMT)
        await running.release()
        await _until(lambda: _count(running, 3), "three feed items")
        pages = await _pages(running.client, key, limit=1)
        again = (await _fetch(running.client, key, since=0, limit=10)).json()
        mirror = await running.drain(MIRROR, expect=3)
        acknowledged = await _acknowledged(running)
        ready = (await running.client.get("/health/ready")).json()["checks"]
        schemas = running.hub.schemas

    assert before_window == {"subscriber": VS, "items": [], "next_cursor": 0, "has_more": False}
    # Pagination: one item a page, cursors growing, has_more until the last.
    items = [item for page in pages for item in page["items"]]
    assert [p["has_more"] for p in pages] == [True, True, False]
    assert [i["cursor"] for i in items] == [1, 2, 3]
    assert [p["next_cursor"] for p in pages] == [1, 2, 3]
    assert again["items"] == items  # reading again from a cursor gives the same items
    # Only the child in care (the school's excluded pupil is out even if in the cohort).
    assert {i["refid"] for i in items} == {in_care[0].refid, mark_refid}
    assert sorted((i["object"], i["action"]) for i in items) == [
        ("LearnerAttendance", "Add"),
        ("LearnerAttendance", "Delete"),
        ("LearnerPersonal", "Add"),
    ]
    # Exactly what decide + apply_filter released: the AMQP mirror's copies, mapped once.
    released = sorted(
        _dump(copy_object(m.body, schemas.repeating_paths(m.object.tag.split("}")[-1]))[1])
        for m in mirror
    )
    assert sorted(_dump(i["data"]) for i in items) == released
    person = next(i for i in items if i["object"] == "LearnerPersonal")["data"]
    assert person["LearnerPersonal"]["UPN"] == in_care[0].upn
    assert set(person["LearnerPersonal"]["PersonalInformation"]) == {"Name", "Demographics"}
    assert not any(word in _dump(items) for word in NEVER)
    # A Delete is a tombstone.
    tombstone = next(i for i in items if i["action"] == "Delete")
    assert tombstone["deleted"] is True and tombstone["refid"] == mark_refid
    assert [i["deleted"] for i in items if i["action"] != "Delete"] == [False, False]
    # A fetch acknowledged the feed's disclosures, not the mirror's.
    assert acknowledged == {VS: [True, True, True], MIRROR: [False, False, False]}
    assert ready[f"feed:{VS}"] == "running"


async def _count(running: RunningHub, expected: int) -> bool:
    async with running.hub.store.transaction() as tx:
        return len(await tx.feeds.page(VS, 0, 100)) >= expected


async def _acknowledged(running: RunningHub) -> dict[str, list[bool]]:
    async with running.hub.store.engine.connect() as conn:
        rows = (await conn.execute(select(disclosures))).all()
    out: dict[str, list[bool]] = {}
    for row in rows:
        out.setdefault(row.subscriber, []).append(row.acknowledged_at is not None)
    return out


async def test_keys_open_only_their_own_feed_and_refusals_are_problems(
    database_url: str, tmp_path: Path
) -> None:
    config = HubConfig.model_validate(example())
    async with hub_running(database_url, tmp_path, config) as running:
        await _wait_connected(running.hub)
        issued = await running.admin("POST", f"/admin/subscribers/{VS}/feed-key")
        key = issued.json()["key"]
        other = (await running.admin("POST", f"/admin/subscribers/{OTHER}/feed-key")).json()
        not_api = await running.admin("POST", f"/admin/subscribers/{MIRROR}/feed-key")
        client = running.client
        answers = {
            "missing": await client.get(f"/api/v1/feeds/{VS}"),
            "basic": await client.get(f"/api/v1/feeds/{VS}", auth=("virtual-school", key)),
            "garbage": await _fetch(client, "0123456789abcdef.not-the-secret-at-all-no"),
            "other's key": await _fetch(client, other["key"]),
            "for another": await _fetch(client, key, subscriber=OTHER),
            "unknown": await _fetch(client, key, subscriber="no-such-service"),
            "bad limit": await _fetch(client, key, limit=0),
        }
        own = await _fetch(client, key)
        rotated = (await running.admin("POST", f"/admin/subscribers/{VS}/feed-key")).json()
        old = await _fetch(client, key)
        new = await _fetch(client, rotated["key"])
        openapi = create_app(running.hub).openapi()

    assert issued.status_code == 200 and issued.headers["cache-control"] == "no-store"
    assert issued.json()["url"] == f"/api/v1/feeds/{VS}" and key.count(".") == 1
    assert not_api.status_code == 404 and not_api.headers["content-type"] == PROBLEM
    statuses = {name: r.status_code for name, r in answers.items()}
    assert statuses == {
        "missing": 401,
        "basic": 401,
        "garbage": 401,
        "other's key": 403,
        "for another": 403,
        "unknown": 403,
        "bad limit": 422,
    }
    for response in answers.values():
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["status"] == response.status_code
    assert answers["missing"].headers["www-authenticate"] == "Bearer"
    assert own.status_code == 200 and own.headers["cache-control"] == "no-store"
    assert (old.status_code, new.status_code) == (401, 200)
    # The OpenAPI document: the key as a security scheme, typed pages, problem errors.
    assert openapi["components"]["securitySchemes"]["FeedKey"]["scheme"] == "bearer"
    operation = openapi["paths"]["/api/v1/feeds/{subscriber}"]["get"]
    assert operation["security"] == [{"FeedKey": []}]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert ok == {"$ref": "#/components/schemas/FeedPage"}
    assert {"401", "403", "404", "503"} <= set(operation["responses"])
    assert PROBLEM in operation["responses"]["403"]["content"]
    item = openapi["components"]["schemas"]["FeedItem"]
    assert {"cursor", "id", "object", "refid", "action", "deleted", "data"} <= set(
        item["properties"]
    )


async def test_a_real_hub_process_serves_the_feed_over_http(tmp_path: Path) -> None:
    """`hub serve` with the example (copies released at once here: its windows follow the
    wall clock, which a test cannot move), read by a real client over a real socket."""

    def edit(raw: dict[str, Any]) -> None:
        prefix = raw["queue_prefix"]
        raw.update(example(lambda r: r["agreements"][0].pop("schedule")))
        raw["queue_prefix"] = prefix

    learners = _in_care(data.make_learners(6))
    in_care, upns = _cohort(learners)
    admin = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
    async with hub_process(tmp_path, EXAMPLE, edit) as hub:
        client = hub.client
        for subscriber in (VS, MIRROR):
            path = f"/admin/subscribers/{subscriber}/cohorts/{COHORT}"
            put = await client.put(path, json={"learners": upns}, headers=admin)
            assert put.status_code == 200, put.text
        issued = await client.post(f"/admin/subscribers/{VS}/feed-key", headers=admin)
        key = issued.json()["key"]
        await _school_day(client, learners)

        async def all_three() -> bool:
            return len((await _fetch(client, key, limit=10)).json()["items"]) == 3

        await _until(all_three, "the feed")
        first = (await _fetch(client, key, limit=2)).json()
        last = (await _fetch(client, key, since=first["next_cursor"], limit=2)).json()
        refused = await _fetch(client, key, subscriber=OTHER)

    assert [i["cursor"] for i in first["items"]] == [1, 2] and first["has_more"] is True
    assert [i["cursor"] for i in last["items"]] == [3] and last["has_more"] is False
    assert in_care[0].refid in {i["refid"] for i in first["items"] + last["items"]}
    assert refused.status_code == 403 and refused.headers["content-type"] == PROBLEM
    with sqlite3.connect(hub.database) as db:
        acked = db.execute(
            "SELECT count(*) FROM disclosures WHERE subscriber = ? AND acknowledged_at IS NOT NULL",
            (VS,),
        ).fetchone()[0]
    assert acked == 3
