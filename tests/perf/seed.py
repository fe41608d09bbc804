#!/usr/bin/env python3
"""Bulk-seed N models x M versions straight into PostgreSQL: the registry's schema and/or MLflow's.

Both databases get the same data, so a registry server and a stock `mlflow server` serve the same answers:
- model i is "perf-m-%06d" (i = 1..N), with model tag team=team-<i mod 16>;
- version v of model i has run_id "%016x%016x" (i, v) (32 hex characters, unique, MLflow's limit), source
  s3://perf-artifacts/<model>/v<v>/model, tags seeded=true and quality=<number>;
- stages: version M-1 in Production, M-2 in Staging, M (the newest) in None, older ones Archived
  (with M = 1: version 1 in Production); alias "champion" on the Production version;
- registry only: last_version = M, generation = 1, a hash-chained audit trail of the creations (model.created,
  version.created) so that `registry audit verify` passes on seeded data.
Rows go in with COPY, one transaction per database, then VACUUM ANALYZE (fresh tables have no planner
statistics; a real, long-lived database has them through autovacuum).

As a command (see tests/perf/README.md), it recreates the databases, applies each schema (`registry db
upgrade`, `mlflow db upgrade`), seeds and prints timings:
    .venv/bin/python tests/perf/seed.py --models 10000 --versions 10
run_serving.py imports prepare_*/seed_* from here.
"""
from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import time
from contextlib import closing
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helper modules beside this script

from _server import (MLFLOW_BIN, REGISTRY_BIN, REPO, PerfError, database_url, recreate_database,  # noqa: E402
                     safe_database_name)

SEED_ACTOR = "perf-seed"
ALIAS = "champion"


# --- The data set, shared with serving.lua -------------------------------------------------------------

def model_name(i: int) -> str:
    return f"perf-m-{i:06d}"


def run_id(i: int, v: int) -> str:
    return f"{i:016x}{v:016x}"


def source(i: int, v: int) -> str:
    return f"s3://perf-artifacts/{model_name(i)}/v{v}/model"


def production_version(m: int) -> int:
    return max(1, m - 1)


def stage_of(v: int, m: int) -> str:
    if v == production_version(m):
        return "Production"
    if v == m - 2:
        return "Staging"
    if v == m:
        return "None"
    return "Archived"


def version_tags(i: int, v: int) -> list[tuple[str, str]]:
    return [("seeded", "true"), ("quality", f"{0.5 + ((i * 7 + v) % 50) / 100:.2f}")]


def model_tags(i: int) -> list[tuple[str, str]]:
    return [("team", f"team-{i % 16}")]


# --- COPY helpers ----------------------------------------------------------------------------------------

def _field(value) -> str:
    if value is None:
        return r"\N"
    text = value if isinstance(value, str) else str(value)
    # COPY's text format: backslash, tab, newline and carriage return must be escaped.
    if any(c in text for c in "\\\t\n\r"):
        text = text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return text


def _copy(cursor, table: str, columns: tuple[str, ...], rows) -> int:
    buffer = io.StringIO()
    count = 0
    for row in rows:
        buffer.write("\t".join(_field(value) for value in row))
        buffer.write("\n")
        count += 1
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)
    return count


def _vacuum_analyze(db_url: str, tables: list[str]) -> None:
    with closing(psycopg2.connect(db_url, connect_timeout=10)) as connection:
        connection.autocommit = True  # VACUUM cannot run inside a transaction
        with connection.cursor() as cursor:
            for table in tables:
                cursor.execute(f"VACUUM ANALYZE {table}")


class _Timer:
    def __init__(self) -> None:
        self.steps: dict[str, float] = {}
        self._last = time.monotonic()

    def lap(self, step: str) -> None:
        now = time.monotonic()
        self.steps[step] = round(now - self._last, 3)
        self._last = now

    @property
    def total(self) -> float:
        return round(sum(self.steps.values()), 3)


# --- The registry's schema -------------------------------------------------------------------------------

REGISTRY_TABLES = ["registered_models", "registered_model_tags", "model_versions", "model_version_tags",
                   "model_aliases", "audit_events"]


