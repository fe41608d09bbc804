"""Correctness checks run in SQL after write bursts, on the registry's schema and on MLflow's."""
from __future__ import annotations

from contextlib import closing

import psycopg2


def _rows(db_url: str, sql: str, params: tuple) -> list[tuple]:
    with closing(psycopg2.connect(db_url, connect_timeout=10)) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def check_versions(db_url: str, models: list[str]) -> dict:
    """Registry: per model, versions must be exactly 1..N (no gap, no duplicate) and last_version must equal N."""
    rows = _rows(db_url,
                 """SELECT m.name, m.last_version, count(v.id), count(DISTINCT v.version),
                           coalesce(min(v.version), 0), coalesce(max(v.version), 0)
                    FROM registered_models m LEFT JOIN model_versions v ON v.model_id = m.id
                    WHERE m.name = ANY(%s) GROUP BY m.id, m.name, m.last_version ORDER BY m.name""",
                 (models,))
    per_model = []
    for name, last_version, count, distinct, low, high in rows:
        ok = count == distinct == high == last_version and (count == 0 or low == 1)
        per_model.append({"model": name, "versions": count, "distinct": distinct, "min": low, "max": high,
                          "last_version": last_version, "ok": ok})
    found = {row["model"] for row in per_model}
    return {"ok": found == set(models) and all(r["ok"] for r in per_model), "per_model": per_model,
            "total_versions": sum(r["versions"] for r in per_model)}


def check_mlflow_versions(db_url: str, models: list[str]) -> dict:
    """MLflow: the same figures (its primary key forbids duplicates; gaps and missing rows are what can go
    wrong). Reported, not enforced: this is the server we compare against."""
    rows = _rows(db_url,
                 """SELECT name, count(*), count(DISTINCT version), coalesce(min(version), 0),
                           coalesce(max(version), 0)
                    FROM model_versions WHERE name = ANY(%s) GROUP BY name ORDER BY name""",
                 (models,))
    per_model = [{"model": name, "versions": count, "distinct": distinct, "min": low, "max": high,
                  "ok": count == distinct == high and (count == 0 or low == 1)}
                 for name, count, distinct, low, high in rows]
    return {"ok": all(r["ok"] for r in per_model), "per_model": per_model,
            "total_versions": sum(r["versions"] for r in per_model)}


def count_versions(db_url: str, models: list[str], mlflow: bool) -> int:
    if mlflow:
        sql = "SELECT count(*) FROM model_versions WHERE name = ANY(%s)"
    else:
        sql = ("SELECT count(*) FROM model_versions v JOIN registered_models m ON m.id = v.model_id"
               " WHERE m.name = ANY(%s)")
    return _rows(db_url, sql, (models,))[0][0]


def production_versions(db_url: str, model: str, mlflow: bool) -> list[int]:
    """The version numbers of the model that are in Production now."""
    if mlflow:
        sql = ("SELECT version FROM model_versions WHERE name = %s AND current_stage = 'Production'"
               " ORDER BY version")
    else:
        sql = ("SELECT v.version FROM model_versions v JOIN registered_models m ON m.id = v.model_id"
               " WHERE m.name = %s AND v.stage = 'Production' ORDER BY v.version")
    return [row[0] for row in _rows(db_url, sql, (model,))]


def explain_mlflow(db_url: str, sql: str, params: tuple) -> str:
    """EXPLAIN ANALYZE of a hand-written query on MLflow's tables (its own SQL is not captured)."""
    return "\n".join(row[0] for row in _rows(db_url, "EXPLAIN (ANALYZE, BUFFERS) " + sql, params))
