"""Named admin identities and roles on a whole running hub: every admin route declares the
roles it admits, each role is refused (403 problem+json) exactly where it lacks one, tokens
that are missing, unknown, rotated away or revoked are 401, and the audit actor is the
authenticated name (a header adds a note, never an identity)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.api.admin_auth import mint_token
from hub.api.app import create_app
from hub.core.admins import BOOTSTRAP, Role
from hub.core.records import Actor
from hub.pipeline import admin_users
from tests.e2e.conftest import ADMIN, RunningHub, hub_running

PROBLEM = "application/problem+json"
ALL = frozenset(Role)
OPS = frozenset({Role.OPERATOR, Role.ADMIN})
DPO = frozenset({Role.DPO, Role.ADMIN})
OPS_DPO = frozenset({Role.OPERATOR, Role.DPO, Role.ADMIN})
ADMIN_ONLY = frozenset({Role.ADMIN})
# The README's table ("Admin identities and roles"): a route added without a declaration,
# or with roles other than these, fails here.
EXPECTED: dict[tuple[str, str], frozenset[Role]] = {
    ("GET", "/admin/stats"): ALL,
    ("GET", "/admin/subscribers"): ALL,
    ("GET", "/admin/alerts"): ALL,
    ("GET", "/admin/agreements"): OPS_DPO,
    ("GET", "/admin/agreements/{agreement_id}"): OPS_DPO,
    ("GET", "/admin/agreements/{agreement_id}/diff"): OPS_DPO,
    ("POST", "/admin/agreements/{agreement_id}/preview"): OPS_DPO,
    ("POST", "/admin/agreements/{agreement_id}/lifecycle"): OPS_DPO,
    ("POST", "/admin/agreements/{agreement_id}/held"): OPS,
    ("GET", "/admin/held"): OPS,
    ("GET", "/admin/outbox/parked"): OPS,
    ("POST", "/admin/outbox/redrive"): OPS,
    ("POST", "/admin/subscribers/{subscriber_id}/dead-letters/redrive"): OPS,
    ("POST", "/admin/disclosures/acknowledge"): OPS_DPO,
    ("POST", "/admin/agreements"): DPO,
    ("POST", "/admin/agreements/{agreement_id}/approvals"): DPO,
    ("PUT", "/admin/agreements/{agreement_id}/schools/{laestab}/pupils"): DPO,
    ("PUT", "/admin/subscribers/{subscriber_id}/cohorts/{cohort}"): DPO,
    ("GET", "/admin/suppressions"): DPO,
    ("POST", "/admin/suppressions"): DPO,
    ("POST", "/admin/suppressions/{suppression_id}/lift"): DPO,
    ("GET", "/admin/disclosures"): DPO,
    ("POST", "/admin/disclosures/search"): DPO,
    ("POST", "/admin/subscribers/{subscriber_id}/credentials"): ADMIN_ONLY,
    ("POST", "/admin/subscribers/{subscriber_id}/webhook-secret"): ADMIN_ONLY,
    ("GET", "/admin/subscribers/{subscriber_id}/webhook-attempts"): OPS,
    ("GET", "/admin/subscribers/{subscriber_id}/exports"): OPS,
    ("GET", "/admin/exports/{export_id}"): OPS,
    ("POST", "/admin/subscribers/{subscriber_id}/feed-key"): ADMIN_ONLY,
    ("GET", "/admin/users"): ADMIN_ONLY,
    ("POST", "/admin/users"): ADMIN_ONLY,
    ("POST", "/admin/users/rotate"): ADMIN_ONLY,
    ("POST", "/admin/users/revoke"): ADMIN_ONLY,
}


@dataclass(frozen=True)
class Users:
    """One named user per role, and their tokens."""

    tokens: dict[Role, str]

    def headers(self, role: Role, **extra: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}", **extra}


async def add_user(running: RunningHub, name: str, role: Role) -> str:
    token = mint_token()
    async with running.hub.store.transaction() as tx:
        await admin_users.add_user(
            tx,
            name,
            role,
            key_id=token.key_id,
            secret_hash=token.secret_hash,
            actor=Actor("test"),
            now=running.clock(),
        )
    return token.token


@pytest.fixture
async def users(running: RunningHub) -> Users:
    return Users({role: await add_user(running, f"{role.value}-user", role) for role in Role})


def admin_routes(running: RunningHub) -> list[tuple[str, str]]:
    """(method, path) of every admin route of the app as built for serving, whoever added
    it: read from its OpenAPI document, the public list of its routes."""
    paths = create_app(running.hub).openapi()["paths"]
    return sorted(
        (method.upper(), path)
        for path, operations in paths.items()
        if path.startswith("/admin")
        for method in operations
    )


def concrete(path: str) -> str:
    """The route's path with made-up ids: nothing real is touched, and no body is sent,
    so an admitted role gets a 404 or 422 (or a read), never a change."""
    return re.sub(r"\{[^}]+\}", "no-such-id", path)


async def test_every_admin_route_is_in_the_table(running: RunningHub) -> None:
    assert admin_routes(running) == sorted(EXPECTED)


async def test_every_route_refuses_every_role_it_does_not_admit(
    running: RunningHub, users: Users
) -> None:
    """A route without a requires(...) fails here: it answers without a token, or admits
    a role the table does not give it."""
    walked = 0
    for method, path in admin_routes(running):
        admitted = EXPECTED[(method, path)]
        where = f"{method} {path}"
        anonymous = await running.client.request(method, concrete(path))
        assert anonymous.status_code == 401, f"{where} without a token: {anonymous.text}"
        for role in Role:
            response = await running.client.request(
                method, concrete(path), headers=users.headers(role)
            )
            seen = f"{where} as {role}: {response.status_code} {response.text}"
            if role in admitted:
                assert response.status_code not in (401, 403), seen
                assert response.status_code < 500, seen
            else:
                assert response.status_code == 403, seen
                assert response.headers["content-type"].startswith(PROBLEM), seen
                assert response.json()["required_roles"] == sorted(admitted), seen
            walked += 1
        bootstrap = await running.client.request(method, concrete(path), headers=ADMIN)
        assert bootstrap.status_code not in (401, 403), f"{where}: {bootstrap.text}"
    assert walked == len(EXPECTED) * len(Role)


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "Bearer ",
        "Basic abc",
        "Bearer not-a-token",
        "Bearer 0123456789abcdef.wrong-secret",  # well formed, no such key id
        "Bearer ../etc.passwd",
    ],
    ids=["none", "empty", "basic", "malformed", "unknown-key", "junk-key"],
)
async def test_missing_malformed_and_unknown_tokens_are_401(
    running: RunningHub, users: Users, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    response = await running.client.get("/admin/stats", headers=headers)
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.headers["www-authenticate"].lower().startswith("bearer")


async def test_a_right_key_with_a_wrong_secret_is_401(running: RunningHub, users: Users) -> None:
    key_id = users.tokens[Role.VIEWER].split(".")[0]
    wrong = {"Authorization": f"Bearer {key_id}.{'x' * 43}"}
    assert (await running.client.get("/admin/stats", headers=wrong)).status_code == 401
    good = users.headers(Role.VIEWER)
    assert (await running.client.get("/admin/stats", headers=good)).status_code == 200


async def test_rotation_refuses_the_old_token_and_revocation_refuses_all(
    running: RunningHub, users: Users
) -> None:
    old = users.headers(Role.OPERATOR)
    assert (await running.client.get("/admin/held", headers=old)).status_code == 200
    new = mint_token()
    async with running.hub.store.transaction() as tx:
        assert await admin_users.rotate(
            tx,
            "operator-user",
            key_id=new.key_id,
            secret_hash=new.secret_hash,
            actor=Actor("test"),
            now=running.clock(),
        )
    fresh = {"Authorization": f"Bearer {new.token}"}
    assert (await running.client.get("/admin/held", headers=old)).status_code == 401
    assert (await running.client.get("/admin/held", headers=fresh)).status_code == 200
    async with running.hub.store.transaction() as tx:
        assert await admin_users.revoke(
            tx, "operator-user", actor=Actor("test"), now=running.clock()
        )
    revoked = await running.client.get("/admin/held", headers=fresh)
    assert revoked.status_code == 401, revoked.text
    assert revoked.headers["content-type"].startswith(PROBLEM)


async def test_the_audit_actor_is_who_authenticated_and_a_note_is_only_a_note(
    running: RunningHub, users: Users
) -> None:
    headers = users.headers(
        Role.OPERATOR, **{"X-Hub-Actor": "someone-else", "X-Hub-Note": "ticket 4711\nre-drive"}
    )
    response = await running.client.post("/admin/outbox/redrive", json={}, headers=headers)
    assert response.status_code == 200, response.text
    async with running.hub.store.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT actor, note FROM audit WHERE action = 'outbox.redrive'")
        )
        assert [tuple(r) for r in rows.all()] == [("operator-user", "ticket 4711 re-drive")]
    await running.client.post("/admin/outbox/redrive", json={}, headers=ADMIN)
    async with running.hub.store.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT actor FROM audit WHERE action = 'outbox.redrive' ORDER BY id")
        )
        assert rows.scalars().all() == ["operator-user", BOOTSTRAP]


@pytest.mark.parametrize("token", ["", " " * 40, "short-but-not-empty"])
async def test_an_empty_or_short_bootstrap_token_never_opens_the_api(
    database_url: str, tmp_path: Path, token: str
) -> None:
    """Serving refuses such a token outright (test_admin_cli); an app built in-process
    refuses to match it too."""
    async with hub_running(database_url, tmp_path, admin_token=token) as running:
        for presented in (token, token.strip(), "short-but-not-empty"):
            response = await running.client.get(
                "/admin/stats", headers={"Authorization": f"Bearer {presented}"}
            )
            assert response.status_code == 401, (presented, response.text)


async def test_named_users_work_while_the_bootstrap_token_is_also_set(
    running: RunningHub, users: Users
) -> None:
    assert (await running.client.get("/admin/stats", headers=ADMIN)).status_code == 200
    viewer = await running.client.get("/admin/stats", headers=users.headers(Role.VIEWER))
    assert viewer.status_code == 200


async def test_the_admin_role_manages_users_over_the_api(running: RunningHub) -> None:
    async def status(token: str, path: str) -> int:
        headers = {"Authorization": f"Bearer {token}"}
        return (await running.client.get(path, headers=headers)).status_code

    added = await running.admin("POST", "/admin/users", json={"name": "Sam.X", "role": "dpo"})
    assert added.status_code == 201, added.text
    assert added.headers["cache-control"] == "no-store"
    assert added.json()["name"] == "sam.x"
    first = added.json()["token"]
    assert (await status(first, "/admin/suppressions"), await status(first, "/admin/held")) == (
        200,
        403,
    )
    for body, code in (
        ({"name": "sam.x", "role": "admin"}, 409),
        ({"name": BOOTSTRAP, "role": "admin"}, 422),
    ):
        refused = await running.admin("POST", "/admin/users", json=body)
        assert refused.status_code == code, refused.text
        assert refused.headers["content-type"].startswith(PROBLEM)
        assert "token" not in refused.json()

    listed = (await running.admin("GET", "/admin/users")).json()
    assert [(u["name"], u["role"], u["revoked_at"]) for u in listed] == [("sam.x", "dpo", None)]
    assert set(listed[0]) == {"name", "role", "created_at", "rotated_at", "revoked_at"}

    rotated = await running.admin("POST", "/admin/users/rotate", json={"name": "SAM.X"})
    assert rotated.status_code == 200, rotated.text
    second = rotated.json()["token"]
    assert (await status(first, "/admin/disclosures"), second != first) == (401, True)
    assert await status(second, "/admin/suppressions") == 200

    revoked = await running.admin("POST", "/admin/users/revoke", json={"name": "sam.x"})
    assert revoked.status_code == 200, revoked.text
    assert await status(second, "/admin/suppressions") == 401
    again = await running.admin("POST", "/admin/users/revoke", json={"name": "sam.x"})
    assert again.status_code == 404
    async with running.hub.store.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT actor, action FROM audit WHERE subject = 'sam.x' ORDER BY id")
        )
        assert [tuple(r) for r in rows.all()] == [
            (BOOTSTRAP, "admin_user.added"),
            (BOOTSTRAP, "admin_user.rotated"),
            (BOOTSTRAP, "admin_user.revoked"),
        ]
