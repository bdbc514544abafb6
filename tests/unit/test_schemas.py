"""The hub's own XSDs (message_schemas/) and hub.sif.schemas: variants, errors, paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from hub.core.errors import Category, SifError, Xml
from hub.sif.schemas import SCHEMA_DIR, SIF_UK_NS, Schemas, build_schemas, load_schemas

REPO_ROOT = Path(__file__).resolve().parents[2]
NS = SIF_UK_NS
REF = "53E6F4C0109FDE4DC7E11DB9C0100163"
REF2 = "A8C3D5EE44B359D7510100AA001B7B89"
REF3 = "D6F60F2862CA460BAA95E57AB49CBE88"
MSG_ID = "0123456789ABCDEF0123456789ABCDEF"

HEADER = (
    "<SIF_Header>"
    f"<SIF_MsgId>{MSG_ID}</SIF_MsgId>"
    "<SIF_Timestamp>2024-09-09T08:45:00+01:00</SIF_Timestamp>"
    "<SIF_SourceId>school.agent.1</SIF_SourceId>"
    "<SIF_Contexts><SIF_Context>SIF_Default</SIF_Context></SIF_Contexts>"
    "</SIF_Header>"
)

NAME = '<Name Type="C"><FamilyName>Fletcher</FamilyName><GivenName>Evie</GivenName></Name>'
IN_CARE = "<InCare><Current>No</Current><LAId>830</LAId></InCare>"
LEARNER = (
    f'<LearnerPersonal RefId="{REF}"><LocalId>A1234</LocalId>'
    f"<PersonalInformation>{NAME}"
    "<Demographics><EthnicityList><Ethnicity><Code>WBRI</Code><Source>P</Source></Ethnicity>"
    "</EthnicityList><Gender>F</Gender><BirthDate>2015-03-02</BirthDate></Demographics>"
    "</PersonalInformation>"
    f"<UPN>A830200012345</UPN>{IN_CARE}</LearnerPersonal>"
)
LEARNER_NO_FAMILY_NAME = (
    f'<LearnerPersonal RefId="{REF}"><PersonalInformation>'
    '<Name Type="C"><GivenName>Evie</GivenName></Name>'
    f"</PersonalInformation>{IN_CARE}</LearnerPersonal>"
)


def attendance(code: str = "/", *, refid: str = REF, drop: str = "") -> str:
    parts = {
        "AttendanceDate": "<AttendanceDate>2024-09-09</AttendanceDate>",
        "Session": "<Session>AM</Session>",
        "AttendanceDomain": "<AttendanceDomain>Session</AttendanceDomain>",
        "AttendanceCode": f"<AttendanceCode>{code}</AttendanceCode>",
        "InputSource": "<InputSource>WF</InputSource>",
    }
    body = "".join(v for k, v in parts.items() if k != drop)
    return (
        f'<LearnerAttendance RefId="{refid}" LearnerPersonalRefId="{REF2}" '
        f'SchoolInfoRefId="{REF3}">{body}</LearnerAttendance>'
    )


WORKFORCE = (
    f'<WorkforcePersonal RefId="{REF2}"><LocalId>S17</LocalId>'
    f"<PersonalInformation>{NAME}</PersonalInformation>"
    "<NINumber>CF344902B</NINumber></WorkforcePersonal>"
)
SCHOOL = (
    f'<SchoolInfo RefId="{REF3}" LAInfoRefId="{REF}"><EstablishmentId>2001</EstablishmentId>'
    "<LAId>830</LAId><SchoolName>Dale Primary</SchoolName>"
    "<SessionsPerDay>2</SessionsPerDay></SchoolInfo>"
)
ENROLMENT = (
    f'<LearnerSchoolEnrolment RefId="{REF2}" LearnerPersonalRefId="{REF}" '
    f'SchoolInfoRefId="{REF3}" MembershipType="C"><EntryDate>2019-09-04</EntryDate>'
    "<NCYearGroupActual>5</NCYearGroupActual></LearnerSchoolEnrolment>"
)
CONTACT = (
    f'<LearnerContact LearnerPersonalRefId="{REF}" ContactPersonalRefId="{REF2}">'
    "<Relationship>PAR1</Relationship><ContactFlags><LivesWith>Yes</LivesWith></ContactFlags>"
    "</LearnerContact>"
)
EXCLUSION = (
    f'<LearnerExclusion RefId="{REF2}" LearnerPersonalRefId="{REF}"><Category>FIXD</Category>'
    "<Reason>PA</Reason><StartDate>2024-10-01</StartDate><StartSession>1</StartSession>"
    "</LearnerExclusion>"
)
LEARNER_EMAIL = (
    f'<LearnerEmail RefId="{REF2}" LearnerPersonalRefId="{REF}" SchoolInfoRefId="{REF3}">'
    '<Email Type="School">e.fletcher@dale.sch.uk</Email><Primary>Yes</Primary></LearnerEmail>'
)
WORKFORCE_EMAIL = (
    f'<WorkforceEmail RefId="{REF}" WorkforcePersonalRefId="{REF2}" SchoolInfoRefId="{REF3}">'
    '<Email Type="Business">head@dale.sch.uk</Email></WorkforceEmail>'
)
COMPUTER = (
    f'<ComputerIPAddress RefId="{REF}" SchoolInfoRefId="{REF3}"><IPAddress>10.20.30.40'
    "</IPAddress><MACAddress>00:1A:2B:3C:4D:5E</MACAddress><HostName>lab-pc-07.dale.local"
    f'</HostName><AssignedTo SIF_RefObject="WorkforcePersonal">{REF2}</AssignedTo>'
    "</ComputerIPAddress>"
)


def message(inner: str, version: str = "2.4") -> etree._Element:
    text = f'<SIF_Message xmlns="{NS}" Version="{version}">\n{inner}\n</SIF_Message>'
    return etree.fromstring(text)


def event(obj: str, action: str = "Add", name: str | None = None) -> etree._Element:
    name = name or obj[1:].split()[0].rstrip(">")
    return message(
        f"<SIF_Event>{HEADER}<SIF_ObjectData>\n"
        f'<SIF_EventObject ObjectName="{name}" Action="{action}">\n{obj}\n'
        "</SIF_EventObject></SIF_ObjectData></SIF_Event>"
    )


def bare(obj: str) -> etree._Element:
    element = etree.fromstring(obj.replace(">", f' xmlns="{NS}">', 1))
    return element


def rejected(doc: etree._Element, *, partial: bool = False) -> SifError:
    with pytest.raises(SifError) as info:
        load_schemas().validate_message(doc, partial=partial)
    error = info.value
    assert error.category == Category.XML_VALIDATION
    assert error.extended
    return error


@pytest.fixture(scope="module")
def schemas() -> Schemas:
    return load_schemas()


# --- loading ----------------------------------------------------------------------------


def test_load_schemas_compiles_once() -> None:
    assert load_schemas() is load_schemas()


def test_every_schema_file_compiles_on_its_own_from_disk() -> None:
    files = sorted(SCHEMA_DIR.glob("*.xsd"))
    assert {f.name for f in files} >= {
        "SIF_Message.xsd",
        "common.xsd",
        "learner.xsd",
        "workforce.xsd",
        "school.xsd",
        "assessment.xsd",
        "extensions.xsd",
    }
    for path in files:
        etree.XMLSchema(etree.parse(str(path)))
    assert SCHEMA_DIR == REPO_ROOT / "message_schemas"


def test_building_the_variants_writes_nothing(tmp_path: Path) -> None:
    for path in SCHEMA_DIR.glob("*.xsd"):
        (tmp_path / path.name).write_bytes(path.read_bytes())
    before = sorted(p.name for p in tmp_path.iterdir())
    fresh = build_schemas(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    assert fresh.object_names() == load_schemas().object_names()


def test_object_names(schemas: Schemas) -> None:
    assert schemas.object_names() >= {
        "LearnerPersonal",
        "LearnerSchoolEnrolment",
        "LearnerAttendance",
        "LearnerAttendanceSummary",
        "LearnerContact",
        "ContactPersonal",
        "LearnerExclusion",
        "LearnerSpecialNeeds",
        "LearnerEntitlement",
        "LearnerGroupEnrolment",
        "SchoolGroup",
        "SchoolGroupType",
        "SchoolInfo",
        "WorkforcePersonal",
        "WorkforceAssignment",
        "WorkforceContract",
        "LAInfo",
        "TermInfo",
        "PersonPicture",
        "Identity",
        "AssessmentLearnerSet",
        "AssessmentResponseComponent",
        "AssessmentResponseComponentGroup",
        "AssessmentResultComponent",
        "AssessmentResultComponentGroup",
        "AssessmentResultGradeSet",
        "AssessmentSession",
        "LearnerAssessmentResponseSet",
        "LearnerAssessmentResult",
        "LearnerEmail",
        "WorkforceEmail",
        "ComputerIPAddress",
    }
    assert "SIF_Header" not in schemas.object_names()
    assert "SIF_Message" not in schemas.object_names()


# --- element paths ----------------------------------------------------------------------


def test_element_paths_of_learner_personal(schemas: Schemas) -> None:
    paths = schemas.element_paths("LearnerPersonal")
    assert {
        "PersonalInformation/Name/FamilyName",
        "UPN",
        "PersonalInformation",
        "PersonalInformation/Demographics/EthnicityList/Ethnicity/Code",
        "PersonalInformation/OtherAddressList/Address/PAON/StartNumber",
        "InCare/LAId",
        "SIF_ExtendedElements/SIF_ExtendedElement",
    } <= paths
    assert not any(p.startswith("/") or "@" in p for p in paths)
    assert "RefId" not in paths


def test_element_paths_of_other_objects(schemas: Schemas) -> None:
    assert schemas.element_paths("LearnerAttendance") >= {
        "AttendanceCode",
        "Session",
        "AttendanceNote",
        "SchoolGroupRefId",
    }
    assert "PersonalInformation/Demographics/BirthDate" in schemas.element_paths("ContactPersonal")
    assert "Email" in schemas.element_paths("LearnerEmail")
    assert "ReasonsList/Reason/Code" in schemas.element_paths("LearnerAttendanceSummary")
    with pytest.raises(KeyError):
        schemas.element_paths("StudentPersonal")


# --- valid messages ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "obj",
    [
        LEARNER,
        attendance(),
        WORKFORCE,
        SCHOOL,
        ENROLMENT,
        CONTACT,
        EXCLUSION,
        LEARNER_EMAIL,
        WORKFORCE_EMAIL,
        COMPUTER,
    ],
    ids=lambda o: o[1:].split()[0],
)
def test_minimal_add_events_are_valid(schemas: Schemas, obj: str) -> None:
    schemas.validate_message(event(obj), partial=False)
    schemas.validate_object(bare(obj))


@pytest.mark.parametrize(
    "code",
    [
        "/",
        "\\",
        "#",
        "B",
        "C",
        "C1",
        "C2",
        "D",
        "E",
        "G",
        "I",
        "J1",
        "K",
        "L",
        "M",
        "N",
        "O",
        "P",
        "Q",
        "R",
        "S",
        "T",
        "U",
        "V",
        "W",
        "X",
        "Y1",
        "Y2",
        "Y3",
        "Y4",
        "Y5",
        "Y6",
        "Y7",
        "Z",
    ],
)
def test_dfe_2024_attendance_codes_are_accepted(schemas: Schemas, code: str) -> None:
    schemas.validate_message(event(attendance(code)), partial=False)


@settings(max_examples=50, deadline=None)
@given(
    st.text(
        alphabet=st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=4
    ).filter(lambda s: "<" not in s and "&" not in s)
)
def test_any_short_attendance_code_is_accepted(code: str) -> None:
    load_schemas().validate_object(bare(attendance(code)))


def test_modern_ethnicity_code_wbri_is_accepted(schemas: Schemas) -> None:
    assert "<Code>WBRI</Code>" in LEARNER
    schemas.validate_message(event(LEARNER), partial=False)


def test_register(schemas: Schemas) -> None:
    schemas.validate_message(
        message(
            f"<SIF_Register>{HEADER}<SIF_Name>Dale MIS agent</SIF_Name>"
            "<SIF_Version>2.4</SIF_Version><SIF_Version>2.*</SIF_Version>"
            "<SIF_Version>2.0r*</SIF_Version><SIF_Version>*</SIF_Version>"
            "<SIF_MaxBufferSize>1048576</SIF_MaxBufferSize><SIF_Mode>Push</SIF_Mode>"
            '<SIF_Protocol Type="HTTPS" Secure="Yes"><SIF_URL>https://agent.dale.sch.uk/sif</SIF_URL>'
            "<SIF_Property><SIF_Name>Accept-Encoding</SIF_Name><SIF_Value>gzip</SIF_Value>"
            "</SIF_Property></SIF_Protocol><SIF_NodeVendor>Acme</SIF_NodeVendor>"
            "<SIF_NodeVersion>5.1</SIF_NodeVersion><SIF_Application><SIF_Vendor>Acme</SIF_Vendor>"
            "<SIF_Product>MIS</SIF_Product><SIF_Version>12</SIF_Version></SIF_Application>"
            "</SIF_Register>"
        ),
        partial=False,
    )
    schemas.validate_message(
        message(
            f"<SIF_Register>{HEADER}<SIF_Name>Pull agent</SIF_Name><SIF_Version>2.0r1</SIF_Version>"
            "<SIF_MaxBufferSize>32000</SIF_MaxBufferSize><SIF_Mode>Pull</SIF_Mode></SIF_Register>",
            version="2.0r1",
        ),
        partial=False,
    )


@pytest.mark.parametrize(
    "kind", ["SIF_Provide", "SIF_Subscribe", "SIF_Unprovide", "SIF_Unsubscribe"]
)
def test_provide_and_subscribe(schemas: Schemas, kind: str) -> None:
    schemas.validate_message(
        message(
            f'<{kind}>{HEADER}<SIF_Object ObjectName="LearnerPersonal"/>'
            '<SIF_Object ObjectName="LearnerAttendance"><SIF_Contexts>'
            f"<SIF_Context>SIF_Default</SIF_Context></SIF_Contexts></SIF_Object></{kind}>"
        ),
        partial=False,
    )


def test_provision(schemas: Schemas) -> None:
    lists = "".join(
        f"<{name}/>"
        for name in (
            "SIF_ProvideObjects",
            "SIF_SubscribeObjects",
            "SIF_PublishAddObjects",
            "SIF_PublishChangeObjects",
            "SIF_PublishDeleteObjects",
            "SIF_RequestObjects",
        )
    )
    schemas.validate_message(
        message(
            f"<SIF_Provision>{HEADER}{lists}<SIF_RespondObjects>"
            '<SIF_Object ObjectName="LearnerPersonal"><SIF_ExtendedQuerySupport>false'
            "</SIF_ExtendedQuerySupport></SIF_Object></SIF_RespondObjects></SIF_Provision>"
        ),
        partial=False,
    )


@pytest.mark.parametrize(
    "command",
    [
        "<SIF_Ping/>",
        "<SIF_Sleep/>",
        "<SIF_Wakeup/>",
        "<SIF_GetMessage/>",
        "<SIF_GetZoneStatus/>",
        "<SIF_GetAgentACL/>",
        "<SIF_CancelRequests><SIF_NotificationType>Standard</SIF_NotificationType>"
        f"<SIF_RequestMsgIds><SIF_RequestMsgId>{MSG_ID}</SIF_RequestMsgId></SIF_RequestMsgIds>"
        "</SIF_CancelRequests>",
    ],
)
def test_system_control(schemas: Schemas, command: str) -> None:
    schemas.validate_message(
        message(
            f"<SIF_SystemControl>{HEADER}<SIF_SystemControlData>{command}"
            "</SIF_SystemControlData></SIF_SystemControl>"
        ),
        partial=False,
    )


def test_unregister(schemas: Schemas) -> None:
    schemas.validate_message(message(f"<SIF_Unregister>{HEADER}</SIF_Unregister>"), partial=False)


def test_request_with_query(schemas: Schemas) -> None:
    schemas.validate_message(
        message(
            f"<SIF_Request>{HEADER}<SIF_Version>2.*</SIF_Version>"
            "<SIF_MaxBufferSize>500000</SIF_MaxBufferSize><SIF_Query>"
            '<SIF_QueryObject ObjectName="LearnerPersonal"><SIF_Element>@RefId</SIF_Element>'
            "<SIF_Element>PersonalInformation/Name</SIF_Element></SIF_QueryObject>"
            '<SIF_ConditionGroup Type="None"><SIF_Conditions Type="And"><SIF_Condition>'
            "<SIF_Element>UPN</SIF_Element><SIF_Operator>EQ</SIF_Operator>"
            "<SIF_Value>A830200012345</SIF_Value></SIF_Condition></SIF_Conditions>"
            "</SIF_ConditionGroup></SIF_Query></SIF_Request>"
        ),
        partial=False,
    )


def test_response_with_several_objects(schemas: Schemas) -> None:
    schemas.validate_message(
        message(
            f"<SIF_Response>{HEADER}<SIF_RequestMsgId>{MSG_ID}</SIF_RequestMsgId>"
            "<SIF_PacketNumber>2</SIF_PacketNumber><SIF_MorePackets>No</SIF_MorePackets>"
            f"<SIF_ObjectData>{LEARNER}{attendance()}{WORKFORCE}</SIF_ObjectData></SIF_Response>"
        ),
        partial=False,
    )


def test_empty_response_and_error_response(schemas: Schemas) -> None:
    head = (
        f"<SIF_Response>{HEADER}<SIF_RequestMsgId>{MSG_ID}</SIF_RequestMsgId>"
        "<SIF_PacketNumber>1</SIF_PacketNumber><SIF_MorePackets>No</SIF_MorePackets>"
    )
    schemas.validate_message(message(f"{head}<SIF_ObjectData/></SIF_Response>"), partial=False)
    schemas.validate_message(
        message(
            f"{head}<SIF_Error><SIF_Category>8</SIF_Category><SIF_Code>4</SIF_Code>"
            "<SIF_Desc>No provider</SIF_Desc></SIF_Error></SIF_Response>"
        ),
        partial=False,
    )


def test_acks(schemas: Schemas) -> None:
    start = (
        f"<SIF_Ack>{HEADER}<SIF_OriginalSourceId>school.agent.1</SIF_OriginalSourceId>"
        f"<SIF_OriginalMsgId>{MSG_ID}</SIF_OriginalMsgId>"
    )
    schemas.validate_message(
        message(f"{start}<SIF_Status><SIF_Code>1</SIF_Code></SIF_Status></SIF_Ack>"), partial=False
    )
    schemas.validate_message(
        message(
            f"{start}<SIF_Error><SIF_Category>1</SIF_Category><SIF_Code>3</SIF_Code>"
            "<SIF_Desc>Invalid</SIF_Desc><SIF_ExtendedDesc>/SIF_Message/...: why</SIF_ExtendedDesc>"
            "</SIF_Error></SIF_Ack>"
        ),
        partial=False,
    )
    change = etree.tostring(
        event(
            f'<LearnerPersonal RefId="{REF}"><UPN>A830200012345</UPN></LearnerPersonal>', "Change"
        )
    ).decode()
    schemas.validate_message(
        message(
            f"{start}<SIF_Status><SIF_Code>0</SIF_Code><SIF_Data>{change}</SIF_Data>"
            "</SIF_Status></SIF_Ack>"
        ),
        partial=False,
    )
    nil = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:nil="true"'
    schemas.validate_message(
        message(
            f"<SIF_Ack>{HEADER}<SIF_OriginalSourceId {nil}/><SIF_OriginalMsgId {nil}/>"
            "<SIF_Error><SIF_Category>1</SIF_Category><SIF_Code>2</SIF_Code>"
            "<SIF_Desc>Not well-formed</SIF_Desc></SIF_Error></SIF_Ack>"
        ),
        partial=False,
    )


# --- strict versus partial --------------------------------------------------------------


def test_missing_family_name_is_rejected_in_strict_with_code_6(schemas: Schemas) -> None:
    error = rejected(event(LEARNER_NO_FAMILY_NAME))
    assert error.code == Xml.MISSING_MANDATORY
    assert error.code == 6
    assert error.extended
    assert (
        "/SIF_Message/SIF_Event/SIF_ObjectData/SIF_EventObject/LearnerPersonal/"
        "PersonalInformation/Name/FamilyName"
    ) in error.extended
    schemas.validate_message(event(LEARNER_NO_FAMILY_NAME, "Change"), partial=True)


def test_missing_attendance_code_is_rejected_in_strict_only(schemas: Schemas) -> None:
    doc = event(attendance(drop="AttendanceCode"))
    error = rejected(doc)
    assert error.code == 6
    assert error.extended
    assert "LearnerAttendance/AttendanceCode" in error.extended
    assert "line" in error.extended
    schemas.validate_message(doc, partial=True)
    schemas.validate_object(bare(attendance(drop="AttendanceCode")), partial=True)
    with pytest.raises(SifError):
        schemas.validate_object(bare(attendance(drop="AttendanceCode")))


def test_missing_last_mandatory_element_is_named(schemas: Schemas) -> None:
    obj = LEARNER.replace(IN_CARE, "")
    error = rejected(event(obj))
    assert error.code == 6
    assert error.extended
    assert "/LearnerPersonal/InCare: missing mandatory element" in error.extended


def test_delete_event_with_keys_only_is_partial_valid(schemas: Schemas) -> None:
    obj = (
        f'<LearnerAttendance RefId="{REF}" LearnerPersonalRefId="{REF2}" SchoolInfoRefId="{REF3}"/>'
    )
    schemas.validate_message(event(obj, "Delete"), partial=True)
    assert rejected(event(obj, "Delete")).code == 6


def test_partial_still_requires_key_attributes(schemas: Schemas) -> None:
    obj = f'<LearnerAttendance RefId="{REF}" LearnerPersonalRefId="{REF2}"/>'
    error = rejected(event(obj, "Delete"), partial=True)
    assert error.code == 6
    assert error.extended
    assert "LearnerAttendance/@SchoolInfoRefId" in error.extended


def test_partial_keeps_order_and_values(schemas: Schemas) -> None:
    out_of_order = (
        f'<LearnerPersonal RefId="{REF}"><UPN>A830200012345</UPN>'
        "<LocalId>X</LocalId></LearnerPersonal>"
    )
    assert rejected(event(out_of_order, "Change"), partial=True).code == 3
    bad_date = (
        f'<LearnerPersonal RefId="{REF}"><UPNAllocationDate>2024-02-30'
        "</UPNAllocationDate></LearnerPersonal>"
    )
    assert rejected(event(bad_date, "Change"), partial=True).code == 4


def test_change_may_clear_an_optional_element_with_nil(schemas: Schemas) -> None:
    obj = (
        f'<LearnerPersonal xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'RefId="{REF}"><UPN xsi:nil="true"/></LearnerPersonal>'
    )
    schemas.validate_message(event(obj, "Change"), partial=True)


def test_partial_does_not_relax_the_envelope(schemas: Schemas) -> None:
    doc = message(
        f"<SIF_Unregister><SIF_Header><SIF_MsgId>{MSG_ID}</SIF_MsgId>"
        "<SIF_Timestamp>2024-09-09T08:45:00Z</SIF_Timestamp></SIF_Header>"
        "</SIF_Unregister>"
    )
    error = rejected(doc, partial=True)
    assert error.code == 6
    assert error.extended
    assert "SIF_Header/SIF_SourceId" in error.extended


# --- error reports ----------------------------------------------------------------------


@pytest.mark.parametrize("refid", [REF.lower(), "53E6F4C0-109F-DE4D-C7E1-1DB9C0100163"])
def test_bad_refid_is_rejected_with_its_path(refid: str) -> None:
    error = rejected(event(attendance(refid=refid)))
    assert error.code in (Xml.INVALID_VALUE, Xml.INVALID)
    assert error.extended
    assert "/SIF_EventObject/LearnerAttendance/@RefId" in error.extended
    assert refid not in error.extended
    assert refid not in error.desc
    assert refid not in str(error)


def test_element_out_of_order_names_path_and_line() -> None:
    obj = (
        f'<LearnerPersonal RefId="{REF}">\n<PersonalInformation>{NAME}'
        "</PersonalInformation>\n<LocalId>A1234</LocalId>\n"
        f"{IN_CARE}</LearnerPersonal>"
    )
    error = rejected(event(obj))
    assert error.code == Xml.INVALID
    assert error.extended
    assert (
        "/SIF_Message/SIF_Event/SIF_ObjectData/SIF_EventObject/LearnerPersonal/LocalId"
        in error.extended
    )
    line = next(
        n
        for n, text in enumerate(etree.tostring(event(obj)).decode().splitlines(), start=1)
        if "<LocalId>" in text
    )
    assert f"line {line}" in error.extended


def test_swapped_names_are_reported_as_order_not_missing() -> None:
    obj = LEARNER.replace(
        NAME, '<Name Type="C"><GivenName>Evie</GivenName><FamilyName>Fletcher</FamilyName></Name>'
    )
    error = rejected(event(obj))
    assert error.code == Xml.INVALID
    assert error.extended
    assert "PersonalInformation/Name/GivenName" in error.extended


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        (
            "<AttendanceDate>2024-09-09</AttendanceDate>",
            "<AttendanceDate>09/09/2024</AttendanceDate>",
        ),
        ("<Session>AM</Session>", "<Session>Morning-Zebra</Session>"),
        ("<AttendanceCode>/</AttendanceCode>", "<AttendanceCode>SECRET-CODE-99</AttendanceCode>"),
        (
            "<AttendanceDomain>Session</AttendanceDomain>",
            "<AttendanceDomain>Sessionz</AttendanceDomain>",
        ),
    ],
)
def test_bad_values_are_code_4_and_never_echoed(good: str, bad: str) -> None:
    value = bad.split(">")[1].split("<")[0]
    error = rejected(event(attendance().replace(good, bad)))
    assert error.code == Xml.INVALID_VALUE
    assert error.extended
    assert good.split(">")[0].lstrip("<") in error.extended
    assert value not in error.extended
    assert value not in error.desc


def test_personal_data_in_a_bad_upn_is_not_echoed() -> None:
    error = rejected(event(LEARNER.replace("A830200012345", "Evie Fletcher 2015")))
    assert error.code == Xml.INVALID_VALUE
    assert error.extended
    assert "/LearnerPersonal/UPN" in error.extended
    assert "Evie" not in error.extended
    assert "Fletcher" not in error.extended


def test_text_where_only_elements_belong_is_not_echoed() -> None:
    obj = LEARNER.replace("<LocalId>", "Evie Fletcher lives at 3 Dale Road<LocalId>")
    error = rejected(event(obj))
    assert error.code == Xml.INVALID
    assert error.extended
    assert "Dale Road" not in error.extended


def test_unknown_object_in_event_is_rejected() -> None:
    error = rejected(event('<StudentPersonal RefId="' + REF + '"/>'))
    assert error.code == Xml.INVALID
    assert error.extended
    assert "SIF_EventObject/StudentPersonal" in error.extended


def test_a_non_object_global_element_is_not_an_event_payload() -> None:
    error = rejected(event(HEADER, name="SIF_Header"))
    assert error.code == Xml.INVALID
    assert error.extended
    assert "SIF_EventObject/SIF_Header" in error.extended


def test_event_must_hold_exactly_one_object() -> None:
    error = rejected(event(attendance() + attendance(refid=REF2), name="LearnerAttendance"))
    assert error.code == Xml.INVALID


@pytest.mark.parametrize(
    ("inner", "path"),
    [
        (
            f"<SIF_Unregister>{HEADER.replace(MSG_ID, MSG_ID.lower())}</SIF_Unregister>",
            "SIF_Header/SIF_MsgId",
        ),
        (
            f"<SIF_Unregister>{HEADER.replace('school.agent.1', 'x' * 65)}</SIF_Unregister>",
            "SIF_Header/SIF_SourceId",
        ),
        (
            f"<SIF_Register>{HEADER}<SIF_Name>a</SIF_Name><SIF_Version>2.4</SIF_Version>"
            "<SIF_MaxBufferSize>1</SIF_MaxBufferSize><SIF_Mode>Both</SIF_Mode></SIF_Register>",
            "SIF_Register/SIF_Mode",
        ),
    ],
)
def test_bad_envelope_values(inner: str, path: str) -> None:
    error = rejected(message(inner))
    assert error.code == Xml.INVALID_VALUE
    assert error.extended
    assert path in error.extended


def test_bad_version_attribute() -> None:
    error = rejected(message(f"<SIF_Unregister>{HEADER}</SIF_Unregister>", version="2.x"))
    assert error.code == Xml.INVALID_VALUE
    assert error.extended
    assert "/SIF_Message/@Version" in error.extended


def test_two_messages_in_one_envelope_are_rejected() -> None:
    error = rejected(message(f"<SIF_Unregister>{HEADER}</SIF_Unregister>" * 2))
    assert error.code == Xml.INVALID


def test_validate_object_refuses_what_is_not_an_object(schemas: Schemas) -> None:
    with pytest.raises(SifError) as info:
        schemas.validate_object(etree.fromstring(f'<SIF_Header xmlns="{NS}"/>'))
    assert info.value.code == Xml.INVALID
    with pytest.raises(SifError):
        schemas.validate_object(etree.fromstring(LEARNER))  # no namespace


def test_bare_object_paths_start_at_the_object() -> None:
    with pytest.raises(SifError) as info:
        load_schemas().validate_object(bare(LEARNER_NO_FAMILY_NAME))
    assert info.value.extended
    assert info.value.extended.startswith("/LearnerPersonal/PersonalInformation/Name/FamilyName")


def test_extension_objects_check_their_values() -> None:
    bad_ip = COMPUTER.replace("10.20.30.40", "10.20.300.40")
    with pytest.raises(SifError) as info:
        load_schemas().validate_object(bare(bad_ip))
    assert info.value.code == Xml.INVALID_VALUE
    load_schemas().validate_object(bare(COMPUTER.replace("10.20.30.40", "2001:db8::7")))
    bad_email_type = LEARNER_EMAIL.replace('Type="School"', 'Type="Home"')
    with pytest.raises(SifError) as info:
        load_schemas().validate_object(bare(bad_email_type))
    assert info.value.code == Xml.INVALID_VALUE


def test_extended_elements_and_metadata_close_an_object(schemas: Schemas) -> None:
    obj = attendance().replace(
        "</LearnerAttendance>",
        "<SIF_Metadata><Anything/></SIF_Metadata><SIF_ExtendedElements>"
        '<SIF_ExtendedElement Name="Minutes late">12</SIF_ExtendedElement>'
        '<SIF_ExtendedElement Name="Old" SIF_Action="Delete"/></SIF_ExtendedElements>'
        "</LearnerAttendance>",
    )
    schemas.validate_message(event(obj), partial=False)


def test_response_path_names_the_position_of_the_bad_object() -> None:
    bad = LEARNER.replace("A830200012345", "not-a-upn")
    error = rejected(
        message(
            f"<SIF_Response>{HEADER}<SIF_RequestMsgId>{MSG_ID}</SIF_RequestMsgId>"
            "<SIF_PacketNumber>1</SIF_PacketNumber><SIF_MorePackets>Yes</SIF_MorePackets>"
            f"<SIF_ObjectData>{LEARNER}{bad}{LEARNER}</SIF_ObjectData></SIF_Response>"
        )
    )
    assert error.extended
    assert "/SIF_Response/SIF_ObjectData/LearnerPersonal[2]/UPN" in error.extended


def test_prefixed_documents_get_plain_paths() -> None:
    doc = etree.fromstring(
        etree.tostring(event(attendance(drop="AttendanceCode")))
        .replace(f'xmlns="{NS}"'.encode(), f'xmlns:sif="{NS}"'.encode())
        .replace(b"<", b"<sif:")
        .replace(b"<sif:/", b"</sif:")
    )
    assert doc.prefix == "sif"
    error = rejected(doc)
    assert error.code == 6
    assert error.extended
    assert (
        "/SIF_Message/SIF_Event/SIF_ObjectData/SIF_EventObject/LearnerAttendance/"
        "AttendanceCode" in error.extended
    )


def test_unknown_attribute_is_named() -> None:
    obj = attendance().replace("<LearnerAttendance ", '<LearnerAttendance X="1" ')
    error = rejected(event(obj))
    assert error.code == Xml.INVALID
    assert error.extended
    assert "LearnerAttendance/@X: attribute not allowed" in error.extended


def test_concurrent_validation_keeps_each_callers_errors() -> None:
    from concurrent.futures import ThreadPoolExecutor

    schemas = load_schemas()
    good = [etree.tostring(event(attendance(c))) for c in ("/", "C1", "Y7")]
    bad = [etree.tostring(event(attendance(drop=d))) for d in ("AttendanceCode", "InputSource")]

    def check(body: bytes) -> str:
        try:
            schemas.validate_message(etree.fromstring(body), partial=False)
        except SifError as error:
            return error.extended or ""
        return ""

    bodies = (good + bad) * 40
    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(check, bodies))
    for body, result in zip(bodies, results, strict=True):
        if body in good:
            assert result == ""
        else:
            missing = "AttendanceCode" if b"<AttendanceCode>" not in body else "InputSource"
            assert f"LearnerAttendance/{missing}: missing mandatory element" in result
