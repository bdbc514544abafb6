"""The pure parts of broker user provisioning: names, permission patterns, the management
API's address. What RabbitMQ really allows is proven in tests/integration/test_broker_isolation.py.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from hub.amqp.provision import (
    GRANT_NOTHING,
    _tags,
    management_target,
    new_password,
    read_only_queue_pattern,
    subscriber_permissions,
    vhost_of,
)
from hub.core import naming
from hub.settings import Settings

# Characters an AMQP 0-9-1 queue name may hold (what pamqp and the spec allow).
QUEUE_NAME = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:",
    min_size=1,
    max_size=40,
)


def _allows(pattern: str, name: str) -> bool:
    """RabbitMQ checks with re:run, a search (not a full match): anchoring is the pattern's job.
    Python's re treats backslash-punctuation and ^ $ as PCRE does for these names."""
    return re.search(pattern, name) is not None


def test_subscriber_user_is_named_like_its_queue() -> None:
    assert naming.subscriber_user("cme") == "sifhub.sub.cme"
    assert naming.subscriber_user("virtual-school", "county-x") == "county-x.sub.virtual-school"
    assert naming.subscriber_user("a.b", "p") == naming.subscriber_queue("a.b", "p")


def test_read_pattern_escapes_dots_and_anchors_both_ends() -> None:
    pattern = read_only_queue_pattern("sifhub.sub.cme")
    assert pattern == r"^sifhub\.sub\.cme$"
    assert _allows(pattern, "sifhub.sub.cme")
    for other in [
        "sifhub.sub.cme.dlq",  # its own dead letters
        "sifhubXsubXcme",  # an unescaped dot would match any character
        "sifhub.sub.cm",
        "xsifhub.sub.cme",
        "sifhub.sub.cme2",
    ]:
        assert not _allows(pattern, other), other


def test_read_pattern_escapes_every_punctuation_character() -> None:
    pattern = read_only_queue_pattern("a-b_c:d.e")
    assert pattern == r"^a\-b\_c\:d\.e$"
    assert _allows(pattern, "a-b_c:d.e")
    assert not _allows(pattern, "a-b_c:dxe")


@given(QUEUE_NAME, QUEUE_NAME)
def test_read_pattern_allows_exactly_its_queue(queue: str, other: str) -> None:
    pattern = read_only_queue_pattern(queue)
    assert _allows(pattern, queue)
    assert _allows(pattern, other) == (other == queue)
    assert not _allows(pattern, f"{queue}.dlq")
    assert not _allows(pattern, f"x{queue}")


def test_subscriber_may_configure_and_write_nothing() -> None:
    grant = subscriber_permissions("sifhub.sub.cme")
    assert grant.configure == GRANT_NOTHING == grant.write == ""
    assert grant.read == r"^sifhub\.sub\.cme$"


def test_passwords_are_long_random_and_url_safe() -> None:
    passwords = {new_password() for _ in range(50)}
    assert len(passwords) == 50
    assert all(len(p) >= 43 and re.fullmatch(r"[A-Za-z0-9_\-]+", p) for p in passwords)


@pytest.mark.parametrize(
    ("amqp_url", "vhost"),
    [
        ("amqp://guest:guest@127.0.0.1:5672/", "/"),
        ("amqp://guest:guest@127.0.0.1:5672", "/"),
        ("amqp://h/%2F", "/"),
        ("amqp://h/county", "county"),
        ("amqp://h/county%2Fnorth", "county/north"),
    ],
)
def test_vhost_comes_from_the_amqp_url_path(amqp_url: str, vhost: str) -> None:
    assert vhost_of(amqp_url) == vhost


def test_default_management_url_is_the_amqp_host_as_the_amqp_user() -> None:
    target = management_target("amqp://sifhub:s3cret@10.0.0.5:5672/")
    assert target.base_url == "http://10.0.0.5:15672"
    assert (target.username, target.password, target.vhost) == ("sifhub", "s3cret", "/")
    assert target.cafile is None
    assert "s3cret" not in repr(target)


def test_amqps_means_management_over_https_with_the_same_ca() -> None:
    target = management_target("amqps://sifhub:p%40ss@mq.example:5671/county?cafile=/etc/ca.pem")
    assert target.base_url == "https://mq.example:15671"
    assert (target.username, target.password, target.vhost) == ("sifhub", "p@ss", "county")
    assert target.cafile == "/etc/ca.pem"


def test_no_credentials_in_the_amqp_url_means_guest_as_aio_pika_does() -> None:
    target = management_target("amqp://[::1]:5672/")
    assert target.base_url == "http://[::1]:15672"
    assert (target.username, target.password) == ("guest", "guest")


def test_a_given_management_url_keeps_the_amqp_credentials_unless_it_names_a_user() -> None:
    kept = management_target("amqp://hub:pw@mq/", "https://admin.example:8443/rabbit/")
    assert kept.base_url == "https://admin.example:8443/rabbit"
    assert (kept.username, kept.password) == ("hub", "pw")
    named = management_target("amqp://hub:pw@mq/", "http://ops:op%2Fpw@mq:15672")
    assert named.base_url == "http://mq:15672"
    assert (named.username, named.password) == ("ops", "op/pw")


def test_settings_refuse_a_management_url_that_is_not_http() -> None:
    with pytest.raises(ValidationError, match="HUB_AMQP_MANAGEMENT_URL"):
        Settings(amqp_management_url="amqp://mq:15672")
    assert Settings(amqp_management_url="https://mq:15671").amqp_management_url


def test_tags_are_read_as_a_list_or_a_legacy_comma_string() -> None:
    assert _tags({"tags": ["sifhub-subscriber"]}) == ["sifhub-subscriber"]
    assert _tags({"tags": "sifhub-subscriber,management"}) == ["sifhub-subscriber", "management"]
    assert _tags({"tags": ""}) == []
