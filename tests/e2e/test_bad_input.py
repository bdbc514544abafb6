"""Bad input over HTTP, the real database and real RabbitMQ: every refusal in README's "bad
input" table, answered as documented, and nothing refused is ever routed."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import uuid
from collections.abc import AsyncIterator
from datetime import date
from pathlib import Path

import httpx
import pytest
from lxml import etree

from hub.api.app import create_app
from hub.core.envelope import SIF_UK_NS
from hub.demo import SECRETS
from hub.simulate import sample_data as data
from hub.simulate import sif_messages as m
from hub.simulate.school_agent import Ack, SchoolAgent
from hub.store.engine import create_engine
from hub.store.store import SqlStore
from tests.e2e.conftest import RunningHub, hub_running

pytestmark = pytest.mark.integration

NS = {"s": SIF_UK_NS}
XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"
PROBLEM = "application/problem+json"
AGENT = "hilltop-mis"
HILLTOP = "8302001"
LIMIT = 10 * 1024 * 1024  # HUB_MAX_BODY_BYTES default; hub_running uses the default
PROMPT = 10.0  # seconds: a refusal of an entity bomb must not be an expansion


def _learner() -> data.Learner:
    return next(p for p in data.make_learners(6) if p.school.laestab == HILLTOP)


def _code(ack: Ack) -> tuple[int | None, int | None]:
    return ack.error_category, ack.error_code


def _error_text(ack: Ack, field: str) -> str:
    root = etree.fromstring(ack.raw)
    return root.findtext(f"s:SIF_Ack/s:SIF_Error/s:{field}", "", NS)


def _is_sif_ack(raw: bytes) -> etree._Element:
    root = etree.fromstring(raw)
    assert etree.QName(root) == etree.QName(SIF_UK_NS, "SIF_Message"), raw
    ack = root.find("s:SIF_Ack", NS)
    assert ack is not None, raw
    return ack


async def _registered(running: RunningHub, agent_id: str = AGENT) -> SchoolAgent:
    agent = running.agent(agent_id)
    assert (await agent.register("Push")).ok
    return agent


async def _nothing_routed(running: RunningHub) -> None:
    """Nothing in the outbox, nothing routed or disclosed, every subscriber queue empty."""
    await running.settle()
    async with running.hub.store.transaction() as tx:
        stats = await tx.disclosures.stats()
    assert stats.pending == 0
    assert stats.routed == {}
    assert stats.delivered == {}
    for sub in [s.id for s in running.config.subscribers]:
        assert await running.drain(sub) == [], sub


def _lines(object_xml: str) -> str:
    """Put each element of an object on its own line, so line numbers mean something."""
    return object_xml.replace("><", ">\n<")


def _line_of(body: bytes, marker: bytes) -> int:
    return body[: body.index(marker)].count(b"\n") + 1


# --- XML and schema ------------------------------------------------------------------------


async def test_not_well_formed_is_1_2_with_the_line(running: RunningHub) -> None:
    agent = await _registered(running)
    body = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<SIF_Message xmlns="' + SIF_UK_NS.encode() + b'" Version="2.4">\n'
        b"<SIF_Event><SIF_Header><SIF_MsgId>ABC</SIF_MsgId>\n"
        b"<SIF_SourceId>hilltop-mis</SIF_Source></SIF_Header>\n"
        b"</SIF_Event></SIF_Message>"
    )
    ack = await agent.post(body)
    assert ack.http_status == 200
    ack_element = _is_sif_ack(ack.raw)
    assert _code(ack) == (1, 2), ack.raw
    assert ack.status_code is None
    original = ack_element.find("s:SIF_OriginalMsgId", NS)
    assert original is not None and original.get(XSI_NIL) == "true" and not original.text
    assert "ABC" not in ack.raw.decode()  # nothing it could not read is echoed
    assert "line 4" in _error_text(ack, "SIF_ExtendedDesc")
    await _nothing_routed(running)


async def test_empty_body_is_refused(running: RunningHub) -> None:
    agent = await _registered(running)
    ack = await agent.post(b"")
    assert ack.http_status == 200 and ack.error_category == 1, ack.raw
    await _nothing_routed(running)


async def test_element_out_of_order_names_path_and_line_not_value(running: RunningHub) -> None:
    agent = await _registered(running)
    p = _learner()
    upn = f"<UPN>{p.upn}</UPN>"
    obj = data.learner_personal(p).replace(upn, "")
    obj = obj.replace("<PersonalInformation>", upn + "<PersonalInformation>", 1)
    body = m.event(agent.agent_id, "LearnerPersonal", "Add", _lines(obj))
    ack = await agent.post(body)
    assert _code(ack) == (1, 3), ack.raw
    extended = _error_text(ack, "SIF_ExtendedDesc")
    assert "/SIF_Message/SIF_Event/SIF_ObjectData/SIF_EventObject/LearnerPersonal/UPN" in extended
    assert f"line {_line_of(body, b'<UPN>')}" in extended
    assert p.upn not in ack.raw.decode()
    await _nothing_routed(running)


async def test_bad_refid_names_the_attribute_not_the_value(running: RunningHub) -> None:
    agent = await _registered(running)
    p = _learner()
    bad = "NOT-A-GUID-QZX-7731"
    obj = data.learner_personal(p).replace(f'RefId="{p.refid}"', f'RefId="{bad}"', 1)
    body = m.event(agent.agent_id, "LearnerPersonal", "Add", _lines(obj))
    ack = await agent.post(body)
    assert _code(ack) == (1, 4), ack.raw
    extended = _error_text(ack, "SIF_ExtendedDesc")
    assert "LearnerPersonal/@RefId" in extended
    assert f"line {_line_of(body, bad.encode())}" in extended
    assert bad not in ack.raw.decode()
    await _nothing_routed(running)


async def test_bad_value_is_1_4_and_never_echoed(running: RunningHub) -> None:
    agent = await _registered(running)
    p = _learner()
    bad_date = "2016-13-45"
    obj = data.learner_personal(p).replace(p.birth_date.isoformat(), bad_date)
    body = m.event(agent.agent_id, "LearnerPersonal", "Add", _lines(obj))
    ack = await agent.post(body)
    assert _code(ack) == (1, 4), ack.raw
    extended = _error_text(ack, "SIF_ExtendedDesc")
    assert "LearnerPersonal/PersonalInformation/Demographics/BirthDate" in extended
    assert f"line {_line_of(body, bad_date.encode())}" in extended
    assert bad_date not in ack.raw.decode()
    for personal in (p.surname, p.upn, p.postcode):  # nothing of the object either
        assert personal not in ack.raw.decode()
    await _nothing_routed(running)


async def test_add_missing_mandatory_is_1_6_but_the_same_change_is_accepted(
    running: RunningHub,
) -> None:
    agent = await _registered(running)
    p = _learner()
    whole = data.learner_personal(p)
    start, end = whole.index("<InCare>"), whole.index("</InCare>") + len("</InCare>")
    without_in_care = whole[:start] + whole[end:]

    add = await agent.send_event("LearnerPersonal", "Add", _lines(without_in_care))
    assert _code(add) == (1, 6), add.raw
    assert "LearnerPersonal/InCare" in _error_text(add, "SIF_ExtendedDesc")
    await _nothing_routed(running)

    change = await agent.send_event("LearnerPersonal", "Change", without_in_care)
    assert change.status_code == 0 and change.error_category is None, change.raw
    await running.settle()
    (copy,) = await running.drain("cme", expect=1)
    assert copy.headers["hub-action"] == "Change"
    assert copy.object.get("RefId") == p.refid


async def test_unknown_object_in_event_is_category_1(running: RunningHub) -> None:
    agent = await _registered(running)
    unicorn = f'<Unicorn RefId="{m.refid()}"><Horn>1</Horn></Unicorn>'
    ack = await agent.send_event("Unicorn", "Add", unicorn)
    assert ack.error_category == 1, ack.raw
    assert ack.status_code is None
    await _nothing_routed(running)


async def test_object_name_not_matching_the_object_is_category_1(running: RunningHub) -> None:
    agent = await _registered(running)
    p = _learner()
    att = data.learner_attendance(p, date(2026, 11, 23), "AM", "/")
    ack = await agent.send_event("LearnerPersonal", "Add", att)
    assert ack.error_category == 1, ack.raw
    await _nothing_routed(running)


async def test_unsupported_version_is_12_3(running: RunningHub) -> None:
    agent = await _registered(running)
    p = _learner()
    body = m.event(
        agent.agent_id, "LearnerPersonal", "Add", data.learner_personal(p), None, "1.5r1"
    )
    ack = await agent.post(body)
    assert _code(ack) == (12, 3), ack.raw
    await _nothing_routed(running)


async def test_us_namespace_is_12_2(running: RunningHub) -> None:
    agent = await _registered(running)
    p = _learner()
    body = m.event(agent.agent_id, "LearnerPersonal", "Add", data.learner_personal(p))
    body = body.replace(SIF_UK_NS.encode(), b"http://www.sifinfo.org/infrastructure/2.x")
    ack = await agent.post(body)
    assert _code(ack) == (12, 2), ack.raw
    await _nothing_routed(running)


async def test_source_id_not_the_authenticated_agent_is_category_4(running: RunningHub) -> None:
    await _registered(running, "dovedale-mis")
    agent = await _registered(running)
    p = _learner()
    body = m.event("dovedale-mis", "LearnerPersonal", "Add", data.learner_personal(p))
    ack = await agent.post(body)  # authenticated as hilltop-mis
    assert ack.error_category == 4, ack.raw
    await _nothing_routed(running)


# --- HTTP-level refusals ---------------------------------------------------------------------


def _assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    problem = response.json()
    assert problem["status"] == status and problem["title"]
    return dict(problem)


def _event_body() -> bytes:
    return m.event(AGENT, "LearnerPersonal", "Add", data.learner_personal(_learner()))


async def test_no_credentials_is_401_problem(running: RunningHub) -> None:
    await _registered(running)
    response = await running.client.post(
        "/sif/derbyshire", content=_event_body(), headers={"Content-Type": "application/xml"}
    )
    _assert_problem(response, 401)
    assert response.headers["www-authenticate"].lower().startswith("basic")
    await _nothing_routed(running)


@pytest.mark.parametrize(
    ("user", "secret"),
    [(AGENT, "not-the-secret"), ("nobody-mis", "x"), (AGENT, SECRETS["dovedale-mis"])],
    ids=["wrong-secret", "unknown-agent", "another-agents-secret"],
)
async def test_wrong_credentials_are_401_problem(
    running: RunningHub, user: str, secret: str
) -> None:
    await _registered(running)
    response = await running.client.post(
        "/sif/derbyshire",
        content=_event_body(),
        auth=httpx.BasicAuth(user, secret),
        headers={"Content-Type": "application/xml"},
    )
    _assert_problem(response, 401)
    assert "www-authenticate" in response.headers
    await _nothing_routed(running)


async def test_unknown_zone_is_404_problem(running: RunningHub) -> None:
    await _registered(running)
    agent = SchoolAgent(running.client, "nottinghamshire", AGENT, SECRETS[AGENT])
    response = await running.client.post(
        f"/sif/{agent.zone}",
        content=_event_body(),
        auth=httpx.BasicAuth(AGENT, SECRETS[AGENT]),
        headers={"Content-Type": "application/xml"},
    )
    _assert_problem(response, 404)
    await _nothing_routed(running)


def _padded(total: int) -> bytes:
    """A valid event padded to exactly `total` bytes with comments (many small ones: none
    near libxml2's single-node size limit) and trailing white space."""
    body = _event_body()
    comment = b"<!--" + b"x" * 993 + b"-->"
    count = (total - len(body)) // len(comment)
    padded = body + comment * count
    padded += b" " * (total - len(padded))
    assert len(padded) == total
    return padded


async def test_body_over_the_limit_is_413_problem(running: RunningHub) -> None:
    agent = await _registered(running)
    response = await running.client.post(
        "/sif/derbyshire",
        content=_padded(LIMIT + 1),
        auth=httpx.BasicAuth(AGENT, SECRETS[AGENT]),
        headers={"Content-Type": "application/xml"},
    )
    problem = _assert_problem(response, 413)
    assert problem.get("limit") == LIMIT == running.hub.settings.max_body_bytes
    await _nothing_routed(running)
    async with running.hub.store.transaction() as tx:
        assert (await tx.disclosures.stats()).received == {}
    # the refusal was about size only: the same agent's normal message is accepted
    assert (await agent.post(_event_body())).status_code == 0


async def test_chunked_body_over_the_limit_is_413_problem(running: RunningHub) -> None:
    await _registered(running)
    body = _padded(LIMIT + 1)

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(0, len(body), 64 * 1024):
            yield body[i : i + 64 * 1024]

    response = await running.client.post(
        "/sif/derbyshire",
        content=chunks(),
        auth=httpx.BasicAuth(AGENT, SECRETS[AGENT]),
        headers={"Content-Type": "application/xml"},
    )
    assert "content-length" not in response.request.headers
    _assert_problem(response, 413)
    await _nothing_routed(running)


async def test_body_at_the_limit_is_read_and_acked(running: RunningHub) -> None:
    agent = await _registered(running)
    ack = await agent.post(_padded(LIMIT))
    assert ack.http_status == 200 and ack.status_code == 0, ack.raw[:2000]


# --- DOCTYPE, XXE, billion laughs ---------------------------------------------------------

_XXE_OBJECT = (
    '<LearnerPersonal RefId="{refid}"><PersonalInformation><Name Type="C">'
    "<FamilyName>&xxe;</FamilyName><GivenName>Ann</GivenName></Name></PersonalInformation>"
    "<InCare><Current>No</Current><LAId>830</LAId></InCare></LearnerPersonal>"
)


def _with_doctype(doctype: str, object_xml: str) -> bytes:
    body = m.event(AGENT, "LearnerPersonal", "Add", object_xml).decode()
    head, _, rest = body.partition("\n")
    return f"{head}\n{doctype}\n{rest}".encode()


XXE = '<!DOCTYPE SIF_Message [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
LAUGHS = (
    '<!DOCTYPE SIF_Message [<!ENTITY lol0 "lol">'
    + "".join(f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10))
    + '<!ENTITY xxe "&lol9;">]>'
)


