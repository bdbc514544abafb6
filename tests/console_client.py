"""A console user for tests: its own cookie jar, logged in through the login form."""

from __future__ import annotations

import re

import httpx

CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(page: str) -> str:
    found = CSRF.search(page)
    assert found, "no CSRF token on the page"
    return found.group(1)


async def log_in(client: httpx.AsyncClient, token: str) -> httpx.Response:
    form = await client.get("/console/login")
    assert form.status_code == 200
    return await client.post("/console/login", data={"token": token, "csrf": csrf_of(form.text)})


async def new_user(admin: httpx.AsyncClient, headers: dict[str, str], name: str, role: str) -> str:
    """A named admin user made through the admin API; returns its token."""
    made = await admin.post("/admin/users", json={"name": name, "role": role}, headers=headers)
    assert made.status_code == 201, made.text
    return str(made.json()["token"])
