"""One error tree with meaning: each error knows its SIF category/code and how it is answered.

Agents get a SIF_Ack carrying SIF_Error (HTTP 200); the HTTP APIs render the same errors as
problem+json with `http_status`. Raised at the edge, rendered in one place per transport.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Category(IntEnum):
    XML_VALIDATION = 1
    ENCRYPTION = 2
    AUTHENTICATION = 3
    ACCESS = 4
    REGISTRATION = 5
    PROVISION = 6
    SUBSCRIPTION = 7
    REQUEST_RESPONSE = 8
    EVENT = 9
    TRANSPORT = 10
    SYSTEM = 11
    GENERIC = 12


# Codes named after the SIF 2.x code tables (SIF-DIGEST §1b); only those the hub emits.
class Xml(IntEnum):
    GENERIC = 1
    NOT_WELL_FORMED = 2
    INVALID = 3
    INVALID_VALUE = 4
    MISSING_MANDATORY = 6


class Access(IntEnum):
    GENERIC = 1
    REGISTER = 2
    PROVIDE = 3
    SUBSCRIBE = 4
    REQUEST = 5
    RESPOND = 6
    PUBLISH_EVENT = 7
    NOT_REGISTERED = 9
    PUBLISH_ADD = 10
    PUBLISH_CHANGE = 11
    PUBLISH_DELETE = 12


class Registration(IntEnum):
    GENERIC = 1
    INVALID_SOURCE_ID = 2
    PROTOCOL_UNSUPPORTED = 3
    VERSION_UNSUPPORTED = 4
    BUFFER_TOO_SMALL = 6
    PUSH_AGENT_PULLING = 9


class RequestResponse(IntEnum):
    GENERIC = 1
    INVALID_OBJECT = 3
    INVALID_REQUEST_MSG_ID = 10
    INVALID_PACKET_NUMBER = 12


class Generic(IntEnum):
    GENERIC = 1
    MESSAGE_NOT_SUPPORTED = 2
    VERSION_NOT_SUPPORTED = 3
    NO_SUCH_MESSAGE = 6


_CODES: dict[int, type[IntEnum]] = {
    Category.XML_VALIDATION: Xml,
    Category.ACCESS: Access,
    Category.REGISTRATION: Registration,
    Category.REQUEST_RESPONSE: RequestResponse,
    Category.GENERIC: Generic,
}


def explain(category: int, code: int) -> str:
    """A SIF category/code in words, e.g. "xml validation: invalid value" (the console)."""
    try:
        what = Category(category).name.lower().replace("_", " ")
    except ValueError:
        return f"unknown category {category}/{code}"
    table = _CODES.get(category)
    names = {int(c): c.name for c in table} if table else {}
    return f"{what}: {names.get(code, f'code {code}').lower().replace('_', ' ')}"


@dataclass(eq=False)  # not frozen: raising sets __traceback__ on the instance
class SifError(Exception):
    """A refusal the sender can act on. `desc` is short; `extended` says where and why."""

    category: Category
    code: int
    desc: str
    extended: str | None = None
    http_status: int = 400

    def __str__(self) -> str:
        return f"SIF {int(self.category)}/{self.code}: {self.desc}"


def xml_error(code: Xml, desc: str, extended: str | None = None) -> SifError:
    return SifError(Category.XML_VALIDATION, int(code), desc, extended, 400)


def access_error(code: Access, desc: str) -> SifError:
    return SifError(Category.ACCESS, int(code), desc, None, 403)


def registration_error(code: Registration, desc: str) -> SifError:
    return SifError(Category.REGISTRATION, int(code), desc, None, 409)


def generic_error(code: Generic, desc: str) -> SifError:
    return SifError(Category.GENERIC, int(code), desc, None, 400)


def response_error(code: RequestResponse, desc: str) -> SifError:
    return SifError(Category.REQUEST_RESPONSE, int(code), desc, None, 400)


def system_error(desc: str) -> SifError:
    """The hub cannot take responsibility right now (database or broker unreachable)."""
    return SifError(Category.SYSTEM, 1, desc, None, 503)


class NotFoundError(Exception):
    """An admin API lookup found nothing (rendered as 404 problem+json)."""