async def _post_promptly(agent: SchoolAgent, body: bytes) -> Ack:
    return await asyncio.wait_for(agent.post(body), timeout=PROMPT)


@pytest.mark.parametrize("doctype", [XXE, LAUGHS], ids=["xxe", "billion-laughs"])
async def test_entity_declarations_are_refused_unexpanded(
    running: RunningHub, doctype: str
) -> None:
    agent = await _registered(running)
    body = _with_doctype(doctype, _XXE_OBJECT.format(refid=m.refid()))
    ack = await _post_promptly(agent, body)
    assert ack.http_status == 200
    assert _code(ack) == (1, 1), ack.raw
    assert b"root:" not in ack.raw and b"lollol" not in ack.raw
    await _nothing_routed(running)


@pytest.mark.parametrize("encoding", ["utf-16", "utf-32"])
async def test_entity_declarations_in_another_encoding_are_refused(
    running: RunningHub, encoding: str
) -> None:
    """The same XXE document, declared and encoded as UTF-16/32: still a DOCTYPE (1/1)."""
    agent = await _registered(running)
    body = _with_doctype(XXE, _XXE_OBJECT.format(refid=m.refid()))
    ack = await _post_promptly(agent, _encoded(body, encoding))
    assert ack.http_status == 200
    assert _code(ack) == (1, 1), ack.raw
    assert b"root:" not in ack.raw
    await _nothing_routed(running)


