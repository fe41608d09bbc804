"""Embedded PostgreSQL (pgserver) for local runs when no DATABASE_URL is given.

The data lives under ``REGISTRY_DATA_DIR`` (default: a per-user folder), so models survive restarts.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

log = logging.getLogger("registry.embedded")

DATABASE_NAME = "registry"


def start(data_dir: Path, database: str = DATABASE_NAME):
    """Start (or attach to) the embedded server and make sure ``database`` exists. Returns (server, url)."""
    import pgserver  # imported lazily: only local runs need it
    import psycopg2

    pgdata = Path(data_dir) / "pgdata"
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    server = pgserver.get_server(pgdata, cleanup_mode="stop")
    admin_url = server.get_uri("postgres")
    connection = psycopg2.connect(admin_url)
    try:
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,))
            if cursor.fetchone() is None:
                cursor.execute(f'CREATE DATABASE "{database}"')
    finally:
        connection.close()
    log.info("embedded PostgreSQL running in %s", pgdata)
    return server, server.get_uri(database)


@contextmanager
def running(data_dir: Path, database: str = DATABASE_NAME) -> Iterator[str]:
    server, url = start(data_dir, database)
    try:
        yield url
    finally:
        server.cleanup()
