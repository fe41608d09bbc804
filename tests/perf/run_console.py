#!/usr/bin/env python3
"""Console benchmark (issue 10): server time and page weight of the web console's pages on a large registry,
and MLflow's UI model page on the same data.

One command: seed one registry database (10,000 models x 10 versions, one model "perf-big" with 100,000
versions, 1,000 pending transition requests) and one MLflow database with the same models and versions (MLflow
has no requests); start `registry serve --workers 2` and a stock `mlflow server` side by side; sign in to the
console as a reviewer holding MANAGE_PRODUCTION registry-wide; then, per page, the query plans of its SQL, its
weight (HTML + CSS + JS + images) and wrk at 1 and 8 connections with the session cookie (p50/p95/p99). On
MLflow: the two JSON calls its model page makes (registered-models/get and model-versions/search with the UI's
page size, read from its JS bundle and checked in the browser), timed the same way, and the page itself loaded
in Debian's Chromium (bytes, calls, time until the versions table shows). Prints tables, writes JSON (--out).
See tests/perf/README.md.
    .venv/bin/python tests/perf/run_console.py --out /tmp/console.json              # full run, ~10 minutes
    .venv/bin/python tests/perf/run_console.py --quick --out /tmp/console-quick.json  # smoke run
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import quote, urljoin

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helper modules beside this script

import _report  # noqa: E402
import seed  # noqa: E402
from _cli import run_main  # noqa: E402
from _cpu import CpuMeter  # noqa: E402
from _report import CPU_LEGEND, fmt, git_describe, table, wrk_threads  # noqa: E402
from _server import (ADMIN_HEADERS, HERE, PYTHON_BIN, MlflowServer, PerfError, RegistryServer,  # noqa: E402
                     drop_database, free_port, safe_database_name)
from _wrk import run_wrk, wrk_binary, wrk_version  # noqa: E402
from run_serving import Running, _tool_versions, settle, start_servers, warn_about_connections  # noqa: E402

REVIEWER = "perf-reviewer"
COOKIE = "registry_console"  # registry/web/session.py
CSS_PATH = "/console/static/console.css"
CHROMIUM = os.environ.get("REGISTRY_TEST_CHROMIUM", "/usr/bin/chromium")
# The targets: server time p95 under 50 ms (model page, version page, inbox), page weight under 100 KB.
P95_TARGET_MS = 50.0
WEIGHT_TARGET_BYTES = 100 * 1000
TARGET_PAGES = ("inbox", "model", "version")
# MLflow 3.17.2's model page (mlflow/server/js/build/static/js/4028.*.chunk.js): loadPage() calls
# searchModelVersionsApi({name}, ..., maxResultsSelection, "creation_timestamp DESC", pageToken) and
# getRegisteredModelApi(name) together (Promise.all); maxResultsSelection defaults to 25 (p.Wb), the order key
# to "creation_timestamp" (p.$c) descending, and the filter is built as name='<name>' (main.*.js, A=...). The
# browser run below records the URLs the page really requests and says if they differ.
MLFLOW_PAGE_SIZE = 25
MLFLOW_ORDER_BY = "creation_timestamp DESC"
SEQ_SCAN_ROWS = 5000  # as run_serving.py: a sequential scan reading this many rows is reported

QUICK = {"models": 1000, "big_model_versions": 20_000, "pending_requests": 200, "duration": 3, "warmup": 1}
FULL = {"models": 10_000, "big_model_versions": 100_000, "pending_requests": 1000, "duration": 10, "warmup": 2}


@dataclass(frozen=True)
class Page:
    label: str
    path: str            # "{n}" cycles over 1..count under wrk
    count: int = 1
    sample: int = 1      # the n of the single requests (weight, checks, plans)
    must_contain: str = ""
    target: bool = False  # one of the pages the issue sets targets for


@dataclass(frozen=True)
class Call:
    """One of the JSON calls MLflow's model page makes."""

    label: str
    path: str
    close: bool = False  # Connection: close (see the README on MLflow's keep-alive stall at one client)


def console_pages(big_versions: int) -> list[Page]:
    big = seed.BIG_MODEL
    return [
        Page("inbox", "/", must_contain="Waiting for your review", target=True),
        Page("model", f"/models/{big}", must_contain=f">v{big_versions}</a>", target=True),
        Page("model?stage=Archived", f"/models/{big}?stage=Archived", must_contain="Archived"),
        Page("version", f"/models/{big}/versions/{{n}}", count=big_versions, sample=max(1, big_versions - 2),
             must_contain="Production", target=True),
        Page("models?q=perf-m-00", "/models?q=perf-m-00", must_contain=seed.model_name(1)),
        Page("audit?model=big", f"/audit?model={big}", must_contain="version.created"),
        Page("model (10 versions)", f"/models/{seed.model_name(1)}", must_contain=seed.model_name(1)),
    ]


