"""CSV upload end to end: the HTTP API, real RabbitMQ, the real database (SQLite and
PostgreSQL). CSV rows leave as the same filtered SIF copies, with disclosure rows, that an
agent's SIF_Event would give; bad rows are reported without their values; the same file
again is the same transaction; another school's rows are refused; bad files are problems."""

from __future__ import annotations

import base64
from pathlib import Path

import httpx
import pytest

from adapters.csv_upload import learner_refid
from hub.demo import SECRETS
from hub.simulate import sample_data as data
from tests.e2e.conftest import RunningHub, _wait_connected, hub_running

pytestmark = pytest.mark.integration

DOVEDALE = [p for p in data.make_learners(12) if p.school.laestab == "8304012"][:2]
HEADER = "UPN,DfE No,Surname,Date,Session,Mark,Note"
BAD_UPN = "Q830401224999"  # wrong check letter


def basic(agent_id: str, secret: str | None = None) -> dict[str, str]:
    token = base64.b64encode(f"{agent_id}:{secret or SECRETS[agent_id]}".encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "text/csv"}


def attendance_csv(learners: list[data.Learner], laestab: str = "8304012") -> str:
    rows = [
        f"{p.upn},{laestab},{p.surname},2026-11-23,{s},{m},Registered by form tutor"
        for p in learners
        for s, m in (("AM", "/"), ("PM", "N"))
    ]
    return "\n".join([HEADER, *rows]) + "\n"


async def post(
    running: RunningHub, text: str | bytes, agent: str = "dovedale-mis", kind: str = "attendance"
) -> httpx.Response:
    body = text.encode() if isinstance(text, str) else text
    return await running.client.post(
        f"/ingest/derbyshire/csv/{kind}", content=body, headers=basic(agent)
    )


async def test_rows_reach_entitled_services_as_filtered_copies_with_disclosure_rows(
    running: RunningHub,
) -> None:
    text = attendance_csv(DOVEDALE) + f"{BAD_UPN},8304012,Smithers,2026-11-23,AM,/,x\n"
    answer = await post(running, text)
    assert answer.status_code == 202, answer.text
    upload = answer.json()
    assert answer.headers["location"] == f"/ingest/transactions/{upload['id']}"
    assert (upload["status"], upload["rows"], upload["accepted"], upload["rejected"]) == (
        "complete",
        5,
        4,
        1,
    )
    await running.settle()

    # CME's agreement takes date, session, domain and code at once; the attendance team's
    # is held for its Monday 07:00 window and leaves without AttendanceNote.
    cme = await running.drain("cme", expect=4)
    assert len(cme) == 4
    assert {r.headers["hub-object"] for r in cme} == {"LearnerAttendance"}
    assert {r.headers["hub-school"] for r in cme} == {"8304012"}
    cut = {"AttendanceDate", "Session", "AttendanceDomain", "AttendanceCode"}
    assert all({child.tag.split("}")[1] for child in r.object} == cut for r in cme)
    running.clock.advance(hours=1, minutes=5)
    assert await running.release() == 4
    team = await running.drain("attendance-team", expect=4)
    assert len(team) == 4
    assert all(r.object.find("{*}AttendanceNote") is None for r in team)
    assert all(r.object.findtext("{*}InputSource") == "CSV" for r in team)
    assert all(r.object.findtext("{*}AttendanceCode") in ("/", "N") for r in team)
    assert await running.drain("virtual-school", wait_seconds=0.5) == []  # not its cohort

    learner = learner_refid("8304012", DOVEDALE[0].upn)
    async with running.hub.store.transaction() as tx:
        logged = await tx.disclosures.for_subject(upn=DOVEDALE[0].upn)
    assert sorted(d.subscriber for d in logged) == ["attendance-team"] * 2 + ["cme"] * 2
    assert {d.subject_refid for d in logged} == {learner}
    assert {d.object_name for d in logged} == {"LearnerAttendance"}


