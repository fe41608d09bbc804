"""The ``registry`` command: serve, db (Flask-Migrate), audit verify, and Flask's shell/routes."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import click
from flask import Flask
from flask.cli import FlaskGroup, with_appcontext

GUNICORN_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"

_embedded_servers: list = []  # keeps embedded servers referenced for the life of the command


def _ensure_database_url() -> None:
    """With no DATABASE_URL, start the embedded PostgreSQL and point DATABASE_URL at it."""
    if os.environ.get("DATABASE_URL"):
        return
    from .config import Settings
    from .embedded import start

    server, url = start(Settings.from_env().data_dir)
    _embedded_servers.append(server)
    os.environ["DATABASE_URL"] = url


def _make_app() -> Flask:
    _ensure_database_url()
    from . import create_app

    return create_app()


@click.group(cls=FlaskGroup, create_app=_make_app, add_version_option=False, load_dotenv=False)
def main() -> None:
    """Model registry service."""


@main.command("serve")
@click.option("--host", default=lambda: os.environ.get("REGISTRY_HOST", "127.0.0.1"), show_default="127.0.0.1")
@click.option("--port", type=int, default=lambda: int(os.environ.get("REGISTRY_PORT", "8080")), show_default="8080")
@click.option("--workers", type=click.IntRange(1, 64),
              default=lambda: int(os.environ.get("REGISTRY_WORKERS", "2")), show_default="2")
def serve(host: str, port: int, workers: int) -> None:
    """Apply migrations, then run gunicorn with deploy/gunicorn.conf.py.

    Without DATABASE_URL an embedded PostgreSQL is started under REGISTRY_DATA_DIR and stopped on exit.
    """
    with ExitStack() as stack:
        if not os.environ.get("DATABASE_URL"):
            from .config import Settings
            from .embedded import running

            data_dir = Settings.from_env().data_dir
            os.environ["DATABASE_URL"] = stack.enter_context(running(data_dir))
            click.echo(f"registry: embedded PostgreSQL under {data_dir}", err=True)
        _upgrade_database()
        command = [
            sys.executable, "-m", "gunicorn",
            "--config", str(GUNICORN_CONFIG),
            "--bind", f"{host}:{port}",
            "--workers", str(workers),
            "registry.wsgi:app",
        ]
        process = subprocess.Popen(command, env=os.environ.copy())

        def forward(signum, _frame):
            process.send_signal(signum)

        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, forward)
        code = process.wait()
    sys.exit(code)


def _upgrade_database() -> None:
    from flask_migrate import upgrade

    from . import create_app

    app = create_app()
    with app.app_context():
        upgrade()
        from .extensions import db

        db.engine.dispose()


@click.group("audit")
def audit_group() -> None:
    """Inspect the audit trail."""


@audit_group.command("verify")
@with_appcontext
def audit_verify() -> None:
    """Recompute the hash chains; exit 1 naming the first altered or missing event."""
    from .services.audit_log import verify

    checked, problem = verify()
    if problem is None:
        click.echo(f"audit trail intact: {checked} events verified")
        return
    click.echo(
        f"audit trail BROKEN at event id={problem.event_id} (chain {problem.chain_id}, seq {problem.seq}): "
        f"{problem.reason}. {checked} events before it verified.",
        err=True,
    )
    sys.exit(1)


def register_app_commands(app: Flask) -> None:
    app.cli.add_command(audit_group)