def mlflow_calls(name: str, suffix: str = "") -> list[Call]:
    search = (f"/ajax-api/2.0/mlflow/model-versions/search?filter={quote(f'name={chr(39)}{name}{chr(39)}')}"
              f"&max_results={MLFLOW_PAGE_SIZE}&order_by={quote(MLFLOW_ORDER_BY, safe='')}")
    return [Call(f"registered-models/get{suffix}", f"/ajax-api/2.0/mlflow/registered-models/get?name={quote(name)}"),
            Call(f"model-versions/search{suffix}", search)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--quick", action="store_true", help=f"smoke-run presets {QUICK} (explicit options win)")
    p.add_argument("--out", type=Path, help="write the results as JSON to this file")
    p.add_argument("--duration", type=int, help=f"seconds measured per run (full: {FULL['duration']})")
    p.add_argument("--warmup", type=int, help=f"seconds of unmeasured load before each run (full: {FULL['warmup']})")
    p.add_argument("--concurrency", default="1,8", help="comma-separated wrk connection counts")
    p.add_argument("--models", type=int, help=f"regular models, 10 versions each (full: {FULL['models']})")
    p.add_argument("--versions", type=int, default=10, help="versions per regular model")
    p.add_argument("--big-model-versions", type=int, help=f"versions of {seed.BIG_MODEL} (full: "
                   f"{FULL['big_model_versions']})")
    p.add_argument("--pending-requests", type=int, help=f"pending transition requests (full: "
                   f"{FULL['pending_requests']})")
    p.add_argument("--workers", type=int, default=2, help="registry serve --workers")
    p.add_argument("--admin-url", default=os.environ.get("PERF_ADMIN_URL",
                                                         "postgresql://postgres@127.0.0.1:5432/postgres"),
                   help="libpq URL of a maintenance database on the PostgreSQL server (env PERF_ADMIN_URL)")
    p.add_argument("--db-prefix", default="perf_console", help="databases registry_<p> and mlflow_<p>: DROPPED and"
                   " recreated on every run")
    p.add_argument("--keep-db", action="store_true", help="leave the benchmark databases in place at the end")
    p.add_argument("--no-mlflow", action="store_true", help="our console only")
    p.add_argument("--no-browser", action="store_true", help="skip the Chromium page loads")
    p.add_argument("--mlflow-slow", type=float, default=5.0,
                   help="an MLflow call slower than this (seconds, first answer) is timed with a few sequential"
                        " requests instead of wrk")
    p.add_argument("--profile-repeats", type=int, default=20,
                   help="in-process renders of each page (Flask test client, no HTTP) for the time split")
    p.add_argument("--browser-timeout", type=float, default=180.0, help="seconds a page load may take in Chromium")
    p.add_argument("--timeout", type=float, default=30.0, help="wrk per-request timeout, seconds")
    p.add_argument("--settle", type=float, default=5.0,
                   help="at most this many seconds to wait for a quiet machine before each run")
    p.add_argument("--ready-timeout", type=float, default=240.0, help="seconds to wait for each server to be ready")
    args = p.parse_args(argv)
    preset = QUICK if args.quick else FULL
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    args.concurrency = [int(c) for c in args.concurrency.split(",") if c.strip()]
    if not args.concurrency or min(args.concurrency) < 1:
        p.error("--concurrency needs positive integers")
    if args.duration <= 0 or args.warmup < 0 or args.versions < 3 or args.big_model_versions < 3:
        p.error("--duration must be > 0, --warmup >= 0, --versions and --big-model-versions >= 3")
    if not 1 <= args.models <= 999_999 or args.pending_requests < 0:
        p.error("--models must be 1..999999 and --pending-requests >= 0")
    if not safe_database_name(f"registry_{args.db_prefix}"):
        p.error(f"--db-prefix {args.db_prefix!r}: use a plain name containing 'perf'")
    return args


# --- Setup ---------------------------------------------------------------------------------------------------

def prepare_databases(args, names: dict[str, str]) -> dict:
    timings = {}
    started = time.monotonic()
    url = seed.prepare_registry_db(args.admin_url, names["ours"])
    migrated = time.monotonic() - started
    result = seed.seed_registry(url, args.models, args.versions, args.big_model_versions, args.pending_requests)
    timings["ours"] = {"database": names["ours"], "schema_s": round(migrated, 2), **result}
    print(f"  {names['ours']:<24} schema {migrated:5.1f} s, seeded in {result['total_s']:5.1f} s"
          f" {result['seconds']}; rows {result['rows']}")
    if "mlflow" in names:
        started = time.monotonic()
        url = seed.prepare_mlflow_db(args.admin_url, names["mlflow"])
        migrated = time.monotonic() - started
        result = seed.seed_mlflow(url, args.models, args.versions, args.big_model_versions)
        timings["mlflow"] = {"database": names["mlflow"], "schema_s": round(migrated, 2), **result}
        print(f"  {names['mlflow']:<24} schema {migrated:5.1f} s, seeded in {result['total_s']:5.1f} s"
              f" {result['seconds']}; rows {result['rows']}")
    return timings


def make_reviewer(base_url: str) -> str:
    """A user with MANAGE_PRODUCTION registry-wide (PATCH adds to the registry's grants) and a token for it."""
    with requests.Session() as http:
        http.headers.update(ADMIN_HEADERS)
        steps = [("post", "/api/v1/users", {"name": REVIEWER}, (201, 409)),
                 ("patch", "/api/v1/permissions", {"grants": [{"principal": REVIEWER, "level": "MANAGE_PRODUCTION"}]},
                  (200,)),
                 ("post", "/api/v1/tokens", {"user": REVIEWER, "description": "perf console"}, (201,))]
        answer = None
        for method, path, body, ok in steps:
            answer = getattr(http, method)(base_url + path, json=body, timeout=30)
            if answer.status_code not in ok:
                raise PerfError(f"{method.upper()} {path}: HTTP {answer.status_code} {answer.text[:300]}")
        return answer.json()["token"]


def sign_in(base_url: str, token: str) -> str:
    """Sign in through the console's own form (CSRF token from the page, then POST); returns the session
    cookie's value once a page has been read with it (the CSRF token then lives in it: wrk sends a cookie that
    needs no change)."""
    with requests.Session() as browser:
        page = browser.get(base_url + "/signin", timeout=30)
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        if page.status_code != 200 or not found:
            raise PerfError(f"GET /signin: HTTP {page.status_code}, no csrf_token in the form: {page.text[:300]}")
        answer = browser.post(base_url + "/signin", data={"csrf_token": found.group(1), "token": token, "next": "/"},
                              allow_redirects=False, timeout=30)
        if answer.status_code != 302 or COOKIE not in browser.cookies:
            raise PerfError(f"POST /signin: HTTP {answer.status_code} {answer.text[:300]}")
        inbox = browser.get(base_url + "/", allow_redirects=False, timeout=120)
        if inbox.status_code != 200:
            raise PerfError(f"GET / after signing in: HTTP {inbox.status_code} {inbox.text[:300]}")
        return browser.cookies[COOKIE]


# --- Page weight ---------------------------------------------------------------------------------------------

_ASSETS = (("css", re.compile(r'<link\b[^>]*\brel="stylesheet"[^>]*\bhref="([^"]+)"', re.I)),
           ("css", re.compile(r'<link\b[^>]*\bhref="([^"]+)"[^>]*\brel="stylesheet"', re.I)),
           ("js", re.compile(r'<script\b[^>]*\bsrc="([^"]+)"', re.I)),
           ("img", re.compile(r'<img\b[^>]*\bsrc="([^"]+)"', re.I)))


def page_weight(http: requests.Session, base_url: str, page: Page) -> dict:
    """One GET of the page: status, time, HTML bytes (and gzipped, for information: the server sends it
    uncompressed), and every stylesheet, script and image it references, fetched once each."""
    path = page.path.replace("{n}", str(page.sample))
    started = time.perf_counter()
    answer = http.get(base_url + path, allow_redirects=False, timeout=120)
    seconds = time.perf_counter() - started
    html = answer.content
    assets: dict[str, dict] = {}
    for kind, pattern in _ASSETS:
        for ref in pattern.findall(answer.text):
            if ref.startswith("data:") or ref in assets:
                continue
            asset = http.get(urljoin(base_url + path, ref), timeout=60)
            assets[ref] = {"kind": kind, "status": asset.status_code, "bytes": len(asset.content)}
    by_kind = {k: sum(a["bytes"] for a in assets.values() if a["kind"] == k) for k in ("css", "js", "img")}
    total = len(html) + sum(by_kind.values())
    text = answer.text
    return {"page": page.label, "path": path, "status": answer.status_code, "first_request_ms": round(seconds * 1e3, 1),
            "html_bytes": len(html), "html_gzip_bytes": len(gzip.compress(html)), **{f"{k}_bytes": v for k, v in
                                                                                     by_kind.items()},
            "total_bytes": total, "assets": assets, "content_encoding": answer.headers.get("Content-Encoding"),
            "contains_marker": page.must_contain in text,
            "inbox_waiting": _count_after(text, 'id="waiting-heading"') if page.label == "inbox" else None,
            "table_rows": text.count("<tr") - text.count("<thead")}


def _count_after(text: str, anchor: str) -> int | None:
    found = re.search(re.escape(anchor) + r'.*?<span class="count">(\d+)</span>', text, re.S)
    return int(found.group(1)) if found else None


# --- Query plans ---------------------------------------------------------------------------------------------

def _cookie_app_factory(cookie: str):
    """registry.create_app, patched so that every test client carries the console's session cookie (the console
    reads no Authorization header). The cookie verifies in this process because the signing key is the
    installation's, kept in its database (or REGISTRY_SECRET_KEY, inherited from the same environment)."""
    import registry
    from flask.testing import FlaskClient

    original = getattr(registry.create_app, "__wrapped__", registry.create_app)

    def create_app(*args, **kwargs):
        app = original(*args, **kwargs)

        class CookieClient(app.test_client_class or FlaskClient):
            def __init__(self, *a, **kw):
                super().__init__(*a, **kw)
                self.set_cookie(COOKIE, cookie)  # the client's jar: a Cookie header would be replaced by it

        app.test_client_class = CookieClient
        return app

    create_app.__wrapped__ = original
    registry.create_app = create_app
    return create_app


def explain_child(db_url: str, cookie: str, paths: list[str], repeats: int) -> None:
    """Child process (the app never lives in the benchmark's process): the plans of every SELECT of each page
    (_explain.explain_requests), then each page rendered in-process ``repeats`` times (no HTTP, no gunicorn)
    with the time spent in the database driver, and a cProfile of a few renders. JSON on stdout."""
    import _explain

    create_app = _cookie_app_factory(cookie)
    plans = _explain.explain_requests(db_url, "-", paths)
    os.environ["DATABASE_URL"] = db_url
    json.dump({"plans": plans, "profile": _profile(create_app(), paths, repeats)}, sys.stdout)


def _profile(app, paths: list[str], repeats: int) -> dict:
    import cProfile
    import pstats

    from sqlalchemy import event

    from registry.extensions import db

    sql = {"n": 0, "s": 0.0}
    started: list[float] = []

    def before(*_):
        started.append(time.perf_counter())

    def after(*_):
        sql["n"] += 1
        sql["s"] += time.perf_counter() - started.pop()

    with app.app_context():
        engine = db.engine
    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    client = app.test_client()
    found = {}
    for path in paths:
        for _ in range(3):  # warm: imports, pools, caches, template compilation
            client.get(path)
        walls, sql_ms, statements = [], [], []
        for _ in range(repeats):
            sql.update(n=0, s=0.0)
            t0 = time.perf_counter()
            answer = client.get(path)
            walls.append((time.perf_counter() - t0) * 1e3)
            sql_ms.append(sql["s"] * 1e3)
            statements.append(sql["n"])
        profiler = cProfile.Profile()
        profiled = 5
        profiler.enable()
        for _ in range(profiled):
            client.get(path)
        profiler.disable()
        stats = pstats.Stats(profiler).stats
        rows = []
        for (file, line, func), (_cc, calls, own, cumulative, _callers) in stats.items():
            rows.append({"function": f"{_short(file)}:{line}({func})", "calls": calls // profiled,
                         "own_ms": round(own * 1e3 / profiled, 2), "cumulative_ms": round(cumulative * 1e3 / profiled, 2),
                         "ours": "/registry/" in file and "site-packages" not in file})
        walls.sort()
        found[path] = {
            "status": answer.status_code, "repeats": repeats,
            "median_ms": round(statistics.median(walls), 2), "max_ms": round(walls[-1], 2),
            "sql_median_ms": round(statistics.median(sql_ms), 2), "statements": statements[-1],
            "python_median_ms": round(statistics.median(walls) - statistics.median(sql_ms), 2),
            "top_registry_cumulative": sorted((r for r in rows if r["ours"]), key=lambda r: -r["cumulative_ms"])[:12],
            # Below the view and the wrappers: the services, the data layer and the templates.
            "top_services": sorted((r for r in rows if r["ours"] and any(
                m in r["function"] for m in ("registry/services/", "registry/db/", "/templates/"))),
                key=lambda r: -r["cumulative_ms"])[:8],
            "top_own": sorted(rows, key=lambda r: -r["own_ms"])[:10],
        }
    return found


def _short(file: str) -> str:
    for marker in ("/registry/", "/site-packages/"):
        if marker in file:
            return file.split(marker, 1)[1] if marker == "/site-packages/" else "registry/" + file.split(marker, 1)[1]
    return file


def explain_pages(db_url: str, cookie: str, pages: list[Page], repeats: int) -> tuple[dict, dict]:
    """(plans per page, in-process profile per page), from a child process (explain_child)."""
    paths = [p.path.replace("{n}", str(p.sample)) for p in pages]
    done = subprocess.run([str(PYTHON_BIN), str(Path(__file__).resolve()), "--explain-child", db_url, cookie,
                           str(repeats), *paths], capture_output=True, text=True, timeout=900, cwd=HERE)
    if done.returncode != 0:
        return {"error": done.stderr[-3000:]}, {}
    child = json.loads(done.stdout)
    profile = {page.label: child["profile"].get(path) for page, path in zip(pages, paths)}
    found = {}
    for page, request in zip(pages, child["plans"]):
        statements = request["statements"]
        slowest = sorted(statements, key=lambda s: s["execution_ms"] or 0, reverse=True)
        repeated: dict[str, int] = {}
        for st in statements:  # the same statement shape with other values: a query per row (N+1)
            shape = re.sub(r"\b\d+\b", "N", re.sub(r"'[^']*'", "'S'", st["sql"]))
            repeated[shape] = repeated.get(shape, 0) + 1
        found[page.label] = {
            "path": request["path"], "status": request["status"], "selects": len(statements),
            "postgres_ms": round(sum(s["execution_ms"] or 0 for s in statements), 3),
            "seq_scans": [dict(s, sql=st["sql"][:300]) for st in statements for s in st["seq_scans"]
                          if s["rows_read"] >= SEQ_SCAN_ROWS],
            "repeated_shapes": sorted(([n, shape[:400]] for shape, n in repeated.items() if n > 1), reverse=True)[:5],
            "slowest": [{"execution_ms": s["execution_ms"], "sql": s["sql"], "plan": s["plan"]} for s in slowest[:3]],
        }
    return found, profile


def print_plans(plans: dict) -> None:
    if "error" in plans:
        print(f"  explain failed: {plans['error'][-800:]}")
        return
    for label, p in plans.items():
        scans = ", ".join(f"{s['table']} ({s['rows_read']} rows)" for s in p["seq_scans"]) or "none"
        top = p["slowest"][0]["execution_ms"] if p["slowest"] else 0
        rep = f"; repeated: {p['repeated_shapes'][0][0]}x one statement" if p["repeated_shapes"] else ""
        print(f"  {label:<22} HTTP {p['status']}  {p['selects']:>4} SELECTs, {p['postgres_ms']:8.2f} ms in PostgreSQL"
              f" (slowest {top:.2f} ms){rep}; seq scans >= {SEQ_SCAN_ROWS} rows: {scans}")


def print_profile(profile: dict) -> None:
    if not profile:
        return
    print(f"\nin-process renders (Flask test client in a child process, no HTTP/gunicorn; median of"
          f" {next(iter(profile.values()))['repeats']}): total = time in the database driver + the rest (Python)")
    rows = [[label, str(p["status"]), fmt(p["median_ms"]), fmt(p["sql_median_ms"]), str(p["statements"]),
             fmt(p["python_median_ms"]), ", ".join(f"{_where(r['function'])} {r['cumulative_ms']:.1f}"
                                                   for r in p["top_services"][:3])]
            for label, p in profile.items() if p]
    print(table(["page", "status", "total ms", "db ms", "statements", "python ms", "heaviest services/templates"
                 " (cumulative ms per render, under cProfile)"], rows, left=1))


def _where(function: str) -> str:
    """registry/services/review_queue.py:97(inbox) -> review_queue.inbox; templates: the template's name."""
    file, _, rest = function.partition(":")
    name = rest.partition("(")[2].rstrip(")")
    module = file.rsplit("/", 1)[-1].removesuffix(".py")
    return module if file.endswith(".html") else f"{module}.{name}"


# --- Measuring -----------------------------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.wrk = wrk_binary()
        self.results: list[dict] = []
        self.failures: list[str] = []

    def measure(self, target: str, running: Running, label: str, path: str, count: int, cookie: str,
                connections: int, close: bool = False) -> dict:
        script_args = [cookie, path, str(count)] + (["close"] if close else [])
        threads = wrk_threads(connections)
        settle(limit=self.args.settle)
        if self.args.warmup > 0:
            run_wrk(self.wrk, "console.lua", running.service.base_url, connections, threads, self.args.warmup,
                    self.args.timeout, script_args)
        meter = CpuMeter(running.service.process.pid, running.postmaster, running.database)
        meter.start()
        try:
            out = run_wrk(self.wrk, "console.lua", running.service.base_url, connections, threads,
                          self.args.duration, self.args.timeout, script_args)
        finally:
            cpu = meter.stop()
        if running.service.process.poll() is not None:
            raise PerfError(f"{running.service.label} exited during {label} c={connections}; log:\n"
                            f"{running.service.log_tail()}")
        row = {"target": target, "page": label, "path": path, "concurrency": connections, "close": close,
               "wrk_threads": threads, "bytes_per_response": round(out["bytes"] / max(1, out["requests"])),
               **_report.summarise(out, cpu)}
        self.results.append(row)
        lat = row["latency_ms"]
        print(f"    {target:<7} {label:<34} c={connections:<2} {row['requests']:>6} req {row['errors']:>4} err"
              f" {row['req_per_s']:>7.1f} req/s  p50 {lat['p50']:7.2f}  p95 {lat['p95']:7.2f}  p99 {lat['p99']:7.2f} ms"
              f"  server {fmt(row['cpu']['server_cores'])} pg {fmt(row['cpu']['postgres_cores'])} cores"
              + (f"  first error: {row['first_error'][:120]!r}" if row["non_2xx"] else "")
              + (f"  socket errors {row['socket_errors']}" if row["errors"] > row["non_2xx"] else ""))
        if row["errors"] and target == "ours":
            self.failures.append(f"{label} c={connections}: {row['errors']} errors (statuses {row['statuses']},"
                                 f" socket {row['socket_errors']}, first: {row['first_error']})")
        return row


def probe(base_url: str, path: str, timeout: float) -> dict:
    started = time.perf_counter()
    try:
        answer = requests.get(base_url + path, timeout=timeout, headers={"Connection": "close"})
    except requests.RequestException as exc:
        return {"ok": False, "seconds": round(time.perf_counter() - started, 3), "error": f"{type(exc).__name__}: {exc}"}
    seconds = time.perf_counter() - started
    result = {"ok": answer.status_code == 200, "status": answer.status_code, "seconds": round(seconds, 3),
              "bytes": len(answer.content)}
    if answer.status_code != 200:
        result["error"] = answer.text[:500]
    else:
        try:
            body = answer.json()
            result["versions_in_answer"] = len(body.get("model_versions", []) or
                                               (body.get("registered_model") or {}).get("latest_versions", []))
        except ValueError:
            pass
    return result


def sequential(base_url: str, path: str, times: int, timeout: float) -> dict:
    """A few requests one after another (for calls too slow for a meaningful wrk run)."""
    samples = [probe(base_url, path, timeout) for _ in range(times)]
    ok = [s["seconds"] * 1e3 for s in samples if s["ok"]]
    return {"samples": samples, "ok": len(ok), "latency_ms": {"min": min(ok), "median": statistics.median(ok),
                                                              "max": max(ok)} if ok else None}


# --- The browser ---------------------------------------------------------------------------------------------

def browser_loads(targets: list[dict], timeout_s: float) -> list[dict]:
    """Each target: {"label", "url", "cookie": (name, value) or None, "ready_text": text that shows when the
    versions are on screen, "watch": substrings of the calls to report}. Loads each page twice in one context
    (cold HTTP cache, then warm) and records every request: type, status, body bytes, duration."""
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright

    found = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM)
        try:
            for target in targets:
                context = browser.new_context(viewport={"width": 1280, "height": 900})
                if target.get("cookie"):
                    name, value = target["cookie"]
                    context.add_cookies([{"name": name, "value": value, "url": target["url"]}])
                for attempt in ("cold cache", "warm cache"):
                    if attempt == "warm cache" and "error" in found[-1]:
                        break  # it did not load at all: once is enough
                    page = context.new_page()
                    entries, failed = [], []
                    page.on("requestfinished", lambda r: entries.append(r))
                    page.on("requestfailed", lambda r: failed.append({"url": r.url, "failure": r.failure}))
                    started = time.monotonic()
                    result = {"label": target["label"], "load": attempt, "url": target["url"]}
                    try:
                        page.goto(target["url"], wait_until="load", timeout=timeout_s * 1e3)
                        result["load_event_s"] = round(time.monotonic() - started, 3)
                        if target.get("ready_text"):
                            page.get_by_text(target["ready_text"], exact=True).first.wait_for(
                                timeout=max(1.0, timeout_s - (time.monotonic() - started)) * 1e3)
                        result["ready_s"] = round(time.monotonic() - started, 3)
                        page.wait_for_timeout(1500)  # late calls (the page keeps polling: no "network idle")
                    except PlaywrightError as exc:
                        result["error"] = f"{type(exc).__name__}: {str(exc).splitlines()[0][:300]}"
                        result["gave_up_after_s"] = round(time.monotonic() - started, 3)
                    result.update(_requests_summary(entries, failed, target.get("watch", ())))
                    found.append(result)
                    page.close()
                context.close()
        finally:
            browser.close()
    return found


