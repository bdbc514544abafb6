"""What each recipient would receive, before anyone approves: a sample SIF message run
through exactly the decision and filter dispatch uses, under a chosen version."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from hub.core.agreements.compile import compile_version
from hub.core.agreements.model import stored_agreement
from hub.core.envelope import Action
from hub.core.identifiers import data_id
from hub.core.objects import CATALOGUE
from hub.core.policy import AgreementState, Policy, build_policy, decide
from hub.core.ports import Store
from hub.core.records import LifecycleRecord, OutboxRecord
from hub.pipeline.agreements import access_of
from hub.pipeline.dispatch import Identity, identities, item_of
from hub.sif.envelope import read_event, sniff
from hub.sif.facts import object_facts
from hub.sif.filter import apply_filter, released_paths
from hub.sif.parse import parse_trusted, parse_untrusted
from hub.sif.schemas import Schemas


@dataclass(frozen=True)
class PreviewCopy:
    recipient: str
    agreement_id: str
    agreement_version: int
    lawful_basis: str
    held: str | None
    release_after: datetime | None
    paths: list[str]
    xml: str


async def preview(
    store: Store,
    schemas: Schemas,
    agreement_id: str,
    school: str,
    message: bytes,
    version: int | None,
    now: datetime,
) -> list[PreviewCopy] | None:
    """Copies as if the version were live and approved by `school`; pupil lists, cohorts
    and suppressions as they stand. None when the agreement or version does not exist;
    SifError for a bad sample message."""
    root = parse_untrusted(message)
    sniffed = sniff(root)
    schemas.validate_message(root, partial=sniffed.event_action in (Action.CHANGE, Action.DELETE))
    event = read_event(sniffed.body)
    facts = object_facts(event.element, CATALOGUE[event.object_name])
    record = OutboxRecord(
        id="preview",
        message_id="preview",
        seq=0,
        zone="",
        source_agent="",
        object_name=event.object_name,
        action=event.action,
        school=school,
        subject_refid=data_id(facts.subject_refid),
        object_xml=b"",
        object_refid=data_id(event.element.get("RefId")),
    )
    async with store.transaction() as tx:
        versions = {v.version: v for v in await tx.agreements.versions(agreement_id)}
        pupils = {p.laestab: access_of(p) for p in await tx.privacy.pupil_access(agreement_id)}
        cohorts = await tx.privacy.cohorts()
        suppressed = frozenset(s.learner for s in await tx.privacy.suppressions())
        known = (await identities(tx, [record]))[record.id]
    chosen = versions.get(version if version is not None else max(versions, default=0))
    if chosen is None:
        return None
    compiled = compile_version(stored_agreement(chosen.body))
    state = AgreementState(
        (compiled,),
        (False,),
        LifecycleRecord(agreement_id, "live", "preview", now, "preview"),
        {school: frozenset({compiled.version})},
        {school: pupils[school]} if school in pupils else {},
    )
    policy = build_policy([state], suppressed, cohorts, now)
    who = Identity(refid=known.refid, upn=data_id(facts.upn) or known.upn)
    copies = decide(item_of(record, who, event.element, policy), policy)
    return [
        _render(
            c.subscriber,
            c.agreement_id,
            c.agreement_version,
            c.lawful_basis,
            c.hold,
            c.release_after,
            apply_filter(event.element, c.filter),
        )
        for c in copies
    ]


def _render(
    recipient: str,
    agreement_id: str,
    version: int,
    basis: str,
    hold: str | None,
    release_after: datetime | None,
    element: etree._Element,
) -> PreviewCopy:
    return PreviewCopy(
        recipient,
        agreement_id,
        version,
        basis,
        hold,
        release_after,
        released_paths(element),
        etree.tostring(element, pretty_print=True).decode(),
    )


async def preview_in_force(store: Store, policy: Policy, record: OutboxRecord) -> list[PreviewCopy]:
    """What each recipient would receive if this stored object were routed again now, under
    the agreements, pupil lists, cohorts and suppressions in force (the replay preview)."""
    async with store.transaction() as tx:
        who = (await identities(tx, [record]))[record.id]
    element = parse_trusted(record.object_xml)
    copies = decide(item_of(record, who, element, policy), policy)
    return [
        _render(
            c.subscriber,
            c.agreement_id,
            c.agreement_version,
            c.lawful_basis,
            c.hold,
            c.release_after,
            apply_filter(element, c.filter),
        )
        for c in copies
    ]
