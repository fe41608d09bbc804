"""The ``registry`` command: serve, watch, db (Flask-Migrate), audit verify, tokens, events, import, export,
and Flask's shell/routes."""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import click
from flask import Flask
from flask.cli import FlaskGroup, ScriptInfo, with_appcontext

from .config import Settings

GUNICORN_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "gunicorn.conf.py"

_embedded_servers: list = []  # keeps embedded servers referenced for the life of the command


def _ensure_database_url() -> None:
    """With no DATABASE_URL, start the embedded PostgreSQL and point DATABASE_URL at it."""
    if os.environ.get("DATABASE_URL"):
        return
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


# with_appcontext=False: FlaskGroup would otherwise build the app (and start the embedded PostgreSQL through
# _make_app, stopped only by atexit) before this command runs; serve manages both itself.
@main.command("serve", with_appcontext=False)
@click.option("--host", default=lambda: Settings.from_env().host, show_default="REGISTRY_HOST or 127.0.0.1")
@click.option("--port", type=int, default=lambda: Settings.from_env().port, show_default="REGISTRY_PORT or 8080")
@click.option("--workers", type=click.IntRange(1, 64), default=lambda: Settings.from_env().workers,
              show_default="REGISTRY_WORKERS or 2")
def serve(host: str, port: int, workers: int) -> None:
    """Apply migrations, then run gunicorn with deploy/gunicorn.conf.py.

    Without DATABASE_URL an embedded PostgreSQL is started under REGISTRY_DATA_DIR and stopped on exit.
    """
    process: subprocess.Popen | None = None
    pending: list[int] = []

    def on_signal(signum, _frame):
        # Once gunicorn runs it shuts down gracefully and its exit code becomes ours. Before that, the
        # current step (starting PostgreSQL, migrating) finishes first, so whatever it started is registered
        # in the ExitStack and stopped; the default action would kill us and leave PostgreSQL running.
        if process is not None:
            process.send_signal(signum)
        else:
            pending.append(signum)

    def stop_if_asked() -> None:
        if pending:
            sys.exit(128 + pending[0])

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, on_signal)
    embedded = not os.environ.get("DATABASE_URL")
    with ExitStack() as stack:
        if embedded:
            from .embedded import running

            data_dir = Settings.from_env().data_dir
            os.environ["DATABASE_URL"] = stack.enter_context(running(data_dir))
            click.echo(f"registry: embedded PostgreSQL under {data_dir}", err=True)
        stop_if_asked()
        _upgrade_database()
        stop_if_asked()
        # Large answers (a model with megabytes of tags) are allocated and freed all day; with glibc's default,
        # adaptive mmap threshold they end up on the heap, whose freed pages a worker keeps. A fixed threshold
        # keeps blocks over 128 KiB in mmap, given back on free: measured by tests/perf/run_cache_flood.py,
        # a 16 MiB cache then costs ~19 MiB of RSS instead of ~45. An operator's own setting wins.
        os.environ.setdefault("MALLOC_MMAP_THRESHOLD_", "131072")
        command = [
            sys.executable, "-m", "gunicorn",
            "--config", str(GUNICORN_CONFIG),
            "--bind", f"{host}:{port}",
            "--workers", str(workers),
            "registry.wsgi:app",
        ]
        if not embedded:
            # Nothing of ours to stop afterwards: become gunicorn, so signals reach it directly and this
            # process's memory (the app was imported to migrate) is given back.
            os.execv(sys.executable, command)
        process = subprocess.Popen(command, env=os.environ.copy())
        if pending:  # a signal that arrived between the last check and Popen
            process.send_signal(pending[0])
        code = process.wait()
    # A gunicorn killed by a signal reports -N; exit like a shell would (128 + N).
    sys.exit(code if code >= 0 else 128 - code)


@main.command("watch", with_appcontext=False)
@click.argument("selectors", nargs=-1, required=True, metavar="SELECTOR...")
@click.option("--url", envvar="REGISTRY_URL", default="http://127.0.0.1:8080", show_default=True,
              help="The registry, or the load balancer in front of its replicas (REGISTRY_URL).")
@click.option("--token", envvar="REGISTRY_TOKEN", default=None,
              help="API token with READ on the models watched (REGISTRY_TOKEN).")
@click.option("--exec", "command", default=None, metavar="CMD",
              help="Run CMD (sh -c) for each change, with the answer in its environment (REGISTRY_VERSION, ...).")
@click.option("--write", "path", default=None, type=click.Path(dir_okay=False), metavar="FILE",
              help="Keep FILE holding every selector's current answer as JSON, replaced atomically.")
@click.option("--idle-timeout", type=click.FloatRange(1, 3600), default=60.0, show_default=True,
              help="Reconnect when nothing, not even a heartbeat, arrived for this many seconds.")
