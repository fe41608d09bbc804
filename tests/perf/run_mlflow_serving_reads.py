"""The MLflow dialect's serving reads on a cache miss (issue 12): the old ORM path against the one statement.

What ``get-latest-versions`` and ``registered-models/alias`` cost when no cached answer or response can serve
them (right after a change, or a cold working set): in one process, on one seeded database, the previous
composition (``find_model`` + ``authorize`` + ``highest_per_stage`` / alias lookup + ``version_record``, ORM
objects and lazy loads, still the building blocks of other use cases) and the new single statement
(``serving.latest_records`` / ``serving.alias_record``), interleaved request by request on random models, so
both see the same machine and the same PostgreSQL buffers. Reports per-read latency percentiles and the ratio.

    .venv/bin/python tests/perf/seed.py --models 10000 --mlflow-db '' --registry-db registry_perf_reads
    .venv/bin/python tests/perf/run_mlflow_serving_reads.py --registry-db registry_perf_reads
"""
from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from registry import create_app  # noqa: E402
from registry.auth import Actor  # noqa: E402
from registry.db.loading import find_model, highest_per_stage  # noqa: E402
from registry.db.records import version_record  # noqa: E402
from registry.db.unit_of_work import read_only  # noqa: E402
from registry.lifecycle import Permission  # noqa: E402
from registry.services import serving  # noqa: E402
from registry.services.access import authorize  # noqa: E402
from registry.services.aliases import alias_target  # noqa: E402

READER = Actor("perf-reader", is_admin=False)  # reads through the default "*" READ grant


@read_only
def old_latest(name: str):
    model = find_model(name)
    authorize(READER, model, Permission.READ, "Reading")
    by_stage = {row.stage: row for row in highest_per_stage([model.id], ["Production"])}
    return [version_record(by_stage[s]) for s in ("Production",) if s in by_stage]


@read_only
def old_alias(name: str):
    model = find_model(name)
    authorize(READER, model, Permission.READ, "Reading")
    return version_record(alias_target(model, "champion"))


def new_latest(name: str):
    return serving.latest_records(READER, name, ["Production"])[1]


def new_alias(name: str):
    return serving.alias_record(READER, name, "champion")


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--registry-db", default="registry_perf_reads")
    p.add_argument("--admin-url", default=os.environ.get("PERF_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
    p.add_argument("--models", type=int, default=10_000, help="models seeded (perf-m-000001..)")
    p.add_argument("--reads", type=int, default=3000, help="reads of each kind and path")
    p.add_argument("--warmup", type=int, default=300, help="reads first, not counted")
    args = p.parse_args(argv)
    url = args.admin_url.rsplit("/", 1)[0] + "/" + args.registry_db
    app = create_app({"database_url": url, "pool_size": 2})
    rng = random.Random(12)
    paths = {"get-latest-versions": (old_latest, new_latest), "alias": (old_alias, new_alias)}
    with app.app_context():
        # Same answers first: the benchmark compares two ways of reading one thing.
        for name in (f"perf-m-{i:06d}" for i in (1, args.models // 2, args.models)):
            for old, new in paths.values():
                assert (old(name) == new(name)), name
        for kind, (old, new) in paths.items():
            times = {"old": [], "new": []}
            names = [f"perf-m-{rng.randint(1, args.models):06d}" for _ in range(args.warmup + args.reads)]
            for index, name in enumerate(names):
                order = [("old", old), ("new", new)]
                rng.shuffle(order)
                for label, read in order:
                    started = time.perf_counter()
                    read(name)
                    if index >= args.warmup:
                        times[label].append((time.perf_counter() - started) * 1000)
            o, n = times["old"], times["new"]
            print(f"{kind:20s} ORM path p50 {percentile(o, .5):.2f} ms p99 {percentile(o, .99):.2f} ms | "
                  f"one statement p50 {percentile(n, .5):.2f} ms p99 {percentile(n, .99):.2f} ms | "
                  f"mean ratio {statistics.mean(o) / statistics.mean(n):.1f}x ({len(o)} reads each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
