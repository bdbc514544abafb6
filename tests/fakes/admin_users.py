"""In-memory hub.core.ports.AdminUsers."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

from hub.core.ports import AlreadyExists
from hub.core.records import AdminUserRecord
from tests.fakes.state import FakeRepo


class FakeAdminUsers(FakeRepo):
    async def add(self, record: AdminUserRecord) -> None:
        users = self._state.admin_users
        if record.name in users or any(u.key_id == record.key_id for u in users.values()):
            raise AlreadyExists(f"admin user {record.name} exists")
        users[record.name] = record

    async def by_key(self, key_id: str) -> AdminUserRecord | None:
        return next((u for u in self._state.admin_users.values() if u.key_id == key_id), None)

    async def get(self, name: str) -> AdminUserRecord | None:
        return self._state.admin_users.get(name)

    async def all(self) -> list[AdminUserRecord]:
        return [self._state.admin_users[name] for name in sorted(self._state.admin_users)]

    async def rotate(self, name: str, key_id: str, secret_hash: str, at: datetime) -> bool:
        return self._replace(name, key_id=key_id, secret_hash=secret_hash, rotated_at=at)

    async def revoke(self, name: str, at: datetime) -> bool:
        return self._replace(name, revoked_at=at)

    def _replace(self, name: str, **changes: Any) -> bool:
        user = self._state.admin_users.get(name)
        if user is None or user.revoked_at is not None:
            return False
        self._state.admin_users[name] = dataclasses.replace(user, **changes)
        return True
