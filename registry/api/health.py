"""/healthz (the process answers) and /readyz (database reachable and migrations at head)."""
from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from ..extensions import db

bp = Blueprint("health", __name__)


def _expected_heads() -> set[str]:
    # Read once per process: the migration scripts do not change while the server runs.
    heads = current_app.extensions.get("registry_migration_heads")
    if heads is None:
        config = current_app.extensions["migrate"].migrate.get_config()
        heads = set(ScriptDirectory.from_config(config).get_heads())
        current_app.extensions["registry_migration_heads"] = heads
    return heads


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    try:
        with db.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        return jsonify({"status": "unavailable", "reason": f"database unreachable: {type(exc).__name__}"}), 503
    expected = _expected_heads()
    if current != expected:
        return jsonify({"status": "unavailable", "reason": "migrations not at head",
                        "database": sorted(current), "expected": sorted(expected)}), 503
    return jsonify({"status": "ok", "migration": sorted(current)})
