"""Alert notifications by e-mail through an SMTP relay (hub.core.ports.Notifier), with
aiosmtplib.

Features: one plain-text message per notification to every `to` address; subject
"[SIF Hub] FIRING: <rule> (<subject>)" or "RESOLVED"; the body gives the summary, figure
and time (counts and ids only, never personal data) and a `Message-ID` made from the
notification id, the same on every retry, so mail clients thread or drop a repeat.
STARTTLS when `starttls: true` (port 587), login when `username` is given (password from
HUB_ALERTS_SMTP_PASSWORD). A refusal, a timeout or a connection error is NotifyFailed
(retried with backoff by hub.pipeline.alerts).

Config form (hub YAML):
    alerts:
      email: {host: smtp.example.gov.uk, port: 587, starttls: true, username: sifhub,
              from: sifhub@example.gov.uk, to: [ops@example.gov.uk]}
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from hub.core.alert_rules import EmailTarget
from hub.core.alerts import title
from hub.core.ports import NotifyFailed
from hub.core.records import AlertEventRecord


def message(event: AlertEventRecord, target: EmailTarget, hub: str) -> EmailMessage:
    mail = EmailMessage()
    mail["From"] = target.sender
    mail["To"] = ", ".join(target.to)
    mail["Subject"] = title(event)
    mail["Date"] = format_datetime(event.at)
    domain = target.sender.rpartition("@")[2] or "sifhub.invalid"
    mail["Message-ID"] = f"<sifhub-alert-{event.id}@{domain}>"
    state = "started firing" if event.kind == "firing" else "resolved"
    mail.set_content(
        f"{event.summary}\n\n"
        f"Rule {event.rule} for {event.subject} {state} at {event.at.isoformat()} "
        f"(value {event.value:g}) on hub {hub}.\n"
        "Current alerts: GET /admin/alerts, or the console's dashboard.\n"
    )
    return mail


class EmailNotifier:
    def __init__(self, target: EmailTarget, *, password: str | None, hub: str) -> None:
        self._target = target
        self._password = password
        self._hub = hub

    async def send(self, event: AlertEventRecord) -> None:
        t = self._target
        try:
            await aiosmtplib.send(
                message(event, t, self._hub),
                hostname=t.host,
                port=t.port,
                start_tls=t.starttls,
                use_tls=False,
                username=t.username,
                password=self._password if t.username else None,
                timeout=t.timeout_seconds,
            )
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            raise NotifyFailed(type(exc).__name__) from None
