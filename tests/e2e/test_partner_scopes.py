"""Warwickshire: one agreement, seven partners, each with its own scope, end to end over
HTTP, the real database and real RabbitMQ (deploy/examples/warwickshire.yaml as shipped).
No partner receives another partner's fields: configured as one flat agreement, HR &
Payroll received pupils' ethnicity."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from hub.configfile import load_config
from hub.simulate import sample_data as data
from hub.simulate.la_consumer import Received
from hub.simulate.school_agent import SchoolAgent
from tests.e2e.conftest import REPO, RunningHub, _wait_connected, hub_running

pytestmark = pytest.mark.integration

WARWICKSHIRE = REPO / "deploy/examples/warwickshire.yaml"
AVON = data.School("9372001", "Avon Valley Primary School", "9A0E1B7C2D3F4E5A6B7C8D9E0F1A2B3C")
PUPIL = data.make_learners(1, seed=937, schools=(AVON,))[0]
TEACHER = data.make_staff(1, seed=938, schools=(AVON,))[0]
ETHNICITY = "PersonalInformation/Demographics/EthnicityList"


@pytest.fixture
async def warwickshire(database_url: str, tmp_path: Path) -> AsyncIterator[RunningHub]:
    config = load_config(WARWICKSHIRE)
    config = config.model_copy(update={"queue_prefix": f"sifhub-wk-{uuid.uuid4().hex[:8]}"})
    async with hub_running(database_url, tmp_path, config) as running:
        await _wait_connected(running.hub)
        yield running


def _paths(copy: Received) -> set[str]:
    out: set[str] = set()

    def walk(node: Any, path: str) -> None:
        for child in node.iterchildren():
            here = f"{path}/{child.tag.split('}')[1]}" if path else child.tag.split("}")[1]
            out.add(here)
            walk(child, here)

    walk(copy.object, "")
    return out


async def _post_both(running: RunningHub) -> None:
    agent = SchoolAgent(running.client, "warwickshire", "avon-mis", "warwick-demo-secret")
    assert (await agent.register()).ok
    for name, xml in [
        ("LearnerPersonal", data.learner_personal(PUPIL)),
        ("WorkforcePersonal", data.workforce_personal(TEACHER)),
    ]:
        ack = await agent.send_event(name, "Add", xml)
        assert ack.ok, ack.raw
    await running.settle()


async def test_each_partner_receives_its_own_scope_and_nothing_more(
    warwickshire: RunningHub,
) -> None:
    running = warwickshire
    await _post_both(running)
    hr = await running.drain("hr-payroll", expect=1)
    assert [c.object.tag.split("}")[1] for c in hr] == ["WorkforcePersonal"]
    assert PUPIL.upn.encode() not in hr[0].body and b"EthnicityList" not in hr[0].body
    assert TEACHER.ni_number.encode() in hr[0].body
    assert _paths(hr[0]) <= {
        "PersonalInformation",
        "PersonalInformation/Name",
        *(f"PersonalInformation/Name/{n}" for n in ("Title", "FamilyName", "GivenName")),
        "PersonalInformation/Demographics",
        "PersonalInformation/Demographics/BirthDate",
        "PersonalInformation/Demographics/Gender",
        "NINumber",
    }
    assert b"@school." not in hr[0].body  # the staff e-mail stays home

    specialist = await running.drain("specialist-teaching", expect=1)
    assert ETHNICITY in _paths(specialist[0])  # its own scope, under the Art 9 condition
    for partner in ("admissions", "priority-families", "youth-justice"):
        (copy,) = await running.drain(partner, expect=1)
        assert copy.object.tag.endswith("LearnerPersonal"), partner
        assert ETHNICITY not in _paths(copy), partner
        assert "PersonalInformation/Demographics/Religion" not in _paths(copy), partner
        assert TEACHER.ni_number.encode() not in copy.body


async def test_scheduled_partners_wait_for_their_own_windows(warwickshire: RunningHub) -> None:
    running = warwickshire
    await _post_both(running)
    assert await running.drain("ict", wait_seconds=1) == []
    assert await running.drain("cme", wait_seconds=1) == []
    held = await running.admin("GET", "/admin/held", params={"reason": "schedule"})
    assert held.status_code == 200, held.text
    by_partner: dict[str, int] = {}
    for copy in held.json()["copies"]:
        by_partner[copy["subscriber"]] = by_partner.get(copy["subscriber"], 0) + 1
    assert by_partner == {"ict": 2, "cme": 1}  # ict: pupil and staff; cme: the pupil only


async def test_the_diff_shows_each_partner_and_widening_is_judged_per_partner(
    warwickshire: RunningHub,
) -> None:
    running = warwickshire
    response = await running.admin("GET", "/admin/agreements/WCC-SIF-DSA")
    spec = dict(response.json()["versions"][-1]["body"])
    partners = spec["partners"]
    hr = next(p for p in partners if p["recipient"] == "hr-payroll")
    hr["rules"][0]["include"].append("PersonalInformation/Email")  # widen HR only
    admissions = next(p for p in partners if p["recipient"] == "admissions")
    admissions["rules"][0]["include"].remove("PersonalInformation/Address")  # narrow
    spec["version"] = 2
    added = await running.admin("POST", "/admin/agreements", json=spec)
    assert added.status_code == 201, added.text
    assert added.json()["widened_for"] == ["hr-payroll"]
    diff = await running.admin(
        "GET", "/admin/agreements/WCC-SIF-DSA/diff", params={"from_version": 1, "to_version": 2}
    )
    body = diff.json()
    assert body["widened_for"] == ["hr-payroll"]
    assert body["recipients"]["hr-payroll"]["widens"] is True
    gained = body["recipients"]["hr-payroll"]["objects"]["WorkforcePersonal"]["gained"]
    assert gained and all(p.startswith("PersonalInformation/Email") for p in gained)
    lost = body["recipients"]["admissions"]["objects"]["LearnerPersonal"]["lost"]
    assert lost and all(p.startswith("PersonalInformation/Address") for p in lost)
    assert body["recipients"]["admissions"]["widens"] is False
    # The school approved v1 only: HR keeps v1's scope, admissions narrows at once.
    await _post_both(running)
    (hr_copy,) = await running.drain("hr-payroll", expect=1)
    assert str(hr_copy.headers["hub-agreement-version"]) == "1"
    assert b"@school." not in hr_copy.body
    (adm_copy,) = await running.drain("admissions", expect=1)
    assert str(adm_copy.headers["hub-agreement-version"]) == "2"
    assert "PersonalInformation/Address" not in _paths(adm_copy)
