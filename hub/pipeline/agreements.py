"""Agreements as stored state: versions in, policy snapshots out, lifecycle and privacy
changes recorded with who and when. Every change goes through here and is audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time

from pydantic import ValidationError

from hub.core.agreements.compile import compile_version
from hub.core.agreements.diff import VersionDiff, diff
from hub.core.agreements.lifecycle import Transition, apply, initial
from hub.core.agreements.model import STORED, Agreement, PupilAccess, stored_agreement
from hub.core.config import HubConfig
from hub.core.identifiers import canonical
from hub.core.policy import AgreementState, Policy, build_policy
from hub.core.ports import AlreadyExists, Store, Tx
from hub.core.records import (
    Actor,
    AgreementVersionRecord,
    ApprovalRecord,
    LifecycleRecord,
    PupilAccessRecord,
    SuppressionRecord,
    audited,
)

PathsOf = Callable[[str], frozenset[str]]
CONFIG = Actor("config")  # versions loaded from the configuration file
SYNC_ATTEMPTS = 3


class AgreementInvalid(ValueError):
    """An agreement (file or API payload) that cannot be applied; nothing was changed."""

    def __init__(self, agreement_id: str, problems: list[str]) -> None:
        super().__init__(f"agreement {agreement_id}: " + "; ".join(problems))
        self.agreement_id = agreement_id
        self.problems = problems


def parse_agreement(data: object) -> Agreement:
    try:
        return Agreement.model_validate(data)
    except ValidationError as exc:
        ident = data.get("id", "?") if isinstance(data, dict) else "?"
        problems = [
            f"{'.'.join(str(p) for p in e['loc']) or '(agreement)'}: "
            f"{str(e['msg']).removeprefix('Value error, ')}"
            for e in exc.errors()
        ]
        raise AgreementInvalid(str(ident), problems) from None


def schema_problems(spec: Agreement, paths_of: PathsOf) -> list[str]:
    """Paths a rule names that the object's schema does not have."""
    out = []
    for where, rule in spec.all_rules():
        known = paths_of(rule.object)
        named = [*rule.named_paths(), *rule.exclude]
        out += [
            f"{where} ({rule.object}): path {p!r} does not exist in {rule.object}"
            for p in named
            if p not in known
        ]
    return out


async def add_version(
    tx: Tx, spec: Agreement, *, actor: Actor, now: datetime, paths_of: PathsOf
) -> tuple[AgreementVersionRecord, bool]:
    """Store `spec` as a new version (returns it and whether it was new). Re-submitting an
    identical version changes nothing; a different body under a used number is refused."""
    problems = schema_problems(spec, paths_of)
    if problems:
        raise AgreementInvalid(spec.id, problems)
    body = spec.model_dump(mode="json")
    existing = await tx.agreements.versions(spec.id)
    same = next((v for v in existing if v.version == spec.version), None)
    if same is not None:
        if same.body != body:
            raise AgreementInvalid(
                spec.id,
                [
                    f"version {spec.version} already exists with different content; "
                    f"submit it as version {existing[-1].version + 1}"
                ],
            )
        return same, False
    previous = stored_agreement(existing[-1].body) if existing else None
    _check_order(spec, previous)
    old = compile_version(previous) if previous else None
    widened_for = diff(old, compile_version(spec), paths_of).widened_for
    widens = bool(widened_for)
    record = AgreementVersionRecord(
        agreement_id=spec.id,
        version=spec.version,
        body=body,
        created_at=now,
        created_by=actor.name,
        widens=widens,
        widened_for=widened_for,
    )
    await tx.agreements.add_version(record)
    await _first_lifecycle(tx, spec, now, actor)
    await _record_schools(tx, spec, now, actor)
    await _audit(
        tx,
        now,
        actor,
        "agreement.version_added",
        spec.id,
        {"version": spec.version, "widens": widens, "widened_for": sorted(widened_for)},
    )
    return record, True


def _check_order(spec: Agreement, previous: Agreement | None) -> None:
    if previous is None:
        return
    problems = []
    if spec.version < previous.version:
        problems.append(
            f"overlapping versions: version {spec.version} is older than the "
            f"stored version {previous.version}"
        )
    if spec.valid_from and previous.valid_from and spec.valid_from < previous.valid_from:
        problems.append(
            f"overlapping versions: valid_from {spec.valid_from} is before "
            f"version {previous.version}'s valid_from {previous.valid_from}"
        )
    if problems:
        raise AgreementInvalid(spec.id, problems)


