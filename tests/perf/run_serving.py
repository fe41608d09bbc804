#!/usr/bin/env python3
"""Serving benchmark (issue 5): `registry serve --workers 2` against a stock `mlflow server`, interleaved.

One command: seed identical data into a registry database and an MLflow database (a large and a small
size), start our server, MLflow (default settings) and a hello-world Flask app under our gunicorn settings,
then for every scenario and concurrency run each server in turn (ours, MLflow, ours, MLflow, ...) with wrk
over keep-alive connections, measuring req/s, latency, errors and CPU; check the write bursts in SQL; print
tables, ratios and the issue's targets; write JSON (--out). See tests/perf/README.md.
    .venv/bin/python tests/perf/run_serving.py --quick                  # smoke run, a few minutes
    .venv/bin/python tests/perf/run_serving.py --out perf-serving.json  # the full run, on a quiet machine
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack, closing
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

import psutil
import psycopg2
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helper modules beside this script

import _checks  # noqa: E402
import _report  # noqa: E402
import seed  # noqa: E402
from _cpu import CpuMeter, machine_busy_seconds, postmaster_for, tree_memory  # noqa: E402
from _report import CPU_LEGEND, fmt, git_describe, table, wrk_threads  # noqa: E402
from _cli import run_main  # noqa: E402
from _server import (ADMIN_HEADERS, ADMIN_TOKEN, HERE, PYTHON_BIN, HelloServer, MlflowServer,  # noqa: E402
                     PerfError, RegistryServer, Service, drop_database, free_port, safe_database_name)
from _wrk import run_wrk, wrk_binary, wrk_version  # noqa: E402

HOT_MODELS = 4        # create_version spreads over models 1..4
PROMOTE_MODEL = 5     # promote hammers model 5
READER = "perf-reader"
QUICK = {"models": 2000, "small_models": 100, "duration": 2, "warmup": 1, "rounds": 1, "server_warmup": 1}
FULL = {"models": 10_000, "small_models": 100, "duration": 10, "warmup": 2, "rounds": 2, "server_warmup": 3}


@dataclass(frozen=True)
class Target:
    label: str            # how the row is named in the tables
    server: str           # key of the running server
    kind: str             # the request generator in serving.lua
    auth: str | None      # "read" / "write" token of our server, None for servers without authentication
    models: str = "all"   # "all", "hot" (create) or "promote"
    per_version: bool = False
    optional: bool = False  # skipped with a note if it answers no 2xx at all (a route still being written)


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    targets: tuple[Target, ...]


def _pair(native: str, mlflow: str, auth: str, **kw) -> tuple[Target, Target]:
    return Target("ours", "ours", native, auth, **kw), Target("mlflow", "mlflow", mlflow, None, **kw)


HELLO = Target("hello", "hello", "hello", None)
SCENARIOS = [
    Scenario("prod_fetch", "current Production: ours GET /api/v1/models/{name}/stages/Production, MLflow POST"
             " registered-models/get-latest-versions; hello = GET / of the hello-world app",
             (*_pair("native_stage", "mlflow_latest", "read"), HELLO)),
    Scenario("prod_fetch_mlflow_api", "current Production, both on POST /api/2.0/mlflow/registered-models/"
             "get-latest-versions", (Target("ours", "ours", "mlflow_latest", "read", optional=True),
                                     Target("mlflow", "mlflow", "mlflow_latest", None))),
    Scenario("alias_fetch", "alias: ours GET /api/v1/models/{name}/aliases/champion, MLflow GET registered-models/"
             "alias?name=&alias=champion", (*_pair("native_alias", "mlflow_alias", "read"), HELLO)),
    Scenario("alias_fetch_mlflow_api", "alias, both on GET /api/2.0/mlflow/registered-models/alias",
             (Target("ours", "ours", "mlflow_alias", "read", optional=True),
              Target("mlflow", "mlflow", "mlflow_alias", None))),
    Scenario("get_version", "one version: ours GET /api/v1/models/{name}/versions/{v}, MLflow GET model-versions/get",
             _pair("native_version", "mlflow_version", "read", per_version=True)),
    Scenario("create_version", f"create a version on {HOT_MODELS} hot models: ours POST /api/v1/models/{{name}}/"
             "versions, MLflow POST model-versions/create", _pair("native_create", "mlflow_create", "write",
                                                                 models="hot")),
    Scenario("promote", "versions of one model to Production with archive_existing_versions: ours POST .../versions/"
             "{v}/transition, MLflow POST model-versions/transition-stage",
             _pair("native_promote", "mlflow_promote", "write", models="promote", per_version=True)),
    Scenario("search_run_id", "versions by run_id: ours GET /api/v1/versions?run_id=, MLflow GET model-versions/"
             "search?filter=run_id='...'; -small = the same on the small data set",
             (*_pair("native_run_id", "mlflow_run_id", "read", per_version=True),
              Target("ours-small", "ours_small", "native_run_id", "read", per_version=True),
              Target("mlflow-small", "mlflow_small", "mlflow_run_id", None, per_version=True))),
    Scenario("search_prefix", "models by name prefix (<= 10 matches): ours GET /api/v1/models?name_prefix=, MLflow"
             " GET registered-models/search?filter=name LIKE 'prefix%'; -small = the small data set",
             (*_pair("native_prefix", "mlflow_prefix", "read"),
              Target("ours-small", "ours_small", "native_prefix", "read"),
              Target("mlflow-small", "mlflow_small", "mlflow_prefix", None))),
]
SCENARIO_NAMES = [s.name for s in SCENARIOS]


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the None of options whose default comes from --quick or the full preset."""

    def _get_help_string(self, action):
        return action.help if action.default is None else super()._get_help_string(action)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=_Help)
    p.add_argument("--quick", action="store_true", help=f"smoke-run presets {QUICK} (explicit options win)")
    p.add_argument("--out", type=Path, help="write the results as JSON to this file")
    # wrk takes whole seconds.
    p.add_argument("--duration", type=int, help=f"seconds measured per run (default {FULL['duration']})")
    p.add_argument("--warmup", type=int, help=f"seconds of unmeasured load before each run, 0 for none"
                   f" (default {FULL['warmup']})")
    p.add_argument("--server-warmup", type=int, help=f"seconds of load per read endpoint on every server once they"
                   f" are up: first requests are slow (lazy imports, pools, caches) (default {FULL['server_warmup']})")
    p.add_argument("--rounds", type=int, help=f"times each target runs per scenario and concurrency, interleaved"
                   f" A,B,A,B (default {FULL['rounds']}); tables show the median over rounds")
    p.add_argument("--concurrency", default="1,8,32", help="comma-separated wrk connection counts")
    p.add_argument("--scenarios", default=",".join(SCENARIO_NAMES), help="comma-separated subset of: "
                   + ", ".join(SCENARIO_NAMES))
    p.add_argument("--models", type=int, help=f"models in the large data set (default {FULL['models']})")
    p.add_argument("--small-models", type=int, help=f"models in the small data set (default {FULL['small_models']})")
    p.add_argument("--versions", type=int, default=10, help="versions per model, both data sets")
    p.add_argument("--workers", type=int, default=2, help="registry serve --workers, and the hello app's workers")
    p.add_argument("--read-as", choices=["reader", "admin"], default="reader",
                   help="token for our read scenarios: a plain user with the default registry-wide READ, or the"
                        " admin (writes always use the admin token)")
    p.add_argument("--admin-url", default=os.environ.get("PERF_ADMIN_URL",
                                                         "postgresql://postgres@127.0.0.1:5432/postgres"),
                   help="libpq URL of a maintenance database on the PostgreSQL server (env PERF_ADMIN_URL)")
    p.add_argument("--db-prefix", default="perf_serving", help="databases registry_<p>, mlflow_<p>, registry_<p>"
                   "_small, mlflow_<p>_small: DROPPED and recreated on every run")
    p.add_argument("--keep-db", action="store_true", help="leave the benchmark databases in place at the end")
    p.add_argument("--timeout", type=float, default=10.0, help="wrk per-request timeout, seconds")
    p.add_argument("--ready-timeout", type=float, default=240.0, help="seconds to wait for each server to be ready")
    p.add_argument("--cold-seconds", type=int, default=2,
                   help="our cached reads are also measured cold (target 'ours-cold'; hello-world as 'hello-cold'):"
                        " fresh workers (SIGHUP), no warm-up, this many seconds, so that nearly every request is the"
                        " first read of its model in its worker; 0 for no cold runs")
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    args.scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = set(args.scenarios) - set(SCENARIO_NAMES)
    if unknown:
        p.error(f"unknown scenarios {sorted(unknown)}; choose from {SCENARIO_NAMES}")
    if not args.concurrency or min(args.concurrency) < 1:
        p.error("--concurrency needs positive integers")
    if args.duration <= 0 or args.warmup < 0 or args.rounds < 1 or args.versions < 1:
        p.error("--duration must be > 0, --warmup >= 0, --rounds and --versions >= 1")
    if not (PROMOTE_MODEL <= args.models <= 999_999 and 1 <= args.small_models <= args.models):
        p.error(f"--models must be {PROMOTE_MODEL}..999999 and --small-models 1..--models")
    if not safe_database_name(f"registry_{args.db_prefix}_small"):
        p.error(f"--db-prefix {args.db_prefix!r}: use a plain name containing 'perf'")
    return args


