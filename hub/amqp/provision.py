"""Broker users for LA services, provisioned through RabbitMQ's management HTTP API.

Features: one RabbitMQ user per subscriber, named like its queue (`<prefix>.sub.<id>`, see
`hub.core.naming.subscriber_user`) and tagged `sifhub-subscriber`, a tag that opens no
management access and marks the users the hub manages. On the hub's vhost the user may read
that one queue and nothing else: configure and write are "" (no name at all: RabbitMQ checks
a publish to the default exchange under the name `amq.default`, which "" refuses like every
other exchange), read is the queue name escaped and anchored (not its `.dlq`, no other
queue). A user is created without a password (`password_hash` ""), so nobody logs in as it
until credentials are issued. `issue` deletes and re-creates the user with a new random
password, which also ends its open connections; the hub keeps no copy (RabbitMQ keeps a
salted hash). `sync` is idempotent: it creates missing users, resets their tags and
permissions (keeping issued passwords) and deletes managed users under this prefix whose
subscriber is gone; a same-named user the hub does not manage is reported, never touched.
Every HTTP call is bounded by `timeout`; an unreachable or refusing API is BrokerUnavailable.

URL form: http(s)://[user:password@]host:port[/path-prefix]. Default: http://<AMQP host>:15672
(https://<AMQP host>:15671 for amqps://), as the AMQP URL's user unless the management URL
names one. The vhost is the AMQP URL's (amqp://host/ and amqp://host/%2F are "/"). Over https,
the AMQP URL's `cafile` option, when given, also verifies the management API's certificate.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import ssl
import string
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import SplitResult, parse_qs, quote, unquote, urlsplit

import httpx

from hub.core import naming
from hub.core.ports import BrokerUnavailable

log = logging.getLogger("hub.amqp")

MANAGED_TAG = "sifhub-subscriber"
GRANT_NOTHING = ""  # RabbitMQ: an empty pattern matches no name, `amq.default` included
MANAGEMENT_PORTS = {"amqp": 15672, "amqps": 15671}
PASSWORD_BYTES = 32  # 256 bits, URL-safe text: fits an amqp:// URL unencoded


class UserConflict(Exception):
    """A broker user has the subscriber's name but is not one the hub manages."""


@dataclass(frozen=True, kw_only=True)
class ManagementTarget:
    """Where and as whom the hub calls the management API, and the vhost it provisions."""

    base_url: str  # scheme://host:port[/path-prefix], no credentials
    username: str
    password: str = field(repr=False)
    vhost: str
    cafile: str | None = None


@dataclass(frozen=True, kw_only=True)
class Permissions:
    configure: str
    write: str
    read: str


@dataclass(frozen=True, kw_only=True)
class Credentials:
    """Handed to the LA service once; the password is never stored or logged by the hub."""

    username: str
    password: str = field(repr=False)
    queue: str


@dataclass(frozen=True, kw_only=True)
class SyncReport:
    created: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    conflicts: tuple[str, ...] = ()


# --- pure parts ----------------------------------------------------------------------------


def management_target(amqp_url: str, management_url: str | None = None) -> ManagementTarget:
    """The management API that goes with `amqp_url` (see the module docstring)."""
    amqp = urlsplit(amqp_url)
    given = urlsplit(management_url) if management_url else None
    user = given if given is not None and given.username is not None else amqp
    return ManagementTarget(
        base_url=_base_url(given) if given is not None else _default_base_url(amqp),
        username=unquote(user.username or "guest"),
        password=unquote(user.password or ("guest" if user is amqp else "")),
        vhost=vhost_of(amqp_url),
        cafile=parse_qs(amqp.query).get("cafile", [None])[0] if amqp.scheme == "amqps" else None,
    )


def vhost_of(amqp_url: str) -> str:
    """The vhost an AMQP URL names, as aio-pika reads it: none or "/" is the default "/"."""
    path = urlsplit(amqp_url).path
    return "/" if path in ("", "/") else unquote(path[1:])


def _default_base_url(amqp: SplitResult) -> str:
    scheme = "https" if amqp.scheme == "amqps" else "http"
    return f"{scheme}://{_host(amqp.hostname)}:{MANAGEMENT_PORTS.get(amqp.scheme, 15672)}"


