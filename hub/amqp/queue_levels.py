"""Messages and consumers per queue, from RabbitMQ's management API (hub.core.ports
.QueueLevels), as the alert rules and ops read them: one call lists every queue on the
hub's vhost. Figures are RabbitMQ's last sample (every few seconds), which is all an alert
that waits minutes needs. An unreachable or refusing API is BrokerUnavailable.

URL form: as hub.amqp.provision (HUB_AMQP_MANAGEMENT_URL, default http://<AMQP host>:15672).
"""

from __future__ import annotations

from hub.amqp.provision import ManagementTarget, management_api
from hub.core.records import QueueLevel


class ManagementQueueLevels:
    def __init__(self, target: ManagementTarget, *, timeout: float = 10.0) -> None:
        self._target = target
        self._timeout = timeout

    async def levels(self) -> dict[str, QueueLevel]:
        async with management_api(self._target, self._timeout) as api:
            queues = await api.queues()
        return {
            str(q["name"]): QueueLevel(
                messages=int(q.get("messages") or 0), consumers=int(q.get("consumers") or 0)
            )
            for q in queues
        }
