"""What an agreement says. Vocabulary from the SIF 3 Privacy Obligations Document (parties,
purpose, laws, clauses, retention, dates) and Ed-Fi API profiles (include/exclude paths,
value filters on repeated items)."""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hub.core.envelope import Action
from hub.core.identifiers import canonical, learner_ids
from hub.core.objects import CATALOGUE

Token = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")]
Laestab = Annotated[str, StringConstraints(pattern=r"^[0-9]{7}$")]
ElementPath = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_]\w*(/[A-Za-z_]\w*)*$")]
# Parsing a version the hub stored earlier (validation context): checks added since it was
# stored must not stop the hub from loading it; compilation strips what must not leave.
STORED = {"stored": True}


def _stored(info: ValidationInfo) -> bool:
    return bool(info.context and info.context.get("stored"))


def _non_empty(value: str, info: ValidationInfo) -> str:
    value = value.strip()
    if not value and not _stored(info):
        raise ValueError("a value must have at least 1 character")
    return value


# A value an item filter or condition compares with: never empty (an empty string would
# match an element that is present but blank, which says nothing the agreement meant).
Value = Annotated[str, AfterValidator(_non_empty)]
Day = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
DAYS: tuple[Day, ...] = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class LawfulBasis(Strict):
    """UK GDPR Art 6(1) letter; Art 9(2) condition and DPA 2018 Schedule 1 condition for
    special category data (without them, special-category elements never leave)."""

    article6: Literal["a", "b", "c", "d", "e", "f"]
    article9: Literal["a", "b", "c", "d", "e", "f", "g", "h", "i", "j"] | None = None
    dpa_schedule1: str | None = None

    def describe(self) -> str:
        text = f"UK GDPR Art 6(1)({self.article6})"
        if self.article9:
            text += f"; Art 9(2)({self.article9})"
        if self.dpa_schedule1:
            text += f"; DPA 2018 Sch 1 {self.dpa_schedule1}"
        return text


class ItemFilter(Strict):
    """Keep only the repeated items at `path` whose attribute (or child element) is one of
    `values`, e.g. only Address with Type=Current."""

    path: ElementPath
    attribute: str | None = None
    child: str | None = None
    values: list[Value] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_test(self) -> Self:
        if (self.attribute is None) == (self.child is None):
            raise ValueError("give exactly one of attribute or child")
        return self


class Condition(Strict):
    """Deliver an object only when the element at `path` holds one of `values`
    (e.g. AttendanceDomain in [Session, Both])."""

    path: ElementPath
    values: list[Value] = Field(min_length=1)


class Rule(Strict):
    object: str
    actions: list[Action] = Field(default_factory=lambda: list(Action))
    include: list[ElementPath] | None = Field(
        default=None, description="Only these element paths (and keys) leave; None = all"
    )
    exclude: list[ElementPath] = Field(default_factory=list)
    keep_items: list[ItemFilter] = Field(default_factory=list)
    where: list[Condition] = Field(default_factory=list)

    def named_paths(self) -> list[str]:
        """Every element path the rule names: to include, to filter items on (the item and
        the child it tests), or as a condition. Exclusions only ever remove, so not these."""
        return [
            *(self.include or []),
            *(f.path for f in self.keep_items),
            *(f"{f.path}/{f.child}" for f in self.keep_items if f.child),
            *(c.path for c in self.where),
        ]

    @model_validator(mode="after")
    def _known_object(self) -> Self:
        spec = CATALOGUE.get(self.object)
        if spec is None:
            known = ", ".join(sorted(CATALOGUE))
            raise ValueError(f"unknown object {self.object!r}; known: {known}")
        if not spec.routable:
            raise ValueError(f"{self.object} is never routed (it carries credentials)")
        return self


class PupilAccess(Strict):
    """Which pupils of a school flow: all, all except those listed, or only those listed
    (by UPN or LearnerPersonal RefId)."""

    mode: Literal["all", "all_except", "only"] = "all"
    learners: list[str] = Field(default_factory=list, max_length=100_000)

    @field_validator("learners")
    @classmethod
    def _canonical(cls, learners: list[str], info: ValidationInfo) -> list[str]:
        if _stored(info):
            return sorted({canonical(x) for x in learners})
        return list(learner_ids(learners))


class SchoolOptIn(Strict):
    """A school's receipt: who approved which version, when."""

    laestab: Laestab
    approved_by: str = Field(min_length=1)
    approved_at: datetime
    version: int = Field(default=1, ge=1)
    pupils: PupilAccess = PupilAccess()


class Schedule(Strict):
    """`immediate`, or windows: copies are held and released at the next listed time on a
    listed day (UK local time), e.g. twice daily at 09:30 and 14:00, or weekly on Monday."""

    mode: Literal["immediate", "windows"] = "immediate"
    times: list[time] = Field(default_factory=list)
    days: list[Day] = Field(default_factory=lambda: list(DAYS))
    timezone: str = "Europe/London"

    @model_validator(mode="after")
    def _windows_need_times(self) -> Self:
        if self.mode == "windows" and not (self.times and self.days):
            raise ValueError("a windows schedule needs at least one time and one day")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown timezone {self.timezone!r}") from None
        return self