def watch(selectors: tuple[str, ...], url: str, token: str | None, command: str | None, path: str | None,
          idle_timeout: float) -> None:
    """Follow serving answers (SELECTOR: model:Stage or model@alias) and act on every change.

    Without --exec or --write, prints one JSON line per change. Reconnects with exponential backoff and
    resumes where it left off (Last-Event-ID). Exits 3 when the token is refused or revoked, 2 when the
    server refuses the selectors.
    """
    import logging

    from .watcher import FileWriter, Follower, Printer, Runner, Stop

    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    actions = [action for action in (FileWriter(path) if path else None, Runner(command) if command else None)
               if action is not None] or [Printer()]
    try:
        Follower(url, list(selectors), token, actions, idle_timeout=idle_timeout).run()
    except Stop as stop:
        click.echo(f"registry watch: {stop}", err=True)
        sys.exit(stop.code)
    except KeyboardInterrupt:
        sys.exit(130)


def _upgrade_database() -> None:
    from flask_migrate import upgrade

    from . import bootstrap, create_app

    app = create_app()
    with app.app_context():
        upgrade()
    bootstrap.run(app)
    with app.app_context():
        from .extensions import db

        db.engine.dispose()


@click.group("audit")
def audit_group() -> None:
    """Inspect the audit trail."""


@audit_group.command("verify")
@click.option("--no-record", is_flag=True,
              help="Do not record the outcome as an audit.verified event (a read-only replica, say).")
@click.option("--export", "export_file", type=click.Path(exists=True, dir_okay=False),
              help="Check an export file offline (no database) instead of the database's trail.")
@click.pass_context
def audit_verify(ctx: click.Context, no_record: bool, export_file: str | None) -> None:
    """Recompute the hash chains; exit 1 naming the first altered or missing event.

    The outcome is recorded in the trail (event audit.verified), which the metrics report as the last run."""
    if export_file is not None:
        _verify_export(export_file)
        return
    from flask import current_app

    if not current_app:  # as flask.cli.with_appcontext does; the offline check above needs no app at all
        ctx.with_resource(ctx.ensure_object(ScriptInfo).load_app().app_context())
    from .services.audit_log import verify
    from .services.operations import record_audit_verification

    checked, problem = verify()
    if not no_record:
        record_audit_verification(checked, problem)
    if problem is None:
        click.echo(f"audit trail intact: {checked} events verified")
        return
    click.echo(
        f"audit trail BROKEN at event id={problem.event_id} (chain {problem.chain_id}, seq {problem.seq}): "
        f"{problem.reason}. {checked} events before it verified.",
        err=True,
    )
    sys.exit(1)


def _verify_export(path: str) -> None:
    from .migrate.exchange import ExportFileError, verify_file

    try:
        result = verify_file(path)
    except ExportFileError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    if result.ok:
        click.echo(f"export intact: {result.events} audit events verified, file digest matches")
        return
    for problem in result.problems:
        click.echo(f"export BROKEN: {problem}", err=True)
    sys.exit(1)


