#!/usr/bin/env python3
"""Watcher benchmark (issue 12): long-poll watchers per host, old worker (gthread) vs new (gevent), one run.

One command: seed 1,100 models (3 versions each: version 2 in Production) into a fresh database, then for each
worker class start `registry serve --workers 2` (REGISTRY_WORKER_CLASS) and measure
* idle RSS of the whole service (master + workers);
* cached serving reads at c=32 (wrk, native current Production over models 1001..1100, warmed): the ordinary
  cost of the worker class;
* the watcher table: for 50 / 1,000 / 10,000 watchers on one model, and spread over 1,000 models, how many
  really wait (a request outstanding for a second: ``busy`` answers come back at once), ``busy`` answers during
  the hold, how long the promotion request took, and delivery p50/p99 (from sending the promotion to each
  watcher's new answer; spread: the promoted model's watchers, the others must not wake); the server's CPU
  from the promotion to the last delivery, per delivery (machine-load independent, unlike p99); database
  transactions in that time (pg_stat_database, the promotion's own included: constant when woken waiters
  share their reads);
* the same cached reads again while 10,000 watchers (over 1,000 models) wait, and the service's RSS then.
The watchers are a separate asyncio process (_watch_load.py). Run it on a quiet machine, and twice.
    PYTHONPATH=$PWD .venv/bin/python tests/perf/run_watchers.py --out perf-watchers.json
    PYTHONPATH=$PWD .venv/bin/python tests/perf/run_watchers.py --quick      # 50 and 1,000 watchers only
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helper modules beside this script

import seed  # noqa: E402
from _cli import run_main  # noqa: E402
from _cpu import tree_memory  # noqa: E402
from _report import fmt, git_describe, table  # noqa: E402
from _server import (ADMIN_HEADERS, ADMIN_TOKEN, HERE, PYTHON_BIN, PerfError, RegistryServer,  # noqa: E402
                     drop_database, free_port)
from _wrk import run_wrk, wrk_binary  # noqa: E402

WATCHED_MODELS = 1000          # models 1..1000 are watched
READ_MODELS = (1001, 100)      # models 1001..1100 are read by wrk (first index, count)
VERSIONS = 3
CLASSES = ("gthread", "gevent")  # old, new


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--admin-url", default=os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--database", default="registry_perf_watchers")
    p.add_argument("--counts", default="50,1000,10000")
    p.add_argument("--classes", default=",".join(CLASSES))
    p.add_argument("--read-seconds", type=float, default=8.0)
    p.add_argument("--quick", action="store_true", help="50 and 1,000 watchers, 4 s reads, no 10,000-waiter reads")
    p.add_argument("--out")
    args = p.parse_args(argv)
    if args.quick:
        args.counts, args.read_seconds = "50,1000", 4.0
    args.counts = [int(c) for c in args.counts.split(",")]
    args.classes = args.classes.split(",")
    return args


def service_rss_mib(pid: int) -> float:
    return round(sum(p["rss"] for p in tree_memory(pid)) / 2**20, 1)


class Bench:
    def __init__(self, args, db_url: str, workdir: Path):
        self.args, self.db_url, self.workdir = args, db_url, workdir
        self.wrk = wrk_binary()
        self.token: str | None = None

    def start(self, worker_class: str) -> RegistryServer:
        os.environ["REGISTRY_WORKER_CLASS"] = worker_class  # RegistryServer passes our environment on
        server = RegistryServer(self.db_url, free_port(), 2, self.workdir / f"server-{worker_class}.log")
        server.start(120)
        return server

    def reader_token(self, base: str) -> str:
        with requests.Session() as http:
            http.headers.update(ADMIN_HEADERS)
            answer = http.post(f"{base}/api/v1/users", json={"name": "perf-watcher"}, timeout=30)
            if answer.status_code not in (201, 409):
                raise PerfError(f"creating the watcher user: {answer.status_code} {answer.text[:200]}")
            answer = http.post(f"{base}/api/v1/tokens", json={"user": "perf-watcher"}, timeout=30)
            if answer.status_code != 201:
                raise PerfError(f"creating the watcher token: {answer.status_code} {answer.text[:200]}")
            return answer.json()["token"]

    def cached_reads(self, base: str, token: str, seconds: float) -> dict:
        first, count = READ_MODELS
        out = run_wrk(self.wrk, "serving.lua", base, 32, 2, seconds, 10,
                      ["native_stage", token, str(first), str(count), str(VERSIONS)])
        statuses = {int(k): v for k, v in out["statuses"].items()}
        errors = sum(v for k, v in statuses.items() if not 200 <= k < 300) + sum(out["errors"].values())
        return {"req_per_s": round(out["requests"] / (out["duration_us"] / 1e6), 1), "errors": errors,
                "p50_ms": round(out["latency_us"]["p50"] / 1000, 2), "p99_ms": round(out["latency_us"]["p99"] / 1000, 2)}

    def targets(self, base: str, token: str, models: list[str]) -> tuple[Path, dict[str, int]]:
        """Each model's current Production ETag (the watchers' If-None-Match) and version."""
        found, versions = [], {}
        with requests.Session() as http:
            http.headers["Authorization"] = f"Bearer {token}"
            for name in models:
                answer = http.get(f"{base}/api/v1/models/{name}/stages/Production", timeout=30)
                if answer.status_code != 200:
                    raise PerfError(f"reading {name}: {answer.status_code} {answer.text[:200]}")
                found.append([name, answer.headers["ETag"]])
                versions[name] = answer.json()["version"]
        path = self.workdir / "targets.json"
        path.write_text(json.dumps(found))
        return path, versions

    def load(self, server: RegistryServer, token: str, targets: Path, watchers: int, *extra: str,
             timeout: float = 180) -> dict:
        command = [str(PYTHON_BIN), str(HERE / "_watch_load.py"), "--port", str(server.port), "--token", token,
                   "--targets", str(targets), "--watchers", str(watchers), *extra]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return {"watchers": watchers, "timed_out": True}
        if done.returncode != 0:
            raise PerfError(f"the load generator failed: {done.stderr[-2000:]}")
        return json.loads(done.stdout)

    def watcher_round(self, server: RegistryServer, token: str, watchers: int, spread: bool) -> dict:
        models = [seed.model_name(i) for i in range(1, (min(watchers, WATCHED_MODELS) if spread else 1) + 1)]
        if not spread:
            models = [seed.model_name(1 + watchers % WATCHED_MODELS)]  # a different model per round
        targets, versions = self.targets(server.base_url, token, models)
        promoted = models[0]
        version = 3 if versions[promoted] == 2 else 2
        # Time enough for the old worker to show its busy answers, and for 10,000 connections to settle.
        settle = "90" if watchers > 1000 else "10"
        pids = ",".join(str(p.pid) for p in psutil.Process(server.process.pid).children(recursive=True))
        result = self.load(server, token, targets, watchers, "--hold", "3", "--settle-timeout", settle,
                           "--promote", promoted, str(version), "--promote-token", ADMIN_TOKEN,
                           "--db-url", self.db_url, "--server-pids", pids)
        result["models"] = len(models)
        return result

    def waiting_reads(self, server: RegistryServer, token: str, watchers: int) -> dict:
        models = [seed.model_name(i) for i in range(1, WATCHED_MODELS + 1)]
        targets, _ = self.targets(server.base_url, token, models)
        ready = self.workdir / "ready.json"
        ready.unlink(missing_ok=True)

        linger = self.args.read_seconds + 15
        pids = ",".join(str(p.pid) for p in psutil.Process(server.process.pid).children(recursive=True))
        command = [str(PYTHON_BIN), str(HERE / "_watch_load.py"), "--port", str(server.port), "--token", token,
                   "--targets", str(targets), "--watchers", str(watchers), "--hold", "2", "--settle-timeout", "90",
                   "--server-pids", pids,
                   "--ready-file", str(ready), "--linger", str(linger)]
        load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            deadline = time.monotonic() + 180
            while not ready.exists():
                if load.poll() is not None or time.monotonic() > deadline:
                    raise PerfError(f"the load generator never got ready: {load.stderr.read()[-2000:]}")
                time.sleep(0.2)
            time.sleep(0.2)
            state = json.loads(ready.read_text())
            rss = service_rss_mib(server.process.pid)
            reads = self.cached_reads(server.base_url, token, self.args.read_seconds)
        finally:
            load.kill()
            load.wait()
        return {"watchers": state, "rss_mib": rss, "reads": reads}

    def fresh_server(self, worker_class: str):
        """A new server for each round: the watchers of a round close their connections at its end, but a
        server notices that only when their wait is over, so they would still hold places in the next round."""
        server = self.start(worker_class)
        if self.token is None:
            self.token = self.reader_token(server.base_url)
        self.cached_reads(server.base_url, self.token, 2)  # warm every worker's cache for the read set
        return server

    def run_class(self, worker_class: str) -> dict:
        server = self.fresh_server(worker_class)
        try:
            found = {"idle_rss_mib": service_rss_mib(server.process.pid),
                     "reads_c32": self.cached_reads(server.base_url, self.token, self.args.read_seconds),
                     "rounds": []}
        finally:
            server.stop()
        for spread in (False, True):
            for watchers in self.args.counts:
                server = self.fresh_server(worker_class)
                try:
                    row = self.watcher_round(server, self.token, watchers, spread)
                finally:
                    server.stop()
                row["spread"] = spread
                found["rounds"].append(row)
                print(f"  {worker_class:7} {'spread' if spread else 'one':6} {watchers:6}: {json.dumps(row)}",
                      flush=True)
        if max(self.args.counts) >= 10_000 and not self.args.quick:
            server = self.fresh_server(worker_class)
            try:
                found["with_10000_waiting"] = self.waiting_reads(server, self.token, 10_000)
            finally:
                server.stop()
            print(f"  {worker_class:7} reads while 10,000 wait: {json.dumps(found['with_10000_waiting'])}",
                  flush=True)
        return found


def report(results: dict) -> str:
    lines = []
    rows = []
    for worker_class, found in results["classes"].items():
        for row in found["rounds"]:
            d = row.get("delivery_ms") or {}
            if row.get("timed_out"):
                rows.append([worker_class, "1,000 models" if row["spread"] else "one model", f"{row['watchers']:,}",
                             *["timed out"] + ["-"] * 10])
                continue
            rows.append([worker_class, "1,000 models" if row["spread"] else "one model", f"{row['watchers']:,}",
                         f"{row['really_waiting']:,}/{row.get('accepted_by_server') or 0:,}", f"{row['busy_in_hold']:,}", fmt(row.get("promotion_ms"), 0),
                         f"{row.get('delivered', 0)}/{row.get('should_deliver', 0)}",
                         fmt(d.get("p50"), 0), fmt(d.get("p99"), 0),
                         fmt(1e6 * row["server_cpu_s"] / max(1, row.get("delivered", 0)), 0)
                         if row.get("server_cpu_s") is not None else "n/a", str(row.get("spurious_wakes")),
                         str(row.get("db_transactions")), str(row["errors"] + row.get("connect_failed", 0))])
    lines.append(table(["worker", "watching", "watchers", "really waiting/accepted", "busy in 3 s", "promotion ms",
                        "delivered", "p50 ms", "p99 ms", "server cpu us/delivery", "others woken", "db xacts", "errors"], rows, left=2))
    rows = []
    for worker_class, found in results["classes"].items():
        base = found["reads_c32"]
        waiting = found.get("with_10000_waiting")
        rows.append([worker_class, fmt(found["idle_rss_mib"], 1), fmt(base["req_per_s"], 0), fmt(base["p99_ms"], 1),
                     fmt(waiting["reads"]["req_per_s"], 0) if waiting else "n/a",
                     f"{waiting['reads']['req_per_s'] / base['req_per_s']:.0%}" if waiting else "n/a",
                     fmt(waiting["reads"]["p99_ms"], 1) if waiting else "n/a",
                     f"{waiting['watchers']['really_waiting']:,}/{waiting['watchers'].get('accepted_by_server') or 0:,}"
                     if waiting else "n/a",
                     fmt(waiting["rss_mib"], 1) if waiting else "n/a"])
    lines.append("")
    lines.append(table(["worker", "idle RSS MiB", "cached reads/s c=32", "p99 ms", "reads/s, 10k waiting",
                        "kept", "p99 ms", "really waiting/accepted", "RSS MiB, 10k waiting"], rows))
    return "\n".join(lines)


def run(args) -> int:
    print(f"seeding {WATCHED_MODELS + READ_MODELS[1]} models x {VERSIONS} versions into {args.database}", flush=True)
    db_url = seed.prepare_registry_db(args.admin_url, args.database)
    seed.seed_registry(db_url, WATCHED_MODELS + READ_MODELS[1], VERSIONS)
    results = {"git": git_describe(), "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "counts": args.counts, "classes": {}}
    try:
        with tempfile.TemporaryDirectory(prefix="perf-watchers-") as tmp:
            bench = Bench(args, db_url, Path(tmp))
            for worker_class in args.classes:
                print(f"worker class {worker_class}", flush=True)
                results["classes"][worker_class] = bench.run_class(worker_class)
    finally:
        drop_database(args.admin_url, args.database)
    print()
    print(report(results))
    if args.out:
        Path(args.out).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(parse_args, run, None, "the servers were stopped and the benchmark database dropped"))
