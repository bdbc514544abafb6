"""The console's session: a signed cookie (itsdangerous) naming who logged in, with expiry,
and a CSRF token for every form; the identity is checked again on every request.

The cookie holds the user's name, role, key id (never the secret) and CSRF token, signed
with HUB_SECRET_KEY (a random per-process key when that is the development default in
production, so a forged cookie can never pass). On each request the user row is read by
key id, as the admin API does on each call: a rotated or revoked token ends its console
sessions at once. The bootstrap identity's session carries a keyed fingerprint of
HUB_ADMIN_TOKEN instead, so changing that token ends them too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from typing import Any

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from hub.composition import Hub
from hub.core.admins import BOOTSTRAP, Role
from hub.core.ports import StoreUnavailable
from hub.settings import DEV_SECRET_KEY, MIN_ADMIN_TOKEN_CHARS

COOKIE = "sifhub_console"
LOGIN_COOKIE = "sifhub_console_login"  # the login form's own CSRF token, before a session
PATH = "/console"
_PROCESS_KEY = secrets.token_urlsafe(32)


@dataclass(frozen=True)
class ConsoleUser:
    name: str
    role: Role
    csrf: str


def _serializer(hub: Hub, salt: str) -> URLSafeTimedSerializer:
    key = hub.settings.secret_key
    if key == DEV_SECRET_KEY and hub.settings.env == "production":
        key = _PROCESS_KEY
    return URLSafeTimedSerializer(key, salt=salt)


def _bootstrap_mark(hub: Hub) -> str:
    token = hub.settings.admin_token.encode()
    return hmac.new(hub.settings.secret_key.encode(), token, hashlib.sha256).hexdigest()[:32]


def max_age(hub: Hub) -> int:
    return hub.settings.console_session_minutes * 60


def start(hub: Hub, response: Response, *, name: str, role: Role, token: str, secure: bool) -> None:
    """Set the session cookie for an identity authenticate_admin has just verified."""
    key = _bootstrap_mark(hub) if name == BOOTSTRAP else token.partition(".")[0]
    data = {"n": name, "r": role.value, "k": key, "c": secrets.token_urlsafe(24)}
    value = _serializer(hub, "session").dumps(data)
    _set(response, COOKIE, value, max_age(hub), secure)
    response.delete_cookie(LOGIN_COOKIE, path=PATH)


def end(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH)


def _set(response: Response, name: str, value: str, seconds: int, secure: bool) -> None:
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        path=PATH,
        httponly=True,
        samesite="strict",
        secure=secure,
    )


async def current(hub: Hub, request: Request) -> ConsoleUser | None:
    """The logged-in user, checked against the store now; None when logged out, expired,
    tampered with, rotated or revoked."""
    data = _load(hub, request.cookies.get(COOKIE), "session", max_age(hub))
    if not isinstance(data, dict):
        return None
    name, role, key, csrf = (str(data.get(k, "")) for k in ("n", "r", "k", "c"))
    if name == BOOTSTRAP:
        long_enough = len(hub.settings.admin_token.strip()) >= MIN_ADMIN_TOKEN_CHARS
        valid = long_enough and hmac.compare_digest(key, _bootstrap_mark(hub))
        return ConsoleUser(name, Role.ADMIN, csrf) if valid else None
    try:
        async with hub.store.transaction() as tx:
            user = await tx.admin_users.by_key(key)
    except StoreUnavailable:
        return None
    if user is None or user.revoked_at is not None or user.name != name or not role:
        return None
    return ConsoleUser(user.name, Role(user.role), csrf)


def _load(hub: Hub, value: str | None, salt: str, seconds: int) -> Any:
    if not value:
        return None
    try:
        return _serializer(hub, salt).loads(value, max_age=seconds)
    except BadSignature:  # also SignatureExpired
        return None


def set_login_csrf(hub: Hub, response: Response, token: str, secure: bool) -> None:
    """The login form's CSRF token (double submit: a signed cookie and the form field)."""
    _set(response, LOGIN_COOKIE, _serializer(hub, "login").dumps(token), 600, secure)


def login_csrf_ok(hub: Hub, request: Request, submitted: str) -> bool:
    expected = _load(hub, request.cookies.get(LOGIN_COOKIE), "login", 600)
    return isinstance(expected, str) and hmac.compare_digest(expected, submitted)
