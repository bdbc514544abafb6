"""The one SIF XML -> JSON mapping (adapters/json_feed.py): properties over generated
element trees (element names kept, repeated items as arrays, attributes marked, the JSON
maps back to the same XML), and a released copy as a feed item."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from lxml import etree

from adapters.json_feed import copy_object, feed_item, json_to_xml, xml_to_json
from hub.sif.build import event_copy
from hub.sif.names import NSMAP, q
from hub.sif.schemas import load_schemas

NAMES = ["Name", "GivenName", "Address", "Street", "UPN", "Session", "PhoneNumberList"]
ATTRIBUTES = ["RefId", "Type", "Code"]
# Text as SIF carries it: no surrounding white space (the mapping strips it), XML's
# special characters included.
TEXT = st.text(alphabet="abcXYZ019 &<>'\"é-", max_size=12).map(str.strip)


@st.composite
def trees(draw: st.DrawFn, depth: int = 0) -> etree._Element:
    """An element: attributes, then either text (a leaf) or children. Same-named siblings
    are contiguous, as in every SIF sequence; no mixed content (SIF has none)."""
    element = etree.Element(draw(st.sampled_from(NAMES)))
    for name in draw(st.lists(st.sampled_from(ATTRIBUTES), unique=True, max_size=2)):
        element.set(name, draw(TEXT))
    if depth >= 3 or draw(st.booleans()):
        element.text = draw(TEXT) or None
        return element
    groups = draw(st.lists(st.sampled_from(NAMES), unique=True, min_size=1, max_size=3))
    for name in groups:
        for _ in range(draw(st.integers(min_value=1, max_value=3))):
            child = draw(trees(depth + 1))
            child.tag = name
            element.append(child)
    return element


def shape(element: etree._Element) -> Any:
    """What the XML says, order of same-named siblings included."""
    children = [shape(c) for c in element]
    text = (element.text or "").strip() if not children else ""
    return (element.tag, sorted(element.attrib.items()), text, children)


def check_node(element: etree._Element, node: Any) -> None:
    """Names kept, attributes marked, repeated items (and a List's items) as arrays."""
    if not len(element) and not element.attrib:
        assert node == (element.text or "")
        return
    assert isinstance(node, dict)
    for name, value in element.attrib.items():
        assert node[f"@{name!s}"] == value
    names = list(dict.fromkeys(c.tag for c in element))
    assert {k for k in node if not k.startswith(("@", "#"))} == set(names)
    for name in names:
        items = [c for c in element if c.tag == name]
        value = node[name]
        if len(items) > 1 or element.tag.endswith("List"):
            assert isinstance(value, list) and len(value) == len(items)
            for item, item_node in zip(items, value, strict=True):
                check_node(item, item_node)
        else:
            check_node(items[0], value)


@settings(max_examples=200, deadline=None)
@given(trees())
def test_the_json_maps_back_to_the_same_xml(tree: etree._Element) -> None:
    document = xml_to_json(etree.tostring(tree))
    back = etree.fromstring(json_to_xml(document))
    assert shape(back) == shape(tree)


@settings(max_examples=200, deadline=None)
@given(trees())
def test_names_are_kept_attributes_marked_and_repeated_items_are_arrays(
    tree: etree._Element,
) -> None:
    document = xml_to_json(etree.tostring(tree))
    assert list(document) == [tree.tag]
    check_node(tree, document[tree.tag])


@settings(max_examples=200, deadline=None)
@given(trees(), st.data())
def test_what_the_schema_lets_repeat_is_an_array_even_when_one_is_present(
    tree: etree._Element, draw: st.DataObject
) -> None:
    paths = sorted(_paths(tree))
    repeating = set(draw.draw(st.lists(st.sampled_from(paths), unique=True))) if paths else set()
    document = xml_to_json(etree.tostring(tree), repeating)
    for path in paths:
        values = _at(document[tree.tag], path.split("/"))
        assert all(isinstance(v, list) for v in values) or path not in repeating
    assert shape(etree.fromstring(json_to_xml(document))) == shape(tree)


def _paths(element: etree._Element, prefix: str = "") -> set[str]:
    out: set[str] = set()
    for child in element:
        path = f"{prefix}{child.tag}"
        out |= {path, *_paths(child, path + "/")}
    return out


def _at(node: Any, steps: list[str]) -> list[Any]:
    """The values at a path (as they sit in their parents: lists stay lists)."""
    if not steps:
        return [node]
    if isinstance(node, list):
        return [v for item in node for v in _at(item, steps)]
    if not isinstance(node, dict) or steps[0] not in node:
        return []
    return [node[steps[0]]] if len(steps) == 1 else _at(node[steps[0]], steps[1:])


def test_a_copy_is_its_object_and_a_delete_is_a_tombstone() -> None:
    element = etree.Element(q("LearnerPersonal"), nsmap=NSMAP, RefId="AB" * 16)  # type: ignore[arg-type]
    etree.SubElement(element, q("UPN")).text = "A123456789012"
    names = etree.SubElement(etree.SubElement(element, q("PersonalInformation")), q("Name"))
    names.set("Type", "C")
    etree.SubElement(names, q("FamilyName")).text = "Smith"
    phones = etree.SubElement(element, q("PhoneNumberList"))
    etree.SubElement(etree.SubElement(phones, q("PhoneNumber"), Type="M"), q("Number")).text = "1"
    body = event_copy("2.4", "agent", "C1", "LearnerPersonal", "Change", element)

    name, data = copy_object(body, {"PersonalInformation/OtherNames/Name", "UPN"})
    assert name == "LearnerPersonal"
    assert data == {
        "LearnerPersonal": {
            "@RefId": "AB" * 16,
            "UPN": ["A123456789012"],  # named repeatable: an array of one
            "PersonalInformation": {"Name": {"@Type": "C", "FamilyName": "Smith"}},
            "PhoneNumberList": {"PhoneNumber": [{"@Type": "M", "Number": "1"}]},
        }
    }
    repeating = {"PersonalInformation/OtherNames/Name", "UPN"}
    item = feed_item(
        repeating=repeating,
        cursor=7,
        copy_msg_id="C1",
        object_name=name,
        refid="AB" * 16,
        action="Delete",
        released_at=datetime(2026, 12, 1, tzinfo=UTC),
        body=body,
    )
    assert item["deleted"] is True and item["cursor"] == 7 and item["data"] == data


def test_the_schema_says_which_elements_repeat() -> None:
    schemas = load_schemas()
    personal = schemas.repeating_paths("LearnerPersonal")
    assert {
        "PersonalInformation/Demographics/EthnicityList/Ethnicity",
        "PersonalInformation/OtherNames/Name",
        "SiblingList/Sibling",
    } <= personal
    assert personal.isdisjoint({"UPN", "PersonalInformation/Name", "PersonalInformation"})
    assert personal <= schemas.element_paths("LearnerPersonal")
    assert "CurrentAssignmentList/CurrentAssignment" in schemas.repeating_paths("WorkforcePersonal")
