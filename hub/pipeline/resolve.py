"""Which learner and school each incoming object is about, and whether its agent may send it:
a whole batch of objects (a packet, a CSV chunk, a lone event) in at most two reads.

Each object is judged in its order, knowing everything the objects before it in the batch
showed (the learner an object is about, the schools a learner is at), exactly as if each had
been learnt before the next was read: a packet that enrols a learner and then sends that
learner's attendance routes the attendance to the school the enrolment named. An object
that is refused teaches nothing to the ones after it. What the batch teaches is returned,
for the caller to remember in one go (`Learners.remember_many`).
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from lxml import etree

from hub.core.config import Agent
from hub.core.envelope import Action
from hub.core.errors import SifError, Xml, xml_error
from hub.core.identifiers import data_id
from hub.core.objects import CATALOGUE, ObjectSpec, Subject
from hub.core.ports import Tx
from hub.core.records import Learnt, OutboxRecord
from hub.core.schools import Named, SchoolIndex, choose_school
from hub.sif.facts import ObjectFacts, object_facts


@dataclass(frozen=True, kw_only=True)
class Shown:
    """What an edge format's record shows beside its object (a CSV row's DfE number and
    UPN): checked and learnt exactly as if the object carried it."""

    laestabs: tuple[str, ...] = ()
    upn: str | None = None


@dataclass(frozen=True, kw_only=True)
class Entry:
    """One object to resolve (`object_xml`: the element already serialized, off the loop)."""

    element: etree._Element
    action: Action
    object_xml: bytes | None = None
    shown: Shown | None = None


@dataclass(frozen=True, kw_only=True)
class Resolved:
    """An accepted object: its outbox row (None when it is not routable) and what it taught."""

    item: OutboxRecord | None
    learnt: Learnt | None


@dataclass(frozen=True, kw_only=True)
class Sender:
    """Who sent the batch: the agent, its zone, the message the rows belong to, and whether
    it is an event (its refusal codes name the action) or a response."""

    agent: Agent
    zone: str
    message_id: str
    event: bool


@dataclass(frozen=True)
class _Read:
    name: str
    spec: ObjectSpec
    facts: ObjectFacts
    named: Named
    object_refid: str | None

    @property
    def learner(self) -> bool:
        return self.spec.subject is Subject.LEARNER


async def resolve(
    tx: Tx,
    schools: SchoolIndex,
    sender: Sender,
    entries: Sequence[Entry],
    *,
    first_seq: int = 0,
) -> list[Resolved | SifError]:
    """One answer per entry, in order; accepted objects' rows are numbered from `first_seq`
    on. Reads only: the caller writes the rows and remembers what they taught."""
    reads = [_read(entry, schools) for entry in entries]
    lookups = [r.object_refid or "" for r in reads if isinstance(r, _Read) and _needs_learner(r)]
    stored_learner = await tx.learners.learners_of(lookups) if lookups else {}
    if any(isinstance(r, _Read) and r.learner and not r.named.known for r in reads):
        candidates = {
            refid
            for r in reads
            if isinstance(r, _Read) and r.learner
            for refid in (data_id(r.facts.subject_refid), stored_learner.get(r.object_refid or ""))
            if refid
        }
        stored_schools = await tx.learners.schools_of(sorted(candidates))
    else:
        stored_schools = {}
    taught = _Taught(learner_of=dict(stored_learner), schools=dict(stored_schools))
    answers: list[Resolved | SifError] = []
    seq = first_seq
    for entry, read in zip(entries, reads, strict=True):
        if isinstance(read, SifError):
            answers.append(read)
            continue
        try:
            resolved = _judge(sender, entry, read, taught, seq)
        except SifError as error:
            answers.append(error)
            continue
        taught.learn(resolved.learnt)
        seq += resolved.item is not None
        answers.append(resolved)
    return answers


@dataclass
class _Taught:
    """What the store knew before the batch, plus what the batch's accepted objects taught
    so far (object RefId -> learner: the last one wins; learner -> schools: only added)."""

    learner_of: dict[str, str]
    schools: dict[str, frozenset[str]]

    def learn(self, learnt: Learnt | None) -> None:
        if learnt is None:
            return
        if learnt.schools:
            known = self.schools.get(learnt.learner, frozenset())
            self.schools[learnt.learner] = known | set(learnt.schools)
        if learnt.object_refid:
            self.learner_of[learnt.object_refid] = learnt.learner


def _read(entry: Entry, schools: SchoolIndex) -> _Read | SifError:
    """What the object shows by itself (no store)."""
    name = etree.QName(entry.element).localname
    spec = CATALOGUE.get(name)
    if spec is None:
        return xml_error(Xml.INVALID_VALUE, f"Unknown object {name}")
    facts = object_facts(entry.element, spec)
    if entry.shown is not None:
        facts = dataclasses.replace(
            facts,
            school_laestabs=(*facts.school_laestabs, *entry.shown.laestabs),
            upn=facts.upn or entry.shown.upn,
        )
    named = schools.named(facts.school_refids, facts.school_laestabs)
    return _Read(name, spec, facts, named, data_id(entry.element.get("RefId")))


def _needs_learner(read: _Read) -> bool:
    """A learner's object that leaves its learner out (a partial event) is found through
    its own RefId."""
    return read.learner and data_id(read.facts.subject_refid) is None and bool(read.object_refid)


def _judge(sender: Sender, entry: Entry, read: _Read, taught: _Taught, seq: int) -> Resolved:
    subject = data_id(read.facts.subject_refid)
    if subject is None and _needs_learner(read):
        subject = taught.learner_of.get(read.object_refid or "")
    known_at = frozenset[str]()
    if read.learner and subject and not read.named.known:
        known_at = taught.schools.get(subject, frozenset())
    routing = choose_school(
        sender.agent, read.named, known_at, entry.action if sender.event else None
    )
    learnt = None
    if read.learner and subject and entry.action is not Action.DELETE:
        learnt = _learnt(read, subject)
    if not read.spec.routable:
        return Resolved(item=None, learnt=learnt)
    item = OutboxRecord(
        id=uuid.uuid4().hex,
        message_id=sender.message_id,
        seq=seq,
        zone=sender.zone,
        source_agent=sender.agent.id,
        object_name=read.name,
        action=entry.action,
        school=routing.school,
        schools=routing.schools,
        subject_refid=subject,
        object_refid=read.object_refid,
        object_xml=entry.object_xml or etree.tostring(entry.element, encoding="UTF-8"),
    )
    return Resolved(item=item, learnt=learnt)


def _learnt(read: _Read, subject: str) -> Learnt:
    """Only what the object itself shows: the schools it names (never the agent's school by
    default: no agent captures another school's learner), the UPN it carries, and which
    learner it is about."""
    object_refid = read.object_refid
    names_learner = bool(object_refid and object_refid != subject and read.facts.subject_refid)
    return Learnt(
        learner=subject,
        schools=read.named.known,
        upn=data_id(read.facts.upn),
        object_refid=object_refid if names_learner else None,
        object_name=read.name,
    )
