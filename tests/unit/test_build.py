"""What the hub writes: an event copy's envelope, and a plain success ack, written as text
are byte for byte what the lxml tree gives (for any object, filtered or not, and any header
values, the text form falling back to the tree when a value would need escaping), and a
copy's message id is uuid5's."""

from __future__ import annotations

import copy
import re
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from hub.sif.build import _ack_frame, _event_tree, _status_text, _sub, copy_msg_id, event_copy
from hub.sif.filter import apply_filter
from tests.unit.test_filter_properties import filters, valid_objects

header_values = st.one_of(
    st.from_regex(r"[A-Za-z0-9_.:-]{1,20}", fullmatch=True),
    st.text(
        alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
        min_size=1,
        max_size=12,
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    element=valid_objects(),
    data=st.data(),
    source=header_values,
    msg_id=header_values,
    action=st.sampled_from(["Add", "Change", "Delete", "A&B"]),
    version=st.sampled_from(["2.0r1", "2.4", '2"x']),
)
def test_the_text_envelope_is_the_trees(
    element: etree._Element,
    data: st.DataObject,
    source: str,
    msg_id: str,
    action: str,
    version: str,
) -> None:
    name = etree.QName(element).localname
    if data.draw(st.booleans()):
        element = apply_filter(element, data.draw(filters(name)))
    written = event_copy(version, source, msg_id, name, action, copy.deepcopy(element))
    found = re.search(rb"<SIF_Timestamp>([^<]*)</SIF_Timestamp>", written)
    assert found is not None
    stamp = found.group(1).decode()
    tree = _event_tree(copy.deepcopy(element), version, source, msg_id, name, action, stamp)
    assert written == tree


def test_an_object_declaring_another_namespace_is_written_by_the_tree() -> None:
    element = etree.fromstring(
        b'<LearnerAttendance xmlns="http://www.sifinfo.org/uk/infrastructure/2.x" '
        b'xmlns:x="urn:x" RefId="A"><x:Note>n</x:Note></LearnerAttendance>'
    )
    written = event_copy("2.4", "agent", "M1", "LearnerAttendance", "Add", copy.deepcopy(element))
    assert b'xmlns:x="urn:x"' in written
    assert etree.fromstring(written).find(".//{urn:x}Note").text == "n"


@given(
    outbox_id=st.text(max_size=40), subscriber=st.text(max_size=20), agreement=st.text(max_size=20)
)
def test_a_copy_message_id_is_uuid5(outbox_id: str, subscriber: str, agreement: str) -> None:
    name = f"sifhub:{outbox_id}:{subscriber}:{agreement}"
    expected = uuid.uuid5(uuid.NAMESPACE_URL, name).hex.upper()
    assert copy_msg_id(outbox_id, subscriber, agreement) == expected


@settings(max_examples=300, deadline=None)
@given(
    version=st.sampled_from(["2.0r1", "2.4", '2"x']),
    hub_id=header_values,
    original_source=st.one_of(st.none(), st.just(""), header_values),
    original_msg=st.one_of(st.none(), st.just(""), header_values),
    code=st.sampled_from([0, 7, 9]),
)
def test_the_text_success_ack_is_the_trees(
    version: str, hub_id: str, original_source: str | None, original_msg: str | None, code: int
) -> None:
    msg_id, stamp = "0123456789ABCDEF0123456789ABCDEF", "2026-12-02T10:00:00.000+00:00"
    text = _status_text(version, hub_id, original_source, original_msg, code, msg_id, stamp)
    message, ack = _ack_frame(version, hub_id, original_source, original_msg, msg_id, stamp)
    _sub(_sub(ack, "SIF_Status"), "SIF_Code", str(code))
    tree = etree.tostring(message, xml_declaration=True, encoding="UTF-8")
    assert text in (None, tree)
    plain = all(
        v and re.fullmatch(r"[\w.:+-]*", v, re.ASCII)
        for v in (version, hub_id, original_source, original_msg)
    )
    assert (text is not None) == bool(plain)
