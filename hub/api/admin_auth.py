"""Who is calling the admin API, and whether their role lets them.

Named admin users present their own API token, "<key id>.<secret>": the key id finds the
user (one indexed row), the secret is argon2-verified against its hash (hub.api.auth). The
HUB_ADMIN_TOKEN, when set, is the bootstrap identity, "bootstrap", with the admin role.

`authenticate_admin` is the one dependency that turns a request into an identity: an OIDC
bearer-JWT verifier would plug in there (README, "Admin identities and roles"). Every admin
route declares the roles it needs with `requires(...)`; the audit actor is the identity's
name, and X-Hub-Note adds free text to the audit row, never an identity.
"""

from __future__ import annotations

import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Header, Request

from hub.api.auth import AgentAuthenticator, Throttled, hash_secret
from hub.api.deps import AuthenticatorDep, HubDep, client_of, too_many_failures
from hub.api.problems import Problem
from hub.composition import Hub
from hub.core.admins import BOOTSTRAP, Role, may
from hub.core.ports import StoreUnavailable
from hub.core.records import Actor, AdminUserRecord
from hub.settings import MIN_ADMIN_TOKEN_CHARS

KEY_ID_BYTES = 8  # 16 hex characters: finds the row, is no secret
SECRET_BYTES = 32  # 256 random bits
_KEY_ID = re.compile(rf"[0-9a-f]{{{2 * KEY_ID_BYTES}}}")
NOTE_MAX = 200
_CHALLENGE = {"WWW-Authenticate": "Bearer"}


@dataclass(frozen=True)
class AdminIdentity:
    name: str
    role: Role


@dataclass(frozen=True)
class IssuedToken:
    key_id: str
    secret_hash: str
    token: str  # "<key id>.<secret>": shown once, never stored


def mint_token() -> IssuedToken:
    key_id = secrets.token_hex(KEY_ID_BYTES)
    secret = secrets.token_urlsafe(SECRET_BYTES)
    return IssuedToken(key_id, hash_secret(secret), f"{key_id}.{secret}")


async def authenticate_admin(
    request: Request,
    hub: HubDep,
    authenticator: AuthenticatorDep,
    authorization: Annotated[str | None, Header()] = None,
) -> AdminIdentity:
    scheme, _, token = (authorization or "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        raise _unauthorized("Admin bearer token required")
    if _is_bootstrap(hub.settings.admin_token, token):
        return AdminIdentity(BOOTSTRAP, Role.ADMIN)
    try:
        user = await _user(hub, authenticator, token, client_of(request))
    except Throttled as exc:
        raise too_many_failures(exc) from None
    if user is None:
        raise _unauthorized("Unknown, revoked or malformed admin token")
    return AdminIdentity(user.name, Role(user.role))


def _is_bootstrap(expected: str, presented: str) -> bool:
    # Serving refuses a short token (hub.settings.check_serving); this refuses it again for
    # an app built in-process, so an empty HUB_ADMIN_TOKEN can never open the API.
    long_enough = len(expected.strip()) >= MIN_ADMIN_TOKEN_CHARS
    return long_enough and hmac.compare_digest(expected.encode(), presented.encode())


async def _user(
    hub: Hub, authenticator: AgentAuthenticator, token: str, client: str
) -> AdminUserRecord | None:
    key_id, dot, secret = token.partition(".")
    if not (dot and secret and _KEY_ID.fullmatch(key_id)):
        return None  # no database read, no argon2 run, for what cannot be a token
    try:
        async with hub.store.transaction() as tx:
            user = await tx.admin_users.by_key(key_id)
    except StoreUnavailable:
        raise Problem(
            503, "Database unavailable", "Admin users are looked up in the database"
        ) from None
    keys = [f"client:{client}", f"admin:{key_id}"]
    if user is None or user.revoked_at is not None:
        authenticator.charge(keys)
        return None
    # argon2 is slow and CPU-bound: the same bounded, throttled path as agents' checks.
    verified = await authenticator.check(user.secret_hash, secret, keys)
    return user if verified else None


def _unauthorized(detail: str) -> Problem:
    return Problem(401, "Unauthorized", detail, _CHALLENGE)


def requires(*roles: Role) -> Any:
    """The dependency an admin route declares: the identity must hold one of `roles` (the
    admin role always may) or gets 403; it yields the Actor for the audit trail."""
    allowed = frozenset({*roles, Role.ADMIN})
    needed = " or ".join(sorted(allowed))

    async def check(
        identity: Annotated[AdminIdentity, Depends(authenticate_admin)],
        x_hub_note: Annotated[str | None, Header()] = None,
    ) -> Actor:
        if not may(identity.role, *allowed):
            raise Problem(
                403,
                "Forbidden",
                f"The {identity.role} role may not do this; it needs {needed}",
                required_roles=sorted(allowed),
            )
        return Actor(identity.name, audit_note(x_hub_note))

    return Depends(check)


def audit_note(header: str | None) -> str | None:
    """Free text for the audit row: printable, one line, capped."""
    text = "".join(c if c.isprintable() else " " for c in (header or "")).strip()
    return text[:NOTE_MAX] or None


ANY_ROLE = tuple(Role)
# The Actor each kind of route needs, as Annotated aliases so signatures read as sentences.
AnyRoleDep = Annotated[Actor, requires(*ANY_ROLE)]
OperatorDep = Annotated[Actor, requires(Role.OPERATOR)]
DpoDep = Annotated[Actor, requires(Role.DPO)]
OperatorOrDpoDep = Annotated[Actor, requires(Role.OPERATOR, Role.DPO)]
AdminRoleDep = Annotated[Actor, requires(Role.ADMIN)]
