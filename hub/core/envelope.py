"""Values read off a SIF 2.x envelope: what arrived, from whom, and what it asks for."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

SIF_UK_NS = "http://www.sifinfo.org/uk/infrastructure/2.x"
# SIF_Message@Version per SIF UK 1.x release: 1.0, 1.1, 1.2, 1.3, 1.4.
SUPPORTED_VERSIONS = ("2.0r1", "2.1", "2.3", "2.4", "2.5")
HUB_VERSION = "2.4"


class MessageKind(StrEnum):
    EVENT = "SIF_Event"
    RESPONSE = "SIF_Response"
    REQUEST = "SIF_Request"
    ACK = "SIF_Ack"
    REGISTER = "SIF_Register"
    UNREGISTER = "SIF_Unregister"
    PROVIDE = "SIF_Provide"
    UNPROVIDE = "SIF_Unprovide"
    SUBSCRIBE = "SIF_Subscribe"
    UNSUBSCRIBE = "SIF_Unsubscribe"
    PROVISION = "SIF_Provision"
    SYSTEM_CONTROL = "SIF_SystemControl"


class Action(StrEnum):
    ADD = "Add"
    CHANGE = "Change"
    DELETE = "Delete"


@dataclass(frozen=True)
class Header:
    msg_id: str
    timestamp: str
    source_id: str
    destination_id: str | None = None
    contexts: tuple[str, ...] = ("SIF_Default",)


def version_supported(version: str) -> bool:
    return version in SUPPORTED_VERSIONS


def version_matches(pattern: str, version: str) -> bool:
    """SIF_Version in SIF_Register may carry wildcards: `2.*`, `*`, `2.0r*`."""
    if pattern.endswith("*"):
        return version.startswith(pattern[:-1])
    return pattern == version