class Partner(Strict):
    """One recipient's own scope within an agreement (Warwickshire: one agreement, seven
    partners, each minimised to its purpose). Its rules replace the agreement's `rules` for
    that recipient; its schedule and cohort, when given, replace the agreement's."""

    recipient: Token
    rules: list[Rule] = Field(min_length=1)
    schedule: Schedule | None = None
    cohort: Token | None = Field(
        default=None, description="This partner's cohort; None = the agreement's `cohort`"
    )


class Agreement(Strict):
    id: Token
    title: str = ""
    version: int = Field(default=1, ge=1)
    controller: str = Field(default="", description="The LA as controller and recipient")
    purpose: str = ""
    clauses: list[str] = Field(default_factory=list)
    recipients: list[Token] = Field(min_length=1)
    lawful_basis: LawfulBasis = LawfulBasis(article6="e")
    rules: list[Rule] = Field(
        default_factory=list, description="For every recipient without its own `partners` entry"
    )
    partners: list[Partner] = Field(default_factory=list)
    schools: list[SchoolOptIn] = Field(default_factory=list)
    cohort: Token | None = Field(
        default=None, description="When set, only members of this recipient-supplied cohort flow"
    )
    status: Literal["draft", "live"] = "draft"
    valid_from: date | None = None
    approved_on: date | None = None
    review_due: date | None = None
    retention_days: int = Field(default=365, ge=1)
    schedule: Schedule = Schedule()

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Self:
        problems = _rule_problems(self, stored=_stored(info))
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def partner(self, recipient: str) -> Partner | None:
        return next((p for p in self.partners if p.recipient == recipient), None)

    def rules_for(self, recipient: str) -> list[Rule]:
        own = self.partner(recipient)
        return own.rules if own else self.rules

    def schedule_for(self, recipient: str) -> Schedule:
        own = self.partner(recipient)
        return own.schedule if own and own.schedule else self.schedule

    def cohort_for(self, recipient: str) -> str | None:
        own = self.partner(recipient)
        return own.cohort if own and own.cohort else self.cohort

    def all_rules(self) -> list[tuple[str, Rule]]:
        """Every rule with where it sits (`rules[i]` or `partners[j].rules[i]`)."""
        return [
            *((f"rules[{i}]", r) for i, r in enumerate(self.rules)),
            *(
                (f"partners[{j}].rules[{i}]", r)
                for j, p in enumerate(self.partners)
                for i, r in enumerate(p.rules)
            ),
        ]

    def effective_review_due(self) -> date | None:
        """Kent 7b: review within three years of approval unless a date is given."""
        if self.review_due or not self.approved_on:
            return self.review_due
        try:
            return self.approved_on.replace(year=self.approved_on.year + 3)
        except ValueError:  # 29 February
            return self.approved_on.replace(year=self.approved_on.year + 3, day=28)


def stored_agreement(body: dict[str, Any]) -> Agreement:
    """A version as the hub stored it (see STORED)."""
    return Agreement.model_validate(body, context=STORED)


def _rule_problems(agreement: Agreement, *, stored: bool = False) -> list[str]:
    from hub.core.agreements.special import special_paths_requested

    out = []
    for where, rules in [
        ("", agreement.rules),
        *((f" (partner {p.recipient})", p.rules) for p in agreement.partners),
    ]:
        seen: set[str] = set()
        for rule in rules:
            if rule.object in seen:
                out.append(f"object {rule.object} has more than one rule{where}")
            seen.add(rule.object)
            if agreement.lawful_basis.article9 is None and not stored:
                out += [
                    f"rule for {rule.object}{where} names special category data ({path}) "
                    "but lawful_basis has no article9 condition"
                    for path in special_paths_requested(rule.object, rule.named_paths())
                ]
    partners = [p.recipient for p in agreement.partners]
    out += [f"partner {r} is listed twice" for r in sorted(set(partners)) if partners.count(r) > 1]
    out += [
        f"partner {r} is not one of the agreement's recipients"
        for r in sorted(set(partners) - set(agreement.recipients))
    ]
    out += [
        f"recipient {r} has no rules: give the agreement `rules`, or a `partners` entry for it"
        for r in agreement.recipients
        if not agreement.rules_for(r)
    ]
    schools = [s.laestab for s in agreement.schools]
    out += [f"school {s} is listed twice" for s in sorted(set(schools)) if schools.count(s) > 1]
    out += [
        f"school {s.laestab} approved version {s.version}, after this version {agreement.version}"
        for s in agreement.schools
        if s.version > agreement.version
    ]
    return out
