"""Who receives which copy of what: the single routing decision every delivery path calls.

`build_policy` turns agreement versions and their runtime state (lifecycle, approvals,
pupil lists, cohorts, suppressions) into an immutable snapshot once; `decide` is pure and
cheap, called for every object by dispatch, release (replay) and preview alike.
Default deny: no live agreement with an approval from the school, no copy.
Suppression (deceased, adopted, confidential placement) overrides every agreement.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from functools import cached_property
from zoneinfo import ZoneInfo

from hub.core.agreements.compile import CompiledVersion, condition_paths
from hub.core.agreements.lifecycle import Standing, standing
from hub.core.agreements.model import PupilAccess, Schedule
from hub.core.agreements.schedule import next_window
from hub.core.agreements.scope import effective_version, in_cohort, pupil_allowed
from hub.core.envelope import Action
from hub.core.identifiers import is_upn
from hub.core.objects import CATALOGUE, Subject
from hub.core.paths import PathFilter
from hub.core.records import LifecycleRecord

UK = ZoneInfo("Europe/London")
MEMO_LIMIT = 100_000  # versions remembered per agreement state (schools x days x recipients)
HOLD_SUSPENDED = "suspended"
HOLD_SCHEDULE = "schedule"
# A learner's copy that a UPN-keyed restriction (suppression, pupil list, cohort) could stop,
# while the hub does not yet know the learner's UPN, or a learner object whose learner is
# not known at all: held until the identity arrives (or the hold expires). Default deny.
HOLD_IDENTITY = "identity"


@dataclass(frozen=True)
class Item:
    """What dispatch knows about one object waiting to be routed. Identifiers are
    canonical (hub.core.identifiers). `school` is the school the object is routed as;
    `schools` are any further schools it names, each of which must allow the copy too."""

    object_name: str
    action: Action
    school: str | None
    subject_refid: str | None = None
    upn: str | None = None
    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    schools: tuple[str, ...] = ()
    # UPNs the learner had before `upn`: what excludes a learner by UPN (suppression, an
    # all-except list) still does after the UPN changes; what includes one goes by `upn`.
    former_upns: frozenset[str] = frozenset()

    @property
    def all_schools(self) -> tuple[str | None, ...]:
        return (self.school, *(s for s in self.schools if s != self.school))


@dataclass(frozen=True, kw_only=True)
class Copy:
    """One entitled recipient, the filter its copy passes through, and whether it waits."""

    subscriber: str
    agreement_id: str
    agreement_version: int
    filter: PathFilter
    lawful_basis: str = ""
    purpose: str = ""
    hold: str | None = None
    release_after: datetime | None = None
    retention_days: int = 0  # how long the agreement keeps the object's payload


@dataclass(frozen=True)
class AgreementState:
    versions: tuple[CompiledVersion, ...]  # ascending by number
    widens: tuple[bool, ...]  # does version i widen version i-1
    lifecycle: LifecycleRecord
    approvals: Mapping[str, frozenset[int]] = field(default_factory=dict)  # school -> versions
    pupils: Mapping[str, PupilAccess] = field(default_factory=dict)  # school -> access
    # Per version: the recipients whose scope it widens (None: not recorded, see `widens`).
    widened_for: tuple[frozenset[str] | None, ...] = ()
    # Answers already worked out (the state is immutable; decide asks once per copy).
    _found: dict[tuple[str, date, str | None], CompiledVersion | None] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @property
    def agreement_id(self) -> str:
        return self.lifecycle.agreement_id

    @cached_property
    def recipients(self) -> tuple[str, ...]:
        return tuple(sorted({r for v in self.versions for r in v.spec.recipients}))

    def version_for(
        self, school: str | None, today: date, recipient: str | None = None
    ) -> CompiledVersion | None:
        """The version in force for this school (and recipient): its approvals, carried
        over narrowing. Widening is judged per recipient when the version recorded it: a
        version that widens only one partner's scope needs re-approval for that partner."""
        if school is None or school not in self.approvals:
            return None
        key = (school, today, recipient)
        if key not in self._found:
            if len(self._found) >= MEMO_LIMIT:  # a state that lives for days: start again
                self._found.clear()
            self._found[key] = self._version_for(school, today, recipient)
        return self._found[key]

    def _version_for(
        self, school: str, today: date, recipient: str | None
    ) -> CompiledVersion | None:
        valid = []
        for i, (v, widens) in enumerate(zip(self.versions, self.widens, strict=True)):
            if v.spec.valid_from is not None and v.spec.valid_from > today:
                break  # later versions' widening was judged against this one
            who = self.widened_for[i] if i < len(self.widened_for) else None
            if recipient is not None and who is not None:
                widens = recipient in who
            valid.append((v.version, widens, v))
        return effective_version(valid, self.approvals[school])


@dataclass(frozen=True)
class Policy:
    agreements: tuple[AgreementState, ...] = ()
    suppressed: frozenset[str] = frozenset()  # LearnerPersonal RefIds and UPNs
    cohorts: Mapping[tuple[str, str], frozenset[str]] = field(default_factory=dict)
    now: datetime = datetime(1970, 1, 1, tzinfo=UTC)
    index: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    conditions: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Is any learner suppressed by UPN? Then a copy about a learner whose UPN is not yet
    # known could be about them.
    upn_suppressions: bool = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "upn_suppressions", any(is_upn(x) for x in self.suppressed))

    def at(self, now: datetime) -> Policy:
        return replace(self, now=now)

    def standing(self, agreement_id: str) -> Standing | None:
        state = next((a for a in self.agreements if a.agreement_id == agreement_id), None)
        return standing(state.lifecycle, self.now) if state else None


