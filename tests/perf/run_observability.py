#!/usr/bin/env python3
"""The cost of metrics and request logging on cached serving reads (issue 15: target under 5%).

Four settings, all at REGISTRY_LOG_LEVEL=INFO with their output in a file (as a container's stderr would be):
  default  as shipped: every metric, and a JSON log line per request except the replayed cache hits
           (REGISTRY_REQUEST_LOG=uncached);
  all      every metric, and a log line for every request (REGISTRY_REQUEST_LOG=all);
  metrics  every metric, no request lines (REGISTRY_REQUEST_LOG=off);
  off      neither (REGISTRY_METRICS=0, REGISTRY_REQUEST_LOG=off; request ids stay).

**Over HTTP.** One server migrates the database and seeds it (then stops). Each round then starts four FRESH
`registry serve --workers 2` (on fresh ports, one per setting, the settings' start order and slot rotated each
round), warms each with a short wrk run per read, measures each read on each server with the other three paused
(SIGSTOP) at c=32 over keep-alive connections, in ``--slices`` short runs interleaved between the servers (one
run's figure depends on how its 32 connections happened to spread over the two workers: runs of one setting were
bimodal, ~8,000 or ~11,000 req/s, so a median needs many runs), and stops them. Fresh processes per round because a process
carries a bias of its own for its whole life (hash seeds, memory layout, port, what started before it): with
one process per setting for the whole run, "default" measured +10.6% and +6.4% server CPU per request over "off"
on MLflow get-latest-versions while "metrics" measured +2.9% and +2.7%, although on a replayed read the two do
the same work but one `environ.get`; and "default" measured -3.5% (cheaper than "off") on the native read. The
reads: native GET /api/v1/models/{name}/stages/Production and MLflow POST get-latest-versions. Reported per
setting: req/s, latency p50/p99 and the server's CPU per request (the steadiest figure on a shared machine), as
medians over every run, with ratios to "off". Even so the spread between settings that do the same work stayed
at several percent (8 rounds of one 6 s run: "metrics" -1.0%, "default" +20.2% on the native read; +9.0% and
+2.1% on MLflow's): what separates 1-2 us of telemetry from a ~150-200 us request is the in-process figure.

**In process** (`--in-process-requests`, 0 to skip). In this one Python process, one app per setting
(`registry.create_app`, logging configured as a server's, lines to a file), on the same database and caches
primed with one request of each read; then the full WSGI stack, telemetry included, is called directly on a
prebuilt environ (what tests/perf/serving.lua sends), the settings interleaved in blocks (round-robin, rotated),
CPU time (time.process_time) per block. No sockets, no gevent, no other process: the difference between settings
is the telemetry's own cost, reported in microseconds per request and as a share of the HTTP server's CPU per
request measured above. Every answer must be a 200 replayed from the cache (the hot path). REGISTRY_METRICS=0
switches the metrics off for the whole process (telemetry/metrics.py, ``switch_off``): here the metric objects
of "off" and of the others are swapped in before each block.

    .venv/bin/python tests/perf/run_observability.py                 # 4 rounds x 4 runs of 2 s per read and setting
    .venv/bin/python tests/perf/run_observability.py --rounds 1 --duration 2 --in-process-requests 2000   # smoke
"""
from __future__ import annotations

import argparse
import io
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
from _server import (ADMIN_HEADERS, ADMIN_TOKEN, REPO, PerfError, RegistryServer, database_url,  # noqa: E402
                     drop_database, free_port, recreate_database, seed)
from _wrk import run_wrk, wrk_binary, wrk_version  # noqa: E402