def _base_url(given: SplitResult) -> str:
    if given.scheme not in ("http", "https"):
        raise ValueError(f"management URL must be http:// or https://, not {given.scheme}://")
    port = f":{given.port}" if given.port else ""
    return f"{given.scheme}://{_host(given.hostname)}{port}{given.path.rstrip('/')}"


def _host(hostname: str | None) -> str:
    host = hostname or "localhost"
    return f"[{host}]" if ":" in host else host  # IPv6 literal


def read_only_queue_pattern(queue: str) -> str:
    """A permission regex matching `queue` and no other name (not `<queue>.dlq`).

    RabbitMQ matches permissions with PCRE, where a dot in a queue name would match any
    character; every ASCII punctuation character is escaped (a backslash before a
    non-alphanumeric character is always a literal in PCRE) and the name is anchored.
    """
    escaped = "".join(f"\\{c}" if c in string.punctuation else c for c in queue)
    return f"^{escaped}$"


def subscriber_permissions(queue: str) -> Permissions:
    """Read (consume, get, ack, purge) its own queue; declare, delete, bind, publish nothing."""
    return Permissions(
        configure=GRANT_NOTHING, write=GRANT_NOTHING, read=read_only_queue_pattern(queue)
    )


def new_password() -> str:
    return secrets.token_urlsafe(PASSWORD_BYTES)


def _tags(user: Mapping[str, Any]) -> list[str]:
    tags = user.get("tags") or []
    # RabbitMQ before 3.9 lists tags as one comma-separated string.
    return [t for t in tags.split(",") if t] if isinstance(tags, str) else list(tags)


# --- the management API --------------------------------------------------------------------


class _Api:
    """The few management API calls provisioning needs; every failure is BrokerUnavailable."""

    def __init__(self, client: httpx.AsyncClient, vhost: str) -> None:
        self._client = client
        self._vhost = vhost

    async def users(self) -> list[dict[str, Any]]:
        return list(await self._call("GET", "users"))

    async def user(self, name: str) -> dict[str, Any] | None:
        found = await self._call("GET", f"users/{_seg(name)}", missing=True)
        return None if found is None else dict(found)

    async def put_user(self, name: str, body: Mapping[str, str]) -> None:
        await self._call("PUT", f"users/{_seg(name)}", json=dict(body))

    async def delete_user(self, name: str) -> None:
        await self._call("DELETE", f"users/{_seg(name)}", missing=True)

    async def set_permissions(self, name: str, grant: Permissions) -> None:
        body = {"configure": grant.configure, "write": grant.write, "read": grant.read}
        await self._call("PUT", f"permissions/{_seg(self._vhost)}/{_seg(name)}", json=body)

    async def other_vhosts(self, name: str) -> list[str]:
        """Vhosts other than ours where the user holds permissions."""
        grants = await self._call("GET", f"users/{_seg(name)}/permissions", missing=True)
        return [g["vhost"] for g in grants or [] if g["vhost"] != self._vhost]

    async def clear_permissions(self, vhost: str, name: str) -> None:
        await self._call("DELETE", f"permissions/{_seg(vhost)}/{_seg(name)}", missing=True)

    async def queues(self) -> list[dict[str, Any]]:
        """Every queue on our vhost: name, messages, consumers (as last sampled)."""
        path = f"queues/{_seg(self._vhost)}?columns=name,messages,consumers"
        return list(await self._call("GET", path) or [])

    async def _call(
        self, method: str, path: str, *, json: Any = None, missing: bool = False
    ) -> Any:
        """`missing`: a 404 is an answer (None), not a failure."""
        try:
            response = await self._client.request(method, path, json=json)
        except httpx.HTTPError as exc:
            raise BrokerUnavailable(f"management API {method} {path}: {exc!r}") from exc
        if missing and response.status_code == 404:
            return None
        if response.status_code in (401, 403):
            raise BrokerUnavailable(
                f"management API {method} {path}: HTTP {response.status_code}; the hub's "
                "broker user needs the administrator tag"
            )
        if response.is_error:
            raise BrokerUnavailable(f"management API {method} {path}: HTTP {response.status_code}")
        try:
            return response.json() if response.content else None
        except ValueError as exc:  # not the management API answering (a proxy page?)
            raise BrokerUnavailable(f"management API {method} {path}: not JSON") from exc


def _seg(value: str) -> str:
    """One URL path segment; the default vhost "/" becomes %2F."""
    return quote(value, safe="")


