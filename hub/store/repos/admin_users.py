"""Named admin users and their hashed API tokens (implements hub.core.ports.AdminUsers)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime

from sqlalchemy import ColumnElement, select, update

from hub.core.records import AdminUserRecord
from hub.store.errors import AlreadyExists
from hub.store.models import admin_users
from hub.store.repos.base import SqlRepo, from_row


class SqlAdminUsers(SqlRepo):
    async def add(self, record: AdminUserRecord) -> None:
        # No conflict target: a taken name or (astronomically unlikely) key id both refuse,
        # and ON CONFLICT keeps the transaction usable afterwards.
        statement = self._insert(admin_users).values(asdict(record)).on_conflict_do_nothing()
        if (await self._execute(statement)).rowcount == 0:
            raise AlreadyExists(f"admin user {record.name} exists")

    async def by_key(self, key_id: str) -> AdminUserRecord | None:
        return await self._one(admin_users.c.key_id == key_id)

    async def get(self, name: str) -> AdminUserRecord | None:
        return await self._one(admin_users.c.name == name)

    async def all(self) -> list[AdminUserRecord]:
        query = select(admin_users).order_by(admin_users.c.name)
        return [from_row(AdminUserRecord, row) for row in (await self._execute(query)).all()]

    async def rotate(self, name: str, key_id: str, secret_hash: str, at: datetime) -> bool:
        statement = (
            update(admin_users)
            .where(admin_users.c.name == name, admin_users.c.revoked_at.is_(None))
            .values(key_id=key_id, secret_hash=secret_hash, rotated_at=at)
        )
        return (await self._execute(statement)).rowcount == 1

    async def revoke(self, name: str, at: datetime) -> bool:
        statement = (
            update(admin_users)
            .where(admin_users.c.name == name, admin_users.c.revoked_at.is_(None))
            .values(revoked_at=at)
        )
        return (await self._execute(statement)).rowcount == 1

    async def _one(self, where: ColumnElement[bool]) -> AdminUserRecord | None:
        row = (await self._execute(select(admin_users).where(where))).first()
        return None if row is None else from_row(AdminUserRecord, row)