def _requests_summary(entries, failed, watch) -> dict:
    rows = []
    for r in entries:
        try:
            sizes, response = r.sizes(), r.response()
        except Exception:  # noqa: BLE001 - a request whose page is gone: count what is known
            sizes, response = {"responseBodySize": 0}, None
        t = r.timing
        rows.append({"type": r.resource_type, "url": r.url, "status": response.status if response else None,
                     "bytes": max(0, sizes.get("responseBodySize", 0)),  # -1: served from the HTTP cache
                     "ms": round(t["responseEnd"], 1) if t.get("responseEnd", -1) >= 0 else None,
                     "start_epoch_ms": t.get("startTime")})
    by_type: dict[str, int] = {}
    for row in rows:
        by_type[row["type"]] = by_type.get(row["type"], 0) + row["bytes"]
    first = min((r["start_epoch_ms"] for r in rows if r["start_epoch_ms"]), default=None)
    watched = []
    for row in rows:
        if any(w in row["url"] for w in watch):
            end = (row["start_epoch_ms"] - first + row["ms"]) if first is not None and row["ms"] is not None else None
            watched.append({**row, "ends_after_navigation_ms": round(end, 1) if end is not None else None})
    return {"requests": len(rows), "bytes_total": sum(r["bytes"] for r in rows), "bytes_by_type": by_type,
            "watched_calls": watched, "failed_requests": failed, "all_requests": rows}