DB_NAME = "registry_perf_observability"
KINDS = ("native_stage", "mlflow_latest")
SETTINGS = {
    "default": {"REGISTRY_LOG_LEVEL": "INFO"},
    "all": {"REGISTRY_LOG_LEVEL": "INFO", "REGISTRY_REQUEST_LOG": "all"},
    "metrics": {"REGISTRY_LOG_LEVEL": "INFO", "REGISTRY_REQUEST_LOG": "off"},
    "off": {"REGISTRY_LOG_LEVEL": "INFO", "REGISTRY_METRICS": "0", "REGISTRY_REQUEST_LOG": "off"},
}
WARM_S = 3  # wrk per read and server before a round's measurements


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
    p.add_argument("--duration", type=float, default=2.0, help="seconds of each wrk run (--slices per round)")
    p.add_argument("--workers", type=int, default=2, help="registry serve --workers of each measured server")
    p.add_argument("--slices", type=int, default=4,
                   help="wrk runs of --duration seconds per read, setting and round, interleaved between the settings")
    p.add_argument("--rounds", type=int, default=4,
                   help="rounds of four fresh servers (a multiple of 4 puts every setting in every slot equally)")
    p.add_argument("--in-process-requests", type=int, default=20000,
                   help="in-process calls per setting and read (0: skip that part)")
    p.add_argument("--in-process-block", type=int, default=500, help="calls per timed in-process block")
    p.add_argument("--out", help="write the JSON result here")
    args = p.parse_args(argv)
    if args.rounds < 1:
        p.error("--rounds must be at least 1")
    if args.in_process_requests and args.in_process_block < 1:
        p.error("--in-process-block must be at least 1")
    return args


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


def count_lines(path: Path) -> tuple[int, int]:
    """(lines, request lines) of a log file."""
    lines = requests_logged = 0
    with open(path, errors="replace") as log:
        for line in log:
            lines += 1
            requests_logged += '"logger": "registry.request"' in line
    return lines, requests_logged


def rotated(labels: list[str], by: int) -> list[str]:
    by %= len(labels)
    return labels[by:] + labels[:by]


def measure_over_http(args, binary: str, url: str, token: str, workdir: Path) -> tuple[dict, dict]:
    """Every round: four fresh servers, warmed, each read measured on each with the other three paused."""
    results: dict[str, dict[str, list[dict]]] = {kind: {label: [] for label in SETTINGS} for kind in KINDS}
    logs: dict[str, list[str]] = {label: [] for label in SETTINGS}
    wrk_args = [token, "1", str(args.models), "1"]
    for round_no in range(args.rounds):
        order = rotated(list(SETTINGS), round_no)  # start order = slot = measuring order, another each round
        servers: dict[str, ConfiguredServer] = {}
        try:
            for label in order:
                log_path = workdir / f"round{round_no + 1}-{label}.log"
                logs[label].append(str(log_path))
                servers[label] = ConfiguredServer(url, free_port(), args.workers, log_path, extra_env=SETTINGS[label])
                servers[label].start(ready_timeout=120)
            for kind in KINDS:
                for server in servers.values():  # warm every worker's caches and code paths
                    run_wrk(binary, "serving.lua", server.base_url, args.connections, 2, WARM_S, 30, [kind, *wrk_args])
            # Several short runs per setting, interleaved: one wrk run's figure depends on how its connections
            # happened to spread over the workers (runs of one server differed by up to 40%), so each setting
            # gets many runs and the median is taken over all of them.
            slices = [(kind, slice_no) for kind in KINDS for slice_no in range(args.slices)]
            for kind, slice_no in slices:
                for slot, label in enumerate(rotated(order, slice_no)):
                    server = servers[label]
                    time.sleep(0.5)
                    with ExitStack() as others:  # the one measured has the machine to itself
                        for other in servers.values():
                            if other is not server:
                                others.enter_context(other.paused())
                        cpu_before = tree_cpu(server.process.pid)
                        wrk = run_wrk(binary, "serving.lua", server.base_url, args.connections, 2, args.duration,
                                      30, [kind, *wrk_args])
                        cpu = tree_cpu(server.process.pid) - cpu_before
                    statuses = {int(k): v for k, v in wrk["statuses"].items()}
                    if set(statuses) != {200}:
                        raise PerfError(f"{label} {kind}: statuses {statuses} ({wrk.get('first_error')})")
                    seconds = wrk["duration_us"] / 1e6
                    results[kind][label].append({
                        "req_per_s": wrk["requests"] / seconds, "p50_ms": wrk["latency_us"]["p50"] / 1000,
                        "p99_ms": wrk["latency_us"]["p99"] / 1000,
                        "cpu_us_per_request": cpu / wrk["requests"] * 1e6, "requests": wrk["requests"],
                        "round": round_no + 1, "slice": slice_no + 1, "slot": slot, "port": server.port})
                    print(f"  round {round_no + 1} {kind} {label} (slot {slot}, port {server.port}): "
                          f"{results[kind][label][-1]['req_per_s']:.0f} req/s, "
                          f"{results[kind][label][-1]['cpu_us_per_request']:.0f} us CPU/req", flush=True)
        finally:
            for server in servers.values():
                server.stop()
    return results, logs


