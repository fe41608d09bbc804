#!/usr/bin/env python3
"""What was served when (issue 10), at scale: the as-of answer and the timeline on one model with a long
history, in process (the use cases alone, as the console and the API call them).

The model (``perf-history``) gets ``--versions`` versions (default 100,000), one every 10 minutes (about two
years), written straight into a migrated database with COPY, with a hash-chained trail as the registry's
writers would have recorded it:
- each version enters Staging 2 minutes after its creation, archiving the one before it (archive_existing);
- every 10th is promoted to Production 5 minutes after its creation, archiving the previous one, and the
  alias ``champion`` follows it a minute later;
- every 1,000th is rolled back 7 minutes after its creation: the previous Production version comes back
  (archiving it), and ``champion`` with it;
- every 5,000th deletes the version 500 below it (Archived by then).
That is about 3.2 events per version, with ``details.serving`` as the registry records it (``--legacy``: without,
as a trail recorded before it existed, which is replayed instead). Then it times, over ``--samples`` random instants: ``served_at`` for
Production, Staging, ``champion``, ``latest`` and stage None, and ``timeline`` over the last day, the last 90
days and the whole history; p50 / p95 / max in milliseconds. Nothing asserts a speed.

    /work/main/.venv/bin/python tests/perf/run_history.py [--versions 100000] [--keep-db]
"""
from __future__ import annotations

import argparse
import heapq
import json
import random
import statistics
import sys
import time
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))  # this checkout's registry package, not whichever one the venv installed
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _server import database_url, drop_database, recreate_database, safe_database_name  # noqa: E402
from seed import _copy, _vacuum_analyze  # noqa: E402

MODEL = "perf-history"
ACTOR = "perf-history"
STEP = timedelta(minutes=10)


class _Stages:
    """Each version's stage, and each stage's highest version (heaps, pruned lazily)."""

    def __init__(self) -> None:
        self.of: dict[int, str] = {}
        self.heaps: dict[str, list[int]] = {s: [] for s in ("None", "Staging", "Production", "Archived")}

    def put(self, version: int, stage: str | None) -> None:
        if stage is None:
            del self.of[version]
        else:
            self.of[version] = stage
            heapq.heappush(self.heaps[stage], -version)

    def serving(self) -> dict[str, int | None]:
        answers = {}
        for stage, heap in self.heaps.items():
            while heap and self.of.get(-heap[0]) != stage:
                heapq.heappop(heap)
            answers[stage] = -heap[0] if heap else None
        return answers


def history(n: int, start: datetime, annotate: bool):
    """The model's events in chain order as (occurred_at, action, version, from_stage, to_stage, details),
    and the final stages and alias. ``annotate``: record ``serving`` as the registry does."""
    stages = _Stages()
    champion = None
    events = [(start, "model.created", None, None, None, {"description": "", "tags": {}})]
    production = None

    def move(when, version, to, archive):
        others = [v for v, s in stages.of.items() if s == to and v != version] if archive else []
        current = stages.of[version]
        for other in others:
            stages.put(other, "Archived")
        stages.put(version, to)
        serving = {"serving": stages.serving()} if annotate else {}
        for other in others:
            events.append((when, "version.transitioned", other, to, "Archived",
                           {"reason": "archive_existing_versions", "promoted_version": version, **serving}))
        events.append((when, "version.transitioned", version, current, to,
                       {"archive_existing_versions": archive, "archived_versions": others, **serving}))

    for v in range(1, n + 1):
        created = start + v * STEP
        events.append((created, "version.created", v, None, "None",
                       {"source": f"s3://perf/{v}", "run_link": None, "tags": {}}))
        stages.put(v, "None")
        move(created + timedelta(minutes=2), v, "Staging", True)
        if v % 10 == 0:
            previous = production
            move(created + timedelta(minutes=5), v, "Production", True)
            production = v
            events.append((created + timedelta(minutes=6), "alias.set", v, None, None,
                           {"alias": "champion", "previous_version": champion}))
            champion = v
            if v % 1000 == 0 and previous is not None and stages.of.get(previous) == "Archived":
                move(created + timedelta(minutes=7), previous, "Production", True)
                production = previous
                events.append((created + timedelta(minutes=7), "alias.set", previous, None, None,
                               {"alias": "champion", "previous_version": champion}))
                champion = previous
        if v % 5000 == 0 and stages.of.get(v - 500) == "Archived":
            stages.put(v - 500, None)
            serving = {"serving": stages.serving()} if annotate else {}
            events.append((created + timedelta(minutes=8), "version.deleted", v - 500, "Archived", None,
                           {"source": f"s3://perf/{v - 500}", **serving}))
    return events, stages.of, champion