def seed_registry(db_url: str, n_models: int, n_versions: int) -> dict:
    """Insert the data set into a migrated registry database that has none of these models yet."""
    from registry.audit import Action, compute_hash  # the project's own hash, so `audit verify` agrees

    timer = _Timer()
    base = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(seconds=n_models * n_versions + 3600)
    with closing(psycopg2.connect(db_url, connect_timeout=10)) as connection, connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        # Explicit ids (one round trip instead of a RETURNING per row); the sequences are moved past them.
        cursor.execute("LOCK TABLE registered_models, model_versions IN EXCLUSIVE MODE")
        cursor.execute("SELECT coalesce(max(id), 0) FROM registered_models")
        model_base = cursor.fetchone()[0]
        cursor.execute("SELECT coalesce(max(id), 0) FROM model_versions")
        version_base = cursor.fetchone()[0]

        def model_id(i: int) -> int:
            return model_base + i

        def version_id(i: int, v: int) -> int:
            return version_base + (i - 1) * n_versions + v

        def model_time(i: int) -> datetime:
            return base + timedelta(seconds=(i - 1) * n_versions)

        def version_time(i: int, v: int) -> datetime:
            return model_time(i) + timedelta(seconds=v - 1, milliseconds=500)

        models = range(1, n_models + 1)
        versions = range(1, n_versions + 1)
        counts = {}
        counts["registered_models"] = _copy(
            cursor, "registered_models",
            ("id", "name", "description", "last_version", "revision", "generation", "created_at", "updated_at"),
            ((model_id(i), model_name(i), f"perf model {i}", n_versions, 1, 1, model_time(i).isoformat(),
              version_time(i, n_versions).isoformat()) for i in models))
        counts["registered_model_tags"] = _copy(
            cursor, "registered_model_tags", ("model_id", "key", "value"),
            ((model_id(i), k, val) for i in models for k, val in model_tags(i)))
        counts["model_versions"] = _copy(
            cursor, "model_versions",
            ("id", "model_id", "version", "source", "run_id", "run_link", "description", "status", "stage",
             "created_by", "revision", "created_at", "updated_at"),
            ((version_id(i, v), model_id(i), v, source(i, v), run_id(i, v), None, "", "READY",
              stage_of(v, n_versions), SEED_ACTOR, 1, version_time(i, v).isoformat(),
              version_time(i, v).isoformat()) for i in models for v in versions))
        counts["model_version_tags"] = _copy(
            cursor, "model_version_tags", ("version_id", "key", "value"),
            ((version_id(i, v), k, val) for i in models for v in versions for k, val in version_tags(i, v)))
        counts["model_aliases"] = _copy(
            cursor, "model_aliases", ("model_id", "alias", "version_id"),
            ((model_id(i), ALIAS, version_id(i, production_version(n_versions))) for i in models))
        timer.lap("copy")

        def audit_rows():
            columns = dict(actor=SEED_ACTOR, from_stage=None, request_id=None)
            for i in models:
                prev = None
                events = [dict(action=str(Action.MODEL_CREATED), version=None, run_id=None, to_stage=None,
                               occurred_at=model_time(i),
                               details={"description": f"perf model {i}", "tags": dict(model_tags(i))})]
                events += [dict(action=str(Action.VERSION_CREATED), version=v, run_id=run_id(i, v), to_stage="None",
                                occurred_at=version_time(i, v),
                                details={"source": source(i, v), "run_link": None, "tags": dict(version_tags(i, v))})
                           for v in versions]
                for seq, event in enumerate(events, start=1):
                    fields = dict(columns, chain_id=model_id(i), seq=seq, model_id=model_id(i),
                                  model_name=model_name(i), prev_hash=prev, **event)
                    prev = compute_hash(**fields)
                    yield (fields["chain_id"], seq, fields["occurred_at"].isoformat(), SEED_ACTOR, fields["action"],
                           fields["model_id"], fields["model_name"], fields["version"], fields["run_id"], None,
                           fields["to_stage"], None, json.dumps(fields["details"]), fields["prev_hash"], prev)

        counts["audit_events"] = _copy(
            cursor, "audit_events",
            ("chain_id", "seq", "occurred_at", "actor", "action", "model_id", "model_name", "version", "run_id",
             "from_stage", "to_stage", "request_id", "details", "prev_hash", "hash"),
            audit_rows())
        # Each model row records its chain's head (migration 0005), as the registry's writers keep it.
        cursor.execute("""
            UPDATE registered_models m SET audit_seq = h.seq, audit_hash = h.hash
            FROM (SELECT DISTINCT ON (chain_id) chain_id, seq, hash FROM audit_events
                  ORDER BY chain_id, seq DESC) h
            WHERE m.id = h.chain_id""")
        timer.lap("audit trail")
        for table in ("registered_models", "model_versions"):
            cursor.execute(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                           f"(SELECT max(id) FROM {table}))")
        connection.commit()
        timer.lap("commit")
    _vacuum_analyze(db_url, REGISTRY_TABLES)
    timer.lap("vacuum analyze")
    return {"rows": counts, "seconds": timer.steps, "total_s": timer.total}


# --- MLflow's schema (mlflow/store/model_registry/dbmodels/models.py) ---------------------------------------

MLFLOW_TABLES = ["registered_models", "registered_model_tags", "model_versions", "model_version_tags",
                 "registered_model_aliases"]