# --- Reporting -----------------------------------------------------------------------------------------------

def print_results(results: list[dict], cores: int) -> None:
    rows = [[r["target"], r["page"], str(r["concurrency"]), str(r["requests"]), str(r["errors"]), f"{r['req_per_s']:.1f}",
             fmt(r["latency_ms"]["p50"]), fmt(r["latency_ms"]["p95"]), fmt(r["latency_ms"]["p99"]),
             str(r["bytes_per_response"]), fmt(r["cpu"]["server_cores"]), fmt(r["cpu"]["postgres_cores"]),
             f"{fmt(r['cpu']['machine_busy_cores'])}/{cores}"] for r in results]
    print(table(["server", "page / call", "conc", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms",
                 "bytes/resp", "server cpu", "pg cpu", "machine"], rows, left=2))
    print(CPU_LEGEND)


def print_weights(weights: list[dict], mlflow_weight: dict | None) -> None:
    rows = [[w["page"], str(w["status"]), str(w["html_bytes"]), str(w["css_bytes"]), str(w["js_bytes"]),
             str(w["img_bytes"]), str(w["total_bytes"]), str(w["html_gzip_bytes"]),
             "yes" if w["total_bytes"] < WEIGHT_TARGET_BYTES else "NO"] for w in weights]
    if mlflow_weight:
        for label, w in mlflow_weight.items():
            rows.append([f"MLflow {label}", "200", str(w.get("html", "?")), str(w.get("css", "?")), str(w.get("js", "?")),
                         str(w.get("img", 0)), str(w["total"]), "-", "yes" if w["total"] < WEIGHT_TARGET_BYTES else "NO"])
    print(table(["page", "status", "html", "css", "js", "img", "total bytes", "html gzip", "< 100 KB"], rows, left=1))


