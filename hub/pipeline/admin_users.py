"""Named admin users: added, rotated, revoked and listed, each change audited. Tokens are
minted and hashed by the caller (hub.api.admin_auth); only their hashes come here."""

from __future__ import annotations

from datetime import datetime

from hub.core.admins import Role, admin_name
from hub.core.ports import Tx
from hub.core.records import Actor, AdminUserRecord, audited


async def add_user(
    tx: Tx, name: str, role: Role, *, key_id: str, secret_hash: str, actor: Actor, now: datetime
) -> AdminUserRecord:
    """Raises InvalidAdminName, or AlreadyExists when the name is taken (revoked included:
    a name always means one person in the audit trail)."""
    record = AdminUserRecord(
        name=admin_name(name),
        role=role.value,
        key_id=key_id,
        secret_hash=secret_hash,
        created_at=now,
    )
    await tx.admin_users.add(record)
    await tx.audit.add(audited(actor, now, "admin_user.added", record.name, {"role": record.role}))
    return record


async def rotate(
    tx: Tx, name: str, *, key_id: str, secret_hash: str, actor: Actor, now: datetime
) -> bool:
    """False when there is no active user by that name."""
    name = admin_name(name)
    rotated = await tx.admin_users.rotate(name, key_id, secret_hash, now)
    if rotated:
        await tx.audit.add(audited(actor, now, "admin_user.rotated", name))
    return rotated


async def revoke(tx: Tx, name: str, *, actor: Actor, now: datetime) -> bool:
    """False when there is no active user by that name."""
    name = admin_name(name)
    revoked = await tx.admin_users.revoke(name, now)
    if revoked:
        await tx.audit.add(audited(actor, now, "admin_user.revoked", name))
    return revoked
