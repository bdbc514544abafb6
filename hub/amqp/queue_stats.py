"""Queue depth and consumer count per queue, read from RabbitMQ's management API (the
same target, credentials and TLS settings as broker-user provisioning, hub.amqp.provision).

URL form: GET <management base>/api/queues/<vhost>?columns=name,messages,consumers; one call
for the whole vhost, bounded by `timeout_seconds`. An unreachable or refusing API is
BrokerUnavailable.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

import httpx

from hub.amqp.provision import ManagementTarget
from hub.core.ports import BrokerUnavailable


@dataclass(frozen=True, kw_only=True)
class QueueFigures:
    messages: int
    consumers: int


async def queue_figures(
    target: ManagementTarget, names: Sequence[str], *, timeout_seconds: float = 3.0
) -> dict[str, QueueFigures | None]:
    """{queue: figures, or None when the queue does not exist} for the queues named."""
    verify: ssl.SSLContext | bool = (
        ssl.create_default_context(cafile=target.cafile) if target.cafile else True
    )
    url = f"{target.base_url}/api/queues/{quote(target.vhost, safe='')}"  # "/" is %2F
    try:
        async with httpx.AsyncClient(
            auth=(target.username, target.password), timeout=timeout_seconds, verify=verify
        ) as client:
            response = await client.get(url, params={"columns": "name,messages,consumers"})
    except httpx.HTTPError as exc:
        raise BrokerUnavailable(f"management API queues: {exc!r}") from exc
    if response.is_error:
        raise BrokerUnavailable(f"management API queues: HTTP {response.status_code}")
    listed = {
        str(q["name"]): QueueFigures(
            messages=int(q.get("messages") or 0), consumers=int(q.get("consumers") or 0)
        )
        for q in response.json()
    }
    return {name: listed.get(name) for name in names}