def mlflow_static_weight(base_url: str) -> dict:
    """The MLflow UI's shell: index.html and the script and stylesheet it names (loaded before anything shows;
    the model page then loads more chunks, counted by the browser run)."""
    index = requests.get(base_url + "/", timeout=60)
    css = js = 0
    for kind, pattern in _ASSETS:
        for ref in pattern.findall(index.text):
            size = len(requests.get(urljoin(base_url + "/", ref), timeout=120).content)
            if kind == "css":
                css += size
            elif kind == "js":
                js += size
    return {"html": len(index.content), "css": css, "js": js, "img": 0, "total": len(index.content) + css + js}


def targets_table(results: list[dict], weights: list[dict], pages: list[Page]) -> list[dict]:
    found = []
    for page in pages:
        for r in results:
            if r["target"] == "ours" and r["page"] == page.label:
                p95 = r["latency_ms"]["p95"]
                found.append({"target": f"{page.label} c={r['concurrency']}: p95 < {P95_TARGET_MS:g} ms"
                              + ("" if page.target else " (informational)"),
                              "measured": f"{p95:.2f} ms", "met": p95 < P95_TARGET_MS, "issue_target": page.target,
                              "page": page.label, "concurrency": r["concurrency"]})
    for w in weights:
        found.append({"target": f"{w['page']}: weight (HTML + CSS + JS + images) < 100 KB",
                      "measured": f"{w['total_bytes']} bytes", "met": w["total_bytes"] < WEIGHT_TARGET_BYTES,
                      "issue_target": True, "page": w["page"]})
    print(table(["target", "measured", "met"], [[t["target"], t["measured"], "yes" if t["met"] else "NO"]
                                                for t in found], left=2))
    return found