# --- Setup ---------------------------------------------------------------------------------------------------

@dataclass
class Running:
    service: Service
    database: str | None = None
    db_url: str | None = None
    models: int = 0
    versions: int = 0
    mlflow: bool = False
    postmaster: psutil.Process | None = None


def prepare_databases(args, names: dict[str, str]) -> dict:
    """Recreate, migrate and seed the four databases; returns the timings."""
    timings = {}
    for key, models in (("ours", args.models), ("mlflow", args.models), ("ours_small", args.small_models),
                        ("mlflow_small", args.small_models)):
        started = time.monotonic()
        if key.startswith("mlflow"):
            url = seed.prepare_mlflow_db(args.admin_url, names[key])
            migrated = time.monotonic() - started
            result = seed.seed_mlflow(url, models, args.versions)
        else:
            url = seed.prepare_registry_db(args.admin_url, names[key])
            migrated = time.monotonic() - started
            result = seed.seed_registry(url, models, args.versions)
        timings[key] = {"database": names[key], "schema_s": round(migrated, 2), **result}
        print(f"  {names[key]:<28} schema {migrated:5.1f} s, seeded {models} x {args.versions} versions in"
              f" {result['total_s']:5.1f} s {result['seconds']}")
    return timings


def make_reader(base_url: str) -> str:
    """A plain user (the migration grants every user READ registry-wide) and a token for it."""
    with requests.Session() as http:
        http.headers.update(ADMIN_HEADERS)
        answer = http.post(f"{base_url}/api/v1/users", json={"name": READER}, timeout=30)
        if answer.status_code not in (201, 409):
            raise PerfError(f"creating user {READER}: HTTP {answer.status_code} {answer.text[:300]}")
        answer = http.post(f"{base_url}/api/v1/tokens", json={"user": READER, "description": "perf"}, timeout=30)
        if answer.status_code != 201:
            raise PerfError(f"creating a token for {READER}: HTTP {answer.status_code} {answer.text[:300]}")
        return answer.json()["token"]