# --- provisioning --------------------------------------------------------------------------


class BrokerUsers:
    """The subscribers' broker users on one vhost, under one queue prefix."""

    def __init__(self, target: ManagementTarget, *, prefix: str, timeout: float = 10.0) -> None:
        self._target = target
        self._prefix = prefix
        self._timeout = timeout
        self._ours = naming.subscriber_user("", prefix)  # "<prefix>.sub.": names we may delete
        # sync must never see a user mid-rotation (deleted) and re-create it without password.
        self._lock = asyncio.Lock()

    def username(self, subscriber_id: str) -> str:
        return naming.subscriber_user(subscriber_id, self._prefix)

    def queue(self, subscriber_id: str) -> str:
        return naming.subscriber_queue(subscriber_id, self._prefix)

    async def sync(self, subscriber_ids: Sequence[str]) -> SyncReport:
        """Make the managed users exactly one per subscriber, each with its permissions."""
        wanted = {self.username(s): self.queue(s) for s in subscriber_ids}
        created: list[str] = []
        conflicts: list[str] = []
        async with self._lock, self._api() as api:
            existing = {u["name"]: u for u in await api.users()}
            for name, queue in wanted.items():
                user = existing.get(name)
                if user is not None and MANAGED_TAG not in _tags(user):
                    log.error("broker.user_conflict user=%s (exists, not managed by the hub)", name)
                    conflicts.append(name)
                    continue
                if await _ensure_user(api, name, user):
                    created.append(name)
                await _restrict(api, name, queue)
            removed = [n for n, u in existing.items() if n not in wanted and self._owns(u)]
            for name in removed:
                await api.delete_user(name)  # also closes its connections
        return SyncReport(
            created=tuple(created), removed=tuple(removed), conflicts=tuple(conflicts)
        )

    async def issue(self, subscriber_id: str) -> Credentials:
        """New credentials for the subscriber (creating its user if needed); the old password
        stops working and its open connections are closed. UserConflict if the name is
        taken by a user the hub does not manage."""
        name, queue = self.username(subscriber_id), self.queue(subscriber_id)
        password = new_password()
        async with self._lock, self._api() as api:
            user = await api.user(name)
            if user is not None and MANAGED_TAG not in _tags(user):
                raise UserConflict(f"broker user {name!r} exists and is not managed by the hub")
            if user is not None:
                await api.delete_user(name)  # deleting, unlike a password change, ends sessions
            await api.put_user(name, {"password": password, "tags": MANAGED_TAG})
            await _restrict(api, name, queue)
        log.info("broker.credentials_issued user=%s", name)
        return Credentials(username=name, password=password, queue=queue)

    def _owns(self, user: Mapping[str, Any]) -> bool:
        return MANAGED_TAG in _tags(user) and str(user["name"]).startswith(self._ours)

    def _api(self) -> AbstractAsyncContextManager[_Api]:
        return management_api(self._target, self._timeout)


@asynccontextmanager
async def management_api(target: ManagementTarget, timeout_seconds: float) -> AsyncIterator[_Api]:
    """A client for the management API calls the hub makes (users, queue levels)."""
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=target.cafile) if target.cafile else True
    )
    async with httpx.AsyncClient(
        base_url=f"{target.base_url}/api/",
        auth=(target.username, target.password),
        timeout=timeout_seconds,
        verify=verify,
    ) as client:
        yield _Api(client, target.vhost)


async def _ensure_user(api: _Api, name: str, user: Mapping[str, Any] | None) -> bool:
    """Create the user without a password if missing (True), else reset its tags only.

    A PUT without password or hash would clear an issued password: the known hash is sent
    back instead.
    """
    if user is None:
        await api.put_user(name, {"password_hash": "", "tags": MANAGED_TAG})
        return True
    if _tags(user) != [MANAGED_TAG]:  # e.g. someone added `management`: take it away
        await api.put_user(
            name,
            {
                "password_hash": user["password_hash"],
                "hashing_algorithm": user["hashing_algorithm"],
                "tags": MANAGED_TAG,
            },
        )
    return False


async def _restrict(api: _Api, name: str, queue: str) -> None:
    """Its own queue's read permission on our vhost; nothing on any other vhost."""
    await api.set_permissions(name, subscriber_permissions(queue))
    for vhost in await api.other_vhosts(name):
        await api.clear_permissions(vhost, name)