def in_process_overrides(url: str, label: str) -> dict:
    """create_app overrides of a setting, read from the same variables a server gets (SETTINGS)."""
    from registry.config import Settings

    settings = Settings.from_env({**os.environ, "DATABASE_URL": url, **SETTINGS[label]})
    return {"database_url": url, "admin_token": ADMIN_TOKEN, "metrics_enabled": settings.metrics_enabled,
            "request_log": settings.request_log, "log_level": settings.log_level}


def measure_in_process(args, url: str, token: str, workdir: Path) -> dict:
    """One process, one app per setting, the WSGI stack called directly; CPU time per block of calls."""
    metrics_dir = workdir / "in-process-metrics"
    metrics_dir.mkdir()
    # As under gunicorn (deploy/gunicorn.conf.py): metric values in files, chosen when the first metric is made.
    saved_variable = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    sys.path.insert(0, str(REPO))  # this checkout, as the servers' PYTHONPATH
    import logging
    import logging.config

    from prometheus_client.metrics import MetricWrapperBase
    from werkzeug.test import EnvironBuilder

    from registry import create_app
    from registry.extensions import CACHES_KEY, db
    from registry.telemetry import context, metrics
    from registry.telemetry.logs import logging_config, skip_unused_record_fields

    # A server's logging (gunicorn applies LOGGING in the master): JSON lines through a StreamHandler to its
    # stderr, which Python line-buffers; here one line-buffered file per setting, swapped in before each block.
    skip_unused_record_fields()
    logging.config.dictConfig(logging_config("INFO"))
    handler = next(h for h in logging.getLogger().handlers if isinstance(h, logging.StreamHandler))
    log_files = {label: open(workdir / f"in-process-{label}.log", "w", buffering=1, encoding="utf-8",
                             errors="backslashreplace") for label in SETTINGS}

    module_before = dict(vars(metrics))
    metrics_on: dict = {}
    apps, states = {}, {}
    try:
        for label in sorted(SETTINGS, key=lambda lab: lab == "off"):  # "off" last: it switches the module off
            apps[label] = create_app(in_process_overrides(url, label))
        # What switch_off replaced (the metric objects, the batched updates): swapped in per setting below.
        switched = {n: v for n, v in vars(metrics).items() if n in module_before and module_before[n] is not v}
        if not any(isinstance(module_before.get(n), MetricWrapperBase) for n in switched):
            raise PerfError("in process: the 'off' app did not switch the metrics off")
        metrics_on = {n: module_before[n] for n in switched}
        states = {label: switched if label == "off" else metrics_on for label in SETTINGS}

        def enter(label: str) -> None:
            for name, value in states[label].items():
                setattr(metrics, name, value)
            handler.setStream(log_files[label])

        model = "perf-m-000001"
        headers = {"Accept": "application/json", "Authorization": f"Bearer {token}"}
        bodies = {"native_stage": b"", "mlflow_latest": ('{"name":"%s","stages":["Production"]}' % model).encode()}
        bases = {
            "native_stage": EnvironBuilder(path=f"/api/v1/models/{model}/stages/Production", method="GET",
                                           headers=headers).get_environ(),
            "mlflow_latest": EnvironBuilder(path="/api/2.0/mlflow/registered-models/get-latest-versions",
                                            method="POST", headers=headers, data=bodies["mlflow_latest"],
                                            content_type="application/json").get_environ(),
        }

        def environs(kind: str, n: int) -> list[dict]:
            out = []
            for _ in range(n):  # every layer may write to the environ, and the body is a stream: a copy each
                environ = dict(bases[kind])
                environ["wsgi.input"] = io.BytesIO(bodies[kind])
                out.append(environ)
            return out

        def call_all(app, batch: list[dict], statuses: list) -> None:
            start_response = lambda status, headers, exc_info=None: statuses.append(status)  # noqa: E731
            for environ in batch:
                result = app(environ, start_response)
                try:
                    for _chunk in result:
                        pass
                finally:
                    close = getattr(result, "close", None)
                    if close is not None:
                        close()

        def check(label: str, kind: str, batch: list[dict], statuses: list) -> None:
            bad = [s for s in statuses if not s.startswith("200")]
            if bad or len(statuses) != len(batch):
                raise PerfError(f"in process, {label} {kind}: statuses {sorted(set(statuses))}")
            if not all(environ.get(context.REPLAYED) for environ in batch):
                raise PerfError(f"in process, {label} {kind}: not every answer was replayed from the cache")

        # Prime: the first request authenticates the reader through Flask (and is remembered), the answer is
        # kept; from then on it is replayed. The listener must be connected first (an answer is current only
        # while it is): retry for a while.
        for label, app in apps.items():
            enter(label)
            for kind in KINDS:
                deadline = time.monotonic() + 30
                while True:
                    batch, statuses = environs(kind, 1), []
                    call_all(app, batch, statuses)
                    if not statuses[0].startswith("200"):
                        raise PerfError(f"in process, {label} {kind}: HTTP {statuses[0]} while priming")
                    if batch[0].get(context.REPLAYED):
                        break
                    if time.monotonic() > deadline:
                        raise PerfError(f"in process, {label} {kind}: never replayed from the cache")
                    time.sleep(0.05)
        labels = list(SETTINGS)
        block = args.in_process_block
        blocks = max(1, -(-args.in_process_requests // block))
        per_block: dict[str, dict[str, list[float]]] = {kind: {label: [] for label in labels} for kind in KINDS}
        logged: dict[str, dict[str, int]] = {kind: {} for kind in KINDS}
        for kind in KINDS:
            for label in labels:  # warm-up block, not counted
                enter(label)
                batch, statuses = environs(kind, block), []
                call_all(apps[label], batch, statuses)
                check(label, kind, batch, statuses)
            written_before = {label: log_files[label].tell() for label in labels}
            for block_no in range(blocks):
                for label in rotated(labels, block_no):  # each setting in every position of the cycle
                    enter(label)
                    app, batch, statuses = apps[label], environs(kind, block), []
                    started = time.process_time_ns()
                    call_all(app, batch, statuses)
                    cpu_ns = time.process_time_ns() - started
                    check(label, kind, batch, statuses)
                    per_block[kind][label].append(cpu_ns / block / 1000)
            logged[kind] = {label: log_files[label].tell() - written_before[label] for label in labels}
            # The log is really written where it should be, and only there (replayed reads: "all" only).
            if not logged[kind]["all"] or any(logged[kind][label] for label in labels if label != "all"):
                raise PerfError(f"in process, {kind}: unexpected log output while measured: {logged[kind]}")
    finally:
        for name, value in metrics_on.items():
            setattr(metrics, name, value)
        for app in apps.values():
            app.extensions[CACHES_KEY].hub.close()  # the listener ends within its 5 s select
            with app.app_context():
                db.engine.dispose()
        handler.setStream(sys.stderr)
        for log in log_files.values():
            log.close()
        if saved_variable is None:
            os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)
        else:
            os.environ["PROMETHEUS_MULTIPROC_DIR"] = saved_variable
    return {"requests_per_setting_and_read": blocks * block, "block": block, "blocks": blocks, "model": model,
            "us_per_request_blocks": per_block, "log_bytes_while_measured": logged,
            "log_lines": {label: count_lines(Path(log_files[label].name))[0] for label in labels}}


def run(args) -> int:
    binary = wrk_binary()
    recreate_database(args.admin_url, DB_NAME)
    workdir = Path(tempfile.mkdtemp(prefix="perf-observability-"))
    url = database_url(args.admin_url, DB_NAME)
    models = [f"perf-m-{i:06d}" for i in range(1, args.models + 1)]
    in_process = None
    try:
        # Migrated and seeded once, by a server of its own that none of the measured rounds reuses (without
        # the per-token write limit, which seeding on a quiet machine exceeds).
        setup = ConfiguredServer(url, free_port(), 2, workdir / "setup.log",
                                 extra_env={"REGISTRY_RATE_LIMIT_TOKEN_WRITES": "off",
                                            "REGISTRY_RATE_LIMIT_ADDRESS_WRITES": "off"})
        try:
            setup.start(ready_timeout=120)
            token = prepare(setup.base_url, models)
        finally:
            setup.stop()
        results, logs = measure_over_http(args, binary, url, token, workdir)
        if args.in_process_requests > 0:
            in_process = measure_in_process(args, url, token, workdir)
    finally:
        drop_database(args.admin_url, DB_NAME)
    counted = [count_lines(Path(path)) for path in logs["default"]]
    log_lines, request_lines = sum(c[0] for c in counted), sum(c[1] for c in counted)

    summary = {"git": git_describe(), "wrk": wrk_version(binary), "connections": args.connections,
               "workers": args.workers, "slices": args.slices, "duration_s": args.duration, "rounds": args.rounds, "models": args.models,
               "on_log_lines": log_lines, "on_request_log_lines": request_lines, "log_files": logs,
               "workdir": str(workdir), "kinds": {}}
    rows = []
    for kind in KINDS:
        metric_names = ("req_per_s", "p50_ms", "p99_ms", "cpu_us_per_request")
        medians = {label: {m: statistics.median(r[m] for r in runs) for m in metric_names}
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
    print(f"metrics + request log, on vs off: c={args.connections}, {args.rounds} rounds of four fresh servers x "
          f"{args.slices} runs of {args.duration:g} s per read and setting (medians), {args.workers} worker(s) each; "
          f"'default' wrote {log_lines} log "
          f"lines ({request_lines} request lines) over all rounds")
    print(table(["read", "server", "req/s", "p50 ms", "p99 ms", "server CPU us/req"], rows, left=2))
    for kind in KINDS:
        for label, r in summary["kinds"][kind]["over_off"].items():
            print(f"{kind}: server CPU per request {(r['cpu_us_per_request'] - 1) * 100:+.1f}%, req/s "
                  f"{(r['req_per_s'] - 1) * 100:+.1f}% with {label!r}"
                  " (target: under 5%)")

    if in_process is not None:
        rows = []
        in_process["kinds"] = {}
        for kind in KINDS:
            blocks = in_process["us_per_request_blocks"][kind]
            medians = {label: statistics.median(values) for label, values in blocks.items()}
            http_off = summary["kinds"][kind]["medians"]["off"]["cpu_us_per_request"]
            entry = in_process["kinds"][kind] = {"median_us_per_request": medians, "http_off_cpu_us_per_request":
                                                 http_off, "over_off_us": {}, "over_off_pct_of_http_cpu": {}}
            for label, median in medians.items():
                delta = median - medians["off"]
                entry["over_off_us"][label] = delta
                entry["over_off_pct_of_http_cpu"][label] = delta / http_off * 100 if http_off else None
                spread = (min(blocks[label]), max(blocks[label]))
                rows.append([kind, label, fmt(median, 1), f"{spread[0]:.1f}-{spread[1]:.1f}",
                             "" if label == "off" else f"{delta:+.2f}",
                             "" if label == "off" else f"{delta / medians['off'] * 100:+.1f}%",
                             "" if label == "off" or not http_off else f"{delta / http_off * 100:+.1f}%"])
        summary["in_process"] = in_process
        print()
        print(f"in process (one Python process, the WSGI stack called directly, replayed answers only): "
              f"{in_process['requests_per_setting_and_read']} calls per setting and read in blocks of "
              f"{in_process['block']}, interleaved; CPU time (process_time) per call, median of the blocks")
        print(table(["read", "setting", "us/call", "blocks min-max", "vs off us", "% of in-process off",
                     "% of HTTP off CPU/req"], rows, left=2))
        print("log bytes written while measured: " + "; ".join(
            f"{kind}: " + ", ".join(f"{label} {n}" for label, n in in_process["log_bytes_while_measured"][kind].items())
            for kind in KINDS))
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2))
    print(f"logs: {workdir}")
    return 0


if __name__ == "__main__":
    sys.exit(run_main(parse_args, run, None, "the servers were stopped and the database dropped"))
