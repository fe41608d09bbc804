#!/usr/bin/env python3
"""Load generator for run_watchers.py: N long-polling watchers in one asyncio process, then one promotion.

A separate process, so its CPU is its own (measured) and never the server's. Each watcher is one keep-alive
connection speaking plain HTTP/1.1 through an asyncio Protocol: a full HTTP client library would spend more
client CPU per answer than the server does, and 10,000 answers arrive within a second. Every watcher sends
``GET <path>?wait=<s>`` with the model's current ETag and, like a serving replica:
* ``304`` with ``X-Registry-Waited: busy`` (the server would not let it wait): polls again after 50 ms;
* ``304`` otherwise (its wait ran out): polls again at once;
* ``200`` with a new ETag: delivered; the time since the promotion request was sent is recorded.

A watcher is *really waiting* when its request has been outstanding for at least a second: a busy answer
comes back at once. The run: connect everyone (in batches), hold ``--hold`` seconds (busy answers counted),
snapshot who really waits, promote (``--promote NAME VERSION``, through the native API), collect deliveries.
Prints one JSON object. With ``--ready-file`` it writes the really-waiting count there after the hold and
holds on (``--linger`` seconds) without promoting: the caller measures the server meanwhile.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time

BUSY_RETRY_S = 0.05
CONNECT_TIMEOUT_S = 10.0
# The server's own sockets (database pool, listener) come and go beside the clients' connections.
SOCKET_SLACK = 10
REALLY_WAITING_AFTER_S = 1.0


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--token", required=True)
    p.add_argument("--targets", required=True,
                   help="JSON file: [[model name, etag], ...]; watchers are spread over them round-robin")
    p.add_argument("--watchers", type=int, required=True)
    p.add_argument("--wait", type=int, default=60)
    p.add_argument("--hold", type=float, default=3.0, help="seconds between all connected and the promotion")
    p.add_argument("--settle-timeout", type=float, default=60.0)
    p.add_argument("--promote", nargs=2, metavar=("NAME", "VERSION"))
    p.add_argument("--promote-token", help="the token that may promote (default: --token)")
    p.add_argument("--deliver-timeout", type=float, default=15.0)
    p.add_argument("--server-pids", default="", help="comma-separated: their CPU during the delivery is reported")
    p.add_argument("--db-url", help="count the database's transactions from the promotion to the deliveries")
    p.add_argument("--ready-file")
    p.add_argument("--linger", type=float, default=0.0)
    return p.parse_args()


class Stats:
    def __init__(self) -> None:
        self.busy = 0
        self.timeouts = 0
        self.errors = 0
        self.connect_failed = 0
        self.other = 0
        self.promoted_at: float | None = None
        self.delivered: list[float] = []
        self.spurious = 0  # 200s for models that were not promoted


class Watcher(asyncio.Protocol):
    def __init__(self, loop, stats: Stats, request: bytes, promoted: bool) -> None:
        self.loop, self.stats, self.request, self.promoted = loop, stats, request, promoted
        self.transport = None
        self.buffer = b""
        self.sent_at: float | None = None  # the outstanding request's send time (None: none outstanding)
        self.done = False
        self.lost = loop.create_future()

    def connection_made(self, transport) -> None:
        self.transport = transport
        self.send()

    def send(self) -> None:
        if self.done or self.transport is None or self.transport.is_closing():
            return
        self.sent_at = time.monotonic()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            headers = {}
            for line in head[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0"))
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length:]
            self.answered(int(head[0].split(" ", 2)[1]), headers)

    def answered(self, status: int, headers: dict) -> None:
        now = time.monotonic()
        self.sent_at = None
        if status == 200:
            self.done = True
            if self.promoted and self.stats.promoted_at is not None:
                self.stats.delivered.append(now - self.stats.promoted_at)
            else:
                self.stats.spurious += 1
            self.transport.close()
        elif status == 304 and headers.get("x-registry-waited") == "busy":
            self.stats.busy += 1
            self.loop.call_later(BUSY_RETRY_S, self.send)
        elif status == 304:
            self.stats.timeouts += 1
            self.send()
        else:
            self.stats.other += 1
            self.loop.call_later(BUSY_RETRY_S, self.send)

    def connection_lost(self, exc) -> None:
        if not self.done:
            self.stats.errors += 1
        if not self.lost.done():
            self.lost.set_result(None)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds the processes used so far (Linux /proc, clock ticks)."""
    import os

    total = 0
    for pid in pids:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


def sockets(pids: list[int]) -> int:
    """Sockets the processes hold open (Linux /proc): the server's accepted connections, and a few of its own."""
    import os

    count = 0
    for pid in pids:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
            except OSError:
                pass
    return count


def transactions(db_url: str | None) -> int | None:
    """Committed and rolled-back transactions of the database so far (a blocking moment: nothing is due)."""
    if db_url is None:
        return None
    import psycopg2

    connection = psycopg2.connect(db_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT xact_commit + xact_rollback FROM pg_stat_database"
                           " WHERE datname = current_database()")
            return cursor.fetchone()[0]
    finally:
        connection.close()


