"""registry: a self-hosted model registry with a native REST API and the MLflow wire API."""
from __future__ import annotations

import logging
from pathlib import Path
from typing import Mapping

from flask import Flask

from .config import ConfigError, Settings
from . import extensions

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"


def create_app(overrides: Mapping[str, object] | None = None) -> Flask:
    settings = Settings.from_env().with_overrides(overrides)
    if settings.database_url is None:
        raise ConfigError(
            "DATABASE_URL is not set. Set it to postgresql://user:pass@host:5432/db, "
            "or run `registry serve`, which starts an embedded PostgreSQL when it is absent."
        )
    app = Flask(__name__)
    _configure(app, settings)
    _init_extensions(app)
    _register_blueprints(app)
    _register_cli(app)
    _install_telemetry(app)
    return app


def _configure(app: Flask, settings: Settings) -> None:
    app.config["REGISTRY_SETTINGS"] = settings
    app.config["SQLALCHEMY_DATABASE_URI"] = settings.database_url
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = {
        # Up to pool_size connections, each kept once opened: no overflow. SQLAlchemy closes an overflow
        # connection as soon as it is handed back, and under gevent a worker's concurrent cache misses outnumber
        # a small pool, so overflow meant a new PostgreSQL backend for a good share of them (58 a second at 32
        # cold readers: 1,100 reads/s; with the same 20 connections kept, 1,670/s and no new backend).
        "pool_size": settings.pool_size,
        "max_overflow": 0,
        # No pool_pre_ping: registry/pooling.py checks only connections that sat idle.
        # A failed statement's message (and so the error log) shows its SQL but not the values bound to it:
        # those are what callers sent (filters, descriptions, tag values), not ours to write to logs.
        "hide_parameters": True,
        "connect_args": _connect_args(settings),
    }
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.json.sort_keys = False
    app.json.compact = True
    logging.getLogger("registry").setLevel(settings.log_level)


def _connect_args(settings: Settings) -> dict:
    if settings.transaction_pooler:
        # A transaction pooler refuses startup options, and a SET would stick to a server connection that
        # other clients share: the role's settings (README, "Running several replicas") apply instead.
        return {"application_name": "registry"}
    return {
        "application_name": "registry",
        # JIT compiling pays off for long analytical queries, never for ours: it added 160 ms to a
        # 0.05 ms audit read whose row estimate was high (tests/perf/run_console.py).
        "options": f"-c statement_timeout={settings.statement_timeout_ms} "
                   f"-c lock_timeout={settings.lock_timeout_ms} -c jit=off",
    }


def _init_extensions(app: Flask) -> None:
    # ``extensions.db`` by attribute: the name ``db`` in this package is the subpackage registry/db.
    extensions.db.init_app(app)
    extensions.migrate.init_app(app, extensions.db, directory=str(MIGRATIONS_DIR), compare_type=True)
    from . import orm  # noqa: F401  (registers the mapped classes on db.metadata)
    from .db.availability import Outage
    from .pooling import ping_idle_connections

    outage = app.extensions[extensions.OUTAGE_KEY] = Outage()
    with app.app_context():
        ping_idle_connections(extensions.db.engine, app.config["REGISTRY_SETTINGS"].db_ping_after_seconds)
        outage.watch(extensions.db.engine)
    extensions.install_caches(app)


def _register_blueprints(app: Flask) -> None:
    from . import api, web

    api.register(app)
    web.register(app)


def _install_telemetry(app: Flask) -> None:
    from . import telemetry

    telemetry.install(app)


def _register_cli(app: Flask) -> None:
    from .cli import register_app_commands

    register_app_commands(app)
