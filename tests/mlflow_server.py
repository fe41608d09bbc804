"""A stock ``mlflow server`` (the pinned test version) as a subprocess, with its own store on the test
PostgreSQL: the source the import tests and the import benchmark read from."""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import requests

from tests import pg
from tests.server import free_port

MLFLOW_BIN = Path(sys.executable).parent / "mlflow"
START_TIMEOUT = 180.0  # bounds a broken start only (MLflow migrates its fresh database first)


@contextmanager
def stock_mlflow_server(admin_url: str, workers: int = 1) -> Iterator[str]:
    """Yield the base URL of a fresh, empty ``mlflow server``; stop it and drop its database afterwards."""
    name = pg.create_database(admin_url, prefix="mlflow_source")
    port = free_port()
    workdir = tempfile.TemporaryDirectory(prefix="mlflow-source-")
    log = open(Path(workdir.name) / "server.log", "w+b")
    url = pg.with_database(admin_url, name).replace("postgresql://", "postgresql+psycopg2://", 1)
    env = dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")
    process = subprocess.Popen(
        [str(MLFLOW_BIN), "server", "--backend-store-uri", url, "--host", "127.0.0.1", "--port", str(port),
         "--workers", str(workers)],
        cwd=workdir.name, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"mlflow server exited with {process.returncode}:\n{log.read().decode()[-3000:]}")
            try:
                if requests.get(f"{base}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("mlflow server did not become ready")
            time.sleep(0.5)
        yield base
    finally:
        if process.poll() is None:
            os.killpg(process.pid, 15)
            try:
                process.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, 9)
                process.wait()
        log.close()
        workdir.cleanup()
        pg.drop_database(admin_url, name)
