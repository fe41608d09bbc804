"""/healthz (the process answers) and /readyz (database reachable and its schema fit for this code)."""
from __future__ import annotations

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from flask import Blueprint, current_app, jsonify
from sqlalchemy.exc import SQLAlchemyError

from ..db import availability
from ..extensions import db

bp = Blueprint("health", __name__)


def _scripts() -> ScriptDirectory:
    # Read once per process: the migration scripts do not change while the server runs.
    scripts = current_app.extensions.get("registry_migration_scripts")
    if scripts is None:
        config = current_app.extensions["migrate"].migrate.get_config()
        scripts = current_app.extensions["registry_migration_scripts"] = ScriptDirectory.from_config(config)
    return scripts


def _is_known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:
        return False


@bp.get("/healthz")
def healthz():
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz():
    """Ready when the schema is at this code's head, or ahead of it: during a rolling update the migration
    runs first, and the old pods must keep serving until the new ones are ready (migrations are written
    expand-then-contract, so old code runs on the newer schema). Behind or empty: not ready."""
    try:
        with db.engine.connect() as connection:
            current = set(MigrationContext.configure(connection).get_current_heads())
    except SQLAlchemyError as exc:
        # A load balancer or client that honours Retry-After comes back when a restart has likely finished.
        return (jsonify({"status": "unavailable", "reason": f"database unreachable: {type(exc).__name__}"}), 503,
                {"Retry-After": str(availability.RETRY_AFTER["unavailable"])})
    scripts = _scripts()
    expected = set(scripts.get_heads())
    if current == expected:
        return jsonify({"status": "ok", "migration": sorted(current)})
    if current and not any(_is_known(scripts, revision) for revision in current):
        return jsonify({"status": "ok", "migration": sorted(current),
                        "note": "the database schema is newer than this server's code"})
    return jsonify({"status": "unavailable", "reason": "migrations not at head",
                    "database": sorted(current), "expected": sorted(expected)}), 503, {"Retry-After": "10"}
