"""Admin API for named admin users (the admin role only): what `hub admin` does, for
automation holding the bootstrap token. A token is answered once (no-store) and kept only
as an argon2 hash; an invalid name is a 422 (hub.api.problems). Names travel in bodies,
never in URLs: they are people's names."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from hub.api.admin_auth import AdminRoleDep, IssuedToken, mint_token
from hub.api.deps import HubDep
from hub.api.problems import Problem
from hub.core.admins import Role, admin_name
from hub.core.ports import AlreadyExists
from hub.pipeline import admin_users

router = APIRouter(prefix="/admin/users")


class AdminUser(BaseModel):
    name: str
    role: Role
    created_at: datetime
    rotated_at: datetime | None
    revoked_at: datetime | None


class NewUser(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    role: Role


class Named(BaseModel):
    name: str = Field(min_length=1, max_length=64)


class Revoked(BaseModel):
    revoked: bool


class UserToken(BaseModel):
    name: str
    token: str = Field(description="Shown once: the hub keeps only its hash")


@router.get("", response_model=list[AdminUser])
async def list_users(hub: HubDep, _: AdminRoleDep) -> list[AdminUser]:
    """Every user, revoked ones too, by name (never a token or its hash)."""
    async with hub.store.transaction() as tx:
        users = await tx.admin_users.all()
    return [
        AdminUser(
            name=u.name,
            role=Role(u.role),
            created_at=u.created_at,
            rotated_at=u.rotated_at,
            revoked_at=u.revoked_at,
        )
        for u in users
    ]


@router.post("", status_code=201, response_model=UserToken)
async def add_user(
    body: NewUser, hub: HubDep, actor: AdminRoleDep, response: Response
) -> UserToken:
    """A named user with a role; the token is shown once, in this answer."""
    token = await _mint()
    try:
        async with hub.store.transaction() as tx:
            user = await admin_users.add_user(
                tx,
                body.name,
                body.role,
                key_id=token.key_id,
                secret_hash=token.secret_hash,
                actor=actor,
                now=hub.clock(),
            )
    except AlreadyExists:
        raise Problem(409, "Admin user exists", "Names are never reused") from None
    return _once(response, user.name, token)


@router.post("/rotate", response_model=UserToken)
async def rotate(body: Named, hub: HubDep, actor: AdminRoleDep, response: Response) -> UserToken:
    """A new token for the user; the old one is refused from now on."""
    token = await _mint()
    async with hub.store.transaction() as tx:
        rotated = await admin_users.rotate(
            tx,
            body.name,
            key_id=token.key_id,
            secret_hash=token.secret_hash,
            actor=actor,
            now=hub.clock(),
        )
    if not rotated:
        raise _no_active_user()
    return _once(response, admin_name(body.name), token)


@router.post("/revoke", response_model=Revoked)
async def revoke(body: Named, hub: HubDep, actor: AdminRoleDep) -> Revoked:
    """Refuse the user's token for good; the name is not reused."""
    async with hub.store.transaction() as tx:
        revoked = await admin_users.revoke(tx, body.name, actor=actor, now=hub.clock())
    if not revoked:
        raise _no_active_user()
    return Revoked(revoked=True)


async def _mint() -> IssuedToken:
    return await run_in_threadpool(mint_token)  # argon2 hashing: off the event loop


def _once(response: Response, name: str, token: IssuedToken) -> UserToken:
    response.headers["Cache-Control"] = "no-store"
    return UserToken(name=name, token=token.token)


def _no_active_user() -> Problem:
    return Problem(404, "No active admin user", "Unknown or revoked")
