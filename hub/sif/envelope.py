"""Reading a SIF_Message: first a lenient sniff (enough to answer), then the validated parts."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from hub.core.envelope import Action, Header, MessageKind, version_supported
from hub.core.errors import (
    Generic,
    RequestResponse,
    Xml,
    generic_error,
    response_error,
    xml_error,
)
from hub.sif.names import NS, XPATH_NS, local_name, q

_KINDS = {kind.value: kind for kind in MessageKind}


@dataclass(frozen=True)
class Sniffed:
    """What can be read before validation: enough to address an ack and pick a schema."""

    version: str
    kind: MessageKind
    body: etree._Element
    msg_id: str | None
    source_id: str | None
    event_action: Action | None


def echo_ids(root: etree._Element) -> tuple[str | None, str | None]:
    """SIF_SourceId and SIF_MsgId for the ack, from any message shape, without trusting it."""
    header = root.find("*/s:SIF_Header", XPATH_NS)
    if header is None:
        return None, None
    return header.findtext("s:SIF_SourceId", None, XPATH_NS), header.findtext(
        "s:SIF_MsgId", None, XPATH_NS
    )


def peek_object_name(root: etree._Element) -> str | None:
    """The ObjectName an event claims, for counting rejections per object."""
    holder = root.find("s:SIF_Event/s:SIF_ObjectData/s:SIF_EventObject", XPATH_NS)
    return holder.get("ObjectName") if holder is not None else None


def sniff(root: etree._Element) -> Sniffed:
    if local_name(root.tag) != "SIF_Message":
        raise xml_error(
            Xml.INVALID, "Root element must be SIF_Message", f"found {local_name(root.tag)}"
        )
    if etree.QName(root).namespace != NS:
        raise generic_error(
            Generic.MESSAGE_NOT_SUPPORTED,
            f"SIF_Message must be in the SIF UK namespace {NS}",
        )
    version = root.get("Version")
    if not version:
        raise xml_error(
            Xml.MISSING_MANDATORY, "SIF_Message@Version is missing", "/SIF_Message/@Version"
        )
    if not version_supported(version):
        raise generic_error(
            Generic.VERSION_NOT_SUPPORTED, f"SIF version {version} is not supported"
        )
    body = next(iter(root.iterchildren(tag=etree.Element)), None)
    kind = _KINDS.get(local_name(body.tag)) if body is not None else None
    if body is None or kind is None:
        found = local_name(body.tag) if body is not None else "nothing"
        raise generic_error(Generic.MESSAGE_NOT_SUPPORTED, f"Unsupported SIF message: {found}")
    source_id, msg_id = echo_ids(root)
    return Sniffed(version, kind, body, msg_id, source_id, _event_action(body, kind))


def _event_action(body: etree._Element, kind: MessageKind) -> Action | None:
    if kind is not MessageKind.EVENT:
        return None
    raw = body.find("s:SIF_ObjectData/s:SIF_EventObject", XPATH_NS)
    value = raw.get("Action") if raw is not None else None
    return Action(value) if value in {a.value for a in Action} else None


def read_header(body: etree._Element) -> Header:
    header = body.find(q("SIF_Header"))
    assert header is not None  # guaranteed by schema validation
    contexts = tuple(
        c.text or "" for c in header.iterfind("s:SIF_Contexts/s:SIF_Context", XPATH_NS)
    )
    return Header(
        msg_id=header.findtext(q("SIF_MsgId"), ""),
        timestamp=header.findtext(q("SIF_Timestamp"), ""),
        source_id=header.findtext(q("SIF_SourceId"), ""),
        destination_id=header.findtext(q("SIF_DestinationId")),
        contexts=contexts or ("SIF_Default",),
    )


@dataclass(frozen=True)
class EventObject:
    object_name: str
    action: Action
    element: etree._Element


def read_event(body: etree._Element) -> EventObject:
    holder = body.find("s:SIF_ObjectData/s:SIF_EventObject", XPATH_NS)
    assert holder is not None  # guaranteed by schema validation
    element = next(iter(holder.iterchildren(tag=etree.Element)), None)
    name = holder.get("ObjectName", "")
    if element is None:
        raise xml_error(Xml.MISSING_MANDATORY, "SIF_EventObject holds no object")
    if local_name(element.tag) != name:
        raise xml_error(
            Xml.INVALID_VALUE,
            "SIF_EventObject@ObjectName does not match the object it holds",
            f"ObjectName={name}, element={local_name(element.tag)}",
        )
    return EventObject(name, Action(holder.get("Action", "")), element)


@dataclass(frozen=True)
class ResponsePacket:
    request_msg_id: str
    packet_number: int
    more_packets: bool
    objects: list[etree._Element]
    has_error: bool


def read_response(body: etree._Element, max_packet_number: int) -> ResponsePacket:
    """A SIF_Response packet; its SIF_PacketNumber must lie in 1..max_packet_number."""
    return ResponsePacket(
        request_msg_id=body.findtext(q("SIF_RequestMsgId"), ""),
        packet_number=packet_number(body.findtext(q("SIF_PacketNumber"), ""), max_packet_number),
        more_packets=body.findtext(q("SIF_MorePackets"), "No") == "Yes",
        objects=response_objects(body),
        has_error=body.find(q("SIF_Error")) is not None,
    )


def response_objects(body: etree._Element) -> list[etree._Element]:
    return [
        child
        for data in body.iterfind(q("SIF_ObjectData"))
        for child in data.iterchildren(tag=etree.Element)
    ]


def packet_number(text: str, limit: int) -> int:
    """SIF_PacketNumber as an int in 1..limit, else SIF 8/12. The digits are checked before
    int() so no value (a 64-bit overflow, 5,000 digits) costs more than its length; a
    refusal is final: the same packet would be refused again, so it must not be re-sent."""
    digits = text.strip()
    significant = digits.lstrip("0")
    if not (digits.isascii() and digits.isdigit() and significant):
        raise response_error(
            RequestResponse.INVALID_PACKET_NUMBER,
            "SIF_PacketNumber must be a whole number of 1 or more; do not send this packet again",
        )
    if len(significant) > len(str(limit)) or int(significant) > limit:
        raise response_error(
            RequestResponse.INVALID_PACKET_NUMBER,
            f"SIF_PacketNumber is above this hub's limit of {limit} packets per response; "
            "do not send this packet again: send the response in fewer, larger packets",
        )
    return int(significant)


@dataclass(frozen=True)
class RegisterRequest:
    name: str
    versions: tuple[str, ...]
    max_buffer_size: int
    mode: str


def read_register(body: etree._Element) -> RegisterRequest:
    return RegisterRequest(
        name=body.findtext(q("SIF_Name"), ""),
        versions=tuple(v.text or "" for v in body.iterfind(q("SIF_Version"))),
        max_buffer_size=int(body.findtext(q("SIF_MaxBufferSize"), "0")),
        mode=body.findtext(q("SIF_Mode"), "Push"),
    )


def read_object_names(body: etree._Element) -> list[str]:
    """Objects named by SIF_Provide / SIF_Subscribe (and their Un- forms)."""
    return [obj.get("ObjectName", "") for obj in body.iterfind(q("SIF_Object"))]


def read_system_control(body: etree._Element) -> str:
    data = body.find(q("SIF_SystemControlData"))
    child = next(iter(data.iterchildren(tag=etree.Element)), None) if data is not None else None
    return local_name(child.tag) if child is not None else ""


def read_ack(body: etree._Element) -> tuple[str, str]:
    """The (source, msg id) an agent's SIF_Ack acknowledges."""
    return body.findtext(q("SIF_OriginalSourceId"), ""), body.findtext(q("SIF_OriginalMsgId"), "")