def seed_mlflow(db_url: str, n_models: int, n_versions: int) -> dict:
    """Insert the same data set into a database that `mlflow db upgrade` created (workspace 'default')."""
    timer = _Timer()
    base_ms = int(time.time() * 1000) - (n_models * n_versions + 3600) * 1000

    def model_ms(i: int) -> int:
        return base_ms + (i - 1) * n_versions * 1000

    def version_ms(i: int, v: int) -> int:
        return model_ms(i) + (v - 1) * 1000 + 500

    models = range(1, n_models + 1)
    versions = range(1, n_versions + 1)
    counts = {}
    with closing(psycopg2.connect(db_url, connect_timeout=10)) as connection, connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        counts["registered_models"] = _copy(
            cursor, "registered_models", ("name", "creation_time", "last_updated_time", "description"),
            ((model_name(i), model_ms(i), version_ms(i, n_versions), f"perf model {i}") for i in models))
        counts["registered_model_tags"] = _copy(
            cursor, "registered_model_tags", ("key", "value", "name"),
            ((k, val, model_name(i)) for i in models for k, val in model_tags(i)))
        counts["model_versions"] = _copy(
            cursor, "model_versions",
            ("name", "version", "creation_time", "last_updated_time", "description", "user_id", "current_stage",
             "source", "storage_location", "run_id", "run_link", "status", "status_message"),
            ((model_name(i), v, version_ms(i, v), version_ms(i, v), "", SEED_ACTOR, stage_of(v, n_versions),
              source(i, v), source(i, v), run_id(i, v), None, "READY", None) for i in models for v in versions))
        counts["model_version_tags"] = _copy(
            cursor, "model_version_tags", ("key", "value", "name", "version"),
            ((k, val, model_name(i), v) for i in models for v in versions for k, val in version_tags(i, v)))
        counts["registered_model_aliases"] = _copy(
            cursor, "registered_model_aliases", ("alias", "version", "name"),
            ((ALIAS, production_version(n_versions), model_name(i)) for i in models))
        timer.lap("copy")
        connection.commit()
        timer.lap("commit")
    _vacuum_analyze(db_url, MLFLOW_TABLES)
    timer.lap("vacuum analyze")
    return {"rows": counts, "seconds": timer.steps, "total_s": timer.total}


# --- Empty schemas ------------------------------------------------------------------------------------------

def _run(command: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(command, env=env, cwd=REPO, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise PerfError(f"{what} failed (exit {done.returncode}): {' '.join(command)}\n"
                        f"{(done.stdout + done.stderr)[-3000:]}")


def prepare_registry_db(admin_url: str, name: str) -> str:
    """Drop and recreate the database, apply the registry's migrations; returns its URL."""
    url = database_url(admin_url, name)
    recreate_database(admin_url, name)
    _run([str(REGISTRY_BIN), "db", "upgrade"], dict(os.environ, DATABASE_URL=url), "registry db upgrade")
    return url


def mlflow_url(db_url: str) -> str:
    # SQLAlchemy 2.x maps postgresql:// to psycopg 3, which the venv does not have; name psycopg2 explicitly.
    scheme, _, rest = db_url.partition("://")
    return f"postgresql+psycopg2://{rest}"


def prepare_mlflow_db(admin_url: str, name: str) -> str:
    """Drop and recreate the database, create MLflow's schema with `mlflow db upgrade`; returns its URL."""
    url = database_url(admin_url, name)
    recreate_database(admin_url, name)
    if not MLFLOW_BIN.exists():
        raise PerfError(f"{MLFLOW_BIN} not found: install MLflow in the venv (pip install mlflow==3.17.2)")
    _run([str(MLFLOW_BIN), "db", "upgrade", mlflow_url(url)], dict(os.environ), "mlflow db upgrade")
    return url


# --- Command ------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--models", type=int, default=10_000)
    p.add_argument("--versions", type=int, default=10, help="versions per model")
    p.add_argument("--registry-db", default="registry_perf_seed",
                   help="registry database, DROPPED and recreated ('' to skip; name must contain 'perf')")
    p.add_argument("--mlflow-db", default="mlflow_perf_seed",
                   help="MLflow database, DROPPED and recreated ('' to skip; name must contain 'perf')")
    p.add_argument("--admin-url", default=os.environ.get("PERF_ADMIN_URL",
                                                         "postgresql://postgres@127.0.0.1:5432/postgres"),
                   help="libpq URL of a maintenance database on the PostgreSQL server (env PERF_ADMIN_URL)")
    args = p.parse_args(argv)
    if args.models < 1 or args.versions < 1 or args.models > 999_999:
        p.error("--models must be 1..999999 and --versions >= 1")
    for name in filter(None, (args.registry_db, args.mlflow_db)):
        if not safe_database_name(name):
            p.error(f"refusing to drop and recreate database {name!r}: use a plain name containing 'perf'")
    total = args.models * args.versions
    try:
        if args.registry_db:
            started = time.monotonic()
            url = prepare_registry_db(args.admin_url, args.registry_db)
            print(f"registry: database {args.registry_db} recreated and migrated in {time.monotonic() - started:.1f} s")
            result = seed_registry(url, args.models, args.versions)
            print(f"registry: seeded {args.models} models x {args.versions} versions ({total} versions) in "
                  f"{result['total_s']:.1f} s {result['seconds']}; rows {result['rows']}")
        if args.mlflow_db:
            started = time.monotonic()
            url = prepare_mlflow_db(args.admin_url, args.mlflow_db)
            print(f"mlflow:   database {args.mlflow_db} recreated and migrated in {time.monotonic() - started:.1f} s")
            result = seed_mlflow(url, args.models, args.versions)
            print(f"mlflow:   seeded {args.models} models x {args.versions} versions ({total} versions) in "
                  f"{result['total_s']:.1f} s {result['seconds']}; rows {result['rows']}")
    except PerfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
