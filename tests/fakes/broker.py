"""In-memory broker ports: FakePublisher (hub.core.ports.Publisher) records what it
confirms and can be told to refuse the next N messages; FakePullSource
(hub.core.ports.PullSource) hands a pull-mode agent the same message until it is acked."""

from __future__ import annotations

from collections import defaultdict, deque
from collections.abc import Sequence
from typing import TYPE_CHECKING

from hub.core.ports import BrokerUnavailable, Outgoing, Pulled

if TYPE_CHECKING:
    from hub.core.ports import Publisher, PullSource


class FakePullSource:
    def __init__(self) -> None:
        self.queues: defaultdict[str, deque[Pulled]] = defaultdict(deque)
        self._held: dict[str, Pulled] = {}

    def put(self, queue: str, pulled: Pulled) -> None:
        self.queues[queue].append(pulled)

    async def next_message(self, queue: str) -> Pulled | None:
        if queue not in self._held and self.queues[queue]:
            self._held[queue] = self.queues[queue].popleft()
        return self._held.get(queue)

    async def ack(self, queue: str, message_id: str) -> bool:
        held = self._held.get(queue)
        if held is None or held.message_id != message_id:
            return False
        del self._held[queue]
        return True


class FakePublisher:
    """Confirms every message (recorded in `published`, and put into `deliver_to`'s queues
    when given) except the next N after `fail_next(N)`, which get BrokerUnavailable."""

    def __init__(self, deliver_to: FakePullSource | None = None) -> None:
        self.published: list[Outgoing] = []
        self.subscribers: set[str] = set()
        self._deliver_to = deliver_to
        self._failures = 0

    def fail_next(self, count: int) -> None:
        self._failures += count

    def recover(self) -> None:
        """Confirm everything from now on."""
        self._failures = 0

    async def ensure_queues(self, subscriber_ids: Sequence[str]) -> None:
        self.subscribers.update(subscriber_ids)

    async def publish_batch(self, messages: Sequence[Outgoing]) -> list[Exception | None]:
        return [self._publish(message) for message in messages]

    async def ping(self) -> None:
        return None

    def _publish(self, message: Outgoing) -> Exception | None:
        if self._failures > 0:
            self._failures -= 1
            return BrokerUnavailable("fake broker: not confirmed")
        self.published.append(message)
        if self._deliver_to is not None:
            self._deliver_to.put(message.queue, Pulled(message.message_id, message.body))
        return None


if TYPE_CHECKING:

    def _conforms(publisher: FakePublisher, pull: FakePullSource) -> tuple[Publisher, PullSource]:
        """Checked by mypy only: the fakes satisfy the pipeline's protocols."""
        return publisher, pull