def _encoded(body: bytes, encoding: str) -> bytes:
    text = body.decode()
    if encoding != "utf-8":
        text = text.replace('encoding="UTF-8"', f'encoding="{encoding.upper()}"')
    return text.encode(encoding)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16"])
@pytest.mark.parametrize(
    "doctype",
    [
        "<!DOCTYPE SIF_Message>",
        '<!DOCTYPE SIF_Message SYSTEM "http://127.0.0.1:1/sif.dtd">',
        '<!DOCTYPE SIF_Message [<!ENTITY unused "x">]>',
    ],
    ids=["internal", "external", "unused-entity"],
)
async def test_doctype_without_entity_use_is_refused(
    running: RunningHub, doctype: str, encoding: str
) -> None:
    """README: DOCTYPE or entity declarations are SIF_Error 1/1, whatever the encoding."""
    agent = await _registered(running)
    p = _learner()
    body = _encoded(_with_doctype(doctype, data.learner_personal(p)), encoding)
    ack = await _post_promptly(agent, body)
    assert _code(ack) == (1, 1), ack.raw
    await _nothing_routed(running)


async def test_doctype_only_body_is_refused(running: RunningHub) -> None:
    agent = await _registered(running)
    ack = await _post_promptly(agent, b'<?xml version="1.0"?>\n<!DOCTYPE SIF_Message>\n')
    assert ack.http_status == 200
    _is_sif_ack(ack.raw)
    assert ack.error_category == 1, ack.raw
    await _nothing_routed(running)


