"""A real SMTP server (aiosmtpd) on a free loopback port, in a thread, standing in for the
county's mail relay. Every message it takes is kept, parsed, for the test to read. With
`refuse` > 0 it answers the first that many messages 451 (try again later)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller


@dataclass
class Mailbox:
    refuse: int = 0
    messages: list[Message] = field(default_factory=list)
    port: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            if self.refuse > 0:
                self.refuse -= 1
                return "451 Requested action aborted: try again later"
            self.messages.append(message_from_bytes(envelope.content))
        return "250 Message accepted for delivery"

    def received(self) -> list[Message]:
        with self._lock:
            return list(self.messages)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def smtp_running(mailbox: Mailbox) -> Iterator[Mailbox]:
    mailbox.port = _free_port()
    controller = Controller(mailbox, hostname="127.0.0.1", port=mailbox.port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
