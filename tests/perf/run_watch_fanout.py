"""Watch-stream fan-out (issue 12): N ``GET /api/v1/watch`` streams spread over several ``registry serve``
processes on one PostgreSQL, then promotions through one of them; how long until every stream has the new
version, measured from the moment the promotion's answer arrived (its commit is done by then).

    .venv/bin/python tests/perf/run_watch_fanout.py --streams 40 --worker-class gthread
    .venv/bin/python tests/perf/run_watch_fanout.py --streams 1000 --worker-class gevent

Every stream takes a waiting slot (REGISTRY_MAX_WAITERS, set here to what the streams need): under gthread
each also holds a thread, so gthread servers are run with enough threads. The client holds each stream in a
thread of its own (small stacks); its own scheduling is part of the figure, so compare runs on one machine.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from contextlib import ExitStack
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from tests import pg  # noqa: E402
from tests.server import ADMIN_HEADERS, running_server  # noqa: E402

MODEL = "fanout"


def call(base, method, path, expect=200, **kwargs):
    response = requests.request(method, base + path, headers=ADMIN_HEADERS, timeout=60, **kwargs)
    assert response.status_code == expect, response.text
    return response


class Streams:
    def __init__(self):
        self.lock = threading.Lock()
        self.heard: dict[int, list[float]] = {}
        self.condition = threading.Condition(self.lock)

    def follow(self, base: str) -> None:
        try:
            self._follow(base)
        except requests.RequestException:
            pass  # the servers stop at the end of the run

    def _follow(self, base: str) -> None:
        response = requests.get(f"{base}/api/v1/watch", params={"select": f"{MODEL}:Production"},
                                headers=ADMIN_HEADERS, stream=True, timeout=(30, 600))
        assert response.status_code == 200, response.text
        for line in response.iter_lines(decode_unicode=True):
            if line.startswith("data: ") and '"version":' in line:
                version = int(line.split('"version":', 1)[1].split(",", 1)[0])
                now = time.perf_counter()
                with self.condition:
                    self.heard.setdefault(version, []).append(now)
                    self.condition.notify_all()

    def wait_for(self, version: int, count: int, timeout: float = 300) -> list[float]:
        deadline = time.monotonic() + timeout
        with self.condition:
            while len(self.heard.get(version, [])) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SystemExit(f"only {len(self.heard.get(version, []))} of {count} streams heard v{version}")
                self.condition.wait(remaining)
            return list(self.heard[version])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--streams", type=int, default=40)
    p.add_argument("--servers", type=int, default=2, help="registry serve processes (1 worker each)")
    p.add_argument("--worker-class", choices=["gthread", "gevent"], default="gthread")
    p.add_argument("--promotions", type=int, default=5)
    p.add_argument("--admin-url", default=os.environ.get("PERF_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    args = p.parse_args(argv)
    per_server = -(-args.streams // args.servers)
    env = {"REGISTRY_AUTH": "enabled", "REGISTRY_DB_POOL_SIZE": "4", "REGISTRY_MAX_WAITERS": str(per_server + 1),
           "GUNICORN_CMD_ARGS": f"--graceful-timeout 2 --worker-class {args.worker_class}"}
    if args.worker_class == "gthread":
        env["REGISTRY_THREADS"] = str(per_server + 8)
    threading.stack_size(256 * 1024)
    name = pg.create_database(args.admin_url, prefix="registry_perf_fanout")
    url = pg.with_database(args.admin_url, name)
    try:
        with ExitStack() as stack:
            bases = [stack.enter_context(running_server(url, workers=1, extra_env=env, command="serve"))
                     for _ in range(args.servers)]
            call(bases[0], "POST", "/api/v1/models", 201, json={"name": MODEL})
            call(bases[0], "POST", f"/api/v1/models/{MODEL}/versions", 201, json={"source": "s3://f/1"})
            call(bases[0], "POST", f"/api/v1/models/{MODEL}/versions/1/transition", json={"stage": "Production"})
            streams = Streams()
            for i in range(args.streams):
                threading.Thread(target=streams.follow, args=(bases[i % len(bases)],), daemon=True).start()
            streams.wait_for(1, args.streams)
            print(f"{args.streams} streams on {args.servers} processes ({args.worker_class}) all hold version 1")
            for n in range(args.promotions):
                writer = bases[n % len(bases)]
                version = call(writer, "POST", f"/api/v1/models/{MODEL}/versions", 201,
                               json={"source": "s3://f/n"}).json()["version"]
                call(writer, "POST", f"/api/v1/models/{MODEL}/versions/{version}/transition",
                     json={"stage": "Production", "archive_existing_versions": True})
                committed = time.perf_counter()
                delays = sorted((t - committed) * 1000 for t in streams.wait_for(version, args.streams))
                print(f"promotion {n + 1}: all {args.streams} streams in {delays[-1]:.0f} ms; "
                      f"p50 {statistics.median(delays):.0f} ms, p99 {delays[int(0.99 * (len(delays) - 1))]:.0f} ms")
                time.sleep(1)
    finally:
        pg.drop_database(args.admin_url, name)
    return 0


if __name__ == "__main__":
    sys.exit(main())
