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
Options for the console benchmark (run_console.py): one more model, "perf-big", with B versions (the same rules,
M = B; in both databases), and R pending transition requests (registry only: MLflow has none) spread over the
models including the big one, each with 0 or 1 approval, under registry-wide policies that need 2 approvals
for Staging and Production (so every one of them is still pending), with their request.created and
request.approved events in the models' audit chains.
Rows go in with COPY, one transaction per database, then VACUUM ANALYZE (fresh tables have no planner
statistics; a real, long-lived database has them through autovacuum).

As a command (see tests/perf/README.md), it recreates the databases, applies each schema (`registry db
upgrade`, `mlflow db upgrade`), seeds and prints timings:
    .venv/bin/python tests/perf/seed.py --models 10000 --versions 10
    .venv/bin/python tests/perf/seed.py --big-model-versions 100000 --pending-requests 1000
run_serving.py and run_console.py import prepare_*/seed_* from here.
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
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import psycopg2

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the helper modules beside this script

from _server import (MLFLOW_BIN, REGISTRY_BIN, REPO, PerfError, database_url, recreate_database,  # noqa: E402
                     safe_database_name)

SEED_ACTOR = "perf-seed"
ALIAS = "champion"
BIG_MODEL = "perf-big"  # --big-model-versions: the one model with many versions
# --pending-requests: who asked and who approved (none of them is a user: requests name people by text)
REQUESTERS = [f"perf-requester-{k:02d}" for k in range(20)]
APPROVERS = [f"perf-approver-{k:02d}" for k in range(7)]
REQUEST_POLICY_APPROVALS = 2  # registry-wide, for Staging and Production


# --- The data set, shared with serving.lua -------------------------------------------------------------

def model_name(i: int) -> str:
    return f"perf-m-{i:06d}"


def run_id(i: int, v: int) -> str:
    return f"{i:016x}{v:016x}"


def source(i: int, v: int) -> str:
    return source_of(model_name(i), v)


def source_of(name: str, v: int) -> str:
    return f"s3://perf-artifacts/{name}/v{v}/model"


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


@dataclass(frozen=True)
class SeedModel:
    """One model of the data set: ``index`` names its run ids and tags, ``first`` counts the versions of the
    models before it (for ids and timestamps)."""

    index: int
    name: str
    versions: int
    first: int


def data_set(n_models: int, n_versions: int, big_model_versions: int = 0) -> list[SeedModel]:
    """Models 1..N with M versions each, then (if asked) "perf-big" as model N+1 with its own count."""
    models = [SeedModel(i, model_name(i), n_versions, (i - 1) * n_versions) for i in range(1, n_models + 1)]
    if big_model_versions:
        models.append(SeedModel(n_models + 1, BIG_MODEL, big_model_versions, n_models * n_versions))
    return models


# What a pending request asks for, by the stage its version is in now.
REQUEST_TARGET = {"None": "Staging", "Staging": "Production", "Production": "Archived", "Archived": "Staging"}


@dataclass(frozen=True)
class SeedRequest:
    k: int                 # 0..R-1, in creation order
    model: SeedModel
    version: int
    requested_by: str
    approver: str | None   # its one approval, or none


