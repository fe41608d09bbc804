"""`registry serve`, the real console script: embedded PostgreSQL when DATABASE_URL is absent, migrations
before gunicorn starts, clean shutdown on SIGTERM, and data that survives a restart."""
from __future__ import annotations

import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import psutil
import pytest
import requests

from tests.server import ADMIN_HEADERS, CLOSE, START_TIMEOUT, running_server, server_process

pytestmark = pytest.mark.slow


def postgres_processes(data_dir: Path) -> list[psutil.Process]:
    """Live postgres server processes whose data directory lies under ``data_dir``."""
    needle = str(data_dir.resolve())
    found = []
    for proc in psutil.process_iter(["name", "cmdline"]):
        cmdline = proc.info["cmdline"] or []
        if proc.info["name"] == "postgres" and any(needle in part for part in cmdline):
            found.append(proc)
    return found


def stop_leftovers(data_dir: Path) -> None:
    """Safety net so a failing test does not leave an embedded server running; assertions are elsewhere."""
    for proc in postgres_processes(data_dir):
        proc.terminate()
    psutil.wait_procs(postgres_processes(data_dir), timeout=10)


# As deployed: authentication on; writes use the REGISTRY_ADMIN_TOKEN the helper configures (ADMIN_HEADERS).
PRODUCTION = {"REGISTRY_AUTH": "enabled"}


def embedded_serve(data_dir: Path, **kwargs):
    return server_process(None, command="serve", extra_env={**PRODUCTION, "REGISTRY_DATA_DIR": str(data_dir)},
                          **kwargs)


@contextmanager
def scratch_data_dir() -> Iterator[Path]:
    """A data directory outside pytest's basetemp: run as root, pgserver runs postgres as another user that
    needs to traverse the path, and every pytest session starting on the machine resets its basetemp root to
    0700, which would cut a running server off from its data."""
    path = Path(tempfile.mkdtemp(prefix="registry-serve-"))
    try:
        yield path
    finally:
        stop_leftovers(path)
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def data_dir():
    with scratch_data_dir() as path:
        yield path


@pytest.fixture(scope="module")
def embedded_server():
    with scratch_data_dir() as data_dir, embedded_serve(data_dir) as server:
        yield server


def gunicorn_workers(server) -> list[psutil.Process]:
    (master,) = [p for p in psutil.Process(server.pid).children() if "gunicorn" in " ".join(p.cmdline())]
    return master.children()


def test_serve_without_database_url_is_ready_on_embedded_postgres(embedded_server):
    # /readyz compares the database's Alembic revision with the code's head: 200 means migrated.
    response = requests.get(embedded_server.url + "/readyz", headers=CLOSE, timeout=10)

    assert response.status_code == 200
    assert "embedded PostgreSQL" in embedded_server.output()


def test_serve_runs_the_requested_number_of_gunicorn_workers(embedded_server):
    deadline = time.monotonic() + START_TIMEOUT  # workers boot one after another; only bounds a broken start
    while len(gunicorn_workers(embedded_server)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)

    assert len(gunicorn_workers(embedded_server)) == 2


def test_serve_without_database_url_accepts_a_model(embedded_server):
    models = embedded_server.url + "/api/v1/models"
    created = requests.post(models, json={"name": "embedded-write"}, headers=ADMIN_HEADERS, timeout=10)
    fetched = requests.get(models + "/embedded-write", headers=ADMIN_HEADERS, timeout=10)

    assert created.status_code == 201
    assert fetched.status_code == 200


def test_sigterm_stops_serve_and_its_embedded_postgres(data_dir):
    with embedded_serve(data_dir) as server:
        assert postgres_processes(data_dir), "the embedded server should be running while serving"
        code = server.stop()

    assert code == 0
    assert postgres_processes(data_dir) == []
    # pg_ctl removes postmaster.pid only on a clean shutdown; a killed server leaves it behind.
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


def test_sigterm_during_start_up_leaves_no_postgres_running(data_dir):
    # Signal while PostgreSQL is starting or the migrations run; wherever it lands, nothing may be left.
    with embedded_serve(data_dir, wait_for=None) as server:
        while not postgres_processes(data_dir) and server.process.poll() is None:
            time.sleep(0.02)
        server.stop()

    assert postgres_processes(data_dir) == []
    assert not (data_dir / "pgdata" / "postmaster.pid").exists()


def test_models_survive_a_restart_on_the_same_data_dir(data_dir):
    with embedded_serve(data_dir) as server:
        created = requests.post(server.url + "/api/v1/models", json={"name": "persistent"}, headers=ADMIN_HEADERS,
                                timeout=10)
        assert created.status_code == 201

    with embedded_serve(data_dir) as server:
        fetched = requests.get(server.url + "/api/v1/models/persistent", headers=ADMIN_HEADERS, timeout=10)

    assert fetched.status_code == 200
    assert fetched.json()["created_at"] == created.json()["created_at"]


def test_serve_with_database_url_migrates_an_empty_database(empty_database_url, tmp_path):
    env = {**PRODUCTION, "REGISTRY_DATA_DIR": str(tmp_path)}
    with running_server(empty_database_url, command="serve", extra_env=env) as url:
        response = requests.get(url + "/readyz", headers=CLOSE, timeout=10)

    assert response.status_code == 200


def test_serve_with_database_url_starts_no_embedded_postgres(fresh_database_url, tmp_path):
    data_dir = tmp_path / "data"
    env = {**PRODUCTION, "REGISTRY_DATA_DIR": str(data_dir)}
    with running_server(fresh_database_url, command="serve", extra_env=env) as url:
        created = requests.post(url + "/api/v1/models", json={"name": "external-db"}, headers=ADMIN_HEADERS, timeout=10)

    assert created.status_code == 201
    assert not data_dir.exists()
