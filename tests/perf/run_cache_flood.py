"""Cache flood: requests that each ask for a distinct cache key, or add parameters their view ignores, against
`registry serve --workers 2` with a small cache budget; reports each worker's RSS before and after against the
budget (issue "Trust the served answer", finding 3: the cache is bounded in bytes, not entries).

    .venv/bin/python tests/perf/run_cache_flood.py                       # 16 MiB budget, 200 models x ~500 KB
    .venv/bin/python tests/perf/run_cache_flood.py --cache-mb 8 --duration 30

The models carry ~500 KB of tags each, so their answers together (200 x 2 dialects x ~500 KB = ~200 MB) are
far larger than the budget; a distinct If-None-Match per request makes a distinct key per request.

RSS growth is the cache plus what serving 500 KB bodies costs anyway (a run with `--cache-mb 1`, where no such
answer is cached, is the control). Bounded means: it stops growing (compare `--duration 20` with 60).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import psutil
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cli import run_main  # noqa: E402
from _cpu import tree_memory  # noqa: E402
from _server import (ADMIN_HEADERS, PerfError, RegistryServer, database_url, drop_database,  # noqa: E402
                     free_port, recreate_database)
from _wrk import run_wrk, wrk_binary, wrk_version  # noqa: E402

DB_NAME = "registry_perf_cache_flood"
MIB = 1024 * 1024


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--admin-url", default=os.environ.get("PERF_ADMIN_URL",
                                                         "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--cache-mb", type=int, default=16)
    p.add_argument("--models", type=int, default=200)
    p.add_argument("--tag-kb", type=int, default=500, help="tag bytes per model, in KB")
    p.add_argument("--duration", type=float, default=20.0)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--out", help="write the JSON result here")
    return p.parse_args(argv)


def seed(base: str, models: int, tag_kb: int) -> str:
    with requests.Session() as http:
        http.headers.update(ADMIN_HEADERS)
        tags = {f"t{i}": "x" * 50_000 for i in range(max(1, tag_kb // 50))}
        for i in range(1, models + 1):
            name = f"flood-{i:04d}"
            answer = http.post(f"{base}/api/v1/models", json={"name": name, "tags": tags}, timeout=60)
            if answer.status_code != 201:
                raise PerfError(f"create {name}: HTTP {answer.status_code} {answer.text[:200]}")
            http.post(f"{base}/api/v1/models/{name}/versions", json={"source": f"s3://flood/{i}"}, timeout=60)
            http.post(f"{base}/api/v1/models/{name}/versions/1/transition", json={"stage": "Production"}, timeout=60)
        http.post(f"{base}/api/v1/users", json={"name": "flood-reader"}, timeout=30)
        token = http.post(f"{base}/api/v1/tokens", json={"user": "flood-reader"}, timeout=30).json()["token"]
    return token


def workers(server: RegistryServer) -> list[dict]:
    """The gunicorn workers: the leaves of the server's process tree (``registry serve`` may exec gunicorn, so
    the process started may itself be the gunicorn master)."""
    master = psutil.Process(server.process.pid)
    leaves = {p.pid for p in master.children(recursive=True) if not p.children()}
    return [m for m in tree_memory(master.pid) if m["pid"] in leaves]


def run(args) -> int:
    binary = wrk_binary()
    recreate_database(args.admin_url, DB_NAME)
    log = Path(tempfile.mkdtemp(prefix="cache-flood-")) / "server.log"
    os.environ["REGISTRY_CACHE_MB"] = str(args.cache_mb)
    server = RegistryServer(database_url(args.admin_url, DB_NAME), free_port(), 2, log)
    try:
        server.start(ready_timeout=120)
        base = f"http://127.0.0.1:{server.port}"
        token = seed(base, args.models, args.tag_kb)
        # Warm each worker a little (code paths, pools) before the baseline reading.
        run_wrk(binary, "cache_flood.lua", base, 4, 2, 2, 30, [token, "2"])
        time.sleep(1)
        before = {m["pid"]: m["rss"] for m in workers(server)}
        result = run_wrk(binary, "cache_flood.lua", base, args.connections, 2, args.duration, 30,
                         [token, str(args.models)])
        time.sleep(1)
        after = {m["pid"]: m["rss"] for m in workers(server)}
    finally:
        server.stop()
        drop_database(args.admin_url, DB_NAME)
    budget = args.cache_mb * MIB
    rows = []
    for pid in sorted(before):
        growth = after.get(pid, 0) - before[pid]
        rows.append({"pid": pid, "rss_before_mib": round(before[pid] / MIB, 1),
                     "rss_after_mib": round(after.get(pid, 0) / MIB, 1), "growth_mib": round(growth / MIB, 1),
                     "growth_per_budget": round(growth / budget, 2)})
    summary = {"wrk": wrk_version(binary), "cache_mb": args.cache_mb, "models": args.models, "tag_kb": args.tag_kb,
               "duration_s": args.duration, "connections": args.connections,
               "requests": result.get("requests"), "statuses": result.get("statuses"), "workers": rows}
    print(f"cache flood: {summary['requests']} requests in {args.duration:g} s at c={args.connections}, "
          f"statuses {summary['statuses']}; budget {args.cache_mb} MiB per worker")
    for row in rows:
        print(f"  worker {row['pid']}: RSS {row['rss_before_mib']} -> {row['rss_after_mib']} MiB "
              f"(+{row['growth_mib']} MiB, {row['growth_per_budget']} x the budget)")
    if args.out:
        Path(args.out).write_text(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(run_main(parse_args, run, None, "the server was stopped and the database dropped"))