def request_plan(models: list[SeedModel], n_requests: int) -> list[SeedRequest]:
    """R pending requests, oldest first: every tenth on the big model (if any: its newest, Staging and
    Production versions, then distinct Archived ones spread over its range), the others on distinct regular
    models (a step coprime to their number), on the newest version (None -> Staging), the Staging one (->
    Production), the Production one (-> Archived) or the oldest (Archived -> Staging) in turn. Every other
    request has one approval."""
    big = next((m for m in models if m.name == BIG_MODEL), None)
    regular = [m for m in models if m.name != BIG_MODEL]
    on_big = 0 if big is None else (n_requests if not regular else (n_requests + 9) // 10)
    stride = max(1, big.versions // max(1, on_big)) if big else 1
    step = 97
    while regular and _gcd(step, len(regular)) != 1:
        step += 1
    planned, j_big, j_regular = [], 0, 0
    for k in range(n_requests):
        if big is not None and (not regular or k % 10 == 0):
            m = big.versions
            model, version = big, (m, m - 2, m - 1)[j_big] if j_big < 3 else m - j_big * stride
            j_big += 1
        else:
            model = regular[(j_regular * step) % len(regular)]
            m = model.versions
            version = (m, m - 2, m - 1, 1)[j_regular % 4]
            j_regular += 1
        planned.append(SeedRequest(k, model, max(1, version), REQUESTERS[k % len(REQUESTERS)],
                                   APPROVERS[k % len(APPROVERS)] if k % 2 else None))
    return planned


def _gcd(a: int, b: int) -> int:
    while b:
        a, b = b, a % b
    return a


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
                   "model_aliases", "audit_events", "approval_policies", "transition_requests", "transition_approvals"]


def seed_registry(db_url: str, n_models: int, n_versions: int, big_model_versions: int = 0,
                  pending_requests: int = 0) -> dict:
    """Insert the data set into a migrated registry database that has none of these models yet (and, with
    ``pending_requests``, no approval policies or requests yet)."""
    from registry.audit import Action, compute_hash  # the project's own hash, so `audit verify` agrees

    timer = _Timer()
    models = data_set(n_models, n_versions, big_model_versions)
    total_versions = sum(m.versions for m in models)
    requests = request_plan(models, pending_requests) if pending_requests else []
    now = datetime.now(timezone.utc).replace(microsecond=0)
    base = now - timedelta(seconds=total_versions + 3600 + len(requests))
    with closing(psycopg2.connect(db_url, connect_timeout=10)) as connection, connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        # Explicit ids (one round trip instead of a RETURNING per row); the sequences are moved past them.
        cursor.execute("LOCK TABLE registered_models, model_versions, transition_requests IN EXCLUSIVE MODE")
        cursor.execute("SELECT coalesce(max(id), 0) FROM registered_models")
        model_base = cursor.fetchone()[0]
        cursor.execute("SELECT coalesce(max(id), 0) FROM model_versions")
        version_base = cursor.fetchone()[0]
        cursor.execute("SELECT coalesce(max(id), 0) FROM transition_requests")
        request_base = cursor.fetchone()[0]

        def model_id(m: SeedModel) -> int:
            return model_base + m.index

        def version_id(m: SeedModel, v: int) -> int:
            return version_base + m.first + v

        def model_time(m: SeedModel) -> datetime:
            return base + timedelta(seconds=m.first)

        def version_time(m: SeedModel, v: int) -> datetime:
            return model_time(m) + timedelta(seconds=v - 1, milliseconds=500)

        def request_time(r: SeedRequest) -> datetime:
            # After every version, one a second; the approval (if any) 30 s after its request.
            return now - timedelta(seconds=len(requests) + 60 - r.k)

        counts = {}
        counts["registered_models"] = _copy(
            cursor, "registered_models",
            ("id", "name", "description", "last_version", "revision", "generation", "created_at", "updated_at"),
            ((model_id(m), m.name, f"perf model {m.index}", m.versions, 1, 1, model_time(m).isoformat(),
              version_time(m, m.versions).isoformat()) for m in models))
        counts["registered_model_tags"] = _copy(
            cursor, "registered_model_tags", ("model_id", "key", "value"),
            ((model_id(m), k, val) for m in models for k, val in model_tags(m.index)))
        counts["model_versions"] = _copy(
            cursor, "model_versions",
            ("id", "model_id", "version", "source", "run_id", "run_link", "description", "status", "stage",
             "created_by", "revision", "created_at", "updated_at"),
            ((version_id(m, v), model_id(m), v, source_of(m.name, v), run_id(m.index, v), None, "", "READY",
              stage_of(v, m.versions), SEED_ACTOR, 1, version_time(m, v).isoformat(),
              version_time(m, v).isoformat()) for m in models for v in range(1, m.versions + 1)))
        counts["model_version_tags"] = _copy(
            cursor, "model_version_tags", ("version_id", "key", "value"),
            ((version_id(m, v), k, val) for m in models for v in range(1, m.versions + 1)
             for k, val in version_tags(m.index, v)))
        counts["model_aliases"] = _copy(
            cursor, "model_aliases", ("model_id", "alias", "version_id"),
            ((model_id(m), ALIAS, version_id(m, production_version(m.versions))) for m in models))
        if requests:
            # Registry-wide policies under which a request with one approval is still pending.
            cursor.execute(
                "INSERT INTO approval_policies (model_id, stage, required_approvals, creator_may_not_approve,"
                " updated_by, updated_at) SELECT NULL, s, %s, false, %s, %s FROM unnest(%s::text[]) AS s",
                (REQUEST_POLICY_APPROVALS, SEED_ACTOR, base, ["Staging", "Production"]))
            counts["approval_policies"] = cursor.rowcount

            def request_row(r: SeedRequest):
                stage = stage_of(r.version, r.model.versions)
                target = REQUEST_TARGET[stage]
                when = request_time(r).isoformat()
                return (request_base + r.k + 1, model_id(r.model), version_id(r.model, r.version), r.version,
                        stage, target, target == "Production" and r.k % 3 == 0, f"perf request {r.k}",
                        r.requested_by, "pending", when, when)

            counts["transition_requests"] = _copy(
                cursor, "transition_requests",
                ("id", "model_id", "version_id", "version", "from_stage", "to_stage", "archive_existing_versions",
                 "comment", "requested_by", "status", "created_at", "updated_at"),
                (request_row(r) for r in requests))
            counts["transition_approvals"] = _copy(
                cursor, "transition_approvals", ("request_id", "approver", "comment", "created_at"),
                ((request_base + r.k + 1, r.approver, "looks right",
                  (request_time(r) + timedelta(seconds=30)).isoformat()) for r in requests if r.approver))
        timer.lap("copy")

        requests_of: dict[str, list[SeedRequest]] = {}
        for r in requests:
            requests_of.setdefault(r.model.name, []).append(r)

        def request_events(m: SeedModel):
            for r in requests_of.get(m.name, []):
                stage = stage_of(r.version, m.versions)
                target = REQUEST_TARGET[stage]
                archive = target == "Production" and r.k % 3 == 0
                common = dict(version=r.version, run_id=run_id(m.index, r.version), from_stage=stage,
                              to_stage=target, request_id=request_base + r.k + 1)
                yield dict(common, action=str(Action.REQUEST_CREATED), actor=r.requested_by,
                           occurred_at=request_time(r),
                           details={"comment": f"perf request {r.k}", "archive_existing_versions": archive})
                if r.approver:
                    yield dict(common, action=str(Action.REQUEST_APPROVED), actor=r.approver,
                               occurred_at=request_time(r) + timedelta(seconds=30),
                               details={"comment": "looks right", "approvals": 1,
                                        "required": REQUEST_POLICY_APPROVALS})

        def audit_rows():
            for m in models:
                prev = None
                events = [dict(action=str(Action.MODEL_CREATED), actor=SEED_ACTOR, version=None, run_id=None,
                               from_stage=None, to_stage=None, request_id=None, occurred_at=model_time(m),
                               details={"description": f"perf model {m.index}", "tags": dict(model_tags(m.index))})]
                events += [dict(action=str(Action.VERSION_CREATED), actor=SEED_ACTOR, version=v,
                                run_id=run_id(m.index, v), from_stage=None, to_stage="None", request_id=None,
                                occurred_at=version_time(m, v),
                                details={"source": source_of(m.name, v), "run_link": None,
                                         "tags": dict(version_tags(m.index, v))})
                           for v in range(1, m.versions + 1)]
                events += sorted(request_events(m), key=lambda e: e["occurred_at"])
                for seq, event in enumerate(events, start=1):
                    fields = dict(chain_id=model_id(m), seq=seq, model_id=model_id(m), model_name=m.name,
                                  prev_hash=prev, correlation_id=None, **event)
                    prev = compute_hash(**fields)
                    yield (fields["chain_id"], seq, fields["occurred_at"].isoformat(), fields["actor"],
                           fields["action"], fields["model_id"], fields["model_name"], fields["version"],
                           fields["run_id"], fields["from_stage"], fields["to_stage"], fields["request_id"],
                           json.dumps(fields["details"]), fields["prev_hash"], prev)

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
        for table in ("registered_models", "model_versions") + (("transition_requests",) if requests else ()):
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


def seed_mlflow(db_url: str, n_models: int, n_versions: int, big_model_versions: int = 0) -> dict:
    """Insert the same data set into a database that `mlflow db upgrade` created (workspace 'default')."""
    timer = _Timer()
    models = data_set(n_models, n_versions, big_model_versions)
    base_ms = int(time.time() * 1000) - (sum(m.versions for m in models) + 3600) * 1000

    def model_ms(m: SeedModel) -> int:
        return base_ms + m.first * 1000

    def version_ms(m: SeedModel, v: int) -> int:
        return model_ms(m) + (v - 1) * 1000 + 500

    counts = {}
    with closing(psycopg2.connect(db_url, connect_timeout=10)) as connection, connection.cursor() as cursor:
        cursor.execute("SET synchronous_commit = off")
        counts["registered_models"] = _copy(
            cursor, "registered_models", ("name", "creation_time", "last_updated_time", "description"),
            ((m.name, model_ms(m), version_ms(m, m.versions), f"perf model {m.index}") for m in models))
        counts["registered_model_tags"] = _copy(
            cursor, "registered_model_tags", ("key", "value", "name"),
            ((k, val, m.name) for m in models for k, val in model_tags(m.index)))
        counts["model_versions"] = _copy(
            cursor, "model_versions",
            ("name", "version", "creation_time", "last_updated_time", "description", "user_id", "current_stage",
             "source", "storage_location", "run_id", "run_link", "status", "status_message"),
            ((m.name, v, version_ms(m, v), version_ms(m, v), "", SEED_ACTOR, stage_of(v, m.versions),
              source_of(m.name, v), source_of(m.name, v), run_id(m.index, v), None, "READY", None)
             for m in models for v in range(1, m.versions + 1)))
        counts["model_version_tags"] = _copy(
            cursor, "model_version_tags", ("key", "value", "name", "version"),
            ((k, val, m.name, v) for m in models for v in range(1, m.versions + 1)
             for k, val in version_tags(m.index, v)))
        counts["registered_model_aliases"] = _copy(
            cursor, "registered_model_aliases", ("alias", "version", "name"),
            ((ALIAS, production_version(m.versions), m.name) for m in models))
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
    p.add_argument("--big-model-versions", type=int, default=0,
                   help=f"add one model, {BIG_MODEL!r}, with this many versions (both databases; 0: none)")
    p.add_argument("--pending-requests", type=int, default=0,
                   help="pending transition requests over the models, incl. the big one (registry only), under"
                        f" registry-wide Staging and Production policies of {REQUEST_POLICY_APPROVALS} approvals")
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
    if args.big_model_versions < 0 or args.pending_requests < 0:
        p.error("--big-model-versions and --pending-requests must be >= 0")
    for name in filter(None, (args.registry_db, args.mlflow_db)):
        if not safe_database_name(name):
            p.error(f"refusing to drop and recreate database {name!r}: use a plain name containing 'perf'")
    total = args.models * args.versions + args.big_model_versions
    big = f" + {BIG_MODEL} x {args.big_model_versions}" if args.big_model_versions else ""
    try:
        if args.registry_db:
            started = time.monotonic()
            url = prepare_registry_db(args.admin_url, args.registry_db)
            print(f"registry: database {args.registry_db} recreated and migrated in {time.monotonic() - started:.1f} s")
            result = seed_registry(url, args.models, args.versions, args.big_model_versions, args.pending_requests)
            print(f"registry: seeded {args.models} models x {args.versions} versions{big} ({total} versions,"
                  f" {args.pending_requests} pending requests) in "
                  f"{result['total_s']:.1f} s {result['seconds']}; rows {result['rows']}")
        if args.mlflow_db:
            started = time.monotonic()
            url = prepare_mlflow_db(args.admin_url, args.mlflow_db)
            print(f"mlflow:   database {args.mlflow_db} recreated and migrated in {time.monotonic() - started:.1f} s")
            result = seed_mlflow(url, args.models, args.versions, args.big_model_versions)
            print(f"mlflow:   seeded {args.models} models x {args.versions} versions{big} ({total} versions) in "
                  f"{result['total_s']:.1f} s {result['seconds']}; rows {result['rows']}")
    except PerfError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
