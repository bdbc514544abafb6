"""Health probes and the admin API of a whole running hub (real database, real RabbitMQ)."""

from __future__ import annotations

from datetime import date

import aio_pika
import httpx
import pytest

from hub.settings import DEV_ADMIN_TOKEN
from hub.simulate import sample_data as data
from hub.simulate import sif_messages as m
from tests.e2e.conftest import RunningHub

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"
ADMIN = {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}"}
SUBSCRIBERS = {"cme", "virtual-school", "admissions", "attendance-team", "hr-payroll"}
DAY = date(2026, 11, 23)


def _assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["title"]
    return dict(body)


async def test_live(running: RunningHub) -> None:
    response = await running.client.get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_with_every_check_ok(running: RunningHub) -> None:
    response = await running.client.get("/health/ready")
    assert response.status_code == 200, response.text
    body = response.json()
    # the broker connection's task ends once connected (it may be finishing just now)
    assert body["tasks"].pop("broker") in ("running", "done")
    assert body == {
        "status": "ok",
        "checks": {
            "database": "ok",
            "disk": "ok",
            "broker": "ok",
            "broker_users": "disabled",
            "backlog": "ok",
            "tasks": "ok",
        },
        "tasks": {
            "dispatch": "running",
            "release": "running",
            "policy": "running",
            "backlog": "running",
            "purge": "running",
            "alerts": "running",
            "alert-delivery": "running",
            "wakeups": "running",  # NOTIFYs from other hub processes (docs/processes.md)
        },
    }


@pytest.mark.parametrize("path", ["/admin/subscribers", "/admin/stats"])
@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": DEV_ADMIN_TOKEN},
        {"Authorization": f"Basic {DEV_ADMIN_TOKEN}"},
        {"Authorization": f"Bearer {DEV_ADMIN_TOKEN}x"},
    ],
    ids=["none", "wrong-token", "no-scheme", "basic-scheme", "longer-token"],
)
async def test_admin_needs_the_bearer_token(
    running: RunningHub, path: str, headers: dict[str, str]
) -> None:
    response = await running.client.get(path, headers=headers)
    _assert_problem(response, 401)
    assert response.headers["www-authenticate"].lower().startswith("bearer")
    assert (await running.client.get(path, headers=ADMIN)).status_code == 200


async def test_agent_credentials_do_not_open_the_admin_api(running: RunningHub) -> None:
    response = await running.client.get(
        "/admin/stats", auth=httpx.BasicAuth("hilltop-mis", "hilltop-demo-secret")
    )
    _assert_problem(response, 401)


async def test_subscribers_lists_every_queue_and_its_dead_letter_queue(
    running: RunningHub,
) -> None:
    response = await running.client.get("/admin/subscribers", headers=ADMIN)
    assert response.status_code == 200
    listed = {s["id"]: s for s in response.json()}
    assert set(listed) == {s.id for s in running.config.subscribers}
    assert set(listed) >= SUBSCRIBERS
    assert len(response.json()) == len(listed)  # each once
    prefix = running.config.queue_prefix
    assert prefix.startswith("sifhub-test-")  # the private prefix, not the default
    for sub_id, sub in listed.items():
        assert sub["queue"] == f"{prefix}.sub.{sub_id}"
        assert sub["dead_letter_queue"] == f"{prefix}.sub.{sub_id}.dlq"
        assert sub["name"]
    assert listed["admissions"]["pull_agent"] == "capita-one"
    assert listed["cme"]["pull_agent"] is None
    assert listed["cme"]["agreements"] == ["DSA-CME-2026"]
    assert listed["hr-payroll"]["agreements"] == ["DSA-HR-2026"]


async def test_listed_queues_exist_on_the_broker(running: RunningHub) -> None:
    """The names the admin API gives are the queues the hub declared (and consumers read)."""
    listed = (await running.client.get("/admin/subscribers", headers=ADMIN)).json()
    connection = await aio_pika.connect(running.hub.settings.amqp_url, timeout=10)
    async with connection:
        channel = await connection.channel()
        for sub in listed:
            for name in (sub["queue"], sub["dead_letter_queue"]):
                queue = await channel.declare_queue(name, passive=True)
                assert queue.name == name


async def test_stats_count_received_rejected_routed_delivered(running: RunningHub) -> None:
    hilltop = running.agent("hilltop-mis")
    assert (await hilltop.register("Push")).ok
    learners = [p for p in data.make_learners(9) if p.school.laestab == "8302001"][:2]
    for p in learners:
        assert (await hilltop.send_event("LearnerPersonal", "Add", data.learner_personal(p))).ok
    attendance = data.learner_attendance(learners[0], DAY, "AM", "/")
    assert (await hilltop.send_event("LearnerAttendance", "Add", attendance)).ok

    # refusals: missing mandatory (1/6), not well-formed (1/2), unregistered agent (4/9)
    whole = data.learner_personal(learners[1])
    cut = whole[: whole.index("<InCare>")] + whole[whole.index("</InCare>") + 9 :]
    assert (await hilltop.send_event("LearnerPersonal", "Add", cut)).error_code == 6
    assert (await hilltop.post(b"<SIF_Message><oops></SIF_Message>")).error_code == 2
    dovedale = running.agent("dovedale-mis")
    other = next(p for p in data.make_learners(9) if p.school.laestab == "8304012")
    refused = await dovedale.send_event("LearnerPersonal", "Add", data.learner_personal(other))
    assert (refused.error_category, refused.error_code) == (4, 9)
    # a repeat (status 7) is neither a new message nor a rejection
    again = m.msg_id()
    p = learners[1]
    change = f'<LearnerPersonal RefId="{p.refid}"><UPN>{p.upn}</UPN></LearnerPersonal>'
    assert (await hilltop.send_event("LearnerPersonal", "Change", change, again)).ok
    repeat = await hilltop.send_event("LearnerPersonal", "Change", change, again)
    assert repeat.status_code == 7

    await running.settle()
    response = await running.client.get("/admin/stats", headers=ADMIN)
    assert response.status_code == 200
    stats = response.json()
    assert stats["received"] == {"LearnerPersonal": 3, "LearnerAttendance": 1}
    assert stats["rejected"] == {"1/6": 1, "1/2": 1, "4/9": 1}
    assert stats["routed"] == {"LearnerPersonal": 3, "LearnerAttendance": 1}
    # learners[1] is the pupil Hilltop excluded from DSA-CME-2026 (all_except), so cme gets
    # learners[0]'s Add and attendance only; admissions and send-team get both Adds and the
    # Change; the Virtual School (cohort, windows) and attendance team (weekly) are held.
    assert learners[1].upn == "P830200123843"
    assert stats["delivered"] == {"cme": 2, "admissions": 3, "send-team": 3}
    assert stats["pending"] == 0
    # what stats call delivered really is in the queues
    for sub, count in stats["delivered"].items():
        assert len(await running.drain(sub, expect=count)) == count