async def test_the_report_lists_bad_rows_by_line_and_column_never_the_value(
    running: RunningHub,
) -> None:
    text = (
        f"{HEADER}\n{BAD_UPN},8304012,Smithers,2026-11-23,AM,/,x\n"
        f"{DOVEDALE[0].upn},8304012,Smithers,31/02/2026,Evening,ZZ,x\n"
        f"{DOVEDALE[0].upn},8304012,Smithers,2026-11-24,AM,/,x\n"
    )
    upload = (await post(running, text)).json()
    path = f"/ingest/transactions/{upload['id']}"
    report = await running.client.get(path, headers=basic("dovedale-mis"))
    assert report.status_code == 200
    body = report.json()
    assert (body["rows"], body["accepted"], body["rejected"]) == (3, 1, 2)
    assert [(e["line"], e["column"]) for e in body["errors"]] == [
        (2, "UPN"),
        (3, "Date"),
        (3, "Session"),
        (3, "Mark"),
    ]
    as_csv = await running.client.get(path + "?format=csv", headers=basic("dovedale-mis"))
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text.splitlines()[0] == "line,column,problem"
    assert len(as_csv.text.splitlines()) == 5
    negotiated = await running.client.get(
        path, headers={**basic("dovedale-mis"), "Accept": "text/csv"}
    )
    assert negotiated.text == as_csv.text
    for shown in (report.text, as_csv.text):
        for value in (BAD_UPN, DOVEDALE[0].upn, "Smithers", "31/02/2026", "Evening", "ZZ"):
            assert value not in shown
    other = await running.client.get(path, headers=basic("hilltop-mis"))
    assert other.status_code == 404  # another agent cannot tell it exists


async def test_the_same_file_again_is_the_same_transaction_and_nothing_more_is_routed(
    running: RunningHub,
) -> None:
    text = attendance_csv(DOVEDALE[:1])
    first = (await post(running, text)).json()
    await running.settle()
    again = await post(running, text)
    assert again.status_code == 202 and again.json()["id"] == first["id"]
    await running.settle()
    assert len(await running.drain("cme", expect=2)) == 2
    async with running.hub.store.transaction() as tx:
        stats = await tx.disclosures.stats()
    assert stats.pending == 0
    changed = await post(running, text + f"{DOVEDALE[1].upn},8304012,X,2026-11-24,AM,/,\n")
    assert changed.json()["id"] != first["id"] and changed.json()["rows"] == 3


async def test_another_schools_rows_are_refused_and_its_own_go_on(running: RunningHub) -> None:
    text = attendance_csv(DOVEDALE[:1]) + attendance_csv(DOVEDALE[1:], "8302001").split("\n", 1)[1]
    upload = (await post(running, text)).json()
    assert (upload["accepted"], upload["rejected"]) == (2, 2)
    report = await running.client.get(
        f"/ingest/transactions/{upload['id']}", headers=basic("dovedale-mis")
    )
    assert {(e["column"], e["problem"]) for e in report.json()["errors"]} == {
        ("DfE No", "the agent may not post for this school or this learner's school")
    }
    await running.settle()
    cme = await running.drain("cme", expect=2)
    assert {r.headers["hub-school"] for r in cme} == {"8304012"} and len(cme) == 2


async def test_bad_files_and_bad_requests_are_problems_and_store_nothing(
    running: RunningHub,
) -> None:
    cases = [
        (await post(running, b"UPN,DfE No\n\xff\xfe,1\n"), 400, "not-utf8"),
        (await post(running, "UPN,DfE No,Date,Mark\n"), 422, "missing-columns"),
        (await post(running, ""), 422, "empty"),
        (await post(running, f'{HEADER}\n"unterminated,1\n'), 400, "malformed"),
        (await post(running, "x", kind="timetables"), 404, "unknown-kind"),
    ]
    for answer, status, kind in cases:
        assert answer.status_code == status, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
        assert answer.json()["type"].endswith(f"/csv/{kind}")
    wrong = await running.client.post(
        "/ingest/derbyshire/csv/attendance", content=b"x", headers=basic("dovedale-mis", "nope")
    )
    assert wrong.status_code == 401
    zone = await running.client.post(
        "/ingest/elsewhere/csv/attendance", content=b"x", headers=basic("dovedale-mis")
    )
    assert zone.status_code == 404
    async with running.hub.store.transaction() as tx:
        assert (await tx.disclosures.stats()).pending == 0
    assert not (
        await running.client.get("/ingest/transactions/none", headers=basic("dovedale-mis"))
    ).is_success


async def test_a_file_over_the_limit_is_refused_413(database_url: str, tmp_path: Path) -> None:
    async with hub_running(database_url, tmp_path, csv_max_body_bytes=2048) as running:
        await _wait_connected(running.hub)
        answer = await post(running, attendance_csv(DOVEDALE) * 20)
        assert answer.status_code == 413
        assert answer.json()["type"].endswith("/csv/too-large")
        assert answer.json()["limit"] == 2048