def seed(url: str, n: int, annotate: bool) -> datetime:
    from registry.audit import compute_hash

    start = datetime.now(timezone.utc).replace(microsecond=0) - (n + 20) * STEP
    events, stages, champion = history(n, start, annotate)
    with closing(psycopg2.connect(url)) as connection, connection.cursor() as cursor:
        _copy(cursor, "registered_models",
              ("id", "name", "description", "last_version", "revision", "generation", "created_at", "updated_at"),
              [(1, MODEL, "", n, 1, 1, start.isoformat(), events[-1][0].isoformat())])
        _copy(cursor, "model_versions",
              ("id", "model_id", "version", "source", "run_id", "run_link", "description", "status", "stage",
               "created_by", "revision", "created_at", "updated_at"),
              ((v, 1, v, f"s3://perf/{v}", f"run-{v}", None, "", "READY", stage, ACTOR, 1,
                (start + v * STEP).isoformat(), (start + v * STEP).isoformat()) for v, stage in stages.items()))
        _copy(cursor, "model_aliases", ("model_id", "alias", "version_id"), [(1, "champion", champion)])

        def rows():
            prev = None
            for seq, (when, action, version, from_stage, to_stage, details) in enumerate(events, start=1):
                fields = dict(chain_id=1, seq=seq, occurred_at=when, actor=ACTOR, action=action, model_id=1,
                              model_name=MODEL, version=version, run_id=f"run-{version}" if version else None,
                              from_stage=from_stage, to_stage=to_stage, request_id=None, details=details,
                              prev_hash=prev, correlation_id=None)
                prev = compute_hash(**fields)
                yield (1, seq, when.isoformat(), ACTOR, action, 1, MODEL, version, fields["run_id"], from_stage,
                       to_stage, None, json.dumps(details), fields["prev_hash"], prev)

        count = _copy(cursor, "audit_events", ("chain_id", "seq", "occurred_at", "actor", "action", "model_id",
                                               "model_name", "version", "run_id", "from_stage", "to_stage",
                                               "request_id", "details", "prev_hash", "hash"), rows())
        cursor.execute("UPDATE registered_models SET audit_seq = %s, audit_hash = "
                       "(SELECT hash FROM audit_events WHERE chain_id = 1 AND seq = %s)", (count, count))
        for table in ("registered_models", "model_versions"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))")
        connection.commit()
    _vacuum_analyze(url, ["registered_models", "model_versions", "model_aliases", "audit_events"])
    print(f"seeded {n:,} versions, {count:,} events")
    return start


def timed(label: str, call, samples: int) -> None:
    laps = []
    for _ in range(samples):
        began = time.perf_counter()
        call()
        laps.append((time.perf_counter() - began) * 1000)
    laps.sort()
    p95 = laps[min(len(laps) - 1, int(len(laps) * 0.95))]
    print(f"{label:<44} p50 {statistics.median(laps):7.2f}  p95 {p95:7.2f}  max {laps[-1]:7.2f} ms")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--db", default="registry_perf_history")
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--keep-db", action="store_true")
    parser.add_argument("--legacy", action="store_true",
                        help="a trail without details.serving (recorded before it existed): the replay path")
    options = parser.parse_args()
    if not safe_database_name(options.db):
        parser.error("--db must be a plain name containing 'perf' (it is dropped and recreated)")
    from flask_migrate import upgrade

    from registry import create_app
    from registry.auth import Actor
    from registry.services import history as h

    url = database_url(options.admin_url, options.db)
    recreate_database(options.admin_url, options.db)
    try:
        app = create_app({"database_url": url})
        with app.app_context():
            upgrade()
        start = seed(url, options.versions, annotate=not options.legacy)
        end = start + options.versions * STEP
        actor = Actor("admin", is_admin=True)
        rng = random.Random(10)

        def instant():
            return start + (end - start) * rng.random()

        with app.app_context():
            for label, kwargs in [("Production", {"stage": "Production"}), ("Staging", {"stage": "Staging"}),
                                  ("champion", {"alias": "champion"}), ("latest", {"alias": "latest"}),
                                  ("stage None", {"stage": "None"})]:
                timed(f"served_at {label}, random instant", lambda: h.served_at(actor, MODEL, as_of=instant(),
                                                                                 **kwargs), options.samples)
            now = datetime.now(timezone.utc)
            for label, since, samples in [("last day", now - timedelta(days=1), options.samples),
                                          ("last 90 days", now - timedelta(days=90), 20),
                                          ("whole history", None, 3)]:
                shown = h.timeline(actor, MODEL, since=since)
                segments = sum(len(t.segments) for t in shown.tracks)
                timed(f"timeline, {label} ({segments:,} segments)", lambda: h.timeline(actor, MODEL, since=since),
                      samples)
            a_day = timedelta(days=1)
            timed("timeline, a random day a year ago", lambda: h.timeline(
                actor, MODEL, since=end - timedelta(days=365) - a_day * rng.random(),
                until=end - timedelta(days=364)), options.samples)
            print("trail matches live:", h.timeline(actor, MODEL, since=now - a_day).trail_matches_live)
    finally:
        if not options.keep_db:
            drop_database(options.admin_url, options.db)
    return 0


if __name__ == "__main__":
    sys.exit(main())
