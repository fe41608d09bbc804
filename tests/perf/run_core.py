#!/usr/bin/env python3
"""Benchmark the core registry paths against the real `registry serve --workers 2`.

One command: recreate a dedicated database, start the server on a free loopback port, seed models and
versions through the API, run each scenario with wrk (warm-up, then measurement) at each concurrency,
check version numbering after every create run, stop the server, print a table and write JSON (--out).
See tests/perf/README.md. Run with the project's venv: .venv/bin/python tests/perf/run_core.py --out r.json
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from contextlib import closing
from datetime import datetime, timezone
from pathlib import Path

import psutil
import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helper modules beside this script

from _checks import check_versions  # noqa: E402
from _cpu import CpuMeter, find_postmaster  # noqa: E402
from _cli import run_main  # noqa: E402
from _server import (ADMIN_TOKEN, PerfError, RegistryServer, database_url, drop_database, free_port,  # noqa: E402
                     recreate_database, safe_database_name, seed)
import _report  # noqa: E402
from _report import CPU_LEGEND, fmt, git_describe, table, wrk_threads  # noqa: E402
from _wrk import run_wrk, wrk_binary, wrk_version  # noqa: E402

SCENARIOS = {
    "get_version": ("GET /api/v1/models/{name}/versions/{v}", "get_version.lua"),
    "create_version": ("POST /api/v1/models/{name}/versions", "create_version.lua"),
}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", type=Path, help="write the results as JSON to this file")
    p.add_argument("--duration", type=float, default=10.0, help="seconds measured per scenario and concurrency")
    p.add_argument("--warmup", type=float, default=2.0, help="seconds of unmeasured load before each measurement")
    p.add_argument("--concurrency", default="1,16", help="comma-separated client connection counts")
    p.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated subset of: "
                   + ", ".join(SCENARIOS))
    p.add_argument("--models", type=int, default=4, help="models to seed")
    p.add_argument("--versions-per-model", type=int, default=75, help="versions seeded per model")
    p.add_argument("--workers", type=int, default=2, help="registry serve --workers")
    p.add_argument("--admin-url", default=os.environ.get("PERF_ADMIN_URL",
                                                         "postgresql://postgres@127.0.0.1:5432/postgres"),
                   help="libpq URL of a maintenance database on the PostgreSQL server (env PERF_ADMIN_URL)")
    p.add_argument("--database", default="registry_perf",
                   help="benchmark database: DROPPED and recreated on every run (its name must contain 'perf')")
    p.add_argument("--keep-db", action="store_true", help="leave the benchmark database in place at the end")
    p.add_argument("--timeout", type=float, default=5.0, help="wrk per-request timeout, seconds")
    p.add_argument("--ready-timeout", type=float, default=90.0, help="seconds to wait for /readyz")
    p.add_argument("--log", type=Path, help="server log file; a temporary file (path printed) when omitted")
    args = p.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(SCENARIOS)
    if unknown:
        p.error(f"unknown scenarios {sorted(unknown)}; choose from {sorted(SCENARIOS)}")
    if not args.concurrency or min(args.concurrency) < 1:
        p.error("--concurrency needs positive integers")
    if args.duration <= 0 or args.warmup < 0 or args.models < 1 or args.versions_per_model < 1:
        p.error("--duration must be > 0, --warmup >= 0, --models and --versions-per-model >= 1")
    # The database is dropped with FORCE: refuse names that could be someone's real data.
    if not safe_database_name(args.database):
        p.error(f"refusing to drop and recreate database {args.database!r}: use a plain name containing 'perf'")
    return args


def summarise(name: str, connections: int, wrk: dict, cpu: dict) -> dict:
    return {"scenario": name, "endpoint": SCENARIOS[name][0], "concurrency": connections,
            "wrk_threads": wrk_threads(connections), **_report.summarise(wrk, cpu)}


def print_table(results: list[dict]) -> None:
    header = ["scenario", "conc", "requests", "errors", "req/s", "p50 ms", "p99 ms",
              "server cpu", "pg cpu", "wrk cpu", "machine"]
    rows = []
    for r in results:
        c = r["cpu"]
        rows.append([r["scenario"], str(r["concurrency"]), str(r["requests"]), str(r["errors"]),
                     f"{r['req_per_s']:.1f}", f"{r['latency_ms']['p50']:.2f}", f"{r['latency_ms']['p99']:.2f}",
                     fmt(c["server_cores"]), fmt(c["postgres_cores"]), fmt(c["client_cores"]),
                     f"{fmt(c['machine_busy_cores'])}/{c['machine_cores']}"])
    print(table(header, rows))
    print(CPU_LEGEND)


def describe_check(check: dict, accepted: int, slack: int) -> list[str]:
    lines = []
    for r in check["per_model"]:
        lines.append(f"  {r['model']}: {r['versions']} versions, distinct {r['distinct']}, range {r['min']}..{r['max']},"
                     f" last_version {r['last_version']} -> {'OK' if r['ok'] else 'FAIL'}")
    lines.append(f"  total {check['total_versions']} versions; 2xx creates seen by clients (incl. seeding and"
                 f" warm-up): {accepted}; allowed extra from requests in flight when wrk stopped: {slack}"
                 f" -> {'OK' if check['count_ok'] else 'FAIL'}")
    return lines


def run(args: argparse.Namespace) -> int:
    wrk = wrk_binary()
    models = [f"perf-model-{i}" for i in range(1, args.models + 1)]
    db_url = database_url(args.admin_url, args.database)
    log_path = args.log or Path(tempfile.mkstemp(prefix="registry-perf-", suffix=".log")[1])
    meta = {
        "started_at": datetime.now(timezone.utc).isoformat(), "git": git_describe(),
        "host": {"cpus": psutil.cpu_count(), "load_avg_at_start": os.getloadavg(), "platform": platform.platform(),
                 "python": platform.python_version()},
        "wrk": wrk_version(wrk), "database": args.database, "workers": args.workers,
        "server_env": {k: v for k, v in os.environ.items() if k.startswith("REGISTRY_")},
        "seed": {"models": models, "versions_per_model": args.versions_per_model},
        "duration_s": args.duration, "warmup_s": args.warmup, "concurrency": args.concurrency,
    }
    recreate_database(args.admin_url, args.database)
    print(f"database {args.database} recreated on {args.admin_url.rsplit('@', 1)[-1]}; server log: {log_path}")
    server = RegistryServer(db_url, free_port(), args.workers, log_path)
    results, checks, failures = [], [], []
    try:
        server.start(args.ready_timeout)
        print(f"registry serve --workers {args.workers} ready at {server.base_url} (pid {server.process.pid})")
        started = time.monotonic()
        seed(server.base_url, models, args.versions_per_model)
        print(f"seeded {len(models)} models x {args.versions_per_model} versions in {time.monotonic() - started:.1f} s")
        with closing(psycopg2.connect(db_url, connect_timeout=10)) as probe, probe.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            postmaster = find_postmaster(cursor.fetchone()[0])
        meter = CpuMeter(server.process.pid, postmaster, args.database)
        accepted, slack = len(models) * args.versions_per_model, 0
        for name in args.scenarios:
            script = SCENARIOS[name][1]
            for connections in args.concurrency:
                threads = wrk_threads(connections)
                runs = [("warmup", args.warmup)] if args.warmup > 0 else []
                for phase, seconds in runs + [("measure", args.duration)]:
                    tag = f"{name}-c{connections}-{phase}-{int(time.time())}"
                    script_args = [",".join(models), str(args.versions_per_model) if name == "get_version" else tag,
                                   ADMIN_TOKEN]
                    if phase == "measure":
                        meter.start()
                    try:
                        out = run_wrk(wrk, script, server.base_url, connections, threads, seconds, args.timeout,
                                      script_args)
                    finally:
                        cpu = meter.stop() if phase == "measure" else None
                    if server.process.poll() is not None:
                        raise PerfError(f"server exited during {name} c={connections}; log:\n{server.log_tail()}")
                    if name == "create_version":
                        accepted += sum(v for k, v in out["statuses"].items() if 200 <= int(k) < 300)
                        e = out["errors"]
                        slack += connections + e["read"] + e["write"] + e["timeout"]
                summary = summarise(name, connections, out, cpu)
                results.append(summary)
                print(f"  {name:<15} c={connections:<3} {summary['requests']:>7} requests  {summary['errors']} errors"
                      f"  {summary['req_per_s']:>8.1f} req/s  p50 {summary['latency_ms']['p50']:.2f} ms"
                      f"  p99 {summary['latency_ms']['p99']:.2f} ms")
                if summary["errors"]:
                    failures.append(f"{name} c={connections}: {summary['errors']} errors "
                                    f"(statuses {summary['statuses']}, socket {summary['socket_errors']})")
                if name == "create_version":
                    check = check_versions(db_url, models)
                    check["count_ok"] = accepted <= check["total_versions"] <= accepted + slack
                    check.update(after=f"{name} c={connections}", accepted_creates=accepted, in_flight_slack=slack)
                    checks.append(check)
                    print(f"version numbering check after {name} c={connections}:")
                    print("\n".join(describe_check(check, accepted, slack)))
                    if not (check["ok"] and check["count_ok"]):
                        failures.append(f"version numbering check failed after {name} c={connections}")
    finally:
        server.stop()
        if not args.keep_db:
            drop_database(args.admin_url, args.database)
    print()
    print_table(results)
    if args.out:
        args.out.write_text(json.dumps({"meta": meta, "results": results, "version_checks": checks,
                                        "failures": failures}, indent=2) + "\n")
        print(f"\nresults written to {args.out}")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def main(argv: list[str] | None = None) -> int:
    return run_main(parse_args, run, argv, "server stopped and benchmark database dropped (unless --keep-db)")


if __name__ == "__main__":
    sys.exit(main())
