"""A TCP forwarder that can be cut and restored, to take a database away from one app without touching the
server: ``cut()`` closes its port and every connection through it (new connections are refused, as when the
server is down or the network is partitioned); ``restore()`` listens on the same port again."""
from __future__ import annotations

import socket
import threading
from contextlib import contextmanager
from typing import Iterator


class TcpSwitch:
    def __init__(self, upstream_host: str | None, upstream_port: int) -> None:
        # A host that is a directory is PostgreSQL's socket directory (the embedded server listens there only).
        self.upstream = (f"{upstream_host}/.s.PGSQL.{upstream_port}" if upstream_host and upstream_host.startswith("/")
                         else (upstream_host or "127.0.0.1", upstream_port))
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        probe = socket.socket()
        probe.bind(("127.0.0.1", 0))
        self.port = probe.getsockname()[1]
        probe.close()
        self.restore()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def cut(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            try:
                listener.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in accept() (close alone does not)
            except OSError:
                pass
            listener.close()
        with self._lock:
            sockets, self._sockets = self._sockets, set()
        for sock in sockets:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                if isinstance(self.upstream, str):
                    server = socket.socket(socket.AF_UNIX)
                    server.connect(self.upstream)
                else:
                    server = socket.create_connection(self.upstream)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:
                    client.close()
                    server.close()
                    return
                self._sockets.update((client, server))
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    def _pipe(self, source: socket.socket, target: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                target.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, target):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


@contextmanager
def tcp_switch(upstream_host: str, upstream_port: int) -> Iterator[TcpSwitch]:
    switch = TcpSwitch(upstream_host, upstream_port)
    try:
        yield switch
    finally:
        switch.cut()