# --- Orchestration -------------------------------------------------------------------------------------------

def run(args: argparse.Namespace) -> int:
    wrk = wrk_binary()
    names = {"ours": f"registry_{args.db_prefix}"}
    if not args.no_mlflow:
        names["mlflow"] = f"mlflow_{args.db_prefix}"
    log_dir = Path(tempfile.mkdtemp(prefix="registry-console-perf-"))
    load_avg = os.getloadavg()
    meta = {
        "started_at": datetime.now(timezone.utc).isoformat(), "git": git_describe(),
        "host": {"cpus": psutil.cpu_count(), "load_avg_at_start": load_avg, "platform": platform.platform(),
                 "python": platform.python_version(), "memory_mib": psutil.virtual_memory().total // 2**20},
        "wrk": wrk_version(wrk), "versions": _tool_versions(),
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "server_env": {k: v for k, v in os.environ.items() if k.startswith("REGISTRY_")}, "databases": names,
        "logs": str(log_dir), "servers": {},
        "data": {"models": args.models, "versions_per_model": args.versions, "big_model": seed.BIG_MODEL,
                 "big_model_versions": args.big_model_versions, "pending_requests": args.pending_requests,
                 "total_versions": args.models * args.versions + args.big_model_versions},
        "mlflow_model_page_calls": {"page_size": MLFLOW_PAGE_SIZE, "order_by": MLFLOW_ORDER_BY,
                                    "source": "mlflow/server/js/build/static/js/4028.*.chunk.js (loadPage)"},
    }
    print(f"load average at start {tuple(round(x, 2) for x in load_avg)} on {psutil.cpu_count()} cores;"
          f" server logs in {log_dir}")
    warn_about_connections(args.admin_url)
    pages = console_pages(args.big_model_versions)
    running: dict[str, Running] = {}
    mlflow_dir: Path | None = None
    bench = Bench(args)
    out: dict = {"meta": meta}
    checks: list[str] = []
    try:
        print(f"seeding (COPY): {args.models} models x {args.versions} versions + {seed.BIG_MODEL} x"
              f" {args.big_model_versions} versions, {args.pending_requests} pending requests (registry only)")
        meta["seed"] = prepare_databases(args, names)
        url = seed.database_url(args.admin_url, names["ours"])
        running["ours"] = Running(RegistryServer(url, free_port(), args.workers, log_dir / "ours.log"),
                                  names["ours"], url)
        if "mlflow" in names:
            mlflow_dir = Path(tempfile.mkdtemp(prefix="mlflow-perf-"))
            murl = seed.database_url(args.admin_url, names["mlflow"])
            running["mlflow"] = Running(MlflowServer(seed.mlflow_url(murl), free_port(), log_dir / "mlflow.log",
                                                     mlflow_dir), names["mlflow"], murl, mlflow=True)
        print(f"\nstarting {', '.join(running)}")
        start_servers(running, tuple(running), args.ready_timeout, meta)
        ours = running["ours"].service.base_url
        token = make_reviewer(ours)
        cookie_value = sign_in(ours, token)
        cookie = f"{COOKIE}={cookie_value}"
        print(f"signed in to the console as {REVIEWER} (MANAGE_PRODUCTION registry-wide)")

        print("\npages, one request each (first request after start: includes cold caches):")
        http = requests.Session()
        http.cookies.set(COOKIE, cookie_value)
        weights = []
        for page in pages:
            w = page_weight(http, ours, page)
            weights.append(w)
            extra = f", waiting for review: {w['inbox_waiting']}" if w["inbox_waiting"] is not None else ""
            print(f"  {page.label:<22} {w['path'][:48]:<48} HTTP {w['status']} {w['first_request_ms']:8.1f} ms,"
                  f" HTML {w['html_bytes']} B + CSS {w['css_bytes']} B + JS {w['js_bytes']} B, {w['table_rows']}"
                  f" table rows{extra}")
            if w["status"] != 200 or not w["contains_marker"]:
                checks.append(f"{page.label}: HTTP {w['status']}, expected text {page.must_contain!r}"
                              f" {'found' if w['contains_marker'] else 'NOT found'}")
        out["weights"] = weights
        print("\nquery plans (EXPLAIN ANALYZE of every SELECT each page sends, first request of a fresh process):")
        out["plans"], out["profile"] = explain_pages(url, cookie_value, pages, args.profile_repeats)
        print_plans(out["plans"])
        print_profile(out["profile"])

        print(f"\nour console pages (wrk, cookie of {REVIEWER}; {args.warmup} s warm-up + {args.duration} s each):")
        for page in pages:
            for connections in args.concurrency:
                bench.measure("ours", running["ours"], page.label, page.path, page.count, cookie, connections)

        if "mlflow" in running:
            out["mlflow"] = measure_mlflow(args, bench, running["mlflow"])
        if not args.no_browser:
            out["browser"] = run_browser(args, running, cookie_value)
    finally:
        for r in running.values():
            r.service.stop()
        if mlflow_dir:
            shutil.rmtree(mlflow_dir, ignore_errors=True)
        if not args.keep_db:
            for name in names.values():
                drop_database(args.admin_url, name)

    data = meta["data"]
    print(f"\nresults (data: {data['models']} models x {data['versions_per_model']} versions + {seed.BIG_MODEL} x"
          f" {data['big_model_versions']} = {data['total_versions']} versions, {data['pending_requests']} pending"
          f" requests; signed in as {REVIEWER})")
    print_results(bench.results, psutil.cpu_count())
    print("\npage weight (bytes; the console sends HTML uncompressed, gzip shown for information):")
    mlflow_weight = None
    if "mlflow" in out:
        mlflow_weight = {"UI shell (index.html + main js/css)": out["mlflow"]["static_weight"]}
        for load in out.get("browser", []):
            if load.get("label") == "mlflow model page" and load.get("load") == "cold cache":
                b = load["bytes_by_type"]
                mlflow_weight["model page in Chromium"] = {
                    "html": b.get("document", 0), "css": b.get("stylesheet", 0), "js": b.get("script", 0),
                    "img": b.get("image", 0), "total": load["bytes_total"]}
    print_weights(out["weights"], mlflow_weight)
    if out.get("browser"):
        print_browser(out["browser"])
    print(f"\nissue 10 targets (server time p95 at each concurrency; the issue's pages are {', '.join(TARGET_PAGES)}):")
    out["targets"] = targets_table(bench.results, out["weights"], pages)
    misses = [t for t in out["targets"] if not t["met"] and t.get("concurrency", 1) == min(args.concurrency)]
    plans = out.get("plans", {})
    for miss in misses:
        print_miss(miss, plans.get(miss.get("page"), {}) if "error" not in plans else {},
                   out.get("profile", {}).get(miss.get("page")))
    for page, p in (plans.items() if "error" not in plans else []):
        for scan in p["seq_scans"]:
            print(f"SEQ SCAN: {page}: {scan['table']} ({scan['rows_read']} rows): {_clip(' '.join(scan['sql'].split()), 160)}")
    failures = bench.failures + checks
    out.update(results=bench.results, failures=failures)
    if args.out:
        args.out.write_text(json.dumps(out, indent=2, default=str) + "\n")
        print(f"\nresults written to {args.out}")
    for failure in failures:
        print(f"FAILED: {failure}", file=sys.stderr)
    return 1 if failures else 0


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width] + f"... ({len(text)} chars)"


