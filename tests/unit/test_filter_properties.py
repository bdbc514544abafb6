"""Property tests: whatever the agreements say and whatever a valid object holds, a copy
never carries more than its agreement allows.

Random agreements (include/exclude subsets of the schema's element paths, actions, item
filters and conditions, on special category data too where Art 9 or a bypass allows it, Art 9
condition or not, lifecycle status, approvals, pupil lists, cohorts, suppressions, now and
then an agreement that bypassed validation, and now and then an object whose learner the
hub cannot tell) meet random
schema-valid LearnerPersonal, WorkforcePersonal, LearnerAttendance, LearnerSpecialNeeds and
Identity objects, with special-category elements (EthnicityList, Religion, Traveller,
MedicalAlertMsgList, Pregnant) in many of them. For every copy `decide` returns, the copy
`apply_filter` cuts is checked against the agreement version it came from.

Hypothesis draws the decisions that matter (object kind, status, Art 9, versions,
approvals, school, action, suppression, cohort...); the bulky content (optional parts of an
object, path subsets of a rule) comes from a seeded `random.Random`, one draw each, which
keeps the ~2,600 examples of this file within a few seconds. Every example is
reproducible from what Hypothesis prints.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any, TypeVar

from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lxml import etree

from hub.core.agreements.compile import compile_version
from hub.core.agreements.model import Agreement, LawfulBasis, PupilAccess, Rule, Schedule
from hub.core.agreements.special import NEVER_PATHS, SPECIAL_OBJECTS, SPECIAL_PATHS
from hub.core.envelope import SIF_UK_NS, Action
from hub.core.identifiers import is_upn
from hub.core.objects import CATALOGUE, Subject
from hub.core.paths import ItemRule, Path, PathFilter, parse_path
from hub.core.policy import (
    HOLD_IDENTITY,
    HOLD_SCHEDULE,
    HOLD_SUSPENDED,
    AgreementState,
    Copy,
    Item,
    build_policy,
    decide,
)
from hub.core.records import LifecycleRecord
from hub.sif.facts import object_facts, values_at
from hub.sif.filter import apply_filter, released_paths
from hub.sif.schemas import load_schemas

EXAMPLES_DECIDE = 1400
EXAMPLES_DELIVER = 150
EXAMPLES_MUTATION = 500
SETTINGS = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

SCHEMAS = load_schemas()
PATHS_OF = SCHEMAS.element_paths
OBJECTS = ("LearnerPersonal", "WorkforcePersonal", "LearnerAttendance", "LearnerSpecialNeeds")
KINDS = (*OBJECTS, "Identity")
PATHS = {name: sorted(PATHS_OF(name)) for name in KINDS}
SHALLOW = {name: [p for p in paths if p.count("/") < 2] for name, paths in PATHS.items()}
LEAVES = {
    name: [p for p in paths if not any(o.startswith(p + "/") for o in paths)]
    for name, paths in PATHS.items()
}

SCHOOL, OTHER_SCHOOL = "8301234", "8305678"
RECIPIENTS = ("cme", "vs", "ehe")
COHORT = "c1"
LEARNER_REFIDS = (
    "53E6F4C0109FDE4DC7E11DB9C0100163",
    "6219B1684CF9B799640234CBB9992134",
    "98120AB87459381AB064829763D0934A",
)
UPNS = ("H330950043367", "N936846321107", "A123456789012")
PUPIL_IDS = LEARNER_REFIDS + UPNS
STAFF_REFID = "A8C3D5EE44B359D7510100AA001B7B89"
NOWS = (
    datetime(2025, 1, 15, 8, 0, tzinfo=UTC),  # GMT, a Wednesday
    datetime(2025, 7, 14, 13, 30, tzinfo=UTC),  # BST, a Monday
    datetime(2025, 3, 30, 0, 30, tzinfo=UTC),  # the night BST starts
)
SEEDS = st.integers(0, 2**32 - 1)
KIND = st.sampled_from((*OBJECTS * 3, "Identity"))  # Identity: a few, all refused
T = TypeVar("T")


class Dice(random.Random):
    def coin(self, p: float = 0.5) -> bool:
        return self.random() < p

    def some(self, items: Sequence[T], most: int) -> list[T]:
        return [self.choice(items) for _ in range(self.randint(0, most))] if items else []

    def hex(self) -> str:
        return f"{self.getrandbits(128):032X}"


def _under(path: str, prefixes: Sequence[str]) -> bool:
    return any(path == p or path.startswith(p + "/") for p in prefixes)


def _tuple_under(path: Path, prefixes: Sequence[Path]) -> bool:
    return any(path[: len(p)] == p for p in prefixes)


# --------------------------------------------------------------------------------------
# Objects: schema-valid by construction (and checked), optional parts at random
# --------------------------------------------------------------------------------------


def _sub(
    parent: etree._Element, name: str, text: str | None = None, **attrs: str
) -> etree._Element:
    child = etree.SubElement(parent, f"{{{SIF_UK_NS}}}{name}", attrs)
    if text is not None:
        child.text = text
    return child


def _root(name: str, **attrs: str) -> etree._Element:
    return etree.Element(f"{{{SIF_UK_NS}}}{name}", attrs, nsmap={None: SIF_UK_NS})  # type: ignore[dict-item]


WORDS = ("Harris", "Thaxton", "O'Neil", "Smith-Jones", "Łukasz", "Nguyen")


def _name(d: Dice, parent: etree._Element) -> None:
    name = _sub(parent, "Name", Type=d.choice("BCARFMP"))
    if d.coin():
        _sub(name, "Title", "Ms")
    _sub(name, "FamilyName", d.choice(WORDS))
    _sub(name, "GivenName", d.choice(WORDS))
    if d.coin():
        _sub(name, "MiddleNames", d.choice(WORDS))
    if d.coin():
        _sub(name, "PreferredGivenName", d.choice(WORDS))


def _address(d: Dice, parent: etree._Element) -> None:
    address = _sub(parent, "Address", Type=d.choice(["Current", "Previous", "Mailing"]))
    _sub(_sub(address, "PAON"), "StartNumber", str(d.randint(1, 200)))
    if d.coin():
        _sub(address, "Street", "Bushmaster Close")
    if d.coin():
        _sub(address, "PostCode", "B35 7PH")


def _phone(d: Dice, parent: etree._Element) -> None:
    _sub(_sub(parent, "PhoneNumber", Type=d.choice(["0A", "0B", "0M"])), "Number", "0121 4960")


def _demographics(d: Dice, info: etree._Element) -> None:
    demo = _sub(info, "Demographics")
    if d.coin():
        ethnicities = _sub(demo, "EthnicityList")
        for _ in range(d.randint(1, 2)):
            ethnicity = _sub(ethnicities, "Ethnicity")
            _sub(ethnicity, "Code", d.choice(["WENG", "WIRI", "MWBC", "AIND"]))
            if d.coin():
                _sub(ethnicity, "Source", "P")
    if d.coin():
        _sub(demo, "Gender", d.choice("FMU"))
    _sub(demo, "BirthDate", f"20{d.randint(10, 19)}-06-23")
    if d.coin():
        _sub(demo, "CountryOfBirth", "GBR")
    if d.coin():
        languages = _sub(demo, "LanguageList")
        for _ in range(d.randint(0, 2)):
            language = _sub(languages, "Language")
            _sub(language, "Code", d.choice(["ENG", "POL", "URD"]))
            if d.coin():
                _sub(_sub(language, "TypeList"), "Type", "F")
    if d.coin():
        _sub(demo, "Refugee", d.choice(["Yes", "No"]))
    if d.coin():
        religion = _sub(demo, "Religion")
        _sub(religion, "AffiliationCode", d.choice(["CHR", "MUS", "JEW", "NOR"]))
        if d.coin():
            _sub(religion, "CollectiveWorshipStatus", "A")
    if d.coin():
        _sub(_sub(demo, "Traveller"), "Code", d.choice(["GYP", "TRV"]))


def _personal_information(d: Dice, root: etree._Element) -> None:
    info = _sub(root, "PersonalInformation")
    _name(d, info)
    if d.coin(0.3):
        others = _sub(info, "OtherNames")
        for _ in range(d.randint(0, 2)):
            _name(d, others)
    if d.coin(0.8):  # Demographics, where most of the Art 9 data lives
        _demographics(d, info)
    if d.coin():
        _sub(info, "Email", "a.person@school.sch.uk", Type=d.choice(["School", "Personal"]))
    if d.coin():
        _address(d, info)
    if d.coin():
        others = _sub(info, "OtherAddressList")
        for _ in range(d.randint(1, 3)):
            _address(d, others)
    if d.coin():
        _phone(d, info)
    if d.coin(0.3):
        phones = _sub(info, "OtherPhoneNumberList")
        for _ in range(d.randint(1, 2)):
            _phone(d, phones)


def _alerts(d: Dice, root: etree._Element) -> None:
    if d.coin(0.3):
        alerts = _sub(root, "AlertMsgList")
        for _ in range(d.randint(0, 2)):
            _sub(alerts, "AlertMsg", "Court order", Type=d.choice(["Legal", "Discipline"]))
    if d.coin():
        medical = _sub(root, "MedicalAlertMsgList")
        for _ in range(d.randint(1, 2)):
            _sub(
                medical,
                "MedicalAlertMsg",
                d.choice(["Asthma", "Nut allergy"]),
                Severity=d.choice(["Low", "High", "Severe"]),
            )


def _trailer(d: Dice, root: etree._Element) -> None:
    if d.coin(0.15):
        metadata = _sub(root, "SIF_Metadata")
        etree.SubElement(metadata, "{urn:example:other}Note").text = "free content"
    if d.coin(0.15):
        _sub(
            _sub(root, "SIF_ExtendedElements"),
            "SIF_ExtendedElement",
            "value",
            Name=d.choice(["Flag", "Other"]),
        )


def learner_personal(d: Dice) -> etree._Element:
    root = _root("LearnerPersonal", RefId=d.choice(LEARNER_REFIDS))
    if d.coin():
        _sub(root, "LocalId", "032134")
    _alerts(d, root)
    _personal_information(d, root)
    if d.coin(0.8):
        _sub(root, "UPN", d.choice(UPNS))
    if d.coin(0.3):
        _sub(_sub(root, "FormerUPNList"), "UPN", "N936846321107")
    if d.coin(0.3):
        _sub(root, "FamilyStructure", "A")
    in_care = _sub(root, "InCare")
    _sub(in_care, "Current", d.choice(["Yes", "No", "Unknown"]))
    _sub(in_care, "LAId", "330")
    if d.coin(0.3):
        _sub(_sub(root, "ChildProtectionRegister"), "IsRegistered", d.choice(["Yes", "No"]))
    if d.coin():
        _sub(root, "Pregnant", d.choice(["Yes", "No"]))
    if d.coin(0.2):
        sibling = _sub(_sub(root, "SiblingList"), "Sibling")
        _sub(sibling, "LearnerPersonalRefId", LEARNER_REFIDS[1])
        _sub(sibling, "UIPI", "034887")
    if d.coin():
        enrolment = _sub(root, "CurrentSchoolEnrolment", LearnerSchoolEnrolmentRefId=d.hex())
        _sub(enrolment, "LAId", "830")
        _sub(enrolment, "EstablishmentId", "1234")
        _sub(enrolment, "NCYearGroup", "9")
    _trailer(d, root)
    return root


def workforce_personal(d: Dice) -> etree._Element:
    root = _root("WorkforcePersonal", RefId=STAFF_REFID)
    _sub(root, "LocalId", "593117")
    _alerts(d, root)
    _personal_information(d, root)
    if d.coin():
        _sub(root, "TeacherNumber", "U002738664")
    if d.coin():
        _sub(root, "NINumber", "CF344902B")
    if d.coin():
        assignment = _sub(_sub(root, "CurrentAssignmentList"), "CurrentAssignment")
        _sub(assignment, "LAId", "830")
        _sub(assignment, "EstablishmentId", "1234")
        _sub(_sub(assignment, "Posts"), "Post", "MUSS")
    _trailer(d, root)
    return root


def learner_attendance(d: Dice) -> etree._Element:
    root = _root(
        "LearnerAttendance",
        RefId=d.hex(),
        LearnerPersonalRefId=d.choice(LEARNER_REFIDS),
        SchoolInfoRefId="44AC87090487621198AC4E89480D3AC1",
    )
    _sub(root, "AttendanceDate", "2025-03-12")
    if d.coin():
        _sub(root, "TimeIn", "08:03:44")
    if d.coin():
        _sub(root, "Session", d.choice(["AM", "PM"]))
    _sub(root, "AttendanceDomain", d.choice(["Session", "Lesson", "Both"]))
    _sub(root, "AttendanceCode", d.choice(["/", "\\", "I", "M"]))
    if d.coin():
        _sub(root, "AttendanceNote", "Hospital appointment")
    _sub(root, "InputSource", "WF")
    if d.coin():
        _sub(root, "WorkforcePersonalRefId", STAFF_REFID)
    _trailer(d, root)
    return root


def learner_special_needs(d: Dice) -> etree._Element:
    root = _root(
        "LearnerSpecialNeeds",
        RefId=d.hex(),
        LearnerPersonalRefId=d.choice(LEARNER_REFIDS),
        SchoolInfoRefId="3A35946CDC7D11DB9C010016353E6F4C",
    )
    _sub(root, "Provision", "A")
    _sub(root, "StartDate", "2024-09-01")
    if d.coin():
        _sub(_sub(root, "SENTypeList"), "SENType", "MLD", Ranking=d.choice(["1", "2"]))
    if d.coin():
        _sub(root, "MedicalFlag", "Yes")
    if d.coin():
        _sub(root, "MedicalNotes", "Pupil must be monitored constantly.")
    _trailer(d, root)
    return root


def identity(d: Dice) -> etree._Element:
    root = _root("Identity", RefId=d.hex())
    _sub(root, "SIF_RefId", d.choice(LEARNER_REFIDS), SIF_RefObject="LearnerPersonal")
    _sub(root, "AuthenticationSource", "UKAccessShibboleth")
    _sub(_sub(root, "PasswordList"), "Password", "c2VjcmV0", Algorithm="SHA1", KeyName="k1")
    return root


BUILDERS = {
    "LearnerPersonal": learner_personal,
    "WorkforcePersonal": workforce_personal,
    "LearnerAttendance": learner_attendance,
    "LearnerSpecialNeeds": learner_special_needs,
    "Identity": identity,
}


@st.composite
def valid_objects(draw: st.DrawFn) -> etree._Element:
    element = BUILDERS[draw(KIND)](Dice(draw(SEEDS)))
    SCHEMAS.validate_object(element, partial=False)  # valid by construction: must pass
    return element


def test_the_object_generators_cover_the_special_category_elements() -> None:
    seen: set[str] = set()
    for seed in range(200):
        for name, build in BUILDERS.items():
            element = build(Dice(seed))
            SCHEMAS.validate_object(element, partial=False)
            for path in _element_paths(element):
                seen |= {
                    f"{name}/{s}"
                    for s in SPECIAL_PATHS.get(name, ())
                    if _tuple_under(path, [parse_path(s)])
                }
    assert seen == {
        f"{n}/{s}" for n in ("LearnerPersonal", "WorkforcePersonal") for s in SPECIAL_PATHS[n]
    }


# --------------------------------------------------------------------------------------
# Agreements and their state
# --------------------------------------------------------------------------------------

_PERSON_ITEMS: list[dict[str, Any]] = [
    {
        "path": "PersonalInformation/OtherAddressList/Address",
        "attribute": "Type",
        "values": ["Current"],
    },
    {"path": "PersonalInformation/Address", "attribute": "Type", "values": ["Current"]},
    {
        "path": "PersonalInformation/Demographics/LanguageList/Language",
        "child": "Code",
        "values": ["ENG"],
    },
    {"path": "AlertMsgList/AlertMsg", "attribute": "Type", "values": ["Legal"]},
    {
        "path": "PersonalInformation/OtherPhoneNumberList/PhoneNumber",
        "attribute": "Type",
        "values": ["0M"],
    },
]
ITEM_FILTERS: dict[str, list[dict[str, Any]]] = {
    "LearnerPersonal": _PERSON_ITEMS,
    "WorkforcePersonal": _PERSON_ITEMS,
    "LearnerAttendance": [
        {
            "path": "SIF_ExtendedElements/SIF_ExtendedElement",
            "attribute": "Name",
            "values": ["Flag"],
        }
    ],
    "LearnerSpecialNeeds": [
        {"path": "SENTypeList/SENType", "attribute": "Ranking", "values": ["1"]}
    ],
    "Identity": [],
}
WHERE: dict[str, list[dict[str, Any]]] = {
    "LearnerAttendance": [
        {"path": "AttendanceDomain", "values": ["Session", "Both"]},
        {"path": "AttendanceDomain", "values": ["Lesson"]},
    ],
    "LearnerPersonal": [{"path": "InCare/Current", "values": ["No"]}],
}
_PERSON_SPECIAL_ITEMS: list[dict[str, Any]] = [
    {"path": "PersonalInformation/Demographics", "child": "Religion", "values": ["x"]},
    {
        "path": "PersonalInformation/Demographics/EthnicityList/Ethnicity",
        "child": "Code",
        "values": ["WENG", "AIND"],
    },
    {"path": "MedicalAlertMsgList/MedicalAlertMsg", "attribute": "Severity", "values": ["High"]},
]
SPECIAL_ITEM_FILTERS = {
    "LearnerPersonal": _PERSON_SPECIAL_ITEMS,
    "WorkforcePersonal": _PERSON_SPECIAL_ITEMS,
}
SPECIAL_WHERE: dict[str, list[dict[str, Any]]] = {
    "LearnerPersonal": [
        {"path": "PersonalInformation/Demographics/Religion/AffiliationCode", "values": ["CHR"]},
        {"path": "Pregnant", "values": ["Yes"]},
    ],
}
SCHEDULES = (
    Schedule(),
    Schedule(mode="windows", times=[time(9, 30), time(14, 0)]),
    Schedule(mode="windows", times=[time(9, 30)], days=["Mon"]),
)
# What each status must do to copies: none; flow (unheld, or held for a window); held.
EXPECT = {
    "draft": "none",
    "terminating_passed": "none",
    "terminated": "none",
    "live": "flow",
    "review_overdue": "flow",
    "suspension_over": "flow",
    "terminating": "flow",
    "suspended": "held",
    "review_lapsed": "held",
}
ART9 = st.sampled_from([None, None, "g", "h"])
# Live-ish statuses drawn more often, so that most examples have copies to check.
STATUS = st.sampled_from(
    (*EXPECT, "live", "live", "live", "terminating", "suspended", "review_overdue")
)


def _rule(d: Dice, name: str, art9: bool, bypass: bool) -> dict[str, Any]:
    include = None
    if d.coin(0.75):
        include = d.some(SHALLOW[name], 3) + d.some(PATHS[name], 4)
        if not art9 and not bypass:  # an explicit request would be refused
            include = [p for p in include if not _under(p, SPECIAL_PATHS.get(name, ()))]
    rule: dict[str, Any] = {
        "object": name,
        "actions": list(Action)
        if d.coin()
        else sorted({d.choice(list(Action)) for _ in range(d.randint(1, 3))}),
        "include": include,
        "exclude": d.some(PATHS[name], 3),
    }
    # Filters on special category data: refused without Art 9, so only with Art 9 or in an
    # agreement that bypassed validation (then they must never bring that data back).
    special = art9 or bypass
    items = ITEM_FILTERS[name] + (SPECIAL_ITEM_FILTERS.get(name, []) if special else [])
    if d.coin(0.3):
        rule["keep_items"] = list({f["path"]: f for f in d.some(items, 2)}.values())
    wheres = WHERE.get(name, []) + (SPECIAL_WHERE.get(name, []) if special else [])
    if wheres and d.coin(0.25):
        rule["where"] = [d.choice(wheres)]
    return rule


def _spec(
    d: Dice, agreement_id: str, version: int, target: str, art9: str | None, bypass: bool
) -> Agreement:
    """One version. `bypass`: an agreement that skipped validation (model_construct),
    naming special-category paths without Art 9, LearnerSpecialNeeds, even Identity."""
    allowed = [n for n in OBJECTS if art9 or bypass or n not in SPECIAL_OBJECTS]
    chosen = [n for n in allowed if d.coin()]
    if target in allowed and target not in chosen and d.coin(0.9):
        chosen.append(target)  # usually a rule for the object at hand
    rules = [_rule(d, name, art9 is not None, bypass) for name in chosen or allowed[:1]]
    recipients = sorted({d.choice(RECIPIENTS) for _ in range(d.randint(1, 3))})
    cohort = COHORT if d.coin(0.25) else None
    schedule = d.choice(SCHEDULES)
    if bypass:
        built = [Rule.model_validate(r) for r in rules]
        if d.coin():
            built.append(
                Rule.model_construct(
                    object="Identity",
                    actions=list(Action),
                    include=None,
                    exclude=[],
                    keep_items=[],
                    where=[],
                )
            )
        return Agreement.model_construct(
            id=agreement_id,
            version=version,
            recipients=recipients,
            lawful_basis=LawfulBasis(article6="e"),
            rules=built,
            cohort=cohort,
            schedule=schedule,
        )
    return Agreement.model_validate(
        {
            "id": agreement_id,
            "version": version,
            "recipients": recipients,
            "lawful_basis": {"article6": "e", "article9": art9},
            "rules": rules,
            "cohort": cohort,
            "schedule": schedule,
        }
    )


def _lifecycle(agreement_id: str, status: str, now: datetime) -> LifecycleRecord:
    day = timedelta(days=1)
    record = LifecycleRecord(
        agreement_id, "live", "", now - 100 * day, "setup", review_due=now + 400 * day
    )
    table: dict[str, dict[str, Any]] = {
        "draft": {"status": "draft"},
        "live": {},
        "review_overdue": {"review_due": now - day},
        "review_lapsed": {"review_due": now - 31 * day},
        "suspended": {"status": "suspended", "suspended_until": now + day},
        "suspension_over": {"status": "suspended", "suspended_until": now - day},
        "terminating": {"status": "terminating", "notice_effective": now + day},
        "terminating_passed": {"status": "terminating", "notice_effective": now},
        "terminated": {"status": "terminated"},
    }
    return replace(record, **table[status])


@st.composite
def agreement_states(
    draw: st.DrawFn, agreement_id: str, now: datetime, target: str
) -> tuple[AgreementState, list[Agreement], str]:
    status = draw(STATUS)
    art9 = draw(ART9)
    bypass = art9 is None and draw(st.integers(0, 7)) == 0
    d = Dice(draw(SEEDS))
    count = d.randint(1, 2)
    specs = [_spec(d, agreement_id, n, target, art9, bypass) for n in range(1, count + 1)]
    widens = (True, *(d.coin() for _ in range(count - 1)))
    approvals = {}
    for school in (SCHOOL, OTHER_SCHOOL):
        if d.coin(0.95):
            approved = {n for n in range(1, count + 1) if d.coin()} | {d.randint(1, count)}
            approvals[school] = frozenset(approved if d.coin(0.95) else ())
    pupils = {}
    if d.coin(0.25):
        pupils[SCHOOL] = PupilAccess(
            mode=d.choice(["all", "all_except", "only"]), learners=sorted(set(d.some(PUPIL_IDS, 3)))
        )
    state = AgreementState(
        tuple(compile_version(s) for s in specs),
        widens,
        _lifecycle(agreement_id, status, now),
        approvals,
        pupils,
    )
    return state, specs, status


@dataclass(frozen=True)
class Scenario:
    element: etree._Element
    item: Item
    specs: dict[tuple[str, int], Agreement]
    statuses: dict[str, str]
    states: list[AgreementState]
    suppressed: frozenset[str]
    cohorts: dict[tuple[str, str], frozenset[str]]
    now: datetime

    def __repr__(self) -> str:  # what Hypothesis prints for a falsifying example
        specs = "\n".join(
            f"  {key}: {spec.model_dump(exclude_defaults=True)}" for key, spec in self.specs.items()
        )
        states = "\n".join(
            f"  {s.lifecycle} widens={s.widens} approvals={dict(s.approvals)}"
            f" pupils={dict(s.pupils)}"
            for s in self.states
        )
        return (
            f"Scenario(now={self.now}, item={self.item},\n"
            f" statuses={self.statuses}, suppressed={set(self.suppressed)},"
            f" cohorts={self.cohorts}\n specs:\n{specs}\n states:\n{states}\n"
            f" object: {etree.tostring(self.element, encoding='unicode')})"
        )


@st.composite
def scenarios(draw: st.DrawFn) -> Scenario:
    now = draw(st.sampled_from(NOWS))
    element = draw(valid_objects())
    name = etree.QName(element).localname
    ids = ["A", "B"] if draw(st.integers(0, 3)) == 0 else [draw(st.sampled_from(["A", "B"]))]
    states, specs, statuses = [], {}, {}
    for agreement_id in ids:
        state, versions, status = draw(agreement_states(agreement_id, now, name))
        states.append(state)
        statuses[agreement_id] = status
        specs.update({(agreement_id, s.version): s for s in versions})
    facts = object_facts(element, CATALOGUE[name])
    d = Dice(draw(SEEDS))
    upn = facts.upn
    if upn is None and CATALOGUE[name].subject is Subject.LEARNER:
        upn = d.choice([None, *UPNS])  # as dispatch finds it in its learner index
    conditions = frozenset(
        c.path for s in specs.values() for r in s.rules if r.object == name for c in r.where
    )
    granted = [a for s in specs.values() for r in s.rules if r.object == name for a in r.actions]
    action = d.choice(granted if granted and d.coin(0.9) else list(Action))
    school = d.choice([SCHOOL] * 18 + [OTHER_SCHOOL, None])
    # Now and then a partial event whose learner the hub cannot tell (no reference in it,
    # none remembered for its RefId): it must never be released.
    unknown = CATALOGUE[name].subject is Subject.LEARNER and d.coin(0.1)
    subject = None if unknown else facts.subject_refid
    item = Item(name, action, school, subject, upn, values_at(element, conditions))
    suppressed: frozenset[str] = frozenset()
    whom = draw(st.sampled_from(["nobody"] * 9 + ["refid", "upn", "other"]))
    if whom != "nobody":  # suppress this learner by RefId or UPN, or someone else
        other = next(p for p in PUPIL_IDS if p not in (item.subject_refid, item.upn))
        suppressed = frozenset(
            x for x in [{"refid": item.subject_refid, "upn": item.upn}.get(whom, other)] if x
        )
    cohorts = {(r, COHORT): frozenset(d.some(PUPIL_IDS, 4)) for r in RECIPIENTS if d.coin(0.8)}
    return Scenario(element, item, specs, statuses, states, suppressed, cohorts, now)


# --------------------------------------------------------------------------------------
# The properties
# --------------------------------------------------------------------------------------


def _element_paths(element: etree._Element) -> list[Path]:
    out: list[Path] = []

    def walk(node: etree._Element, path: Path) -> None:
        for child in node.iterchildren(tag=etree.Element):
            here = (*path, etree.QName(child).localname)
            out.append(here)
            walk(child, here)

    walk(element, ())
    return out


def _check_copy(scenario: Scenario, copy: Copy) -> None:
    element, item = scenario.element, scenario.item
    name = item.object_name
    spec = scenario.specs[(copy.agreement_id, copy.agreement_version)]
    rule = next(r for r in spec.rules if r.object == name)
    art9 = spec.lawful_basis.article9 is not None
    status = scenario.statuses[copy.agreement_id]
    assert copy.subscriber in spec.recipients
    assert item.action in rule.actions

    # (5) draft, terminated, past notice: nothing; suspended: held copies only
    assert EXPECT[status] != "none", status
    learner = CATALOGUE[name].subject is Subject.LEARNER
    if copy.hold == HOLD_IDENTITY:
        # (7) held, never released, only while whose data it is cannot be fully told
        assert learner and (item.subject_refid is None or item.upn is None)
        assert copy.release_after is None
        return
    if learner:  # (7) a released (or window/suspension-held) learner copy names its learner
        assert item.subject_refid is not None
        assert item.upn is not None or not any(is_upn(x) for x in scenario.suppressed)
    if EXPECT[status] == "held":
        assert (copy.hold, copy.release_after) == (HOLD_SUSPENDED, None)
    elif spec.schedule.mode == "windows":
        assert copy.hold == HOLD_SCHEDULE
        assert copy.release_after is not None and copy.release_after >= scenario.now
    else:
        assert (copy.hold, copy.release_after) == (None, None)

    # (3) no Art 9 condition: no special-category object at all, and none chosen by
    # special category data (a condition on it would disclose it)
    if not art9:
        assert name not in SPECIAL_OBJECTS
        special_paths = SPECIAL_PATHS.get(name, ())
        assert not any(_under(c.path, special_paths) for c in rule.where), rule.where
    # cohorts and pupil lists: learners only
    if CATALOGUE[name].subject is Subject.LEARNER:
        if spec.cohort:
            members = scenario.cohorts.get((copy.subscriber, spec.cohort), frozenset())
            assert {item.subject_refid, item.upn} & members
        access = next(s for s in scenario.states if s.agreement_id == copy.agreement_id).pupils.get(
            SCHOOL
        )
        if access is not None and item.school == SCHOOL:
            named = {item.subject_refid, item.upn} & set(access.learners)
            assert named if access.mode == "only" else not (named and access.mode == "all_except")

    filtered = apply_filter(element, copy.filter)
    include = None if rule.include is None else [parse_path(p) for p in rule.include]
    exclude = [parse_path(p) for p in rule.exclude]
    special = [parse_path(p) for p in SPECIAL_PATHS.get(name, ())]
    never = [parse_path(p) for p in NEVER_PATHS.get(name, ())]
    for path in _element_paths(filtered):
        # (1) nothing outside what the rule allows
        assert copy.filter.allows(path), path
        if include is not None:
            assert any(path[: len(i)] == i or i[: len(path)] == path for i in include), path
        assert not _tuple_under(path, exclude), path
        # (3) element by element
        if not art9:
            assert not _tuple_under(path, special), path
        # (6) credentials never leave
        assert not _tuple_under(path, never) and "PasswordList" not in path, path

    # (2) the keys, indeed every root attribute, survive unchanged
    assert filtered.tag == element.tag
    assert dict(filtered.items()) == dict(element.items())
    for key in CATALOGUE[name].keys:
        assert filtered.get(key) == element.get(key)

    # The copy is still a SIF object (the Change/Delete schema: elements optional).
    SCHEMAS.validate_object(filtered, partial=True)
    # What the disclosure log records is among what a version diff shows (diff.released:
    # the schema's leaf paths the filter allows).
    shown = [p for p in LEAVES[name] if copy.filter.allows(parse_path(p))]
    for leaf in released_paths(filtered):
        assert any(
            s == leaf or s.startswith(leaf + "/") or leaf.startswith(s + "/") for s in shown
        ), leaf


@settings(SETTINGS, max_examples=EXAMPLES_DECIDE)
@given(scenarios())
def test_every_copy_stays_within_its_agreement(scenario: Scenario) -> None:
    item = scenario.item
    before = etree.tostring(scenario.element)
    policy = build_policy(scenario.states, scenario.suppressed, scenario.cohorts, scenario.now)
    copies = decide(item, policy)
    event("copies" if copies else "no copy")

    # (4) a suppressed learner never yields a copy, under any agreement
    if {item.subject_refid, item.upn} & scenario.suppressed:
        assert copies == []
    # (6) Identity (credentials) is never routed, whatever an agreement says
    if item.object_name == "Identity":
        assert copies == []
    # one copy per recipient and agreement
    assert len({(c.subscriber, c.agreement_id) for c in copies}) == len(copies)
    for copy in copies:
        _check_copy(scenario, copy)
    # apply_filter never changes the object it was given
    assert etree.tostring(scenario.element) == before


@settings(SETTINGS, max_examples=EXAMPLES_DELIVER)
@given(scenarios())
def test_a_live_approved_agreement_does_deliver(scenario: Scenario) -> None:
    """Not vacuous: one live agreement, its only version approved, no suppression, pupil
    list, cohort or condition: every recipient gets a copy."""
    name = scenario.item.object_name
    spec = next(iter(scenario.specs.values()))
    rule = next((r for r in spec.rules if r.object == name), None)
    if (
        rule is None
        or rule.where
        or name == "Identity"
        or (name in SPECIAL_OBJECTS and spec.lawful_basis.article9 is None)
    ):
        event("not applicable")
        return
    plain = Agreement.model_construct(**{**dict(spec), "version": 1, "cohort": None})
    live = AgreementState(
        (compile_version(plain),),
        (True,),
        _lifecycle(spec.id, "live", scenario.now),
        {SCHOOL: frozenset({1})},
    )
    item = Item(name, rule.actions[0], SCHOOL, scenario.item.subject_refid, scenario.item.upn)
    copies = decide(item, build_policy([live], now=scenario.now))
    assert sorted(c.subscriber for c in copies) == sorted(spec.recipients)
    for copy in copies:
        filtered = apply_filter(scenario.element, copy.filter)
        assert dict(filtered.items()) == dict(scenario.element.items())


# --- apply_filter on its own ---------------------------------------------------------------


@st.composite
def filters(draw: st.DrawFn, name: str) -> PathFilter:
    d = Dice(draw(SEEDS))
    include = (
        None
        if draw(st.booleans())
        else frozenset(parse_path(p) for p in d.some(SHALLOW[name], 3) + d.some(PATHS[name], 4))
    )
    exclude = frozenset(parse_path(p) for p in d.some(PATHS[name], 4))
    items = tuple(
        ItemRule(parse_path(f["path"]), f.get("attribute"), f.get("child"), frozenset(f["values"]))
        for f in d.some(ITEM_FILTERS[name], 3)
    )
    return PathFilter(include, exclude, items)


@settings(SETTINGS, max_examples=EXAMPLES_MUTATION)
@given(st.data())
def test_apply_filter_never_mutates_its_input(data: st.DataObject) -> None:
    element = data.draw(valid_objects())
    flt = data.draw(filters(etree.QName(element).localname))
    before = etree.tostring(element, method="c14n")
    nodes = list(element.iter())
    filtered = apply_filter(element, flt)
    assert etree.tostring(element, method="c14n") == before
    assert list(element.iter()) == nodes  # the very same nodes, none moved or removed
    assert not set(filtered.iter()) & set(nodes)  # a deep copy sharing no node
    assert dict(filtered.items()) == dict(element.items())
    for path in _element_paths(filtered):
        assert flt.allows(path), path
    # Cutting twice never brings anything back. It changes nothing more unless an item rule
    # tests a child that the filter does not deliver: then the second cut no longer sees the
    # value that kept the item (documented in PathFilter), and may only remove more.
    again = apply_filter(filtered, flt)
    assert set(_element_paths(again)) <= set(_element_paths(filtered))
    if all(r.child is None or flt.allows((*r.path, r.child)) for r in flt.items):
        assert etree.tostring(again, method="c14n") == etree.tostring(filtered, method="c14n")


# --- item filters below a subtree kept whole ---------------------------------------------------


ADDRESSES = f"""<LearnerPersonal xmlns="{SIF_UK_NS}" RefId="{LEARNER_REFIDS[0]}">
<PersonalInformation><Name Type="B"><FamilyName>Harris</FamilyName><GivenName>Sonya</GivenName>
</Name><OtherAddressList>
<Address Type="Previous"><PAON><StartNumber>1</StartNumber></PAON></Address>
<Address Type="Current"><PAON><StartNumber>2</StartNumber></PAON></Address>
</OtherAddressList></PersonalInformation>
<InCare><Current>No</Current><LAId>330</LAId></InCare></LearnerPersonal>"""
CURRENT_ONLY = ItemRule(
    ("PersonalInformation", "OtherAddressList", "Address"), "Type", None, frozenset({"Current"})
)


def _address_types(flt: PathFilter) -> list[str | None]:
    element = etree.fromstring(ADDRESSES)
    SCHEMAS.validate_object(element)
    filtered = apply_filter(element, flt)
    return [a.get("Type") for a in filtered.iter(f"{{{SIF_UK_NS}}}Address")]


def test_item_filter_applies_when_its_parents_are_descended_into() -> None:
    below = frozenset({("PersonalInformation", "OtherAddressList", "Address", "Street")})
    assert _address_types(PathFilter(None, below, (CURRENT_ONLY,))) == ["Current"]


def test_keep_items_below_a_subtree_kept_whole_is_still_applied() -> None:
    for basis in ({"article6": "e"}, {"article6": "e", "article9": "g"}):
        spec = Agreement.model_validate(
            {
                "id": "A",
                "recipients": ["cme"],
                "lawful_basis": basis,
                "rules": [{"object": "LearnerPersonal", "keep_items": [_PERSON_ITEMS[0]]}],
            }
        )
        flt = compile_version(spec).rules["LearnerPersonal"].filter
        assert _address_types(flt) == ["Current"], basis
    assert _address_types(PathFilter(None, frozenset(), (CURRENT_ONLY,))) == ["Current"]
