"""hub.pipeline.resolve judges a batch (a packet, a CSV chunk) in at most two reads, and
must decide exactly as judging its objects one at a time, each remembered before the next
is read: the same school for every object, the same refusals, the same learning.

The oracle is the one-at-a-time path itself (a batch of one, then remember_many), over the
in-memory store, from random prior knowledge and random batches: enrolments that name a
school, contacts and entitlements that name none (so their school comes from what the
batch or the store knew), partial entitlements that leave their learner out, unknown and
foreign schools, Adds, Changes and Deletes, for an event and for a response.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from hub.core.config import Agent, HubConfig, School
from hub.core.envelope import SIF_UK_NS, Action
from hub.core.errors import SifError
from hub.core.records import Learnt
from hub.core.schools import SchoolIndex
from hub.pipeline.resolve import Entry, Resolved, Sender, Shown, resolve
from tests.fakes import FakeStore

SCHOOLS = {"8302001": "A" * 32, "8304012": "B" * 32, "8302105": "C" * 32}
UNKNOWN_SCHOOL = "D" * 32
INDEX = SchoolIndex.of(
    HubConfig(
        zones=["z"],
        schools=[School(laestab=k, name=k, school_info_refid=v) for k, v in SCHOOLS.items()],
    )
)
AGENTS = [
    Agent(id="two", secret_hash="x", schools=["8302001", "8304012"]),
    Agent(id="one", secret_hash="x", schools=["8302105"]),
]
LEARNERS = [f"{n:032X}" for n in range(1, 4)]
OBJECT_IDS = [f"{n:032X}" for n in range(100, 104)]
SCHOOL_REFS = [*SCHOOLS.values(), UNKNOWN_SCHOOL]


def _element(name: str, attrs: dict[str, str], children: dict[str, str]) -> etree._Element:
    element = etree.Element(f"{{{SIF_UK_NS}}}{name}", attrs, nsmap={None: SIF_UK_NS})
    for tag, text in children.items():
        etree.SubElement(element, f"{{{SIF_UK_NS}}}{tag}").text = text
    return element


@st.composite
def entries(draw: st.DrawFn) -> Entry:
    kind = draw(st.sampled_from(["enrolment", "contact", "entitlement"]))
    learner = draw(st.sampled_from(LEARNERS))
    action = draw(st.sampled_from(list(Action)))
    if kind == "enrolment":
        attrs = {
            "RefId": draw(st.sampled_from(OBJECT_IDS)),
            "LearnerPersonalRefId": learner,
            "SchoolInfoRefId": draw(st.sampled_from(SCHOOL_REFS)),
            "MembershipType": "C",
        }
        element = _element("LearnerSchoolEnrolment", attrs, {})
    elif kind == "contact":
        attrs = {"LearnerPersonalRefId": learner, "ContactPersonalRefId": "E" * 32}
        element = _element("LearnerContact", attrs, {})
    else:
        children: dict[str, str] = {}
        if draw(st.booleans()):  # a partial Change leaves its learner out
            children["LearnerPersonalRefId"] = learner
        if draw(st.booleans()):
            children["SchoolInfoRefId"] = draw(st.sampled_from(SCHOOL_REFS))
        element = _element(
            "LearnerEntitlement", {"RefId": draw(st.sampled_from(OBJECT_IDS))}, children
        )
    upn = draw(st.sampled_from([None, "A123456789012"]))
    shown = Shown(upn=upn) if upn else None
    return Entry(element=element, action=action, shown=shown)


prior_facts = st.lists(
    st.builds(
        Learnt,
        learner=st.sampled_from(LEARNERS),
        schools=st.lists(st.sampled_from(list(SCHOOLS)), max_size=2).map(tuple),
        object_refid=st.sampled_from([None, *OBJECT_IDS]),
        object_name=st.just("LearnerEntitlement"),
    ),
    max_size=4,
)


def _comparable(answer: Resolved | SifError) -> Any:
    if isinstance(answer, SifError):
        return ("refused", answer.category, answer.code)
    item = answer.item and replace(answer.item, id="", seq=0)
    return ("accepted", item, answer.learnt)


async def _store_with(facts: list[Learnt]) -> FakeStore:
    store = FakeStore()
    async with store.transaction() as tx:
        await tx.learners.remember_many(facts)
    return store


async def _batched(
    facts: list[Learnt], sender: Sender, batch: list[Entry]
) -> tuple[list[Any], Any]:
    store = await _store_with(facts)
    async with store.transaction() as tx:
        answers = await resolve(tx, INDEX, sender, batch)
        await tx.learners.remember_many(
            [a.learnt for a in answers if isinstance(a, Resolved) and a.learnt]
        )
    seqs = [a.item.seq for a in answers if isinstance(a, Resolved) and a.item]
    assert seqs == list(range(len(seqs)))  # rows numbered in order, refusals skipped
    return [_comparable(a) for a in answers], store.state


async def _one_at_a_time(
    facts: list[Learnt], sender: Sender, batch: list[Entry]
) -> tuple[list[Any], Any]:
    store = await _store_with(facts)
    answers = []
    async with store.transaction() as tx:
        for entry in batch:
            (answer,) = await resolve(tx, INDEX, sender, [entry])
            if isinstance(answer, Resolved) and answer.learnt:
                await tx.learners.remember_many([answer.learnt])
            answers.append(_comparable(answer))
    return answers, store.state


@settings(max_examples=300, deadline=None)
@given(
    facts=prior_facts,
    batch=st.lists(entries(), max_size=8),
    agent=st.sampled_from(AGENTS),
    event=st.booleans(),
)
def test_a_batch_decides_as_its_objects_one_at_a_time(
    facts: list[Learnt], batch: list[Entry], agent: Agent, event: bool
) -> None:
    sender = Sender(agent=agent, zone="z", message_id="m", event=event)
    batched, batched_state = asyncio.run(_batched(facts, sender, batch))
    alone, alone_state = asyncio.run(_one_at_a_time(facts, sender, batch))
    assert batched == alone
    assert batched_state.learner_schools == alone_state.learner_schools
    assert batched_state.object_learners == alone_state.object_learners
    assert batched_state.upns == alone_state.upns


def test_an_enrolment_earlier_in_the_batch_routes_the_learners_unnamed_objects() -> None:
    """The case the batch must not lose: nothing stored yet, an enrolment at the agent's
    second school, then a contact naming no school (an agent of two schools cannot be
    guessed from): routed to the enrolment's school, not refused."""
    learner = LEARNERS[0]
    enrol = _element(
        "LearnerSchoolEnrolment",
        {
            "RefId": OBJECT_IDS[0],
            "LearnerPersonalRefId": learner,
            "SchoolInfoRefId": SCHOOLS["8304012"],
            "MembershipType": "C",
        },
        {},
    )
    contact = _element(
        "LearnerContact", {"LearnerPersonalRefId": learner, "ContactPersonalRefId": "E" * 32}, {}
    )
    sender = Sender(agent=AGENTS[0], zone="z", message_id="m", event=False)
    batch = [Entry(element=enrol, action=Action.ADD), Entry(element=contact, action=Action.ADD)]
    answers, _ = asyncio.run(_batched([], sender, batch))
    assert [a[0] for a in answers] == ["accepted", "accepted"]
    assert answers[1][1].school == "8304012"
    alone, _ = asyncio.run(_batched([], sender, batch[1:]))
    assert alone[0][0] == "refused"  # without the enrolment, which school is unknown


def test_a_blank_learner_reference_is_found_through_the_objects_own_refid() -> None:
    """As the path before batches did: a blank reference is no reference."""
    learner, entitlement = LEARNERS[1], OBJECT_IDS[1]
    known = Learnt(learner=learner, schools=("8302105",), object_refid=entitlement)
    element = _element("LearnerEntitlement", {"RefId": entitlement}, {"LearnerPersonalRefId": " "})
    sender = Sender(agent=AGENTS[1], zone="z", message_id="m", event=True)
    answers, _ = asyncio.run(
        _batched([known], sender, [Entry(element=element, action=Action.CHANGE)])
    )
    assert answers[0][0] == "accepted"
    assert answers[0][1].subject_refid == learner
