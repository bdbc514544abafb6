"""`hub admin ...` and `hub serve`'s admin-token checks, run as the real command: users made
on the command line open a running hub's admin API (same database) until rotated or
revoked; unsafe admin tokens stop `hub serve` with one line and no traceback."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import text

from hub.settings import MIN_ADMIN_TOKEN_CHARS
from tests.e2e.conftest import COUNTY, REPO, hub_running

TOKEN = re.compile(r"[0-9a-f]{16}\.[A-Za-z0-9_-]{43}")
UNSET = ("HUB_ADMIN_TOKEN", "HUB_ENV", "HUB_HOST", "HUB_PORT", "HUB_DATABASE_URL")


def hub_env(**env: str) -> dict[str, str]:
    kept = {k: v for k, v in os.environ.items() if k not in UNSET}
    return {**kept, "HUB_LOG_LEVEL": "WARNING", **env}


def run_hub(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "hub", *args],
        env=hub_env(**env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


async def cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_hub, "admin", *args, HUB_DATABASE_URL=database_url)


async def test_cli_users_open_the_api_until_rotated_or_revoked(
    database_url: str, tmp_path: Path
) -> None:
    async with hub_running(database_url, tmp_path) as running:

        async def status(token: str, path: str = "/admin/stats") -> int:
            headers = {"Authorization": f"Bearer {token}"}
            return (await running.client.get(path, headers=headers)).status_code

        added = await cli(database_url, "add-user", "Jo.Bloggs", "--role", "viewer")
        assert added.returncode == 0, added.stderr
        first = added.stdout.strip()
        assert TOKEN.fullmatch(first), added.stdout
        assert "shown this once" in added.stderr
        assert (await status(first), await status(first, "/admin/held")) == (200, 403)

        again = await cli(database_url, "add-user", "jo.bloggs", "--role", "admin")
        assert (again.returncode, again.stdout) == (1, "")
        for bad in ("bootstrap", "not a name!"):
            refused = await cli(database_url, "add-user", bad, "--role", "admin")
            assert (refused.returncode, refused.stdout) == (2, ""), refused.stderr
            assert "Traceback" not in refused.stderr

        listed = await cli(database_url, "list")
        assert listed.returncode == 0
        assert re.search(r"^jo\.bloggs\tviewer\t\S+\t-\t-$", listed.stdout, re.M), listed.stdout

        rotated = await cli(database_url, "rotate", "jo.bloggs")
        assert rotated.returncode == 0, rotated.stderr
        second = rotated.stdout.strip()
        assert TOKEN.fullmatch(second) and second != first
        assert (await status(first), await status(second)) == (401, 200)

        revoked = await cli(database_url, "revoke", "jo.bloggs", "--note", "left the LA")
        assert revoked.returncode == 0, revoked.stderr
        assert await status(second) == 401
        assert (await cli(database_url, "rotate", "jo.bloggs")).returncode == 1
        assert (await cli(database_url, "revoke", "jo.bloggs")).returncode == 1
        listed = await cli(database_url, "list")
        assert re.search(r"^jo\.bloggs\tviewer\t\S+\t\S+\t\S+$", listed.stdout, re.M)
        assert "\t-\t-" not in listed.stdout

        async with running.hub.store.engine.connect() as conn:
            audit = (
                await conn.execute(
                    text(
                        "SELECT actor, action, subject, note FROM audit "
                        "WHERE action LIKE 'admin_user.%' ORDER BY id"
                    )
                )
            ).all()
            stored = str((await conn.execute(text("SELECT * FROM admin_users"))).all())
    assert [tuple(r) for r in audit] == [
        ("cli", "admin_user.added", "jo.bloggs", None),
        ("cli", "admin_user.rotated", "jo.bloggs", None),
        ("cli", "admin_user.revoked", "jo.bloggs", "left the LA"),
    ]
    for token in (first, second):  # the key id is stored; the secret only as a hash
        assert token.split(".")[1] not in stored and token.split(".")[1] not in str(audit)


# Each case is a real process start; tests/unit/test_admin_identity_rules.py has the rest
# (blank tokens, every loopback form, HUB_HOST).
@pytest.mark.parametrize(
    ("env", "args", "says"),
    [
        ({"HUB_ADMIN_TOKEN": ""}, (), "empty or shorter than 32"),
        ({"HUB_ADMIN_TOKEN": "x" * (MIN_ADMIN_TOKEN_CHARS - 1)}, (), "shorter than 32"),
        ({}, ("--host", "192.0.2.10"), "development admin token is refused"),
        ({"HUB_ENV": "production"}, (), "HUB_ADMIN_TOKEN must be set in production"),
    ],
    ids=["empty", "31-chars", "dev-token-on-lan", "production-unset"],
)
def test_serve_refuses_unsafe_admin_tokens_in_one_line(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...], says: str
) -> None:
    done = run_hub(
        "serve", "--config", str(COUNTY), *args, HUB_DATA_DIR=str(tmp_path), HUB_PORT="1", **env
    )
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("hub: "), done.stderr
    assert says in lines[0]
    assert "Traceback" not in done.stderr and done.stdout == ""
    assert not (tmp_path / "hub.db").exists()  # refused before touching anything
