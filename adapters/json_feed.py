"""JSON pull feed: a subscriber's released copies as JSON, Wonde-style, from a changes-since
cursor. This module is the one SIF XML -> JSON mapping (docs/json-api.md shows it).

Features of the mapping (xmltodict's conventions, made fixed here):
- element names are kept as keys, in the SIF UK spelling (`PersonalInformation`, `UPN`);
- repeated items are arrays in document order: an element that occurs more than once
  under its parent, and every child of a SIF `...List` container (`PhoneNumberList`)
  even when it holds one, so a recipient's list is always a list;
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

from datetime import datetime
from typing import Any

import xmltodict

# A copy is a SIF_Message/SIF_Event holding one object (hub.sif.build.event_copy).
_EVENT_PATH = ("SIF_Message", "SIF_Event", "SIF_ObjectData", "SIF_EventObject")
JsonObject = dict[str, Any]


def _in_list(path: Any, key: str, value: Any) -> bool:  # path: [(name, attributes)]
    """xmltodict's force_list: children of a `...List` container are always arrays (its
    own attributes and text are not children)."""
    return not key.startswith(("@", "#")) and bool(path) and path[-1][0].endswith("List")


def xml_to_json(xml: bytes) -> JsonObject:
    """One XML document as JSON: {root name: content}, by the rules above. Entities are
    never expanded (the hub's own copies have none; a DOCTYPE is refused by expat here)."""
    parsed = xmltodict.parse(
        xml, force_list=_in_list, disable_entities=True, process_namespaces=False
    )
    document: JsonObject = _strip_xmlns(dict(parsed))
    return document


def json_to_xml(document: JsonObject) -> bytes:
    """The inverse: the XML a JSON document maps from (tests, and recipients who want XML)."""
    text: str = xmltodict.unparse(document, full_document=False)
    return text.encode("utf-8")


def copy_object(body: bytes) -> tuple[str, JsonObject]:
    """The object a released copy holds, as (object name, {object name: content})."""
    node: Any = xml_to_json(body)
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
) -> JsonObject:
    """One feed item: the envelope a recipient pages through, and the released object."""
    _, data = copy_object(body)
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
