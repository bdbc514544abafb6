"""JSON pull feed: a subscriber's released copies as JSON, Wonde-style, from a changes-since
cursor. This module is the one SIF XML -> JSON mapping (docs/json-api.md shows it).

Features of the mapping (xmltodict's conventions, made fixed here):
- element names are kept as keys, in the SIF UK spelling (`PersonalInformation`, `UPN`);
- repeated items are arrays in document order: an element that occurs more than once
  under its parent, and, even when only one is present, every element the SIF UK schema
  lets repeat (`EthnicityList/Ethnicity`, `OtherNames/Name`; hub.sif.schemas gives the
  paths) and every child of a `...List` container, so a recipient's list is always a list;
- attributes are keys marked with "@" (`"@RefId"`, `"@Type"`);
- a leaf without attributes is its text (a string, `""` when empty); text sits under
  "#text" only when mixed with attributes or children (`{"@Type": "M", "#text": "..."}`);
- every value is a string (SIF XML carries no types: a UPN or "0093" keeps its form);
- nothing is added or inferred: the JSON holds exactly the elements the copy released.
Each feed item wraps the object with its cursor, copy id, object name, RefId, action and
release time; a Delete is a tombstone (`"deleted": true`, its data only what identifies
the object), as Ed-Fi change queries and OneRoster deltas do.

URL form: GET /api/v1/feeds/{subscriber}?since=<cursor>&limit=<n>
          Authorization: Bearer <feed key>      (issued: POST /admin/subscribers/{id}/feed-key)
Config form (in a subscriber): delivery: {type: api, concurrency: 16}
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from datetime import datetime
from typing import Any

import xmltodict

# A copy is a SIF_Message/SIF_Event holding one object (hub.sif.build.event_copy).
_EVENT_PATH = ("SIF_Message", "SIF_Event", "SIF_ObjectData", "SIF_EventObject")
JsonObject = dict[str, Any]


def _arrays(repeating: Collection[str], under: int) -> Callable[[Any, str, Any], bool]:
    """xmltodict's force_list: the elements the schema lets repeat (paths below the element
    at depth `under`), and the children of a `...List` container, are always arrays; an
    element's own attributes and text never are."""

    def force(path: Any, key: str, value: Any) -> bool:  # path: [(name, attributes)]
        if key.startswith(("@", "#")) or not path:
            return False
        names = [step[0] for step in path]
        return names[-1].endswith("List") or "/".join([*names[under:], key]) in repeating

    return force


def xml_to_json(xml: bytes, repeating: Collection[str] = (), under: int = 1) -> JsonObject:
    """One XML document as JSON: {root name: content}, by the rules above; `repeating`
    names the element paths (below the element at depth `under`, 1 = the root) that are
    arrays even when one is present. Entities are never expanded."""
    parsed = xmltodict.parse(
        xml,
        force_list=_arrays(frozenset(repeating), under),
        disable_entities=True,
        process_namespaces=False,
    )
    document: JsonObject = _strip_xmlns(dict(parsed))
    return document


def json_to_xml(document: JsonObject) -> bytes:
    """The inverse: the XML a JSON document maps from (tests, and recipients who want XML)."""
    text: str = xmltodict.unparse(document, full_document=False)
    return text.encode("utf-8")


def copy_object(body: bytes, repeating: Collection[str] = ()) -> tuple[str, JsonObject]:
    """The object a released copy holds, as (object name, {object name: content});
    `repeating`: the object's repeatable element paths (hub.sif.schemas)."""
    node: Any = xml_to_json(body, repeating, under=len(_EVENT_PATH) + 1)
    for name in _EVENT_PATH:
        node = node[name]
    name = str(node["@ObjectName"])
    return name, {name: node[name]}


def feed_item(
    *,
    cursor: int,
    copy_msg_id: str,
    object_name: str,
    refid: str | None,
    action: str,
    released_at: datetime,
    body: bytes,
    repeating: Collection[str] = (),
) -> JsonObject:
    """One feed item: the envelope a recipient pages through, and the released object."""
    _, data = copy_object(body, repeating)
    return {
        "cursor": cursor,
        "id": copy_msg_id,
        "object": object_name,
        "refid": refid,
        "action": action,
        "deleted": action == "Delete",
        "released_at": released_at,
        "data": data,
    }


def _strip_xmlns(node: Any) -> Any:
    """Namespace declarations are XML plumbing, not data: every element is SIF UK's."""
    if isinstance(node, dict):
        return {k: _strip_xmlns(v) for k, v in node.items() if not _is_xmlns(k)}
    if isinstance(node, list):
        return [_strip_xmlns(v) for v in node]
    return "" if node is None else node


def _is_xmlns(key: str) -> bool:
    return key == "@xmlns" or key.startswith("@xmlns:")