def build_policy(
    agreements: list[AgreementState],
    suppressed: frozenset[str] = frozenset(),
    cohorts: Mapping[tuple[str, str], frozenset[str]] | None = None,
    now: datetime | None = None,
) -> Policy:
    index: dict[str, list[int]] = {}
    for i, state in enumerate(sorted(agreements, key=lambda a: a.agreement_id)):
        for name in {n for v in state.versions for n in v.object_names}:
            index.setdefault(name, []).append(i)
    ordered = tuple(sorted(agreements, key=lambda a: a.agreement_id))
    versions = [v for a in ordered for v in a.versions]
    conditions = {name: condition_paths(versions, name) for name in index}
    return Policy(
        ordered,
        suppressed,
        dict(cohorts or {}),
        now or datetime.now(UTC),
        {k: tuple(v) for k, v in index.items()},
        {k: v for k, v in conditions.items() if v},
    )


def is_suppressed(item: Item, policy: Policy) -> bool:
    ids = {x for x in (item.subject_refid, item.upn) if x} | item.former_upns
    return bool(ids & policy.suppressed)


def decide(item: Item, policy: Policy) -> list[Copy]:
    """Every copy the agreements in force release for `item`. Each agreement releases its
    own copies: two agreements naming one recipient give it two copies, each filtered by
    its own rule and logged under its own agreement, and a suspended, draft or terminated
    agreement neither adds to nor holds back another's copy."""
    spec = CATALOGUE.get(item.object_name)
    if spec is None or not spec.routable or is_suppressed(item, policy):
        return []
    learner = spec.subject is Subject.LEARNER
    return [
        copy
        for i in policy.index.get(item.object_name, ())
        for copy in _copies(policy.agreements[i], item, learner, policy)
    ]


def _copies(state: AgreementState, item: Item, learner: bool, policy: Policy) -> list[Copy]:
    now_standing = standing(state.lifecycle, policy.now)
    if not (now_standing.flows or now_standing.holds):
        return []
    today = policy.now.astimezone(UK).date()
    pupils: bool | None = True
    copies = []
    for recipient in state.recipients:
        version = _version_for_all(state, item, today, recipient)
        rule = version.rule(recipient, item.object_name) if version else None
        if version is None or rule is None or item.action not in rule.actions:
            continue
        if not rule.matches(dict(item.values)):
            continue
        if learner and (pupils := _pupils_verdict(state, item)) is False:
            return []
        member = _cohort_verdict(policy, version, recipient, item) if learner else True
        if member is False:
            continue
        known = pupils is True and member is True and _identity_known(item, policy, learner)
        hold, release = _hold(version.spec.schedule_for(recipient), now_standing, policy.now)
        copies.append(
            Copy(
                subscriber=recipient,
                agreement_id=version.agreement_id,
                agreement_version=version.version,
                filter=rule.filter,
                lawful_basis=version.spec.lawful_basis.describe(),
                purpose=version.spec.purpose,
                hold=hold if known else HOLD_IDENTITY,
                release_after=release if known else None,
                retention_days=version.spec.retention_days,
            )
        )
    return copies


def _version_for_all(
    state: AgreementState, item: Item, today: date, recipient: str
) -> CompiledVersion | None:
    """The version in force for every school the object names, for this recipient; None
    unless they agree (an object naming two schools leaves only under a scope both
    approved)."""
    versions = {
        id(v): v for v in (state.version_for(s, today, recipient) for s in item.all_schools)
    }
    if len(versions) != 1:
        return None
    found = next(iter(versions.values()))
    return found if found is not None and recipient in found.spec.recipients else None


def _identity_known(item: Item, policy: Policy, learner: bool) -> bool:
    if not learner:
        return True
    if item.subject_refid is None:
        return False  # whose data this is cannot be told: nothing can be checked
    return item.upn is not None or not policy.upn_suppressions


def _pupils_verdict(state: AgreementState, item: Item) -> bool | None:
    """Every named school's pupil list allows the learner (True), one refuses (False), or
    it cannot be told until the learner's UPN is known (None)."""
    verdicts = [
        pupil_allowed(
            state.pupils.get(school or "", PupilAccess()),
            item.subject_refid,
            item.upn,
            item.former_upns,
        )
        for school in item.all_schools
    ]
    if False in verdicts:
        return False
    return None if None in verdicts else True


def _cohort_verdict(
    policy: Policy, version: CompiledVersion, recipient: str, item: Item
) -> bool | None:
    cohort = version.spec.cohort_for(recipient)
    if not cohort:
        return True
    members = policy.cohorts.get((recipient, cohort), frozenset())
    return in_cohort(members, item.subject_refid, item.upn)


def _hold(
    schedule: Schedule, now_standing: Standing, now: datetime
) -> tuple[str | None, datetime | None]:
    if now_standing.holds:
        return HOLD_SUSPENDED, None
    window = next_window(schedule, now)
    return (HOLD_SCHEDULE, window) if window is not None else (None, None)
