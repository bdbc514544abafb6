"""Admin roles and user names: what each role may do is declared route by route in
hub.api (`requires(...)`); the admin role may do everything, users included."""

from __future__ import annotations

import re
from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"  # stats and subscribers
    OPERATOR = "operator"  # lifecycle, held copies, replay and re-drive
    DPO = "dpo"  # disclosures and subject access, suppressions, approvals, pupil lists
    ADMIN = "admin"  # everything, plus users


def may(role: Role, *allowed: Role) -> bool:
    """The one role rule: a role may do what names it, and the admin role may do everything."""
    return role is Role.ADMIN or role in allowed


# Who may see learner identifiers and raw payloads in the ops console (search by UPN or
# RefId, the payload on a journey page): not the viewer, who sees counts and statuses.
PERSONAL_DATA_ROLES = (Role.OPERATOR, Role.DPO)

# The identity HUB_ADMIN_TOKEN authenticates as (role admin).
BOOTSTRAP = "bootstrap"
# Names the hub itself writes as audit actors: no user may take them.
RESERVED_NAMES = frozenset({BOOTSTRAP, "config", "cli", "hub"})
_NAME = re.compile(r"[a-z0-9][a-z0-9._@-]{0,63}")


class InvalidAdminName(ValueError):
    pass


def admin_name(name: str) -> str:
    """The name as stored (lower case), or InvalidAdminName: it appears in audit rows as
    the actor, so it is plain, short and never one the hub uses itself."""
    canonical = name.strip().lower()
    if not _NAME.fullmatch(canonical):
        raise InvalidAdminName(
            "an admin name is 1-64 characters: letters, digits and . _ @ -, "
            "starting with a letter or digit"
        )
    if canonical in RESERVED_NAMES:
        raise InvalidAdminName(f"{canonical!r} is reserved for the hub's own audit entries")
    return canonical