def print_miss(miss: dict, plan: dict, profile: dict | None) -> None:
    """Why a page missed its target: where its time goes (in-process split), its slowest statements with their
    plans (long SQL and plan lines clipped; the JSON has them whole), statements repeated per row."""
    print(f"\nMISSED: {miss['target']} ({miss['measured']})")
    if profile:
        print(f"  in-process render: {profile['median_ms']:.1f} ms = {profile['sql_median_ms']:.1f} ms in the database"
              f" driver ({profile['statements']} statements) + {profile['python_median_ms']:.1f} ms Python; heaviest: "
              + ", ".join(f"{_where(r['function'])} {r['cumulative_ms']:.1f} ms" for r in profile["top_services"][:4]))
        own = [r for r in profile["top_own"] if "psycopg2" not in r["function"]][:3]
        print("  most own time (profiled): " + ", ".join(f"{r['function']} {r['own_ms']:.1f} ms x{r['calls']}" for r in own))
    if not plan:
        return
    print(f"  {plan['selects']} SELECTs, {plan['postgres_ms']:.2f} ms in PostgreSQL (EXPLAIN ANALYZE, first request)")
    for count, shape in plan["repeated_shapes"][:2]:
        print(f"  repeated {count}x: {_clip(' '.join(shape.split()), 220)}")
    for st in plan["slowest"][:2]:
        if (st["execution_ms"] or 0) < 5:
            continue
        jit = re.search(r"Timing: .*Total ([\d.]+) ms", st["plan"])
        print(f"  statement of {st['execution_ms']} ms" + (f" (of which JIT compilation {jit.group(1)} ms)" if jit else "")
              + f":\n    {_clip(' '.join(st['sql'].split()), 1200)}")
        print("\n".join("      " + _clip(line, 200) for line in st["plan"].splitlines()))


