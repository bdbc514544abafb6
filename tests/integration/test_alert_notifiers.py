"""The alert notifiers against real local servers: the webhook POSTs the notification as
JSON with a stable Idempotency-Key, and a refusal or an unreachable endpoint is
NotifyFailed; the e-mail goes through a real SMTP server (aiosmtpd) with its subject, body
and a stable Message-ID, and a 451 or a closed port is NotifyFailed."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from adapters.alert_email import EmailNotifier
from adapters.alert_webhook import WebhookNotifier
from hub.core.alert_rules import EmailTarget
from hub.core.ports import NotifyFailed
from hub.core.records import AlertEventRecord
from tests.smtp_server import Mailbox, _free_port, smtp_running
from tests.webhook_receiver import Receiver, receiver_running

EVENT = AlertEventRecord(
    id=7,
    rule="parked_rows",
    subject="outbox",
    kind="firing",
    at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
    value=2,
    summary="2 parked outbox rows wait for a re-drive",
)


async def test_webhook_posts_json_and_reports_refusals() -> None:
    with receiver_running(Receiver(script=[503])) as receiver:
        notifier = WebhookNotifier(receiver.url, timeout_seconds=5, hub="SIFHub")
        with pytest.raises(NotifyFailed, match="http_503"):
            await notifier.send(EVENT)
        await notifier.send(EVENT)
        first, second = receiver.received()
    assert first.headers["idempotency-key"] == second.headers["idempotency-key"]
    assert second.headers["idempotency-key"] == "sifhub-alert-7"
    body = json.loads(second.body)
    assert body["status"] == "firing" and body["rule"] == "parked_rows"
    assert body["summary"] == EVENT.summary and body["hub"] == "SIFHub"
    assert body["title"] == "[SIF Hub] FIRING: parked_rows (outbox)"


async def test_webhook_unreachable_is_a_failure() -> None:
    url = f"http://127.0.0.1:{_free_port()}/hook"
    with pytest.raises(NotifyFailed, match="ConnectError"):
        await WebhookNotifier(url, timeout_seconds=2, hub="SIFHub").send(EVENT)


def _target(port: int) -> EmailTarget:
    return EmailTarget.model_validate(
        {
            "host": "127.0.0.1",
            "port": port,
            "from": "hub@county.example",
            "to": ["ops@county.example", "dpo@county.example"],
        }
    )


async def test_email_through_a_real_smtp_server() -> None:
    with smtp_running(Mailbox(refuse=1)) as mailbox:
        notifier = EmailNotifier(_target(mailbox.port), password=None, hub="SIFHub")
        with pytest.raises(NotifyFailed):
            await notifier.send(EVENT)  # 451: the relay asks to try later
        await notifier.send(EVENT)
        (mail,) = mailbox.received()
    assert mail["Subject"] == "[SIF Hub] FIRING: parked_rows (outbox)"
    assert mail["To"] == "ops@county.example, dpo@county.example"
    assert mail["Message-ID"] == "<sifhub-alert-7@county.example>"
    assert EVENT.summary in mail.get_payload()


async def test_email_relay_down_is_a_failure() -> None:
    notifier = EmailNotifier(_target(_free_port()), password=None, hub="SIFHub")
    with pytest.raises(NotifyFailed):
        await notifier.send(EVENT)
