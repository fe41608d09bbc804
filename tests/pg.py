"""Where the tests' PostgreSQL comes from, and throwaway databases on it.

TEST_DATABASE_URL (or DATABASE_URL) names a server to use (its database part is ignored: tests create
their own databases and drop them). Without either, an embedded PostgreSQL (pgserver) is started.
"""
from __future__ import annotations

import os
import uuid
from contextlib import closing
from pathlib import Path

import psycopg2
from sqlalchemy.engine import make_url


def server_admin_url(tmp_dir: Path) -> tuple[str, object | None]:
    """A libpq URL to the server's maintenance database, and the embedded server handle if one was started."""
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        parsed = make_url(url.replace("postgres://", "postgresql://", 1))
        admin = parsed.set(drivername="postgresql", database="postgres")
        return admin.render_as_string(hide_password=False), None
    import tempfile

    import pgserver

    # Not under pytest's tmp folder: pgserver runs PostgreSQL as another user when we are root, and a
    # concurrent pytest session resets that folder to mode 0700, locking the server out of its data.
    data_dir = Path(tempfile.mkdtemp(prefix="registry-test-pg-"))
    data_dir.chmod(0o755)
    server = pgserver.get_server(data_dir / "pgdata", cleanup_mode="delete")
    return server.get_uri("postgres"), server


def with_database(admin_url: str, name: str) -> str:
    url = make_url(admin_url).set(database=name)
    return url.render_as_string(hide_password=False)


def _admin(admin_url: str):
    connection = psycopg2.connect(admin_url)
    connection.autocommit = True
    return closing(connection)


def create_database(admin_url: str, template: str | None = None, prefix: str = "registry_test") -> str:
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    with _admin(admin_url) as connection, connection.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return name


def drop_database(admin_url: str, name: str) -> None:
    with _admin(admin_url) as connection, connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
