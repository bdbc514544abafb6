"""Messages the hub writes: SIF_Ack replies to agents and SIF_Event copies for subscribers."""

from __future__ import annotations

import hashlib
import re
import uuid
from datetime import UTC, datetime
from xml.sax.saxutils import quoteattr

from lxml import etree

from hub.core.errors import SifError
from hub.sif.names import NSMAP, q

XSI_NIL = "{http://www.w3.org/2001/XMLSchema-instance}nil"


def new_msg_id() -> str:
    return uuid.uuid4().hex.upper()


def copy_msg_id(outbox_id: str, subscriber: str, agreement_id: str) -> str:
    """Deterministic per (object, subscriber, agreement), so a re-sent copy carries the same
    id and each agreement's copy its own."""
    name = f"sifhub:{outbox_id}:{subscriber}:{agreement_id}"
    # uuid.uuid5's value, without building a UUID object (a hot spot: one per copy).
    sha1 = hashlib.sha1(_URL_NAMESPACE + name.encode(), usedforsecurity=False)
    digest = bytearray(sha1.digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return digest.hex().upper()


_URL_NAMESPACE = uuid.NAMESPACE_URL.bytes


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def _sub(parent: etree._Element, local: str, text: str | None = None) -> etree._Element:
    child = etree.SubElement(parent, q(local))
    if text is not None:
        child.text = text
    return child


def _message(version: str) -> etree._Element:
    return etree.Element(q("SIF_Message"), nsmap=NSMAP, Version=version)  # type: ignore[arg-type]


def _header(parent: etree._Element, source_id: str, msg_id: str, stamp: str) -> None:
    header = _sub(parent, "SIF_Header")
    _sub(header, "SIF_MsgId", msg_id)
    _sub(header, "SIF_Timestamp", stamp)
    _sub(header, "SIF_SourceId", source_id)


def _ack_frame(
    version: str,
    hub_id: str,
    original_source: str | None,
    original_msg: str | None,
    msg_id: str | None = None,
    stamp: str | None = None,
) -> tuple[etree._Element, etree._Element]:
    message = _message(version)
    ack = _sub(message, "SIF_Ack")
    _header(ack, hub_id, msg_id or new_msg_id(), stamp or timestamp())
    _sub(ack, "SIF_OriginalSourceId", original_source or "")
    original = _sub(ack, "SIF_OriginalMsgId", original_msg)
    if not original_msg:  # SIF: nil when the original could not be read
        original.set(XSI_NIL, "true")
    return message, ack


def ack_status(
    version: str,
    hub_id: str,
    original_source: str | None,
    original_msg: str | None,
    code: int,
    desc: str | None = None,
    data: etree._Element | None = None,
) -> bytes:
    msg_id, stamp = new_msg_id(), timestamp()
    if desc is None and data is None:  # the plain success ack: one per accepted message
        text = _status_text(version, hub_id, original_source, original_msg, code, msg_id, stamp)
        if text is not None:
            return text
    message, ack = _ack_frame(version, hub_id, original_source, original_msg, msg_id, stamp)
    status = _sub(ack, "SIF_Status")
    _sub(status, "SIF_Code", str(code))
    if desc:
        _sub(status, "SIF_Desc", desc)
    if data is not None:
        _sub(status, "SIF_Data").append(data)
    return etree.tostring(message, xml_declaration=True, encoding="UTF-8")


def _status_text(
    version: str,
    hub_id: str,
    original_source: str | None,
    original_msg: str | None,
    code: int,
    msg_id: str,
    stamp: str,
) -> bytes | None:
    """A SIF_Ack with only a SIF_Code, written as text: byte for byte the tree's, or None
    when a value would need escaping or is unknown (an unknown original id is nil)."""
    fields = (version, hub_id, original_source or "", original_msg or "", msg_id, stamp)
    if not (original_source and original_msg and all(_PLAIN.match(v) for v in fields)):
        return None
    return (
        f"<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<SIF_Message xmlns="{SIF_NS}" Version="{version}"><SIF_Ack><SIF_Header>'
        f"<SIF_MsgId>{msg_id}</SIF_MsgId><SIF_Timestamp>{stamp}</SIF_Timestamp>"
        f"<SIF_SourceId>{hub_id}</SIF_SourceId></SIF_Header>"
        f"<SIF_OriginalSourceId>{original_source}</SIF_OriginalSourceId>"
        f"<SIF_OriginalMsgId>{original_msg}</SIF_OriginalMsgId>"
        f"<SIF_Status><SIF_Code>{code}</SIF_Code></SIF_Status></SIF_Ack></SIF_Message>"
    ).encode()


def ack_error(
    version: str,
    hub_id: str,
    original_source: str | None,
    original_msg: str | None,
    error: SifError,
) -> bytes:
    message, ack = _ack_frame(version, hub_id, original_source, original_msg)
    err = _sub(ack, "SIF_Error")
    _sub(err, "SIF_Category", str(int(error.category)))
    _sub(err, "SIF_Code", str(error.code))
    _sub(err, "SIF_Desc", error.desc)
    if error.extended:
        _sub(err, "SIF_ExtendedDesc", error.extended)
    return etree.tostring(message, xml_declaration=True, encoding="UTF-8")


def event_copy(
    version: str,
    source_id: str,
    msg_id: str,
    object_name: str,
    action: str,
    element: etree._Element,
) -> bytes:
    """A SIF_Message/SIF_Event holding one (already filtered) object for one subscriber.

    SIF_SourceId stays the publishing agent's, as a ZIS forwards events. The envelope is
    written as text around the serialised object (one per copy: a hot spot), byte for byte
    what the tree below gives, which still writes any copy the text form cannot.
    """
    stamp = timestamp()
    fields = (version, source_id, msg_id, object_name, action, stamp)
    body = _object_in_envelope(element, object_name)
    if body is None or not all(_PLAIN.match(v) for v in fields):
        return _event_tree(element, *fields)
    head = (
        f"<?xml version='1.0' encoding='UTF-8'?>\n"
        f'<SIF_Message xmlns="{SIF_NS}" Version="{version}"><SIF_Event><SIF_Header>'
        f"<SIF_MsgId>{msg_id}</SIF_MsgId><SIF_Timestamp>{stamp}</SIF_Timestamp>"
        f"<SIF_SourceId>{source_id}</SIF_SourceId></SIF_Header><SIF_ObjectData>"
        f'<SIF_EventObject ObjectName="{object_name}" Action="{action}">'
    )
    return b"".join((head.encode(), body, _EVENT_TAIL))


SIF_NS = NSMAP[None]
_EVENT_TAIL = b"</SIF_EventObject></SIF_ObjectData></SIF_Event></SIF_Message>"
# Values written as they are: nothing in them to escape.
_PLAIN = re.compile(r"[\w.:+\-]*\Z", re.ASCII)


def _object_in_envelope(element: etree._Element, object_name: str) -> bytes | None:
    """The object serialised as it sits inside the envelope (its default namespace, the
    envelope's, declared there), or None when it carries anything else to declare."""
    if element.nsmap != NSMAP or element.tag != q(object_name) or element.tail:
        return None
    body: bytes = etree.tostring(element, encoding="UTF-8")
    declared = f'<{object_name} xmlns="{SIF_NS}"'.encode()
    if not body.startswith(declared):
        return None
    return b"<" + object_name.encode() + body[len(declared) :]


def _event_tree(
    element: etree._Element,
    version: str,
    source_id: str,
    msg_id: str,
    object_name: str,
    action: str,
    stamp: str,
) -> bytes:
    message = _message(version)
    event = _sub(message, "SIF_Event")
    _header(event, source_id, msg_id, stamp)
    holder = _sub(_sub(event, "SIF_ObjectData"), "SIF_EventObject")
    holder.set("ObjectName", object_name)
    holder.set("Action", action)
    holder.append(element)
    return etree.tostring(message, xml_declaration=True, encoding="UTF-8")


COPY_BATCH_NS = "urn:sifhub:copy-batch:1"


def copy_batch(msg_id: str, copies: list[tuple[dict[str, str], bytes]]) -> bytes:
    """One SIF_CopyBatch: each Copy carries the AMQP headers the copy would have had alone
    (as attributes) around the whole SIF_Message as it would leave alone (its own SIF_MsgId,
    object and action). The messages are the hub's own serialised output, so they are
    joined as bytes rather than parsed again."""
    # A prefix, not a default namespace, so the copies keep exactly their own namespaces.
    head = f'<b:SIF_CopyBatch xmlns:b="{COPY_BATCH_NS}" MsgId="{msg_id}" Count="{len(copies)}">'
    parts = [head.encode()]
    for headers, body in copies:
        if body.startswith(b"<?xml"):
            body = body[body.index(b"?>") + 2 :].lstrip()
        attrs = "".join(f" {name}={quoteattr(value)}" for name, value in sorted(headers.items()))
        parts += [f"<b:Copy{attrs}>".encode(), body, b"</b:Copy>"]
    parts.append(b"</b:SIF_CopyBatch>")
    return b"<?xml version='1.0' encoding='UTF-8'?>\n" + b"".join(parts)
