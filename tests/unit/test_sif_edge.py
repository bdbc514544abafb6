import pytest
from lxml import etree

from hub.core.errors import Category, SifError
from hub.core.paths import PathFilter
from hub.sif import build
from hub.sif.envelope import read_event, sniff
from hub.sif.filter import apply_filter, released_paths
from hub.sif.names import NS
from hub.sif.parse import parse_untrusted
from hub.simulate import sif_messages as m

LEARNER = (
    f'<LearnerPersonal xmlns="{NS}" RefId="53E6F4C0109FDE4DC7E11DB9C0100163">'
    "<LocalId>1</LocalId><PersonalInformation>"
    '<Name Type="C"><FamilyName>Harris</FamilyName><GivenName>Sonya</GivenName></Name>'
    "<Demographics><EthnicityList><Ethnicity><Code>WBRI</Code></Ethnicity></EthnicityList>"
    "<BirthDate>2014-06-23</BirthDate></Demographics></PersonalInformation>"
    "<UPN>B801200005001</UPN></LearnerPersonal>"
)


def _error(body: bytes) -> SifError:
    with pytest.raises(SifError) as info:
        sniff(parse_untrusted(body))
    return info.value


def test_malformed_xml_is_category_1_code_2_with_line() -> None:
    err = _error(b"<SIF_Message>\n<unclosed></SIF_Message>")
    assert (err.category, err.code) == (Category.XML_VALIDATION, 2)
    assert err.extended and "line 2" in err.extended


@pytest.mark.parametrize(
    "body",
    [
        b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
        b'<?xml version="1.0"?><!DOCTYPE lol [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;">]>'
        b"<lol>&b;</lol>",
        b'<!DOCTYPE SIF_Message SYSTEM "http://127.0.0.1:1/x.dtd"><SIF_Message/>',
    ],
)
def test_doctype_and_entities_refused_without_expansion(body: bytes) -> None:
    err = _error(body)
    assert err.category == Category.XML_VALIDATION
    assert "DOCTYPE" in err.desc
    assert "root:" not in (err.extended or "")


def test_wrong_namespace_and_version_and_kind() -> None:
    us = b'<SIF_Message xmlns="http://www.sifinfo.org/infrastructure/2.x" Version="2.4"/>'
    assert (_error(us).category, _error(us).code) == (Category.GENERIC, 2)
    old = m.event("a", "LearnerPersonal", "Add", LEARNER, version="1.5r1")
    assert (_error(old).category, _error(old).code) == (Category.GENERIC, 3)
    odd = f'<SIF_Message xmlns="{NS}" Version="2.4"><SIF_Nonsense/></SIF_Message>'.encode()
    assert (_error(odd).category, _error(odd).code) == (Category.GENERIC, 2)


def test_event_object_name_must_match_element() -> None:
    body = m.event("a", "LearnerAttendance", "Add", LEARNER.replace(f' xmlns="{NS}"', ""))
    sniffed = sniff(parse_untrusted(body))
    with pytest.raises(SifError) as info:
        read_event(sniffed.body)
    assert info.value.code == 4


def test_filter_keeps_keys_and_allowed_paths_only() -> None:
    element = etree.fromstring(LEARNER)
    out = apply_filter(element, PathFilter.of(["PersonalInformation/Name/FamilyName", "UPN"]))
    assert out.get("RefId") == "53E6F4C0109FDE4DC7E11DB9C0100163"
    assert released_paths(out) == ["PersonalInformation/Name/FamilyName", "UPN"]
    assert out.find(f"{{{NS}}}PersonalInformation/{{{NS}}}Name").get("Type") == "C"
    assert element.find(f"{{{NS}}}LocalId") is not None  # input untouched


def test_filter_removes_containers_left_empty() -> None:
    element = etree.fromstring(LEARNER)
    out = apply_filter(element, PathFilter.of(["PersonalInformation/Address", "UPN"]))
    assert released_paths(out) == ["UPN"]
    assert out.find(f"{{{NS}}}PersonalInformation") is None


def test_ack_echoes_original_ids_and_error() -> None:
    err = SifError(Category.ACCESS, 10, "no", "why")
    body = build.ack_error("2.4", "Hub", "agent-1", "ABC", err)
    root = etree.fromstring(body)
    ns = {"s": NS}
    assert root.findtext("s:SIF_Ack/s:SIF_OriginalSourceId", namespaces=ns) == "agent-1"
    assert root.findtext("s:SIF_Ack/s:SIF_OriginalMsgId", namespaces=ns) == "ABC"
    assert root.findtext("s:SIF_Ack/s:SIF_Error/s:SIF_Category", namespaces=ns) == "4"
    assert root.findtext("s:SIF_Ack/s:SIF_Error/s:SIF_Code", namespaces=ns) == "10"


def test_ack_nils_unknown_original_msg_id() -> None:
    root = etree.fromstring(build.ack_status("2.4", "Hub", None, None, 0))
    original = root.find(f"{{{NS}}}SIF_Ack/{{{NS}}}SIF_OriginalMsgId")
    assert original is not None and original.get(build.XSI_NIL) == "true"


def test_copy_msg_id_is_deterministic_per_subscriber() -> None:
    assert build.copy_msg_id("x", "cme", "A") == build.copy_msg_id("x", "cme", "A")
    assert build.copy_msg_id("x", "cme", "A") != build.copy_msg_id("x", "vs", "A")
    assert build.copy_msg_id("x", "cme", "A") != build.copy_msg_id("x", "cme", "B")