def explain(running: dict[str, Running], key: str, token: str, args) -> dict:
    """Plans of our SQL for each read endpoint; and MLflow's run_id lookup on the same data (hand-written)."""
    i, v = PROMOTE_MODEL + 2, max(1, args.versions // 2)
    name = seed.model_name(i)
    paths = [f"/api/v1/versions?run_id={seed.run_id(i, v)}", f"/api/v1/models?name_prefix={name[:12]}",
             f"/api/v1/models/{name}/versions/{v}", f"/api/v1/models/{name}/stages/Production",
             f"/api/v1/models/{name}/aliases/{seed.ALIAS}"]
    found = {}
    done = subprocess.run([str(PYTHON_BIN), str(HERE / "_explain.py"), running[key].db_url, token, *paths],
                          capture_output=True, text=True, timeout=300, cwd=HERE)
    versions = running[key].models * args.versions
    if done.returncode != 0:
        found[key] = {"versions": versions, "error": done.stderr[-2000:]}
    else:
        found[key] = {"versions": versions, "requests": json.loads(done.stdout)}
    other = key.replace("ours", "mlflow")
    if other in running:
        found[other] = {"versions": versions, "run_id_plan": _checks.explain_mlflow(
            running[other].db_url, "SELECT * FROM model_versions WHERE run_id = %s", (seed.run_id(i, v),))}
    return found


# A sequential scan that reads this many rows or more is reported; below it the planner may rightly prefer
# reading a few pages to walking an index (small tables, small data sets: it does so at 2,000 rows).
SEQ_SCAN_ROWS = 5000


def print_explain(found: dict, key: str) -> list[str]:
    """Print a summary; return the statements with a sequential scan of SEQ_SCAN_ROWS rows or more."""
    problems = []
    entry = found.get(key, {})
    if "error" in entry:
        print(f"  {key}: explain failed: {entry['error'][-500:]}")
        return [f"explain failed on {key}: {entry['error'][-500:]}"] if key == "ours" else []
    for request in entry["requests"]:
        scans = [f"{s['table']} ({s['rows_read']} rows)" for st in request["statements"] for s in st["seq_scans"]]
        total = sum(st["execution_ms"] or 0 for st in request["statements"])
        print(f"  {key:<10} {entry['versions']:>7} versions  {request['path'][:66]:<66} HTTP {request['status']}"
              f"  {len(request['statements'])} SELECTs, {total:.3f} ms in PostgreSQL; seq scans: "
              f"{', '.join(scans) or 'none'}")
        for statement in request["statements"]:
            big = [s for s in statement["seq_scans"] if s["rows_read"] >= SEQ_SCAN_ROWS]
            if big:
                tables = ", ".join(f"{s['table']} ({s['rows_read']} rows)" for s in big)
                problems.append(f"{key} {request['path']}: seq scan on {tables}\n{statement['sql']}\n"
                                f"{statement['plan']}")
    other = key.replace("ours", "mlflow")
    if other in found:
        first = found[other]["run_id_plan"].splitlines()[0].split("  (")[0].strip()
        print(f"  {other:<10} {found[other]['versions']:>7} versions  MLflow's run_id lookup: {first}")
    return problems


def memory(running: Running) -> dict:
    processes = tree_memory(running.service.process.pid)
    gunicorn = [p for p in processes if "gunicorn" in p["cmdline"]]
    other = [p for p in processes if "gunicorn" not in p["cmdline"]]

    def total(group, field):
        values = [p[field] for p in group if p[field] is not None]
        return round(sum(values) / 2**20, 1) if values else None

    return {"processes": processes,
            "gunicorn_processes": len(gunicorn),
            "gunicorn_rss_mib": total(gunicorn, "rss"), "gunicorn_pss_mib": total(gunicorn, "pss"),
            "gunicorn_uss_mib": total(gunicorn, "uss"),
            "wrapper_rss_mib": total(other, "rss"), "wrapper_pss_mib": total(other, "pss"),
            "all_rss_mib": total(processes, "rss"), "all_pss_mib": total(processes, "pss")}


def worker_pids(service: Service) -> set[int]:
    """The gunicorn workers of a server: gunicorn processes whose parent is the gunicorn master."""
    try:
        root = psutil.Process(service.process.pid)
        tree = [root] + root.children(recursive=True)
        gunicorn = {p.pid: p.ppid() for p in tree if "gunicorn" in " ".join(p.cmdline())}
    except psutil.Error:
        return set()
    masters = {pid for pid, parent in gunicorn.items() if parent not in gunicorn}
    return {pid for pid, parent in gunicorn.items() if parent in masters}


# --- Measuring -----------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args, running: dict[str, Running], tokens: dict[str, dict[str, str]]):
        self.args, self.running = args, running
        self.tokens = tokens  # registry server -> {"read": token, "write": token}
        self.wrk = wrk_binary()
        self.results: list[dict] = []
        self.checks: list[dict] = []
        self.failures: list[str] = []
        self.skipped: dict[tuple[str, str], str] = {}
        self.run_tag = 0
        self.accepted: dict[str, int] = {}  # server -> 2xx creates seen (plus seeded rows) on the hot models
        self.slack: dict[str, int] = {}     # server -> requests possibly in flight when wrk stopped
        self.workers_seen: dict[str, set[int]] = {}  # registry server -> gunicorn worker pids seen

    def script_args(self, target: Target) -> list[str]:
        server = self.running[target.server]
        token = "-" if target.auth is None else self.tokens[target.server][target.auth]
        first, count = {"all": (1, server.models), "hot": (1, HOT_MODELS),
                        "promote": (PROMOTE_MODEL, 1)}[target.models]
        versions = server.versions if target.per_version else 1
        self.run_tag += 1
        return [target.kind, token, str(first), str(count), str(versions), str(self.run_tag)]

    def wrk_run(self, target: Target, connections: int, seconds: float, meter: CpuMeter | None) -> tuple[dict, dict]:
        server = self.running[target.server]
        if meter:
            meter.start()
        try:
            out = run_wrk(self.wrk, "serving.lua", server.service.base_url, connections, wrk_threads(connections),
                          seconds, self.args.timeout, self.script_args(target))
        finally:
            cpu = meter.stop() if meter else None
        if server.service.process.poll() is not None:
            raise PerfError(f"{server.service.label} exited during {target.kind} c={connections}; log:\n"
                            f"{server.service.log_tail()}")
        if target.server in self.workers_seen:
            self.workers_seen[target.server].update(worker_pids(server.service))
        return out, cpu

    def after_write(self, scenario: Scenario, target: Target, connections: int, phase: str, out: dict) -> None:
        server = self.running[target.server]
        ours = not server.mlflow
        if scenario.name == "create_version":
            hot = [seed.model_name(i) for i in range(1, HOT_MODELS + 1)]
            self.accepted.setdefault(target.server, HOT_MODELS * server.versions)
            self.slack.setdefault(target.server, 0)
            self.accepted[target.server] += sum(v for k, v in out["statuses"].items() if 200 <= int(k) < 300)
            e = out["errors"]
            self.slack[target.server] += connections + e["read"] + e["write"] + e["timeout"]
            if phase != "measure":
                return
            check = (_checks.check_versions if ours else _checks.check_mlflow_versions)(server.db_url, hot)
            accepted, slack = self.accepted[target.server], self.slack[target.server]
            check.update(scenario=scenario.name, target=target.label, concurrency=connections,
                         accepted_creates=accepted, in_flight_slack=slack,
                         count_ok=accepted <= check["total_versions"] <= accepted + slack)
            self.checks.append(check)
            verdict = "OK" if check["ok"] and check["count_ok"] else ("FAIL" if ours else "not clean")
            print(f"      versions of the hot models: {check['total_versions']} rows, 2xx seen {accepted} (+ up to"
                  f" {slack} in flight); numbering 1..N without gaps or duplicates: {check['ok']} -> {verdict}")
            if ours and verdict == "FAIL":
                self.failures.append(f"version numbering check failed after {target.label} create c={connections}")
        elif scenario.name == "promote":
            model = seed.model_name(PROMOTE_MODEL)
            production = _checks.production_versions(server.db_url, model, server.mlflow)
            statuses = {int(k): v for k, v in out["statuses"].items()}
            check = {"scenario": scenario.name, "target": target.label, "concurrency": connections, "phase": phase,
                     "production_versions": production, "ok": len(production) == 1,
                     "requests": out["requests"], "non_2xx": sum(v for k, v in statuses.items() if k >= 300)}
            self.checks.append(check)
            print(f"      after the {phase} burst: {len(production)} version(s) of {model} in Production {production}"
                  f" -> {'OK' if check['ok'] else ('FAIL' if ours else 'not clean')}")
            if ours and not check["ok"]:
                self.failures.append(f"{target.label} promote c={connections} {phase}: {len(production)} versions"
                                     f" in Production {production}")

    def warm_cache(self, target: Target, connections: int) -> None:
        """Our serving answers are cached per worker, and the scenarios before this one (get version over
        100,000 versions, above all) evicted them: read until the cache stops missing, so that the run sees the
        steady state of a serving fleet that asks the same questions again and again, not a cache being
        refilled. Unmeasured, at least 16 connections."""
        if not target.server.startswith("ours") or target.kind not in CACHED_KINDS:
            return
        warm_until_cached(self, target, max(connections, 16))

    def fresh_workers(self, target: Target) -> None:
        """SIGHUP: gunicorn replaces every worker, so every cache starts empty; back when both new ones answer."""
        service = self.running[target.server].service
        old = worker_pids(service)
        warmed_before = metric_total(service.base_url, "registry_cache_warmings_total")
        os.kill(service.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + self.args.ready_timeout
        while True:
            new = worker_pids(service)
            if len(new) >= self.args.workers and not new & old:
                break
            if time.monotonic() > deadline:
                raise PerfError(f"{service.label}: the workers were not replaced after SIGHUP ({old} -> {new})")
            time.sleep(0.2)
        service.wait_ready(self.args.ready_timeout)
        if target.server != "ours" or all(os.environ.get(name, "").strip().lower() == "none"
               for name in ("REGISTRY_WARM_STAGES", "REGISTRY_WARM_ALIASES")):
            return
        # Each new worker warms its cache (registry/warming.py) in the background: what a fleet meets after a
        # deploy is the warmed cache, a few seconds later; run with REGISTRY_WARM_STAGES=none and
        # REGISTRY_WARM_ALIASES=none for the first reads without it.
        ready = time.monotonic()
        while metric_total(service.base_url, "registry_cache_warmings_total") < warmed_before + self.args.workers:
            if time.monotonic() > deadline:
                raise PerfError(f"{service.label}: the new workers did not warm their caches")
            time.sleep(0.1)
        print(f"    new workers warmed their caches {time.monotonic() - ready:.1f} s after they were ready")

    def measure(self, scenario: Scenario, target: Target, label: str, connections: int, seconds: int,
                round_no: int) -> dict:
        server = self.running[target.server]
        meter = CpuMeter(server.service.process.pid, server.postmaster, server.database)
        with ExitStack() as others:  # the other servers paused: the measured one has the machine
            for key, other in self.running.items():
                if other.service is not server.service:
                    others.enter_context(other.service.paused())
            out, cpu = self.wrk_run(target, connections, seconds, meter)
        summary = {"scenario": scenario.name, "target": label, "server": target.server,
                   "kind": target.kind, "concurrency": connections, "round": round_no,
                   "wrk_threads": wrk_threads(connections), **_report.summarise(out, cpu)}
        self.results.append(summary)
        lat = summary["latency_ms"]
        print(f"    {label:<12} c={connections:<3} {summary['requests']:>7} req {summary['errors']:>6} err"
              f" {summary['req_per_s']:>8.1f} req/s  p50 {lat['p50']:.2f}  p95 {lat['p95']:.2f}"
              f"  p99 {lat['p99']:.2f} ms"
              f"  server {fmt(summary['cpu']['server_cores'])} wrk {fmt(summary['cpu']['client_cores'])} cores"
              + (f"  socket errors {summary['socket_errors']}" if summary["errors"] > summary["non_2xx"] else "")
              + (f"  first error: {summary['first_error'][:120]!r}" if summary["non_2xx"] else ""))
        return summary, out

    def run_target(self, scenario: Scenario, target: Target, connections: int, round_no: int) -> None:
        key = (scenario.name, target.label)
        if key in self.skipped:
            return
        server = self.running[target.server]
        if self.args.cold_seconds and target.server == "ours" and target.kind in CACHED_KINDS:
            # Cold: every worker's cache empty, and too few requests to read any model twice in one worker
            # (wrk walks the models; 10,000 of them outlast a 2 s run).
            self.fresh_workers(target)
            # The new workers' pools, token cache and lazy imports warmed by another read (versions: other cache
            # keys), so that what is cold is only the answers asked for.
            self.wrk_run(Target("ours", "ours", "native_version", target.auth, per_version=True), connections, 1, None)
            settle()
            self.measure(scenario, target, f"{target.label}-cold", connections, self.args.cold_seconds, round_no)
        elif self.args.cold_seconds and target.server == "hello":
            # The same window on the ceiling: fresh workers, a 1 s read, then a run as short as the cold one. Its
            # p99 is what the cold p99 is held against: a short run from fresh workers and new connections has a
            # longer tail than a 10 s one whatever the app does.
            self.fresh_workers(target)
            self.wrk_run(target, connections, 1, None)
            settle()
            self.measure(scenario, target, "hello-cold", connections, self.args.cold_seconds, round_no)
        settle()
        if self.args.warmup > 0:
            out, _ = self.wrk_run(target, connections, self.args.warmup, None)
            if target.optional and not any(200 <= int(k) < 300 for k in out["statuses"]):
                self.skipped[key] = (f"{target.label} {scenario.name}: skipped, the route answers no 2xx yet"
                                     f" (statuses {out['statuses']}, first answer: {out.get('first_error')})")
                print(f"    {self.skipped[key]}")
                return
            self.after_write(scenario, target, connections, "warm-up", out)
            self.warm_cache(target, connections)
        summary, out = self.measure(scenario, target, target.label, connections, self.args.duration, round_no)
        if summary["errors"] and target.server.startswith("ours"):
            hint = ""
            if summary["errors"] == summary["socket_errors"]["read"]:
                hint = (" - read errors only: the server closed keep-alive connections with a request in flight,"
                        " as gunicorn does when max_requests recycles a worker (see the worker count at the end)")
            self.failures.append(f"{scenario.name} {target.label} c={connections}: {summary['errors']} errors"
                                 f" (statuses {summary['statuses']}, socket {summary['socket_errors']},"
                                 f" first: {summary['first_error']}){hint}")
        self.after_write(scenario, target, connections, "measure", out)

    def run(self, servers: tuple[str, ...]) -> None:
        """Every selected scenario's targets on these servers: per concurrency, rounds of A, B, A, B..."""
        for scenario in SCENARIOS:
            targets_ = [t for t in scenario.targets if t.server in servers]
            if scenario.name not in self.args.scenarios or not targets_:
                continue
            print(f"\n{scenario.name}: {scenario.what}")
            for connections in self.args.concurrency:
                for round_no in range(1, self.args.rounds + 1):
                    for target in targets_:
                        self.run_target(scenario, target, connections, round_no)


def settle(idle_cores: float = 0.35, quiet_for: float = 1.0, limit: float = 60.0) -> None:
    """Wait until the machine is quiet before a run: a server that fell behind (MLflow's searches take
    seconds each at 32 clients) keeps answering its queued requests after wrk stops, and that backlog would
    otherwise eat into the next target's run. At most ``limit`` seconds."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = machine_busy_seconds()
        time.sleep(quiet_for)
        if (machine_busy_seconds() - before) / quiet_for < idle_cores:
            return


CACHED_KINDS = {"native_stage", "native_alias", "mlflow_latest", "mlflow_alias"}


def warm_up(bench: Bench, keys: tuple[str, ...], seconds: int) -> None:
    """Every read endpoint of every server, unmeasured; answers are not checked here (the scenarios do).
    Our cached serving endpoints run until the cache stops missing (``warm_until_cached``)."""
    kinds = {"ours": ["native_stage", "native_alias", "native_version", "native_run_id", "native_prefix",
                      "mlflow_latest", "mlflow_alias"],
             "mlflow": ["mlflow_latest", "mlflow_alias", "mlflow_version", "mlflow_run_id", "mlflow_prefix"]}
    for key in keys:
        family = "hello" if key == "hello" else ("mlflow" if key.startswith("mlflow") else "ours")
        for kind in kinds.get(family, ["hello"]):
            target = Target(key, key, kind, None if family != "ours" else "read",
                            per_version=kind.endswith(("version", "run_id")))
            if family == "ours" and kind in CACHED_KINDS:
                warm_until_cached(bench, target, 16)
            else:
                bench.wrk_run(target, 16, seconds, None)


# Steady: fewer than 1 read in 1,000 missed the cache during the last warm-up run. (1 in 100 was not steady
# enough: the misses left, each slower than a hundred hits, were the MLflow dialect's p99.)
WARM_MISS_RATIO = 0.001
WARM_LIMIT_S = 120.0


def warm_until_cached(bench: Bench, target: Target, connections: int) -> None:
    """Read (3 s wrk runs) until fewer than 0.1% of a run's reads missed the cache, counted by the server itself
    (``registry_cache_lookups_total`` at /metrics). Each worker caches for itself and wrk's connections land
    on either, so a worker has seen every one of N models only after several N reads of its own: a fixed
    number of reads (three per model, before) left a fifth of the answers uncached, and the steady figures
    measured the cache being filled."""
    base_url = bench.running[target.server].service.base_url
    started = time.monotonic()
    while True:
        before = cache_misses(base_url)
        out, _ = bench.wrk_run(target, connections, 3, None)
        missed = cache_misses(base_url) - before
        if missed <= WARM_MISS_RATIO * max(out["requests"], 1):
            return
        if time.monotonic() - started > WARM_LIMIT_S:
            print(f"    warning: {target.label} {target.kind}: still {missed} cache misses in {out['requests']}"
                  f" reads after {WARM_LIMIT_S:.0f} s of warm-up")
            return


def cache_misses(base_url: str) -> float:
    """Every cache miss our server's workers counted so far (all kinds of entry)."""
    return metric_total(base_url, "registry_cache_lookups_total", 'result="miss"')


def metric_total(base_url: str, name: str, having: str = "") -> float:
    """The sum of a metric's samples (those whose labels contain ``having``) on our server."""
    text = requests.get(f"{base_url}/metrics", headers=ADMIN_HEADERS, timeout=30).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith((name + "{", name + " ")) and having in line)


# --- Reporting -----------------------------------------------------------------------------------------------

def aggregate(results: list[dict]) -> dict[tuple[str, int, str], dict]:
    """Per (scenario, concurrency, target): medians over rounds (errors and requests summed)."""
    groups: dict[tuple[str, int, str], list[dict]] = {}
    for r in results:
        groups.setdefault((r["scenario"], r["concurrency"], r["target"]), []).append(r)
    out = {}
    for key, runs in groups.items():
        def median(get):
            values = [get(r) for r in runs if get(r) is not None]
            return statistics.median(values) if values else None
        out[key] = {
            "rounds": len(runs), "requests": sum(r["requests"] for r in runs), "errors": sum(r["errors"] for r in runs),
            "req_per_s": median(lambda r: r["req_per_s"]),
            **{p: median(lambda r, p=p: r["latency_ms"][p]) for p in ("p50", "p95", "p99")},
            "server_cores": median(lambda r: r["cpu"]["server_cores"]),
            "postgres_cores": median(lambda r: r["cpu"]["postgres_cores"]),
            "client_cores": median(lambda r: r["cpu"]["client_cores"]),
            "machine_cores": median(lambda r: r["cpu"]["machine_busy_cores"]),
            "error_rate": (sum(r["errors"] for r in runs) / max(1, sum(r["requests"] for r in runs))),
        }
    return out


def ratio(a, b):
    return None if not a or not b else round(a / b, 2)


def print_results(agg: dict, cores: int) -> list[dict]:
    rows = [[s, str(c), t, str(a["requests"]), str(a["errors"]), f"{a['req_per_s']:.1f}", fmt(a["p50"]),
             fmt(a["p95"]), fmt(a["p99"]), fmt(a["server_cores"]), fmt(a["postgres_cores"]), fmt(a["client_cores"]),
             f"{fmt(a['machine_cores'])}/{cores}"] for (s, c, t), a in agg.items()]
    print(table(["scenario", "conc", "target", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms",
                 "server cpu", "pg cpu", "wrk cpu", "machine"], rows, left=3))
    print(CPU_LEGEND)
    ratios, rows = [], []
    for (s, c, t), a in agg.items():
        if t not in ("ours", "ours-cold"):
            continue
        entry = {"scenario": s, "concurrency": c, "target": t,
                 "ours_over_mlflow": ratio(a["req_per_s"], agg.get((s, c, "mlflow"), {}).get("req_per_s")),
                 "ours_over_hello": ratio(a["req_per_s"], agg.get((s, c, "hello"), {}).get("req_per_s")),
                 "ours_p99_ms": a["p99"],
                 "ours_large_over_small": ratio(a["req_per_s"], agg.get((s, c, "ours-small"), {}).get("req_per_s")),
                 "mlflow_large_over_small": ratio(agg.get((s, c, "mlflow"), {}).get("req_per_s"),
                                                  agg.get((s, c, "mlflow-small"), {}).get("req_per_s"))}
        ratios.append(entry)
        rows.append([s, str(c), t, fmt(entry["ours_over_mlflow"]), fmt(entry["ours_over_hello"]), fmt(a["p99"]),
                     fmt(entry["ours_large_over_small"]), fmt(entry["mlflow_large_over_small"])])
    print()
    print(table(["scenario", "conc", "ours", "ours/mlflow req/s", "ours/hello req/s", "ours p99 ms",
                 "ours large/small req/s", "mlflow large/small req/s"], rows, left=1))
    print("large/small: req/s on the large data set over req/s on the small one; 1.00 = cost independent of size.")
    return ratios


def targets(agg: dict, checks: list[dict], mem: dict, top: int) -> list[dict]:
    """The issue's targets, measured at the highest concurrency of the run (32 in a full run)."""
    found = []

    def add(what, value, met):
        found.append({"target": what, "measured": value, "met": met})

    for s in ("prod_fetch", "alias_fetch"):
        ours, ml, hello = (agg.get((s, top, t)) for t in ("ours", "mlflow", "hello"))
        if ours and ml:
            r = ratio(ours["req_per_s"], ml["req_per_s"])
            add(f"{s} c={top}: >= 10x MLflow req/s", f"{fmt(r)}x", r is not None and r >= 10)
        if ours:
            add(f"{s} c={top}: p99 < 20 ms", f"{fmt(ours['p99'])} ms", ours["p99"] < 20)
        if ours and hello:
            r = ratio(ours["req_per_s"], hello["req_per_s"])
            add(f"{s} c={top}: >= 40% of hello-world req/s", f"{fmt(100 * r if r else None, 0)}%",
                r is not None and r >= 0.4)
    # Issue 12's serving targets, steady (warmed) and cold (first reads) apart: the native reads at least 80% of
    # hello-world's req/s, the MLflow dialect's at least 20x MLflow's, every p99 within 1.5x hello-world's.
    for label in ("ours", "ours-cold"):
        for s in ("prod_fetch", "alias_fetch"):
            ours, hello = agg.get((s, top, label)), agg.get((s, top, "hello"))
            if ours and hello:
                r = ratio(ours["req_per_s"], hello["req_per_s"])
                add(f"{s} {label} c={top}: >= 80% of hello-world req/s", f"{fmt(100 * r if r else None, 0)}%",
                    r is not None and r >= 0.8)
        for s in ("prod_fetch_mlflow_api", "alias_fetch_mlflow_api"):
            ours, ml = agg.get((s, top, label)), agg.get((s, top, "mlflow"))
            if ours and ml:
                r = ratio(ours["req_per_s"], ml["req_per_s"])
                add(f"{s} {label} c={top}: >= 20x MLflow req/s", f"{fmt(r)}x", r is not None and r >= 20)
        # Cold runs are held against hello-world's run of the same length from fresh workers ("hello-cold"), and
        # shown against its steady run too.
        ceilings = ("hello",) if label == "ours" else ("hello-cold", "hello")
        for s, twin in (("prod_fetch", "prod_fetch"), ("alias_fetch", "alias_fetch"),
                        ("prod_fetch_mlflow_api", "prod_fetch"), ("alias_fetch_mlflow_api", "alias_fetch")):
            for ceiling in ceilings:
                ours, hello = agg.get((s, top, label)), agg.get((twin, top, ceiling))
                if ours and hello:
                    add(f"{s} {label} c={top}: p99 <= 1.5x {ceiling}'s ({fmt(hello['p99'])} ms)",
                        f"{fmt(ours['p99'])} ms", ours["p99"] <= 1.5 * hello["p99"])
    ours, ml = agg.get(("create_version", top, "ours")), agg.get(("create_version", top, "mlflow"))
    if ours and ml:
        r = ratio(ours["req_per_s"], ml["req_per_s"])
        add(f"create_version c={top}: >= 5x MLflow req/s", f"{fmt(r)}x", r is not None and r >= 5)
    create_checks = [c for c in checks if c["scenario"] == "create_version" and c["target"] == "ours"]
    if create_checks:
        errors = sum(a["errors"] for (s, _, t), a in agg.items() if s == "create_version" and t == "ours")
        ok = all(c["ok"] and c["count_ok"] for c in create_checks)
        add("create_version: zero errors, zero duplicate or missing numbers (ours)",
            f"{errors} errors, numbering {'clean' if ok else 'BROKEN'}", errors == 0 and ok)
    for label in ("ours", "mlflow"):
        bursts = [c for c in checks if c["scenario"] == "promote" and c["target"] == label]
        if bursts:
            errors = sum(a["errors"] for (s, _, t), a in agg.items() if s == "promote" and t == label)
            requests_ = sum(a["requests"] for (s, _, t), a in agg.items() if s == "promote" and t == label)
            leftovers = [len(c["production_versions"]) for c in bursts]
            add(f"promote ({label}): zero errors, exactly one Production version after every burst",
                f"{errors}/{requests_} errors ({100 * errors / max(1, requests_):.1f}%), Production versions after"
                f" bursts: {leftovers}", errors == 0 and all(n == 1 for n in leftovers))
    ours, ml = agg.get(("search_run_id", top, "ours")), agg.get(("search_run_id", top, "mlflow"))
    if ours and ml:
        r = ratio(ours["req_per_s"], ml["req_per_s"])
        add(f"search_run_id on the large data set c={top}: >= 20x MLflow req/s", f"{fmt(r)}x",
            r is not None and r >= 20)
    for point in ("after_warmup", "after_run"):
        if mem.get(point):
            m = mem[point]
            total = m["all_rss_mib"]
            add(f"idle memory {point.replace('_', ' ')}: whole service (master + workers) < 250 MiB RSS",
                f"RSS {total} MiB (PSS {m['all_pss_mib']} MiB)", total < 250)
    print(table(["target", "measured", "met"], [[t["target"], t["measured"], "yes" if t["met"] else "NO"]
                                                for t in found], left=2))
    return found


# --- Orchestration -------------------------------------------------------------------------------------------

PHASES = (("large", ("ours", "mlflow", "hello")), ("small", ("ours_small", "mlflow_small")))


def run(args: argparse.Namespace) -> int:
    wrk = wrk_binary()
    names = {"ours": f"registry_{args.db_prefix}", "mlflow": f"mlflow_{args.db_prefix}",
             "ours_small": f"registry_{args.db_prefix}_small", "mlflow_small": f"mlflow_{args.db_prefix}_small"}
    log_dir = Path(tempfile.mkdtemp(prefix="registry-serving-perf-"))
    meta = {
        "started_at": datetime.now(timezone.utc).isoformat(), "git": git_describe(),
        "host": {"cpus": psutil.cpu_count(), "load_avg_at_start": os.getloadavg(), "platform": platform.platform(),
                 "python": platform.python_version(), "memory_mib": psutil.virtual_memory().total // 2**20},
        "wrk": wrk_version(wrk), "versions": _tool_versions(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "server_env": {k: v for k, v in os.environ.items() if k.startswith("REGISTRY_")}, "databases": names,
        "logs": str(log_dir), "servers": {}, "explain": {},
    }
    print(f"load average at start {os.getloadavg()}; server logs in {log_dir}")
    warn_about_connections(args.admin_url)
    running: dict[str, Running] = {}
    mlflow_dirs: list[Path] = []
    mem: dict = {}
    seq_scans: list[str] = []
    bench = Bench(args, running, {})
    try:
        print("seeding (COPY straight into each schema):")
        meta["seed"] = prepare_databases(args, names)
        sizes = {"ours": args.models, "mlflow": args.models, "ours_small": args.small_models,
                 "mlflow_small": args.small_models}
        for key, name in names.items():
            url = seed.database_url(args.admin_url, name)
            if key.startswith("mlflow"):
                workdir = Path(tempfile.mkdtemp(prefix="mlflow-perf-"))
                mlflow_dirs.append(workdir)
                service = MlflowServer(seed.mlflow_url(url), free_port(), log_dir / f"{key}.log", workdir)
            else:
                service = RegistryServer(url, free_port(), args.workers, log_dir / f"{key}.log")
            running[key] = Running(service, name, url, sizes[key], args.versions, key.startswith("mlflow"))
        running["hello"] = Running(HelloServer(free_port(), args.workers, log_dir / "hello.log"), models=1, versions=1)
        # One phase per data set: PostgreSQL's connection limit (100 by default) does not fit the pools of
        # four servers at once. The small data set only serves the search scenarios.
        for phase, keys in PHASES:
            if not any(t.server in keys for s in SCENARIOS if s.name in args.scenarios for t in s.targets):
                continue
            print(f"\n=== {phase} data set: starting {', '.join(keys)}")
            start_servers(running, keys, args.ready_timeout, meta)
            ours = next(k for k in keys if k.startswith("ours"))
            # Each registry database has its own reader (and token); the admin token is the same everywhere.
            read = make_reader(running[ours].service.base_url) if args.read_as == "reader" else ADMIN_TOKEN
            bench.tokens[ours] = {"read": read, "write": ADMIN_TOKEN}
            print("query plans of our read endpoints (EXPLAIN ANALYZE of the SQL the app sends):")
            meta["explain"].update(explain(running, ours, read, args))
            seq_scans += print_explain(meta["explain"], ours)
            print(f"warming up every server ({args.server_warmup} s per read endpoint, 16 connections)")
            warm_up(bench, keys, args.server_warmup)
            if phase == "large":
                time.sleep(2)
                mem["after_warmup"], mem["mlflow_after_warmup"] = memory(running["ours"]), memory(running["mlflow"])
                print(describe_memory("idle after warm-up", mem["after_warmup"], mem["mlflow_after_warmup"]))
            for key in keys:
                if not running[key].mlflow:  # gunicorn servers: watch their workers being recycled
                    bench.workers_seen.setdefault(key, set()).update(worker_pids(running[key].service))
            bench.run(keys)
            if phase == "large":
                time.sleep(2)
                mem["after_run"] = memory(running["ours"])
                print(describe_memory("idle after the run", mem["after_run"], None))
            for key in keys:
                running[key].service.stop()
    finally:
        for r in running.values():
            r.service.stop()
        for workdir in mlflow_dirs:
            shutil.rmtree(workdir, ignore_errors=True)
        if not args.keep_db:
            for name in names.values():
                drop_database(args.admin_url, name)
    print(f"\nresults ({args.rounds} round(s) per target, median shown; data sets: large {args.models} x"
          f" {args.versions} = {args.models * args.versions} versions, small {args.small_models} x {args.versions} ="
          f" {args.small_models * args.versions} versions)")
    agg = aggregate(bench.results)
    ratios = print_results(agg, psutil.cpu_count())
    print(f"\nissue 5 targets (informational; measured at c={max(args.concurrency)}):")
    found = targets(agg, bench.checks, mem, max(args.concurrency))
    recycled = {k: len(v) for k, v in bench.workers_seen.items()}
    print(f"\ngunicorn worker processes seen per server during the scenarios (started with {args.workers}; more ="
          f" workers recycled by gunicorn's max_requests, which also resets keep-alive connections): {recycled}")
    failures = bench.failures
    for note in bench.skipped.values():
        print(f"NOTE: {note}")
    for problem in seq_scans:
        print(f"SEQ SCAN (report to the lead, with this plan):\n{problem}")
    if args.out:
        args.out.write_text(json.dumps({
            "meta": meta, "memory": mem, "results": bench.results,
            "aggregates": [{"scenario": s, "concurrency": c, "target": t, **a} for (s, c, t), a in agg.items()],
            "ratios": ratios, "targets": found, "checks": bench.checks, "skipped": list(bench.skipped.values()),
            "worker_processes_seen": recycled, "seq_scans": seq_scans, "failures": failures},
            indent=2, default=str) + "\n")
        print(f"\nresults written to {args.out}")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def warn_about_connections(admin_url: str) -> None:
    """Three servers' pools need up to ~85 connections at peak (quick run: 84); say so if that will not fit."""
    with closing(psycopg2.connect(admin_url, connect_timeout=10)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('max_connections')::int, (SELECT count(*) FROM pg_stat_activity)")
        limit, used = cursor.fetchone()
    if limit - used < 90:
        print(f"WARNING: PostgreSQL allows {limit} connections and {used} are in use; the servers may need ~85:"
              f" expect 'too many clients' errors unless other users disconnect")


def start_servers(running: dict[str, Running], keys: tuple[str, ...], timeout: float, meta: dict) -> None:
    for key in keys:
        running[key].service.launch()  # side by side: MLflow alone takes tens of seconds to start
    for key in keys:
        r = running[key]
        r.service.wait_ready(timeout)
        if r.db_url:
            r.postmaster = postmaster_for(r.db_url)
        meta["servers"][key] = {"command": r.service.command(), "url": r.service.base_url, "database": r.database,
                                "models": r.models, "versions_per_model": r.versions}
        print(f"  {key:<13} ready at {r.service.base_url} (pid {r.service.process.pid}): "
              f"{' '.join(r.service.command()[:4])} ...")


def describe_memory(when: str, ours: dict, mlflow: dict | None) -> str:
    text = (f"memory {when}, ours: gunicorn master + {ours['gunicorn_processes'] - 1} workers RSS"
            f" {ours['gunicorn_rss_mib']} MiB (PSS {ours['gunicorn_pss_mib']} MiB)")
    if ours["wrapper_rss_mib"] is not None:  # older `registry serve` stayed resident as gunicorn's parent
        text += f"; the `registry serve` wrapper RSS {ours['wrapper_rss_mib']} MiB more"
    if mlflow:
        text += f". MLflow, all processes: RSS {mlflow['all_rss_mib']} MiB (PSS {mlflow['all_pss_mib']} MiB)"
    return text


def _tool_versions() -> dict:
    found = {}
    for package in ("mlflow", "gunicorn", "uvicorn", "flask", "sqlalchemy", "psycopg2-binary"):
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    return found


def main(argv: list[str] | None = None) -> int:
    return run_main(parse_args, run, argv, "servers stopped and benchmark databases dropped (unless --keep-db)")


if __name__ == "__main__":
    sys.exit(main())
