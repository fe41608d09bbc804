"""The system under test: a dedicated PostgreSQL database and the real `registry serve` console script."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from contextlib import closing
from pathlib import Path

import psycopg2
import requests
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
REGISTRY_BIN = REPO / ".venv" / "bin" / "registry"


class PerfError(RuntimeError):
    """A setup step failed; the message says which and what to do."""


def database_url(admin_url: str, name: str) -> str:
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def _admin(admin_url: str):
    try:
        connection = psycopg2.connect(admin_url, connect_timeout=10)
    except psycopg2.OperationalError as exc:
        raise PerfError(f"cannot connect to PostgreSQL at {admin_url}: {exc}".strip()) from exc
    connection.autocommit = True
    return closing(connection)


def recreate_database(admin_url: str, name: str) -> None:
    # FORCE ends sessions left over from an interrupted earlier run.
    with _admin(admin_url) as connection, connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        cursor.execute(f'CREATE DATABASE "{name}"')


def drop_database(admin_url: str, name: str) -> None:
    with _admin(admin_url) as connection, connection.cursor() as cursor:
        cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def free_port() -> int:
    # The kernel picks a free port; the tiny window before gunicorn binds it is acceptable for a benchmark,
    # and a lost race shows up as a clear "server exited" error with the log.
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RegistryServer:
    """`registry serve --workers N` in its own process group, logging to a file."""

    def __init__(self, db_url: str, port: int, workers: int, log_path: Path):
        self.db_url, self.port, self.workers, self.log_path = db_url, port, workers, log_path
        self.base_url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def start(self, ready_timeout: float) -> None:
        if not REGISTRY_BIN.exists():
            raise PerfError(f"{REGISTRY_BIN} not found: create the venv and `pip install -e '.[test]'` first")
        env = dict(os.environ, DATABASE_URL=self.db_url)
        # Quiet logs: an access log or INFO lines would cost the server time we are trying to measure.
        env.setdefault("REGISTRY_LOG_LEVEL", "WARNING")
        command = [str(REGISTRY_BIN), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                   "--workers", str(self.workers)]
        log = open(self.log_path, "wb")
        try:
            # A new session gives the server its own process group, so stop() can always clean it up.
            self.process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True, cwd=REPO)
        finally:
            log.close()
        self._wait_ready(ready_timeout)

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PerfError(f"registry serve exited with code {self.process.returncode} before it was ready;"
                                f" log:\n{self.log_tail()}")
            try:
                answer = requests.get(self.base_url + "/readyz", timeout=2)
                if answer.status_code == 200:
                    return
                last = f"/readyz answered {answer.status_code}: {answer.text[:200]}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise PerfError(f"registry serve not ready after {timeout:.0f} s ({last}); log:\n{self.log_tail()}")

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (the CLI forwards it to gunicorn, which drains), then SIGKILL the group if it hangs."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # our own group: also catches orphaned workers
        except ProcessLookupError:
            pass
        if process.poll() is None:
            process.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


def seed(base_url: str, models: list[str], versions_per_model: int, actor: str) -> None:
    """Create the models and their versions through the API itself, checking every answer."""
    with requests.Session() as http:
        http.headers["X-Registry-Actor"] = actor
        for name in models:
            _expect(http.post(f"{base_url}/api/v1/models", json={"name": name, "description": "perf"},
                              timeout=30), 201, f"create model {name}")
        for v in range(1, versions_per_model + 1):
            for name in models:
                answer = http.post(f"{base_url}/api/v1/models/{name}/versions", timeout=30,
                                   json={"source": f"s3://perf-artifacts/{name}/seed-{v}/model",
                                         "run_id": f"seed-{v}", "tags": {"seeded": "true"}})
                _expect(answer, 201, f"create version {v} of {name}")
                if answer.json().get("version") != v:
                    raise PerfError(f"seeding {name}: expected version {v}, got {answer.json().get('version')}")


def _expect(answer: requests.Response, status: int, what: str) -> None:
    if answer.status_code != status:
        raise PerfError(f"seeding failed to {what}: HTTP {answer.status_code} {answer.text[:300]}")
