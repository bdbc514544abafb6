"""Builds the SIF 2.x messages a school's MIS agent sends (register, events, responses,
pull requests, acks). Used by the simulated agent in the demo, benchmark and tests."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from hub.core.envelope import SIF_UK_NS


def msg_id() -> str:
    return uuid.uuid4().hex.upper()


def refid() -> str:
    return uuid.uuid4().hex.upper()


def _header(source_id: str, message_id: str | None) -> str:
    stamp = datetime.now(UTC).isoformat(timespec="seconds")
    return (
        f"<SIF_Header><SIF_MsgId>{message_id or msg_id()}</SIF_MsgId>"
        f"<SIF_Timestamp>{stamp}</SIF_Timestamp><SIF_SourceId>{source_id}</SIF_SourceId>"
        "</SIF_Header>"
    )


def _message(inner: str, version: str = "2.4") -> bytes:
    return (
        f'<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<SIF_Message xmlns="{SIF_UK_NS}" Version="{version}">{inner}</SIF_Message>'
    ).encode()


def register(
    source_id: str,
    mode: str = "Pull",
    versions: tuple[str, ...] = ("2.4",),
    name: str = "MIS agent",
    message_id: str | None = None,
) -> bytes:
    vs = "".join(f"<SIF_Version>{v}</SIF_Version>" for v in versions)
    return _message(
        f"<SIF_Register>{_header(source_id, message_id)}<SIF_Name>{name}</SIF_Name>"
        f"{vs}<SIF_MaxBufferSize>1048576</SIF_MaxBufferSize>"
        f"<SIF_Mode>{mode}</SIF_Mode></SIF_Register>"
    )


def provision(kind: str, source_id: str, objects: list[str]) -> bytes:
    """kind: SIF_Provide | SIF_Subscribe | SIF_Unprovide | SIF_Unsubscribe."""
    objs = "".join(f'<SIF_Object ObjectName="{o}"/>' for o in objects)
    return _message(f"<{kind}>{_header(source_id, None)}{objs}</{kind}>")


def event(
    source_id: str,
    object_name: str,
    action: str,
    object_xml: str,
    message_id: str | None = None,
    version: str = "2.4",
) -> bytes:
    return _message(
        f"<SIF_Event>{_header(source_id, message_id)}<SIF_ObjectData>"
        f'<SIF_EventObject ObjectName="{object_name}" Action="{action}">{object_xml}'
        "</SIF_EventObject></SIF_ObjectData></SIF_Event>",
        version,
    )


def response(
    source_id: str,
    request_msg_id: str,
    packet: int,
    more: bool,
    objects_xml: list[str],
    message_id: str | None = None,
) -> bytes:
    return _message(
        f"<SIF_Response>{_header(source_id, message_id)}"
        f"<SIF_RequestMsgId>{request_msg_id}</SIF_RequestMsgId>"
        f"<SIF_PacketNumber>{packet}</SIF_PacketNumber>"
        f"<SIF_MorePackets>{'Yes' if more else 'No'}</SIF_MorePackets>"
        f"<SIF_ObjectData>{''.join(objects_xml)}</SIF_ObjectData></SIF_Response>"
    )


def system_control(source_id: str, command: str) -> bytes:
    return _message(
        f"<SIF_SystemControl>{_header(source_id, None)}<SIF_SystemControlData>"
        f"<{command}/></SIF_SystemControlData></SIF_SystemControl>"
    )


def ack(source_id: str, original_source: str, original_msg_id: str) -> bytes:
    return _message(
        f"<SIF_Ack>{_header(source_id, None)}"
        f"<SIF_OriginalSourceId>{original_source}</SIF_OriginalSourceId>"
        f"<SIF_OriginalMsgId>{original_msg_id}</SIF_OriginalMsgId>"
        "<SIF_Status><SIF_Code>1</SIF_Code></SIF_Status></SIF_Ack>"
    )
