"""The rules behind admin identities that need no hub: which admin tokens and addresses
`hub serve` accepts, and which names an admin user may have."""

from __future__ import annotations

import pytest

from hub.core.admins import RESERVED_NAMES, InvalidAdminName, admin_name
from hub.settings import (
    DEV_ADMIN_TOKEN,
    MIN_ADMIN_TOKEN_CHARS,
    Settings,
    UnsafeToServe,
    check_secret_key,
    check_serving,
)

GOOD = "k" * MIN_ADMIN_TOKEN_CHARS


def settings(**values: object) -> Settings:
    return Settings(**values)  # type: ignore[arg-type]


@pytest.mark.parametrize("host", ["127.0.0.1", "127.10.0.1", "::1", "localhost"])
def test_the_development_token_serves_on_loopback_only(host: str) -> None:
    check_serving(settings(host=host))


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.0.2.10", "hub.county.example", ""])
def test_the_development_token_is_refused_anywhere_else(host: str) -> None:
    with pytest.raises(UnsafeToServe, match="not a loopback address"):
        check_serving(settings(host=host))
    check_serving(settings(host=host, admin_token=GOOD))  # a real token may


@pytest.mark.parametrize("env", ["development", "production"])
@pytest.mark.parametrize("token", ["", " " * 50, "x" * (MIN_ADMIN_TOKEN_CHARS - 1)])
def test_an_empty_or_short_token_is_refused_in_every_environment(env: str, token: str) -> None:
    with pytest.raises(UnsafeToServe, match=f"shorter than {MIN_ADMIN_TOKEN_CHARS}"):
        check_serving(settings(env=env, admin_token=token))


def test_production_needs_its_own_token_of_at_least_the_bound() -> None:
    with pytest.raises(UnsafeToServe, match="must be set in production"):
        check_serving(settings(env="production"))
    with pytest.raises(UnsafeToServe, match="must be set in production"):
        check_serving(settings(env="production", admin_token=DEV_ADMIN_TOKEN))
    check_serving(settings(env="production", admin_token=GOOD, host="0.0.0.0"))
    assert len(DEV_ADMIN_TOKEN) >= MIN_ADMIN_TOKEN_CHARS  # development starts as it did


def test_a_production_hub_with_webhooks_needs_its_own_secret_key() -> None:
    production = settings(env="production", admin_token=GOOD)
    with pytest.raises(UnsafeToServe, match="HUB_SECRET_KEY must be set"):
        check_secret_key(production, webhooks=True)
    check_secret_key(production, webhooks=False)  # nothing to seal
    check_secret_key(
        settings(env="production", admin_token=GOOD, secret_key="k" * 40), webhooks=True
    )


@pytest.mark.parametrize(
    ("given", "stored"),
    [("jo.bloggs", "jo.bloggs"), ("  Jo.Bloggs@County.Example ", "jo.bloggs@county.example")],
)
def test_admin_names_are_stored_in_lower_case(given: str, stored: str) -> None:
    assert admin_name(given) == stored


@pytest.mark.parametrize(
    "name", ["", "-jo", "jo bloggs", "jo/../x", "jo:admin", "x" * 65, *sorted(RESERVED_NAMES)]
)
def test_names_the_audit_trail_could_confuse_are_refused(name: str) -> None:
    with pytest.raises(InvalidAdminName):
        admin_name(name)