# --- the database or the broker is down ---------------------------------------------------


def _dead_database_url(live_url: str, tmp_path: Path) -> str:
    """Same backend as the live hub, but nothing there to connect to."""
    if live_url.startswith("sqlite"):
        missing = tmp_path / f"no-such-dir-{uuid.uuid4().hex}" / "hub.db"
        return f"sqlite+aiosqlite:///file:{missing}?mode=rw&uri=true"
    return "postgresql+asyncpg://postgres@127.0.0.1:1/hub"


async def test_database_down_is_11_1_never_an_ack(
    running: RunningHub, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The running hub (its broker still up), with its store pointed at a database server
    that is not there: every message that needs the database is answered 11/1."""
    agent = await _registered(running)
    puller = running.agent("capita-one")
    assert (await puller.register("Pull")).ok

    dead = SqlStore(create_engine(_dead_database_url(database_url, tmp_path)))
    hub = dataclasses.replace(
        running.hub, store=dead, ingest=dataclasses.replace(running.hub.ingest, store=dead)
    )
    p = _learner()
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=create_app(hub)), base_url="http://hub", timeout=30
        ) as client:
            down = SchoolAgent(client, "derbyshire", AGENT, SECRETS[AGENT])
            pull_down = SchoolAgent(client, "derbyshire", "capita-one", SECRETS["capita-one"])
            with caplog.at_level(logging.INFO):
                answers = [
                    await down.send_event("LearnerPersonal", "Add", data.learner_personal(p)),
                    await down.register("Push"),
                    await down.post(m.provision("SIF_Provide", AGENT, ["LearnerPersonal"])),
                    await down.post(m.response(AGENT, m.msg_id(), 1, False, [])),
                    await pull_down.get_message(),
                ]
            for ack in answers:
                assert ack.http_status == 200
                assert _code(ack) == (11, 1), ack.raw
                assert ack.status_code is None
            # an outage is an expected condition, not an "unexpected error" caught as a bug
            assert not [r for r in caplog.records if "sif.unexpected" in r.getMessage()]
            ready = await client.get("/health/ready")
            problem = _assert_problem(ready, 503)
            assert problem["checks"] == {
                "database": "unavailable",
                "disk": "ok",
                "broker": "ok",
                "broker_users": "disabled",
                "backlog": "ok",
                "tasks": "ok",
            }
            assert problem["detail"] == "Failing: database"
    finally:
        await dead.close()

    await _nothing_routed(running)
    # the real database is untouched: the event refused meanwhile is accepted now
    ack = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))
    assert ack.status_code == 0, ack.raw


async def test_broker_down_events_acked_pull_is_11_1(database_url: str, tmp_path: Path) -> None:
    async with hub_running(
        database_url, tmp_path, amqp_url="amqp://guest:guest@127.0.0.1:1/"
    ) as running:
        agent = await _registered(running)
        puller = running.agent("capita-one")
        assert (await puller.register("Pull")).ok
        learners = [p for p in data.make_learners(9) if p.school.laestab == HILLTOP]
        for p in learners:  # accepted means delivered: the outbox holds them
            ack = await agent.send_event("LearnerPersonal", "Add", data.learner_personal(p))
            assert ack.status_code == 0 and ack.error_category is None, ack.raw

        ready = await running.client.get("/health/ready")
        problem = _assert_problem(ready, 503)
        assert problem["checks"] == {
            "database": "ok",
            "disk": "ok",
            "broker": "unavailable",
            "broker_users": "disabled",
            "backlog": "ok",
            "tasks": "ok",
        }
        assert problem["detail"] == "Failing: broker"
        live = await running.client.get("/health/live")
        assert live.status_code == 200

        pulled = await asyncio.wait_for(puller.get_message(), timeout=30)
        assert _code(pulled) == (11, 1), pulled.raw
        assert pulled.status_code is None

        async with running.hub.store.transaction() as tx:
            stats = await tx.disclosures.stats()
        assert stats.pending == len(learners)
        assert stats.routed == {} and stats.delivered == {}
