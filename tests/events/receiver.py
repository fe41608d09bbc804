"""A real HTTP receiver on loopback (a thread per request) that records what it is sent and answers as
scripted: ``Receiver(answers=[(503, {"Retry-After": "1"}), ...])`` answers those first, then 200."""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    answers: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    received: list[Received] = field(default_factory=list)
    hold: threading.Event | None = None  # while set... cleared: requests wait (a delivery "in flight")
    arrived: threading.Condition = field(default_factory=threading.Condition)
    host: str = "127.0.0.1"

    def __enter__(self) -> "Receiver":
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.arrived:
                    receiver.received.append(Received(self.path, dict(self.headers), body, time.time()))
                    answer = receiver.answers.pop(0) if receiver.answers else (200, {})
                    receiver.arrived.notify_all()
                if receiver.hold is not None:
                    receiver.hold.wait(60)
                status, headers = answer
                data = b'{"ok": true}' if status < 300 else b"try later"
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args):
                pass

        self.server = ThreadingHTTPServer((self.host, 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_exc) -> None:
        if self.hold is not None:
            self.hold.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.server.server_address[1]}/hook"

    def wait_for(self, count: int, timeout: float = 60.0) -> list[Received]:
        """Block until ``count`` requests arrived (a bound on a broken run, not a timing assertion)."""
        deadline = time.monotonic() + timeout
        with self.arrived:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"only {len(self.received)} of {count} requests arrived"
                self.arrived.wait(left)
            return list(self.received)