async def _first_lifecycle(tx: Tx, spec: Agreement, now: datetime, actor: Actor) -> None:
    if any(r.agreement_id == spec.id for r in await tx.agreements.lifecycles()):
        return
    due = spec.effective_review_due()
    review = datetime.combine(due, time(0), tzinfo=UTC) if due else None
    await tx.agreements.save_lifecycle(
        initial(spec.id, spec.status, now=now, actor=actor.name, review_due=review)
    )


async def _record_schools(tx: Tx, spec: Agreement, now: datetime, actor: Actor) -> None:
    """Each listed school's receipt; its pupil list only when the version gives one, so a
    list set through the API (a parent's objection) survives versions that are silent."""
    for school in spec.schools:
        await tx.agreements.add_approval(
            ApprovalRecord(
                spec.id, school.laestab, school.version, school.approved_by, school.approved_at
            )
        )
        if "pupils" in school.model_fields_set:
            await tx.privacy.save_pupil_access(
                PupilAccessRecord(
                    spec.id,
                    school.laestab,
                    school.pupils.mode,
                    tuple(school.pupils.learners),
                    now,
                    actor.name,
                )
            )


async def sync_config(
    store: Store, config: HubConfig, paths_of: PathsOf, now: datetime
) -> list[str]:
    """Load the configuration's agreements as versions (idempotent); all or nothing.
    Returns the ids of agreements that gained a version. Hubs starting together on one
    database race to add the same versions: the loser finds them there on its next try."""
    for attempt in range(SYNC_ATTEMPTS):
        try:
            async with store.transaction() as tx:
                changed = []
                for spec in config.agreements:
                    _, new = await add_version(tx, spec, actor=CONFIG, now=now, paths_of=paths_of)
                    if new:
                        changed.append(spec.id)
            return changed
        except AlreadyExists:
            if attempt == SYNC_ATTEMPTS - 1:
                raise
    return []


async def load_policy(store: Store, now: datetime) -> Policy:
    async with store.transaction() as tx:
        versions = await tx.agreements.versions()
        lifecycles = {r.agreement_id: r for r in await tx.agreements.lifecycles()}
        approvals = await tx.agreements.approvals()
        pupils = await tx.privacy.pupil_access()
        cohorts = {
            key: frozenset(canonical(m) for m in members)
            for key, members in (await tx.privacy.cohorts()).items()
        }
        suppressed = frozenset(canonical(s.learner) for s in await tx.privacy.suppressions())
    states = []
    for agreement_id, lifecycle in lifecycles.items():
        mine = [v for v in versions if v.agreement_id == agreement_id]
        if not mine:
            continue
        compiled = tuple(compile_version(stored_agreement(v.body)) for v in mine)
        approved: dict[str, set[int]] = {}
        for a in approvals:
            if a.agreement_id == agreement_id:
                approved.setdefault(a.laestab, set()).add(a.version)
        states.append(
            AgreementState(
                compiled,
                tuple(v.widens for v in mine),
                lifecycle,
                {school: frozenset(vs) for school, vs in approved.items()},
                {p.laestab: access_of(p) for p in pupils if p.agreement_id == agreement_id},
                tuple(v.widened_for for v in mine),
            )
        )
    return build_policy(states, suppressed, cohorts, now)


def access_of(record: PupilAccessRecord) -> PupilAccess:
    """As stored, in canonical form (a list stored before identifiers were checked must not
    stop the hub)."""
    data = {"mode": record.mode, "learners": list(record.learners)}
    return PupilAccess.model_validate(data, context=STORED)


@dataclass(frozen=True, kw_only=True)
class AgreementDetail:
    """An agreement as stored: its versions, lifecycle, schools' approvals and pupil lists."""

    versions: list[AgreementVersionRecord]
    lifecycle: LifecycleRecord
    approvals: list[ApprovalRecord]
    pupils: list[PupilAccessRecord]


async def detail(store: Store, agreement_id: str) -> AgreementDetail | None:
    """None when there is no such agreement (admin API and console)."""
    async with store.transaction() as tx:
        versions = await tx.agreements.versions(agreement_id)
        lifecycle = next(
            (r for r in await tx.agreements.lifecycles() if r.agreement_id == agreement_id), None
        )
        approvals = await tx.agreements.approvals(agreement_id)
        pupils = await tx.privacy.pupil_access(agreement_id)
    if not versions or lifecycle is None:
        return None
    return AgreementDetail(
        versions=versions, lifecycle=lifecycle, approvals=approvals, pupils=pupils
    )


