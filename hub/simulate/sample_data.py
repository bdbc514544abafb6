"""Realistic, fictional SIF UK data for a Derbyshire-style county: schools, pupils (with
valid UPN check letters), session attendance marks, suspensions and staff.

Deterministic for a given seed, so the demo, benchmark and tests see the same county.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta

from stdnum.gb import upn as upn_check

LA_CODE = "830"  # Derbyshire

FORENAMES = [
    "Olivia",
    "Noah",
    "Amelia",
    "Oliver",
    "Isla",
    "George",
    "Ava",
    "Arthur",
    "Mia",
    "Leo",
    "Freya",
    "Harry",
    "Lily",
    "Jack",
    "Evie",
    "Alfie",
    "Sophia",
    "Oscar",
    "Grace",
    "Charlie",
    "Aisha",
    "Mohammed",
    "Zofia",
    "Kacper",
    "Priya",
    "Ravi",
]
SURNAMES = [
    "Smith",
    "Jones",
    "Taylor",
    "Brown",
    "Wilson",
    "Evans",
    "Walker",
    "Wright",
    "Robinson",
    "Thompson",
    "Hughes",
    "Bradley",
    "Fletcher",
    "Hollingworth",
    "Allsop",
    "Kowalski",
    "Khan",
    "Patel",
    "Begum",
    "Nowak",
]
STREETS = [
    "Church Street",
    "Dig Street",
    "Station Road",
    "Smedley Street",
    "Dale Road",
    "Bakewell Road",
    "Compton",
    "Buxton Road",
    "Cromford Hill",
    "Derby Road",
]
TOWNS = [
    ("Ashbourne", "DE6"),
    ("Matlock", "DE4"),
    ("Belper", "DE56"),
    ("Buxton", "SK17"),
    ("Chesterfield", "S40"),
    ("Glossop", "SK13"),
]
ETHNICITY = [
    "WBRI",
    "WBRI",
    "WBRI",
    "WBRI",
    "WIRI",
    "WOTH",
    "MWBC",
    "AIND",
    "APKN",
    "BAFR",
    "WROM",
    "CHNE",
]
RELIGION = ["CH", "NO", "NO", "MU", "HI", "SI", "OT"]


@dataclass(frozen=True)
class School:
    laestab: str
    name: str
    refid: str


@dataclass(frozen=True)
class Learner:
    refid: str
    school: School
    forename: str
    surname: str
    birth_date: date
    upn: str
    gender: str
    ethnicity: str
    religion: str
    in_care: bool
    street: str
    town: str
    postcode: str
    year_group: int
    local_id: str


@dataclass(frozen=True)
class Staff:
    refid: str
    school: School
    forename: str
    surname: str
    ni_number: str
    teacher_number: str
    local_id: str


def _refid(rng: random.Random) -> str:
    return uuid.UUID(int=rng.getrandbits(128)).hex.upper()


SCHOOLS = (
    School("8302001", "Hilltop Primary School, Ashbourne", "5A0E1B7C2D3F4E5A6B7C8D9E0F1A2B3C"),
    School("8304012", "Dovedale Academy", "6B1F2C8D3E4A5F6B7C8D9E0F1A2B3C4D"),
    School("8302105", "Matlock Green Infant School", "7C2A3D9E4F5B6A7C8D9E0F1A2B3C4D5E"),
)


def make_upn(rng: random.Random, establishment: str, year: int) -> str:
    body = f"{LA_CODE}{establishment}{year % 100:02d}{rng.randrange(1000):03d}"
    return upn_check.calc_check_digit(body) + body


def make_learners(
    count: int, seed: int = 830, schools: tuple[School, ...] = SCHOOLS
) -> list[Learner]:
    rng = random.Random(seed)
    learners = []
    for i in range(count):
        school = schools[i % len(schools)]
        year_group = rng.randrange(1, 12)
        born = date(2025 - year_group - 5, 9, 1) + timedelta(days=rng.randrange(365))
        town, district = rng.choice(TOWNS)
        learners.append(
            Learner(
                refid=_refid(rng),
                school=school,
                forename=rng.choice(FORENAMES),
                surname=rng.choice(SURNAMES),
                birth_date=born,
                upn=make_upn(rng, school.laestab[3:], born.year + 5),
                gender=rng.choice("MF"),
                ethnicity=rng.choice(ETHNICITY),
                religion=rng.choice(RELIGION),
                in_care=rng.random() < 0.15,
                street=f"{rng.randrange(1, 120)} {rng.choice(STREETS)}",
                town=town,
                postcode=f"{district} {rng.randrange(1, 9)}{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}"
                f"{rng.choice('ABDEFGHJLNPQRSTUWXYZ')}",
                year_group=year_group,
                local_id=f"{rng.randrange(10000, 99999)}",
            )
        )
    return learners


def make_staff(count: int, seed: int = 831, schools: tuple[School, ...] = SCHOOLS) -> list[Staff]:
    rng = random.Random(seed)
    return [
        Staff(
            refid=_refid(rng),
            school=schools[i % len(schools)],
            forename=rng.choice(FORENAMES),
            surname=rng.choice(SURNAMES),
            ni_number=f"{rng.choice('ABCEHJKLMNPRSTWXYZ')}{rng.choice('ABCEHJKLMNPRSTWXYZ')}"
            f"{rng.randrange(1000000):06d}{rng.choice('ABCD')}",
            teacher_number=f"{rng.randrange(1000000, 9999999)}",
            local_id=f"S{1000 + i}",
        )
        for i in range(count)
    ]


def learner_personal(p: Learner) -> str:
    in_care = "Yes" if p.in_care else "No"
    return (
        f'<LearnerPersonal RefId="{p.refid}"><LocalId>{p.local_id}</LocalId>'
        "<PersonalInformation>"
        f'<Name Type="C"><FamilyName>{p.surname}</FamilyName>'
        f"<GivenName>{p.forename}</GivenName></Name>"
        "<Demographics><EthnicityList><Ethnicity>"
        f"<Code>{p.ethnicity}</Code><Source>P</Source></Ethnicity></EthnicityList>"
        f"<Gender>{p.gender}</Gender><BirthDate>{p.birth_date.isoformat()}</BirthDate>"
        f"<Religion><AffiliationCode>{p.religion}</AffiliationCode></Religion></Demographics>"
        f'<Address Type="Current"><PAON><Description>{p.street}</Description></PAON>'
        f"<Town>{p.town}</Town><County>Derbyshire</County><PostCode>{p.postcode}</PostCode>"
        "</Address>"
        f'<PhoneNumber Type="H"><Number>01629 {p.local_id}0</Number></PhoneNumber>'
        "</PersonalInformation>"
        f"<UPN>{p.upn}</UPN><FamilyStructure>A</FamilyStructure>"
        f"<InCare><Current>{in_care}</Current>"
        f"{'<Type>FT</Type>' if p.in_care else ''}<LAId>{LA_CODE}</LAId></InCare>"
        f'<CurrentSchoolEnrolment LearnerSchoolEnrolmentRefId="{p.refid[::-1]}">'
        f"<LAId>{p.school.laestab[:3]}</LAId><EstablishmentId>{p.school.laestab[3:]}</EstablishmentId>"
        f"<NCYearGroup>{p.year_group}</NCYearGroup></CurrentSchoolEnrolment>"
        "</LearnerPersonal>"
    )


def learner_attendance(
    p: Learner, day: date, session: str, code: str, refid: str | None = None
) -> str:
    return (
        f'<LearnerAttendance RefId="{refid or uuid.uuid4().hex.upper()}" '
        f'LearnerPersonalRefId="{p.refid}" SchoolInfoRefId="{p.school.refid}">'
        f"<AttendanceDate>{day.isoformat()}</AttendanceDate><Session>{session}</Session>"
        f"<AttendanceDomain>Session</AttendanceDomain><AttendanceCode>{code}</AttendanceCode>"
        "<AttendanceNote>Register taken by form tutor</AttendanceNote>"
        "<InputSource>WF</InputSource></LearnerAttendance>"
    )


def learner_exclusion(
    p: Learner, start: date, sessions: int, reason: str = "DB", category: str = "FIXD"
) -> str:
    end = start + timedelta(days=max(0, sessions // 2 - 1))
    return (
        f'<LearnerExclusion RefId="{uuid.uuid4().hex.upper()}" LearnerPersonalRefId="{p.refid}">'
        f"<Category>{category}</Category><Reason>{reason}</Reason>"
        f"<StartDate>{start.isoformat()}</StartDate><StartSession>1</StartSession>"
        f"<EndDate>{end.isoformat()}</EndDate><ActualSessions>{sessions}</ActualSessions>"
        "<Appeal>No</Appeal></LearnerExclusion>"
    )


def workforce_personal(s: Staff) -> str:
    return (
        f'<WorkforcePersonal RefId="{s.refid}"><LocalId>{s.local_id}</LocalId>'
        "<PersonalInformation>"
        f'<Name Type="C"><Title>Mx</Title><FamilyName>{s.surname}</FamilyName>'
        f"<GivenName>{s.forename}</GivenName></Name>"
        "<Demographics><EthnicityList><Ethnicity><Code>WBRI</Code></Ethnicity></EthnicityList>"
        "<Gender>F</Gender><BirthDate>1984-03-12</BirthDate></Demographics>"
        f'<Email Type="Business">{s.forename.lower()}.{s.surname.lower()}@school.derbyshire.sch.uk'
        "</Email></PersonalInformation>"
        f"<TeacherNumber>{s.teacher_number}</TeacherNumber><NINumber>{s.ni_number}</NINumber>"
        "<CurrentAssignmentList><CurrentAssignment>"
        f"<LAId>{s.school.laestab[:3]}</LAId><EstablishmentId>{s.school.laestab[3:]}</EstablishmentId>"
        "</CurrentAssignment></CurrentAssignmentList></WorkforcePersonal>"
    )


LA_INFO_REFID = "830A0000000000000000000000000830"


def school_info(s: School) -> str:
    return (
        f'<SchoolInfo RefId="{s.refid}" LAInfoRefId="{LA_INFO_REFID}">'
        f"<EstablishmentId>{s.laestab[3:]}</EstablishmentId><LAId>{s.laestab[:3]}</LAId>"
        f"<SchoolName>{s.name}</SchoolName>"
        "<HeadTeacherInfo><ContactName>The Head Teacher</ContactName></HeadTeacherInfo>"
        "<Phase>PY</Phase><SessionsPerDay>2</SessionsPerDay></SchoolInfo>"
    )
