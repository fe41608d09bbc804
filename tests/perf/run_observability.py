#!/usr/bin/env python3
"""The cost of metrics and request logging on cached serving reads (issue 15: target under 5%).

Four `registry serve --workers 2` on one seeded database, side by side, all at REGISTRY_LOG_LEVEL=INFO with their
output in a file (as a container's stderr would be):
  default  as shipped: every metric, and a JSON log line per request except the replayed cache hits
           (REGISTRY_REQUEST_LOG=uncached);
  all      every metric, and a log line for every request (REGISTRY_REQUEST_LOG=all);
  metrics  every metric, no request lines (REGISTRY_REQUEST_LOG=off);
  off      neither (REGISTRY_METRICS=0, REGISTRY_REQUEST_LOG=off; request ids stay).
wrk alternates between them (each round in a rotated order, the other three paused) at c=32 over keep-alive connections, on
the two hottest cached reads: native GET /api/v1/models/{name}/stages/Production and MLflow POST
get-latest-versions. Reported per server: req/s, latency p50/p99 and the server's CPU per request (the steadiest
figure on a shared machine), as medians over the rounds, with ratios to "off".

    .venv/bin/python tests/perf/run_observability.py                 # 3 rounds x 10 s per read and server
    .venv/bin/python tests/perf/run_observability.py --rounds 1 --duration 3   # smoke run
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import run_main  # noqa: E402
from _report import fmt, git_describe, table  # noqa: E402
from _server import (ADMIN_HEADERS, REPO, PerfError, RegistryServer, database_url, drop_database,  # noqa: E402
                     free_port, recreate_database, seed)
from _wrk import run_wrk, wrk_binary, wrk_version  # noqa: E402

DB_NAME = "registry_perf_observability"
KINDS = ("native_stage", "mlflow_latest")
SETTINGS = {
    "default": {"REGISTRY_LOG_LEVEL": "INFO"},
    "all": {"REGISTRY_LOG_LEVEL": "INFO", "REGISTRY_REQUEST_LOG": "all"},
    "metrics": {"REGISTRY_LOG_LEVEL": "INFO", "REGISTRY_REQUEST_LOG": "off"},
    "off": {"REGISTRY_LOG_LEVEL": "INFO", "REGISTRY_METRICS": "0", "REGISTRY_REQUEST_LOG": "off"},
}


class ConfiguredServer(RegistryServer):
    def __init__(self, *args, extra_env: dict[str, str]):
        super().__init__(*args)
        self.extra_env = extra_env

    def command(self) -> list[str]:
        # The registry command of the Python running this script (a worktree may have no .venv of its own).
        return [str(Path(sys.executable).parent / "registry"), *super().command()[1:]]

    def environment(self) -> dict[str, str]:
        env = super().environment()
        env.update(self.extra_env)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))  # this checkout
        return env


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--admin-url", default=os.environ.get("PERF_ADMIN_URL",
                                                         "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--models", type=int, default=100)
    p.add_argument("--connections", type=int, default=32)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--out", help="write the JSON result here")
    return p.parse_args(argv)


def tree_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a server: its process and all its children."""
    total = 0.0
    try:
        root = psutil.Process(pid)
        for process in [root, *root.children(recursive=True)]:
            try:
                t = process.cpu_times()
                total += t.user + t.system
            except psutil.Error:
                pass
    except psutil.Error:
        pass
    return total


def prepare(base: str, models: list[str]) -> str:
    seed(base, models, 1)
    with requests.Session() as http:
        http.headers.update(ADMIN_HEADERS)
        for name in models:
            answer = http.post(f"{base}/api/v1/models/{name}/versions/1/transition", json={"stage": "Production"},
                               timeout=30)
            if answer.status_code != 200:
                raise PerfError(f"promote {name}: HTTP {answer.status_code} {answer.text[:200]}")
        http.post(f"{base}/api/v1/users", json={"name": "perf-obs-reader"}, timeout=30)
        answer = http.post(f"{base}/api/v1/tokens", json={"user": "perf-obs-reader"}, timeout=30)
        if answer.status_code != 201:
            raise PerfError(f"reader token: HTTP {answer.status_code} {answer.text[:200]}")
        return answer.json()["token"]