async def version_diff(
    store: Store, agreement_id: str, old: int | None, new: int, paths_of: PathsOf
) -> VersionDiff | None:
    async with store.transaction() as tx:
        versions = {v.version: v for v in await tx.agreements.versions(agreement_id)}
    if new not in versions or (old is not None and old not in versions):
        return None
    before = compile_version(stored_agreement(versions[old].body)) if old else None
    return diff(before, compile_version(stored_agreement(versions[new].body)), paths_of)


# --- changes made by ops staff through the admin API --------------------------------


async def change_lifecycle(
    tx: Tx,
    agreement_id: str,
    transition: Transition,
    *,
    actor: Actor,
    now: datetime,
    reason: str,
    days: int | None,
) -> bool:
    record = next(
        (r for r in await tx.agreements.lifecycles() if r.agreement_id == agreement_id), None
    )
    if record is None:
        return False
    updated = apply(record, transition, now=now, actor=actor.name, reason=reason, days=days)
    await tx.agreements.save_lifecycle(updated)
    await _audit(
        tx,
        now,
        actor,
        f"agreement.{transition.value}",
        agreement_id,
        {"reason": reason, "status": updated.status, "days": days},
    )
    return True


async def approve(tx: Tx, record: ApprovalRecord, *, actor: Actor, now: datetime) -> None:
    await tx.agreements.add_approval(record)
    await _audit(
        tx,
        now,
        actor,
        "agreement.approved",
        record.agreement_id,
        {"school": record.laestab, "version": record.version, "approved_by": record.approved_by},
    )


async def set_pupils(
    tx: Tx, agreement_id: str, laestab: str, access: PupilAccess, *, actor: Actor, now: datetime
) -> None:
    await tx.privacy.save_pupil_access(
        PupilAccessRecord(
            agreement_id, laestab, access.mode, tuple(access.learners), now, actor.name
        )
    )
    await _audit(
        tx,
        now,
        actor,
        "agreement.pupils_changed",
        agreement_id,
        {"school": laestab, "mode": access.mode, "count": len(access.learners)},
    )


async def replace_cohort(
    tx: Tx, subscriber: str, cohort: str, members: Sequence[str], *, actor: Actor, now: datetime
) -> None:
    await tx.privacy.replace_cohort(subscriber, cohort, members)
    await _audit(
        tx, now, actor, "cohort.replaced", subscriber, {"cohort": cohort, "count": len(members)}
    )


async def suppress(
    tx: Tx, learner: str, reason: str, *, actor: Actor, now: datetime
) -> SuppressionRecord:
    record = SuppressionRecord(uuid.uuid4().hex, learner, reason, now, actor.name)
    await tx.privacy.add_suppression(record)
    await _audit(tx, now, actor, "learner.suppressed", record.id, {"reason": reason})
    return record


async def lift_suppression(
    tx: Tx, suppression_id: str, reason: str, *, actor: Actor, now: datetime
) -> bool:
    lifted = await tx.privacy.lift_suppression(suppression_id, now, actor.name, reason)
    if lifted:
        await _audit(tx, now, actor, "learner.unsuppressed", suppression_id, {"reason": reason})
    return lifted


async def decide_held(
    tx: Tx, agreement_id: str, decision: str, *, actor: Actor, now: datetime
) -> int:
    count = await tx.held.decide(agreement_id, decision, now)
    await _audit(tx, now, actor, f"held.{decision}", agreement_id, {"copies": count})
    return count


class HeldNotDecidable(Exception):
    """Held copies cannot be decided: `missing` (no such agreement) or still suspended."""

    def __init__(self, detail: str, *, missing: bool) -> None:
        super().__init__(detail)
        self.missing = missing


async def decide_suspension_held(
    store: Store, policy: Policy, agreement_id: str, decision: str, *, actor: Actor, now: datetime
) -> int:
    """Release or discard what a suspension held, once it has ended (admin API and console)."""
    now_standing = policy.standing(agreement_id)
    if now_standing is None:
        raise HeldNotDecidable(f"No agreement {agreement_id!r}", missing=True)
    if now_standing.holds:
        raise HeldNotDecidable(
            "Reinstate the agreement (or wait for the suspension to end) first", missing=False
        )
    async with store.transaction() as tx:
        return await decide_held(tx, agreement_id, decision, actor=actor, now=now)


async def _audit(
    tx: Tx, now: datetime, actor: Actor, action: str, subject: str, detail: dict[str, object]
) -> None:
    await tx.audit.add(audited(actor, now, action, subject, detail))
