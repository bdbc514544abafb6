"""Alert notifications by webhook: one JSON POST per notification (hub.core.ports.Notifier).

Features: body `{"id", "status": "firing"|"resolved", "rule", "subject", "value",
"summary", "at", "title", "hub"}` (counts and ids only, never personal data);
`Idempotency-Key: sifhub-alert-<id>` is the same on every retry, so a receiver that saw a
notification before can drop the repeat. 2xx is success; any other status, a timeout or a
connection error is NotifyFailed (retried with backoff by hub.pipeline.alerts). Redirects
are not followed.

Config form (hub YAML):
    alerts:
      webhooks: [{url: "https://ops.example.gov.uk/hooks/sifhub", timeout_seconds: 10}]
"""

from __future__ import annotations

from typing import Any

import httpx

from hub import __version__
from hub.core.alerts import title
from hub.core.ports import NotifyFailed
from hub.core.records import AlertEventRecord


def payload(event: AlertEventRecord, hub: str) -> dict[str, Any]:
    return {
        "id": event.id,
        "status": event.kind,
        "rule": event.rule,
        "subject": event.subject,
        "value": event.value,
        "summary": event.summary,
        "at": event.at.isoformat(),
        "title": title(event),
        "hub": hub,
    }


class WebhookNotifier:
    def __init__(self, url: str, *, timeout_seconds: float, hub: str) -> None:
        self._url = url
        self._timeout = timeout_seconds
        self._hub = hub

    async def send(self, event: AlertEventRecord) -> None:
        headers = {
            "Idempotency-Key": f"sifhub-alert-{event.id}",
            "User-Agent": f"sif-hub/{__version__}",
        }
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=False) as client:
                response = await client.post(
                    self._url, json=payload(event, self._hub), headers=headers
                )
        except httpx.TimeoutException:
            raise NotifyFailed("timeout") from None
        except httpx.HTTPError as exc:
            raise NotifyFailed(type(exc).__name__) from None
        if not response.is_success:
            raise NotifyFailed(f"http_{response.status_code}")
