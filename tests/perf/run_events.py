#!/usr/bin/env python3
"""Benchmark the events outbox and webhook delivery (issue 11).

1. Commit-to-delivery latency: events committed at a steady rate (default 100/s) to a receiver on loopback,
   delivered by `registry events dispatch` processes; p50/p99 of (arrival at the receiver - commit).
2. Delivery throughput: a backlog of events spread over many models, drained by one and by two dispatcher
   processes (events/s).
3. The outbox's cost on writes: create-version and transition throughput at c=32 (threads calling the use
   cases in this process), with the outbox trigger on (no webhook; one matching webhook per model) and off,
   interleaved in rounds, as ratios.

Run with the project's venv from the repository root: python tests/perf/run_events.py [--out r.json]
Numbers depend on the machine; nothing asserts a speed.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import database_url, drop_database, recreate_database, safe_database_name  # noqa: E402

ENV = {"REGISTRY_WEBHOOK_ALLOW_HTTP": "true", "REGISTRY_WEBHOOK_ALLOW_NETWORKS": "127.0.0.0/8",
       "REGISTRY_AUTH": "disabled", "REGISTRY_LOG_LEVEL": "WARNING"}


class Receiver:
    """Records when each (model, version, tag value) arrived."""

    def __init__(self):
        self.arrivals: dict[tuple, float] = {}
        self.count = 0
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                data = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                now = time.time()
                key = (data.get("model_name"), data.get("version"), (data.get("tags") or [{}])[0].get("value"))
                with receiver.lock:
                    receiver.arrivals[key] = now
                    receiver.count += 1
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *_):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"


def dispatchers(url: str, n: int) -> list[subprocess.Popen]:
    env = {**os.environ, **ENV, "DATABASE_URL": url,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    return [subprocess.Popen([sys.executable, "-c", "from registry.cli import main; main()", "events", "dispatch"], env=env, cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for _ in range(n)]


def stop(processes):
    for p in processes:
        p.terminate()
    for p in processes:
        p.wait(30)


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--admin-url", default=os.environ.get("PERF_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--database", default="registry_perf_events")
    p.add_argument("--rate", type=float, default=100.0, help="events per second for the latency run")
    p.add_argument("--seconds", type=float, default=20.0, help="length of the latency run")
    p.add_argument("--backlog", type=int, default=3000, help="events drained in the throughput runs")
    p.add_argument("--writes", type=int, default=1500, help="writes per variant and round in the cost runs")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    assert safe_database_name(args.database)
    recreate_database(args.admin_url, args.database)
    url = database_url(args.admin_url, args.database)
    os.environ.update(ENV, DATABASE_URL=url)
    from flask_migrate import upgrade

    from registry import create_app
    from registry.auth import Actor
    from registry.extensions import db
    from registry.services import models, stages, versions, webhooks

    app = create_app({"database_url": url, "pool_size": 40})
    results: dict = {}
    admin = Actor("bench", is_admin=True)
    with app.app_context():
        upgrade()
        receiver = Receiver()
        names = [f"perf-ev-{i:02d}" for i in range(16)]
        for name in names:
            models.create_model(admin, name)
            versions.create_version(admin, name, "s3://perf/1")
            webhooks.create_webhook(admin, ["MODEL_VERSION_TAG_SET"], model_name=name,
                                    http=webhooks.HttpTarget(url=receiver.url, secret="s3cr3t"))

        # 1. latency at a steady rate, one dispatcher process
        procs = dispatchers(url, 1)
        time.sleep(3)
        committed: dict[tuple, float] = {}
        total = int(args.rate * args.seconds)
        start = time.monotonic()
        for i in range(total):
            target = start + i / args.rate
            delay = target - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            name = names[i % len(names)]
            versions.set_version_tag(admin, name, 1, "k", f"lat-{i}")
            committed[(name, "1", f"lat-{i}")] = time.time()
        deadline = time.monotonic() + 60
        while receiver.count < total and time.monotonic() < deadline:
            time.sleep(0.1)
        stop(procs)
        latencies = [(receiver.arrivals[k] - t) * 1000 for k, t in committed.items() if k in receiver.arrivals]
        results["latency_ms"] = {"rate_per_s": args.rate, "events": total, "delivered": len(latencies),
                                 "p50": round(percentile(latencies, 0.50), 1),
                                 "p99": round(percentile(latencies, 0.99), 1),
                                 "max": round(max(latencies), 1)}
        print("latency", results["latency_ms"], flush=True)

        # 2. throughput draining a backlog, with one and two dispatcher processes
        results["throughput"] = {}
        for n in (1, 2):
            before = receiver.count
            for i in range(args.backlog):
                versions.set_version_tag(admin, names[i % len(names)], 1, "k", f"tp{n}-{i}")
            procs = dispatchers(url, n)
            started = time.monotonic()
            while receiver.count - before < args.backlog and time.monotonic() - started < 600:
                time.sleep(0.05)
            elapsed = time.monotonic() - started
            stop(procs)
            results["throughput"][f"{n}_dispatcher"] = round((receiver.count - before) / elapsed, 1)
            print("throughput", n, results["throughput"][f"{n}_dispatcher"], "events/s (incl. process start)",
                  flush=True)

        # 3. outbox cost on writes at c=32: trigger on (with/without a webhook) vs off, interleaved rounds
        def run(kind: str, tag: str) -> float:
            counter = iter(range(args.writes))
            lock = threading.Lock()

            def worker(w: int):
                while True:
                    with lock:
                        i = next(counter, None)
                    if i is None:
                        return
                    name = f"perf-cost-{w % 16:02d}"
                    with app.app_context():
                        if kind == "create":
                            versions.create_version(admin, name, f"s3://perf/{tag}/{i}")
                        else:
                            stage = "Staging" if i % 2 else "None"
                            stages.transition_stage(admin, name, 1 + w // 16, stage)

            threads = [threading.Thread(target=worker, args=(w,)) for w in range(32)]
            began = time.monotonic()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            return args.writes / (time.monotonic() - began)

        for i in range(16):
            models.create_model(admin, f"perf-cost-{i:02d}")
            for _ in range(2):
                versions.create_version(admin, f"perf-cost-{i:02d}", "s3://perf/seed")
        variants = ("trigger_off", "outbox", "outbox_webhook")
        cost = {kind: {v: [] for v in variants} for kind in ("create", "transition")}
        hooks = []
        for r in range(args.rounds):
            for variant in variants:
                with db.engine.begin() as conn:
                    conn.exec_driver_sql("ALTER TABLE audit_events " + ("DISABLE" if variant == "trigger_off"
                                                                        else "ENABLE") + " TRIGGER audit_events_outbox")
                for hook in hooks:
                    webhooks.delete_webhook(admin, hook)
                hooks = [webhooks.create_webhook(admin, ["MODEL_VERSION_CREATED", "MODEL_VERSION_TRANSITIONED_STAGE"],
                                                 model_name=f"perf-cost-{i:02d}",
                                                 http=webhooks.HttpTarget(url=receiver.url)).id
                         for i in range(16)] if variant == "outbox_webhook" else []
                for kind in ("create", "transition"):
                    cost[kind][variant].append(run(kind, f"{r}-{variant}"))
        with db.engine.begin() as conn:
            conn.exec_driver_sql("ALTER TABLE audit_events ENABLE TRIGGER audit_events_outbox")
        results["write_cost_c32"] = {
            kind: {v: round(statistics.median(xs), 1) for v, xs in by.items()} for kind, by in cost.items()}
        for kind, by in results["write_cost_c32"].items():
            by["outbox_vs_off"] = round(by["outbox"] / by["trigger_off"], 3)
            by["outbox_webhook_vs_off"] = round(by["outbox_webhook"] / by["trigger_off"], 3)
        print("write cost", results["write_cost_c32"], flush=True)
        db.engine.dispose()
    drop_database(args.admin_url, args.database)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