def run(args) -> int:
    binary = wrk_binary()
    recreate_database(args.admin_url, DB_NAME)
    workdir = Path(tempfile.mkdtemp(prefix="perf-observability-"))
    url = database_url(args.admin_url, DB_NAME)
    servers = {label: ConfiguredServer(url, free_port(), 2, workdir / f"{label}.log", extra_env=env)
               for label, env in SETTINGS.items()}
    results: dict[str, dict[str, list[dict]]] = {kind: {label: [] for label in servers} for kind in KINDS}
    try:
        servers["default"].start(ready_timeout=120)  # migrates first, alone
        for label in servers:
            if label != "default":
                servers[label].start(ready_timeout=120)
        models = [f"perf-m-{i:06d}" for i in range(1, args.models + 1)]
        token = prepare(servers["default"].base_url, models)
        # That server migrated the database and wrote the models: start it afresh, so that the four servers
        # differ in their settings only (it had measured up to 10% slower than its twin "metrics" without this).
        servers["default"].stop()
        servers["default"].start(ready_timeout=120)
        for kind in KINDS:
            for server in servers.values():  # warm every worker's caches and code paths
                run_wrk(binary, "serving.lua", server.base_url, args.connections, 2, 3, 30,
                        [kind, token, "1", str(args.models), "1"])
            labels = list(servers)
            for round_no in range(args.rounds):
                # Each round in another order (no server always follows the one that wrote a log line per
                # request), and the others paused while one is measured: it has the machine to itself.
                for label in labels[round_no % len(labels):] + labels[:round_no % len(labels)]:
                    server = servers[label]
                    time.sleep(1)
                    with ExitStack() as others:
                        for other in servers.values():
                            if other is not server:
                                others.enter_context(other.paused())
                        cpu_before = tree_cpu(server.process.pid)
                        wrk = run_wrk(binary, "serving.lua", server.base_url, args.connections, 2, args.duration,
                                      30, [kind, token, "1", str(args.models), "1"])
                        cpu = tree_cpu(server.process.pid) - cpu_before
                    statuses = {int(k): v for k, v in wrk["statuses"].items()}
                    if set(statuses) != {200}:
                        raise PerfError(f"{label} {kind}: statuses {statuses} ({wrk.get('first_error')})")
                    seconds = wrk["duration_us"] / 1e6
                    results[kind][label].append({
                        "req_per_s": wrk["requests"] / seconds, "p50_ms": wrk["latency_us"]["p50"] / 1000,
                        "p99_ms": wrk["latency_us"]["p99"] / 1000,
                        "cpu_us_per_request": cpu / wrk["requests"] * 1e6, "requests": wrk["requests"]})
        log_lines = sum(1 for _ in open(servers["default"].log_path, errors="replace"))
    finally:
        for server in servers.values():
            server.stop()
        drop_database(args.admin_url, DB_NAME)

    summary = {"git": git_describe(), "wrk": wrk_version(binary), "connections": args.connections,
               "duration_s": args.duration, "rounds": args.rounds, "models": args.models,
               "on_log_lines": log_lines, "kinds": {}}
    rows = []
    for kind in KINDS:
        medians = {label: {m: statistics.median(r[m] for r in runs) for m in runs[0] if m != "requests"}
                   for label, runs in results[kind].items()}
        off = medians["off"]
        ratios = {label: {m: medians[label][m] / off[m] for m in off} for label in medians if label != "off"}
        summary["kinds"][kind] = {"medians": medians, "over_off": ratios, "runs": results[kind]}
        for label, m in medians.items():
            rows.append([kind, label, fmt(m["req_per_s"], 0), fmt(m["p50_ms"]), fmt(m["p99_ms"]),
                         fmt(m["cpu_us_per_request"], 0)])
        for label, r in ratios.items():
            rows.append([kind, f"{label}/off", fmt(r["req_per_s"], 3), fmt(r["p50_ms"], 3), fmt(r["p99_ms"], 3),
                         fmt(r["cpu_us_per_request"], 3)])
    print(f"metrics + request log, on vs off: c={args.connections}, {args.rounds} x {args.duration:g} s per kind "
          f"and server (medians), 2 workers each; {log_lines} log lines written by 'default'")
    print(table(["read", "server", "req/s", "p50 ms", "p99 ms", "server CPU us/req"], rows, left=2))
    for kind in KINDS:
        for label, r in summary["kinds"][kind]["over_off"].items():
            print(f"{kind}: server CPU per request {(r['cpu_us_per_request'] - 1) * 100:+.1f}%, req/s "
                  f"{(r['req_per_s'] - 1) * 100:+.1f}% with {label!r}"
                  " (target: under 5%)")
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(parse_args, run, None, "the servers were stopped and the database dropped"))
