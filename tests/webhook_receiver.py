"""A real HTTP server standing in for an LA service's webhook endpoint, in a thread on a
free loopback port. Each request takes the next scripted answer (an HTTP status, or
"hang": answer only after `hang_seconds`); when the script runs out, `then` is used.
Every request's headers and body are kept for the test to verify."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HANG = "hang"


@dataclass(frozen=True)
class Request:
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    script: list[int | str] = field(default_factory=list)
    then: int | str = 200
    hang_seconds: float = 3.0
    requests: list[Request] = field(default_factory=list)
    url: str = ""
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def answer(self, request: Request) -> int | str:
        with self._lock:
            self.requests.append(request)
            return self.script.pop(0) if self.script else self.then

    def received(self) -> list[Request]:
        with self._lock:
            return list(self.requests)


@contextmanager
def receiver_running(receiver: Receiver) -> Iterator[Receiver]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            answer = receiver.answer(Request({k.lower(): v for k, v in self.headers.items()}, body))
            if answer == HANG:
                time.sleep(receiver.hang_seconds)
                answer = 200
            try:
                self.send_response(int(answer))
                self.send_header("content-length", "0")
                self.end_headers()
            except (BrokenPipeError, ConnectionResetError):
                pass  # the hub gave up waiting, as it should

        def log_message(self, *_: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    receiver.url = f"http://127.0.0.1:{server.server_address[1]}/sif/hr"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