_DURATION = re.compile(r"^(\d+)([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _duration(_ctx, _param, value: str | None) -> timedelta | None:
    if value is None:
        return None
    match = _DURATION.match(value.strip())
    if not match:
        raise click.BadParameter("use a number and a unit: 3600s, 90m, 12h, 30d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@click.group("tokens")
def tokens_group() -> None:
    """API tokens (stored hashed; shown once)."""


@tokens_group.command("create")
@click.option("--user", "user_name", required=True, help="Owner of the token; created if missing.")
@click.option("--admin", is_flag=True, help="Create the user as an admin (new users only).")
@click.option("--expires-in", callback=_duration, help="Lifetime such as 90d or 12h; default: no expiry.")
@click.option("--description", default="", help="What the token is for.")
@click.option("--scope", type=click.Choice(["all", "metrics"]), default="all", show_default=True,
              help="metrics: the token may read GET /metrics and nothing else (for Prometheus).")
@with_appcontext
def tokens_create(user_name: str, admin: bool, expires_in: timedelta | None, description: str, scope: str) -> None:
    """Print a new token, alone on stdout, so scripts can capture it."""
    from .auth import SYSTEM
    from .services.identities import create_token

    record, token = _or_exit(lambda: create_token(SYSTEM, user_name, description=description,
                                                  expires_in=expires_in, create_user=True, admin=admin,
                                                  scope=scope))
    click.echo(token)
    click.echo(f"token {record.id} ({record.prefix}...) for {record.user}", err=True)


@tokens_group.command("list")
@click.option("--user", "user_name", default=None)
@with_appcontext
def tokens_list(user_name: str | None) -> None:
    """Tokens without their secrets."""
    from .auth import SYSTEM
    from .services.identities import list_tokens

    for t in _or_exit(lambda: list_tokens(SYSTEM, user_name)):
        state = "revoked" if t.revoked_at else (f"expires {t.expires_at:%Y-%m-%d %H:%M}Z" if t.expires_at else "active")
        click.echo(f"{t.id}\t{t.user}\t{t.prefix}...\t{state}\t{t.description}")


@tokens_group.command("revoke")
@click.argument("token_id", type=int)
@with_appcontext
def tokens_revoke(token_id: int) -> None:
    from .auth import SYSTEM
    from .services.identities import revoke_token

    record = _or_exit(lambda: revoke_token(SYSTEM, token_id))
    click.echo(f"token {record.id} of {record.user} revoked")


@click.group("events")
def events_group() -> None:
    """Events and webhook deliveries."""


@events_group.command("dispatch")
@with_appcontext
def events_dispatch() -> None:
    """Deliver webhooks until SIGTERM or SIGINT (alongside or instead of the servers' embedded dispatchers)."""
    import threading

    from flask import current_app

    from .events.dispatcher import for_app

    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    dispatcher = for_app(current_app._get_current_object()).start()
    click.echo("registry: dispatching events", err=True)
    stop.wait()
    dispatcher.stop()


def _or_exit(call):
    from .errors import RegistryError

    try:
        return call()
    except RegistryError as error:
        click.echo(f"error: {error.message}", err=True)
        sys.exit(2)


@click.group("import")
def import_group() -> None:
    """Bring models in from another registry (admin-only; audited as imported)."""


@import_group.command("mlflow")
@click.option("--from", "url", required=True, help="The MLflow server (or Databricks workspace) URL.")
@click.option("--token", envvar="MLFLOW_TRACKING_TOKEN", default=None,
              help="Bearer token for the source (default: MLFLOW_TRACKING_TOKEN).")
@click.option("--models", "patterns", multiple=True, help="Only models matching this glob (repeatable).")
@click.option("--dry-run", is_flag=True, help="Report what would change; write nothing.")
@click.option("--overwrite", is_flag=True, help="Replace conflicting models here (deleted, audited) instead of skipping.")
@click.option("--jobs", type=click.IntRange(1, 16), default=4, show_default=True,
              help="Models imported at once (each in its own transaction and database connection).")
@with_appcontext
def import_mlflow(url: str, token: str | None, patterns: tuple[str, ...], dry_run: bool, overwrite: bool,
                  jobs: int) -> None:
    """Copy registered models, versions (original numbers), stages, aliases and tags from a running MLflow.

    Idempotent and resumable: each model is one transaction, and a model already here as the source has it
    is left alone, so re-running after a change or an interruption imports only what is missing."""
    from .auth import SYSTEM
    from .migrate import mlflow, run

    reporter = run.Reporter()
    source = mlflow.MlflowSource(url, token)
    try:  # models are imported while the source is still being read
        outcomes = run.import_all(SYSTEM, mlflow.read_models(source, patterns, reporter), origin=source.url,
                                  overwrite=overwrite, dry_run=dry_run, reporter=reporter, jobs=jobs)
    except mlflow.SourceError as error:
        click.echo(f"error: {error} (the models imported until then are kept: run the import again to carry on)",
                   err=True)
        sys.exit(2)
    run.summary(outcomes, dry_run=dry_run)
    sys.exit(1 if any(o.status == "failed" for o in outcomes) else 0)


@import_group.command("registry")
@click.option("--from", "path", required=True, type=click.Path(exists=True, dir_okay=False),
              help="An export file written by `registry export`.")
@with_appcontext
def import_registry(path: str) -> None:
    """Restore an export into this registry (empty or not), after verifying it offline.

    Models whose ids are free here come back as they were, history included; see the README."""
    from .auth import SYSTEM
    from .migrate import run
    from .migrate.exchange import ExportFileError
    from .migrate.restore import restore_file

    try:
        outcomes = restore_file(SYSTEM, path, run.Reporter())
    except ExportFileError as error:
        click.echo(f"error: {error}", err=True)
        sys.exit(2)
    run.summary(outcomes)
    sys.exit(1 if any(o.status == "failed" for o in outcomes) else 0)


@click.command("export")
@click.option("--models", "patterns", multiple=True, help="Only models matching this glob (repeatable).")
@click.option("--out", required=True, help="A file, or a directory to write a timestamped file into.")
@with_appcontext
def export_command(patterns: tuple[str, ...], out: str) -> None:
    """Write the registry (or the models matching --models) to a registry-export JSON Lines file."""
    from .auth import SYSTEM
    from .migrate.exchange import write_export

    written = write_export(SYSTEM, patterns, out)
    counts = ", ".join(f"{n} {kind}" for kind, n in written.counts.items())
    click.echo(f"exported to {written.path}: {counts}", err=True)
    click.echo(f"sha256 {written.sha256}  (keep it: `registry audit verify --export` checks the file against it)")


# On the group itself too, so FlaskGroup finds `audit` without building the app: `audit verify --export`
# needs no database (with no DATABASE_URL, building the app would start the embedded PostgreSQL).
main.add_command(audit_group)


def register_app_commands(app: Flask) -> None:
    app.cli.add_command(export_command)
    app.cli.add_command(audit_group)
    app.cli.add_command(import_group)
    app.cli.add_command(tokens_group)
    app.cli.add_command(events_group)
