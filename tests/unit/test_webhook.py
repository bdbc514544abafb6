"""Webhook push in isolation: the Standard Webhooks signature (the spec's test vector),
sealed secrets, the retry ladder, the subscriber's delivery configuration, and the push
stage's decisions on the in-memory store."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from adapters.webhook import SealError, SecretBox, signed_headers
from hub.core.config import Subscriber, WebhookDelivery
from hub.core.envelope import Action
from hub.core.ports import Delivered, PushResult
from hub.core.records import DisclosureRecord
from hub.core.retry import RetryLadder
from hub.pipeline.deliver import PushContext, push_copy
from tests.fakes import FakeStore

# From the Standard Webhooks specification's reference test suite.
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_signature_matches_the_specs_test_vector() -> None:
    copy = Delivered(message_id=SPEC_ID, body=SPEC_BODY, headers={"hub-object": "X"})
    at = datetime.fromtimestamp(SPEC_TIMESTAMP, UTC)
    headers = signed_headers(SPEC_SECRET, copy, at)
    assert headers["webhook-id"] == SPEC_ID
    assert headers["webhook-timestamp"] == str(SPEC_TIMESTAMP)
    assert headers["webhook-signature"] == SPEC_SIGNATURE
    assert headers["hub-object"] == "X"


def test_secrets_are_sealed_and_open_only_with_the_same_key() -> None:
    box = SecretBox("key-one")
    secret, sealed = box.issue()
    assert secret.startswith("whsec_") and len(secret) > 40
    assert secret.encode() not in sealed
    assert box.open(sealed) == secret
    assert SecretBox("key-one").open(sealed) == secret
    assert box.issue()[0] != secret
    with pytest.raises(SealError):
        SecretBox("key-two").open(sealed)


def test_the_ladder_repeats_its_last_delay_then_gives_up() -> None:
    ladder = RetryLadder(delays_ms=(10, 60), max_attempts=4)
    assert [ladder.delay_after(n) for n in range(1, 6)] == [10, 60, 60, None, None]


def test_a_webhook_must_be_https_unless_on_loopback() -> None:
    def delivery(url: str) -> WebhookDelivery:
        return WebhookDelivery.model_validate({"type": "webhook", "url": url})

    assert delivery("https://hr.example.gov.uk/sif").url.startswith("https://")
    assert delivery("http://127.0.0.1:9000/x").url.startswith("http://")
    for bad in ("http://hr.example.gov.uk/sif", "ftp://x", "https://"):
        with pytest.raises(ValidationError, match="https"):
            delivery(bad)


def test_delivery_defaults_to_amqp_and_excludes_a_pull_agent() -> None:
    assert Subscriber(id="cme", name="CME").delivery.type == "amqp"
    hook = {"type": "webhook", "url": "https://x.example/"}
    assert Subscriber.model_validate({"id": "a", "name": "A", "delivery": hook}).delivery.type == (
        "webhook"
    )
    with pytest.raises(ValidationError, match="pull_agent"):
        Subscriber.model_validate({"id": "a", "name": "A", "pull_agent": "x", "delivery": hook})
    with pytest.raises(ValidationError):
        Subscriber.model_validate({"id": "a", "name": "A", "delivery": {"type": "carrier-pigeon"}})


# -- the push stage on the fakes --------------------------------------------------------

T0 = datetime(2026, 12, 1, 9, tzinfo=UTC)
TARGET = WebhookDelivery(type="webhook", url="https://hr.example/")
LADDER = RetryLadder(delays_ms=(100, 200), max_attempts=3)


@dataclass
class ScriptedPusher:
    answers: list[PushResult]
    pushed: list[Delivered] = field(default_factory=list)

    async def push(
        self, url: str, sealed_secret: bytes, copy: Delivered, *, timeout_seconds: float
    ) -> PushResult:
        assert sealed_secret == b"sealed"
        self.pushed.append(copy)
        return self.answers.pop(0)


def record(copy_msg_id: str) -> DisclosureRecord:
    return DisclosureRecord(
        outbox_id="o",
        message_id="m",
        copy_msg_id=copy_msg_id,
        subscriber="hr",
        agreement_id="A",
        agreement_version=1,
        object_name="WorkforcePersonal",
        action=Action.ADD,
        school=None,
        subject_refid=None,
        published_at=T0,
    )


async def context(*answers: PushResult, disclosed: bool = True, secret: bool = True) -> PushContext:
    store = FakeStore()
    async with store.transaction() as tx:
        if disclosed:
            await tx.disclosures.add([record("C1")])
        if secret:
            await tx.webhooks.save_secret("hr", b"sealed", T0)
    pusher = ScriptedPusher(list(answers))
    return PushContext(store, pusher, LADDER, lambda: T0, disclosure_waits=(), max_deferrals=2)


def copy(attempts: int = 0, deferrals: int = 0) -> Delivered:
    return Delivered(
        message_id="C1", body=b"<x/>", headers={}, attempts=attempts, deferrals=deferrals
    )


async def attempts(ctx: PushContext) -> list[tuple[int, str, int | None]]:
    async with ctx.store.transaction() as tx:
        rows = await tx.webhooks.attempts(subscriber="hr")
    return [(a.attempt, a.outcome, a.retry_in_ms) for a in reversed(rows)]


async def acknowledged(ctx: PushContext) -> bool:
    async with ctx.store.transaction() as tx:
        return (await tx.disclosures.recorded(["C1"]))["C1"]


async def test_a_2xx_is_one_attempt_row_and_acknowledges_the_disclosure() -> None:
    ctx = await context(PushResult(status=204))
    settle = await push_copy(ctx, "hr", TARGET, copy())
    assert (settle.kind, settle.attempts) == ("done", 1)
    assert await attempts(ctx) == [(1, "delivered", None)]
    assert await acknowledged(ctx)


async def test_failures_climb_the_ladder_then_dead_letter() -> None:
    ctx = await context(
        PushResult(status=500, error="http_500"),
        PushResult(error="timeout"),
        PushResult(error="connect_error"),
    )
    first = await push_copy(ctx, "hr", TARGET, copy())
    second = await push_copy(ctx, "hr", TARGET, copy(attempts=first.attempts))
    third = await push_copy(ctx, "hr", TARGET, copy(attempts=second.attempts))
    assert [(s.kind, s.delay_ms) for s in (first, second, third)] == [
        ("retry", 100),
        ("retry", 200),
        ("dead", 0),
    ]
    assert await attempts(ctx) == [(1, "retry", 100), (2, "retry", 200), (3, "dead_lettered", None)]
    assert not await acknowledged(ctx)


async def test_a_copy_without_its_disclosure_row_is_never_pushed() -> None:
    ctx = await context(disclosed=False)
    settles = [await push_copy(ctx, "hr", TARGET, copy(deferrals=n)) for n in range(3)]
    assert [(s.kind, s.deferrals, s.attempts) for s in settles] == [
        ("retry", 1, 0),
        ("retry", 2, 0),
        ("dead", 3, 0),
    ]
    assert isinstance(ctx.pusher, ScriptedPusher) and ctx.pusher.pushed == []
    assert await attempts(ctx) == []


async def test_an_acknowledged_copy_is_not_pushed_again() -> None:
    ctx = await context()
    async with ctx.store.transaction() as tx:
        await tx.disclosures.acknowledge(["C1"], T0)
    settle = await push_copy(ctx, "hr", TARGET, copy(attempts=1))
    assert settle.kind == "done"
    assert isinstance(ctx.pusher, ScriptedPusher) and ctx.pusher.pushed == []


async def test_without_a_secret_or_a_database_the_copy_waits_uncounted() -> None:
    ctx = await context(secret=False)
    settle = await push_copy(ctx, "hr", TARGET, copy(attempts=1))
    assert (settle.kind, settle.attempts, settle.delay_ms) == ("retry", 1, 100)
    ctx = await context()
    assert isinstance(ctx.store, FakeStore)
    ctx.store.unavailable = True
    settle = await push_copy(ctx, "hr", TARGET, copy(attempts=1))
    assert (settle.kind, settle.attempts) == ("retry", 1)
