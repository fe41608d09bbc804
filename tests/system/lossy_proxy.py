"""A forwarding HTTP proxy that loses answers: the first request to each of some paths reaches the server (so
its write commits), then the connection is closed without an answer, as when a network or a load balancer
drops a connection mid-response. What a client does next is its retry policy."""
from __future__ import annotations

import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import requests

# Hop-by-hop headers are the proxy's own business (RFC 9110 7.6.1); the rest are forwarded as they are.
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection",
               "content-length", "host"}


class LossyProxy:
    def __init__(self, upstream: str, drop_first: tuple[str, ...]):
        self.upstream = upstream.rstrip("/")
        self._pending_drops = set(drop_first)
        self._lock = threading.Lock()
        self.dropped = 0
        self.forwarded = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def _should_drop(self, path: str) -> bool:
        with self._lock:
            self.forwarded += 1
            for suffix in self._pending_drops:
                if path.split("?", 1)[0].endswith(suffix):
                    self._pending_drops.discard(suffix)
                    self.dropped += 1
                    return True
        return False

    def _handler(self):
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:  # quiet: the test reports what matters
                pass

            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                response = requests.request(self.command, proxy.upstream + self.path, data=body, headers=headers,
                                            timeout=30, allow_redirects=False)
                if proxy._should_drop(self.path):
                    self.close_connection = True  # the write happened; its answer never arrives
                    return
                self.send_response(response.status_code)
                for key, value in response.headers.items():
                    if key.lower() not in _HOP_BY_HOP:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(response.content)))
                self.end_headers()
                self.wfile.write(response.content)

            do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _forward

        return Handler

    def serve(self) -> None:
        self._server.serve_forever(poll_interval=0.05)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def lossy_proxy(upstream: str, drop_first: tuple[str, ...]) -> Iterator[LossyProxy]:
    proxy = LossyProxy(upstream, drop_first)
    thread = threading.Thread(target=proxy.serve, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.close()
        thread.join(timeout=10)