async def promote(port: int, token: str, name: str, version: str, stats: Stats) -> tuple[int, float]:
    """Send the promotion (deliveries count from here); returns its status and how long it took."""
    body = json.dumps({"stage": "Production", "archive_existing_versions": True}).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    stats.promoted_at = time.monotonic()
    writer.write((f"POST /api/v1/models/{name}/versions/{version}/transition HTTP/1.1\r\nHost: x\r\n"
                  f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
                  f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode() + body)
    await writer.drain()
    status_line = await reader.readline()
    took = time.monotonic() - stats.promoted_at
    await reader.read()
    writer.close()
    return int(status_line.split()[1]), took


async def main() -> None:
    args = parse_args()
    loop = asyncio.get_running_loop()
    stats = Stats()
    with open(args.targets) as f:
        targets = json.load(f)
    promoted_name = args.promote[0] if args.promote else None
    watchers: list[Watcher] = []
    pids = [int(pid) for pid in args.server_pids.split(",") if pid]
    baseline = sockets(pids)
    started = time.monotonic()
    for i in range(0, args.watchers, 250):  # batches: a burst of 10,000 SYNs would overflow the listen backlog
        batch = []
        for j in range(i, min(i + 250, args.watchers)):
            name, etag = targets[j % len(targets)]
            request = (f"GET /api/v1/models/{name}/stages/Production?wait={args.wait} HTTP/1.1\r\nHost: x\r\n"
                       f"Authorization: Bearer {args.token}\r\nIf-None-Match: {etag}\r\n\r\n").encode()
            # Bounded: a server that stops accepting (the old worker past its connections) fills the listen
            # backlog, and connecting would then wait through the kernel's SYN retries for minutes.
            batch.append(asyncio.wait_for(loop.create_connection(
                lambda request=request, name=name: Watcher(loop, stats, request, name == promoted_name),
                "127.0.0.1", args.port), CONNECT_TIMEOUT_S))
        for result in await asyncio.gather(*batch, return_exceptions=True):
            if isinstance(result, BaseException):
                stats.connect_failed += 1
            else:
                watchers.append(result[1])
        if stats.connect_failed:  # the server stopped accepting: the rest would only wait as long
            stats.connect_failed += args.watchers - min(i + 250, args.watchers)
            break
    connected_s = time.monotonic() - started

    def really_waiting() -> int:
        now = time.monotonic()
        return sum(1 for w in watchers if w.sent_at is not None and now - w.sent_at >= REALLY_WAITING_AFTER_S)

    def accepted() -> int | None:
        """Connections the server has accepted (not merely queued in its listen backlog)."""
        return sockets(pids) - baseline if pids else None

    # Settle: until everyone really waits, accepted by the server (or the limit: the old worker never gets
    # there), then hold. A connection still in the listen backlog looks outstanding from here, hence both.
    deadline = time.monotonic() + args.settle_timeout
    while time.monotonic() < deadline and (really_waiting() < len(watchers)
                                           or (pids and accepted() < len(watchers) - SOCKET_SLACK)):
        await asyncio.sleep(0.25)
    settled_s = time.monotonic() - started
    busy_before = stats.busy
    await asyncio.sleep(args.hold)
    busy_in_hold = stats.busy - busy_before
    waiting = really_waiting()
    result = {"watchers": args.watchers, "connected": len(watchers), "accepted_by_server": accepted(),
              "connect_s": round(connected_s, 2),
              "settle_s": round(settled_s, 2), "hold_s": args.hold, "really_waiting": waiting,
              "busy_total_before": stats.busy, "busy_in_hold": busy_in_hold}
    if args.ready_file:
        with open(args.ready_file, "w") as f:
            json.dump(result, f)
        await asyncio.sleep(args.linger)
    if args.promote:
        should = sum(1 for w in watchers if w.promoted)
        before = transactions(args.db_url)
        cpu_before = cpu_seconds(pids)
        status, promoted_s = await promote(args.port, args.promote_token or args.token, *args.promote, stats)
        deadline = time.monotonic() + args.deliver_timeout
        while len(stats.delivered) < should and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        if pids:
            result["server_cpu_s"] = round(cpu_seconds(pids) - cpu_before, 2)
        # Spurious wakes of other models' watchers would show up now; and PostgreSQL publishes each backend's
        # statistics at most once a second.
        await asyncio.sleep(1.5)
        if before is not None:
            result["db_transactions"] = transactions(args.db_url) - before
        delivered = sorted(stats.delivered)

        def pct(q: float) -> float | None:
            return round(1000 * delivered[min(len(delivered) - 1, int(q * len(delivered)))], 1) if delivered else None

        result.update({"promotion_status": status, "promotion_ms": round(1000 * promoted_s, 1),
                       "should_deliver": should, "delivered": len(delivered),
                       "delivery_ms": {"p50": pct(0.50), "p99": pct(0.99), "max": pct(1.0),
                                       "mean": round(1000 * statistics.fmean(delivered), 1) if delivered else None},
                       "spurious_wakes": stats.spurious})
    result.update({"busy_total": stats.busy, "timeouts": stats.timeouts, "errors": stats.errors,
                   "connect_failed": stats.connect_failed,
                   "other_statuses": stats.other})
    for w in watchers:
        if w.transport is not None:
            w.transport.close()
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    asyncio.run(main())
