"""The catalogue of SIF UK objects the hub knows: keys, whose data each carries, which school.

Pure data. `hub.sif.facts` reads these paths off an lxml element; policy and disclosure use
the answers. Paths are relative to the object root; `@Name` is an attribute of the root.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Subject(StrEnum):
    LEARNER = "learner"
    WORKFORCE = "workforce"
    CONTACT = "contact"
    SCHOOL = "school"
    OTHER = "other"


@dataclass(frozen=True)
class DfeRef:
    """A school named by its DfE LA code and establishment number (LAESTAB = la + est)."""

    la: str
    establishment: str


@dataclass(frozen=True)
class ObjectSpec:
    name: str
    keys: tuple[str, ...]
    subject: Subject = Subject.OTHER
    # Where the RefId of the person this object is about sits (attribute or element path).
    subject_ref: str | None = None
    # Paths holding a SchoolInfo RefId, and DfE LA/establishment pairs naming the school.
    school_refids: tuple[str, ...] = ()
    school_dfe: tuple[DfeRef, ...] = ()
    # Where a learner's UPN sits, for the learner index and the disclosure log.
    upn: str | None = None
    routable: bool = True
    hub_extension: bool = False


_ENROLMENT = DfeRef("CurrentSchoolEnrolment/LAId", "CurrentSchoolEnrolment/EstablishmentId")
_ASSIGNMENT = DfeRef(
    "CurrentAssignmentList/CurrentAssignment/LAId",
    "CurrentAssignmentList/CurrentAssignment/EstablishmentId",
)

_SPECS = (
    ObjectSpec(
        "LearnerPersonal",
        ("RefId",),
        Subject.LEARNER,
        "@RefId",
        school_dfe=(_ENROLMENT,),
        upn="UPN",
    ),
    ObjectSpec(
        "LearnerSchoolEnrolment",
        ("RefId", "LearnerPersonalRefId", "SchoolInfoRefId", "MembershipType"),
        Subject.LEARNER,
        "@LearnerPersonalRefId",
        school_refids=("@SchoolInfoRefId",),
    ),
    ObjectSpec(
        "LearnerAttendance",
        ("RefId", "LearnerPersonalRefId", "SchoolInfoRefId"),
        Subject.LEARNER,
        "@LearnerPersonalRefId",
        school_refids=("@SchoolInfoRefId",),
    ),
    ObjectSpec(
        "LearnerAttendanceSummary",
        ("LearnerPersonalRefId", "SchoolInfoRefId"),
        Subject.LEARNER,
        "@LearnerPersonalRefId",
        school_refids=("@SchoolInfoRefId",),
    ),
    ObjectSpec(
        "LearnerContact",
        ("LearnerPersonalRefId", "ContactPersonalRefId"),
        Subject.LEARNER,
        "@LearnerPersonalRefId",
    ),
    ObjectSpec("ContactPersonal", ("RefId",), Subject.CONTACT, "@RefId"),
    ObjectSpec(
        "LearnerExclusion",
        ("RefId", "LearnerPersonalRefId"),
        Subject.LEARNER,
        "@LearnerPersonalRefId",
    ),
    ObjectSpec(
        "LearnerSpecialNeeds",
        ("RefId", "LearnerPersonalRefId", "SchoolInfoRefId"),
        Subject.LEARNER,
        "@LearnerPersonalRefId",
        school_refids=("@SchoolInfoRefId",),
    ),
    ObjectSpec(
        "LearnerEntitlement",
        ("RefId",),
        Subject.LEARNER,
        "LearnerPersonalRefId",
        school_refids=("SchoolInfoRefId",),
    ),
    ObjectSpec(
        "LearnerGroupEnrolment",
        ("RefId", "LearnerPersonalRefId", "SchoolGroupRefId"),
        Subject.LEARNER,
        "@LearnerPersonalRefId",
    ),
    ObjectSpec("SchoolGroup", ("RefId", "SchoolGroupTypeRefId", "SchoolYear")),
    ObjectSpec(
        "SchoolGroupType",
        ("RefId", "SchoolInfoRefId", "SchoolYear", "GroupType"),
        school_refids=("@SchoolInfoRefId",),
    ),
    ObjectSpec(
        "SchoolInfo",
        ("RefId", "LAInfoRefId"),
        Subject.SCHOOL,
        "@RefId",
        school_refids=("@RefId",),
        school_dfe=(DfeRef("LAId", "EstablishmentId"),),
    ),
    ObjectSpec(
        "WorkforcePersonal", ("RefId",), Subject.WORKFORCE, "@RefId", school_dfe=(_ASSIGNMENT,)
    ),
    ObjectSpec(
        "WorkforceAssignment",
        ("RefId", "WorkforcePersonalRefId"),
        Subject.WORKFORCE,
        "@WorkforcePersonalRefId",
        school_refids=("SIF_RefId",),
    ),
    ObjectSpec("WorkforceContract", ("RefId", "WorkforceAssignmentRefId"), Subject.WORKFORCE),
    # Hub-defined extensions (no public SIF UK definition exists; see message_schemas/README).
    ObjectSpec(
        "LearnerEmail",
        ("RefId", "LearnerPersonalRefId"),
        Subject.LEARNER,
        "@LearnerPersonalRefId",
        school_refids=("@SchoolInfoRefId",),
        hub_extension=True,
    ),
    ObjectSpec(
        "WorkforceEmail",
        ("RefId", "WorkforcePersonalRefId"),
        Subject.WORKFORCE,
        "@WorkforcePersonalRefId",
        school_refids=("@SchoolInfoRefId",),
        hub_extension=True,
    ),
    ObjectSpec(
        "ComputerIPAddress", ("RefId",), school_refids=("@SchoolInfoRefId",), hub_extension=True
    ),
    # Accepted and stored (real UK instances exist) but not part of any routing yet.
    ObjectSpec("LAInfo", ("RefId",)),
    ObjectSpec("TermInfo", ("RefId", "SchoolInfoRefId"), school_refids=("@SchoolInfoRefId",)),
    ObjectSpec("PersonPicture", ("PersonRefId",)),
    # Assessment objects: accepted (real UK instances exist) and routable by agreement.
    ObjectSpec("AssessmentLearnerSet", ("RefId", "AssessmentResultComponentGroupRefId")),
    ObjectSpec("AssessmentResponseComponent", ("RefId",)),
    ObjectSpec("AssessmentResponseComponentGroup", ("RefId", "AssessmentSessionRefId")),
    ObjectSpec("AssessmentResultComponent", ("RefId",)),
    ObjectSpec("AssessmentResultComponentGroup", ("RefId",)),
    ObjectSpec("AssessmentResultGradeSet", ("RefId",)),
    ObjectSpec("AssessmentSession", ("RefId", "AssessmentLearnerSetRefId")),
    ObjectSpec(
        "LearnerAssessmentResponseSet",
        ("RefId", "AssessmentResponseComponentRefId", "LearnerPersonalRefId"),
        Subject.LEARNER,
        "@LearnerPersonalRefId",
    ),
    ObjectSpec(
        "LearnerAssessmentResult",
        ("RefId", "AssessmentComponentRefId", "LearnerPersonalRefId"),
        Subject.LEARNER,
        "@LearnerPersonalRefId",
    ),
    # Login identities carry PasswordList: never routed, whatever an agreement says.
    ObjectSpec("Identity", ("RefId",), routable=False),
)

CATALOGUE: dict[str, ObjectSpec] = {spec.name: spec for spec in _SPECS}