def measure_mlflow(args, bench: Bench, running: Running) -> dict:
    base = running.service.base_url
    found = {"static_weight": mlflow_static_weight(base), "calls": {}}
    print(f"\nMLflow's model page calls (page size {MLFLOW_PAGE_SIZE}, order {MLFLOW_ORDER_BY!r}), first answer"
          f" each (Connection: close):")
    for name, suffix in ((seed.BIG_MODEL, ""), (seed.model_name(1), " (10 versions)")):
        for call in mlflow_calls(name, suffix):
            first = probe(base, call.path, timeout=max(args.timeout, 300))
            entry = {"path": call.path, "first": first, "reference": bool(suffix)}
            found["calls"][call.label] = entry
            print(f"  {call.label:<36} {'HTTP ' + str(first.get('status')) if 'status' in first else 'no answer'}"
                  f" in {first['seconds']:.3f} s, {first.get('bytes', 0)} bytes"
                  + (f"; {first['error'][:200]}" if first.get("error") else ""))
    for label, entry in found["calls"].items():
        first = entry["first"]
        if not first["ok"] or first["seconds"] > args.mlflow_slow:
            times = 3 if first["seconds"] < 30 else 1
            entry["sequential"] = sequential(base, entry["path"], times, max(args.timeout, 300)) if first["ok"] else None
            entry["note"] = ("fails" if not first["ok"] else f"slower than {args.mlflow_slow:g} s: timed with {times}"
                             " more sequential request(s) instead of wrk")
            print(f"  {label}: {entry['note']}" + (f" {entry['sequential']['latency_ms']}" if entry["sequential"] else ""))
            continue
        # The 10-version model is a reference: one client only.
        for connections in args.concurrency[:1] if entry["reference"] else args.concurrency:
            bench.measure("mlflow", running, label, entry["path"], 1, "-", connections)
        if 1 in args.concurrency and not entry["reference"]:
            # Without the keep-alive stall (README: MLflow answers one client >= 40 ms late on keep-alive).
            bench.measure("mlflow", running, label + " [conn close]", entry["path"], 1, "-", 1, close=True)
    return found


def run_browser(args, running: dict[str, Running], cookie_value: str) -> list[dict]:
    if not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)):
        print(f"\nNOTE: no Chromium at {CHROMIUM} (apt-get install chromium): browser loads skipped")
        return []
    big, newest = seed.BIG_MODEL, args.big_model_versions
    targets = [{"label": "our model page", "url": f"{running['ours'].service.base_url}/models/{big}",
                "cookie": (COOKIE, cookie_value), "ready_text": f"v{newest}",
                "watch": [f"/models/{big}", "console.css"]}]
    if "mlflow" in running:
        targets.append({"label": "mlflow model page", "url": f"{running['mlflow'].service.base_url}/#/models/{big}",
                        "ready_text": f"Version {newest}",
                        "watch": ["registered-models/get", "model-versions/search"]})
    print(f"\nloading the model pages of {big} in Chromium (cold, then warm HTTP cache):")
    try:
        loads = browser_loads(targets, args.browser_timeout)
    except Exception as exc:  # noqa: BLE001 - the browser is a comparison, not the benchmark: note and go on
        print(f"NOTE: browser run failed: {type(exc).__name__}: {exc}")
        return [{"error": f"{type(exc).__name__}: {exc}"}]
    for load in loads:
        print(f"  {load['label']:<18} {load['load']:<10} "
              + (f"ERROR {load['error']} after {load['gave_up_after_s']} s; " if "error" in load else
                 f"load event {load['load_event_s']:.2f} s, versions on screen {load['ready_s']:.2f} s; ")
              + f"{load['requests']} requests, {load['bytes_total']} bytes {load['bytes_by_type']}")
        for call in load["watched_calls"]:
            print(f"      {call['type']:<10} HTTP {call['status']} {call['bytes']:>9} B {fmt(call['ms'], 1):>8} ms"
                  f"  {call['url'].split('/', 3)[-1][-110:]}")
    return loads


def print_browser(loads: list[dict]) -> None:
    rows = []
    for load in loads:
        if "label" not in load:
            continue
        rows.append([load["label"], load["load"], fmt(load.get("load_event_s")), fmt(load.get("ready_s")),
                     str(load["requests"]), str(load["bytes_total"]), load.get("error", "")[:60]])
    if rows:
        print("\nin Chromium (seconds from navigation; 'versions shown' = the newest version's row is on screen):")
        print(table(["page", "load", "load event s", "versions shown s", "requests", "bytes", "error"], rows, left=2))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--explain-child"]:
        explain_child(argv[1], argv[2], argv[4:], int(argv[3]))
        return 0
    return run_main(parse_args, run, argv, "servers stopped and benchmark databases dropped (unless --keep-db)")


if __name__ == "__main__":
    sys.exit(main())
