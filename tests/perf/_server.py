"""The system under test: a dedicated PostgreSQL database and the real `registry serve` console script."""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from contextlib import closing, contextmanager
from pathlib import Path

import psycopg2
import requests
from sqlalchemy.engine import make_url

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
REGISTRY_BIN = REPO / ".venv" / "bin" / "registry"
MLFLOW_BIN = REPO / ".venv" / "bin" / "mlflow"
PYTHON_BIN = REPO / ".venv" / "bin" / "python"
# The server runs with authentication on; REGISTRY_ADMIN_TOKEN (>= 20 characters) makes this an admin's token.
ADMIN_TOKEN = "reg_perf-benchmark-admin-token"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}"}


class PerfError(RuntimeError):
    """A setup step failed; the message says which and what to do."""


def safe_database_name(name: str) -> bool:
    """Benchmark databases are dropped with FORCE: only plain names containing 'perf' qualify."""
    return (re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) is not None and "perf" in name
            and name not in {"postgres", "template0", "template1"})


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


class Service:
    """One server under test, started from a command line in its own process group, logging to a file.

    Subclasses say which command, which environment and which URL answers 200 once it is ready.
    """

    label = "server"
    ready_path = "/readyz"

    def __init__(self, port: int, log_path: Path):
        self.port, self.log_path = port, log_path
        self.base_url = f"http://127.0.0.1:{port}"
        self.process: subprocess.Popen | None = None

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def cwd(self) -> Path:
        return REPO

    def start(self, ready_timeout: float) -> None:
        self.launch()
        self.wait_ready(ready_timeout)

    def launch(self) -> None:
        """Start the process without waiting for it (several servers can then start side by side)."""
        command = self.command()
        if not Path(command[0]).exists():
            raise PerfError(f"{command[0]} not found: create the venv and `pip install -e '.[test]'` first")
        log = open(self.log_path, "wb")
        try:
            # A new session gives the server its own process group, so stop() can always clean it up.
            self.process = subprocess.Popen(command, env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.cwd())
        finally:
            log.close()

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise PerfError(f"{self.label} exited with code {self.process.returncode} before it was ready;"
                                f" log ({self.log_path}):\n{self.log_tail()}")
            try:
                answer = requests.get(self.base_url + self.ready_path, timeout=2)
                if answer.status_code == 200:
                    return
                last = f"{self.ready_path} answered {answer.status_code}: {answer.text[:200]}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.2)
        raise PerfError(f"{self.label} not ready after {timeout:.0f} s ({last}); log ({self.log_path}):\n"
                        f"{self.log_tail()}")

    @contextmanager
    def paused(self):
        """SIGSTOP the whole process group for the block (SIGCONT after): while another server is measured, this
        one takes no CPU. An idle `mlflow server` keeps ~0.5 core busy with its job consumers, taken from
        whichever server is being measured (seen here: 5-6 huey consumers at ~11% each)."""
        process = self.process
        if process is None or process.poll() is not None:
            yield
            return
        os.killpg(process.pid, signal.SIGSTOP)
        try:
            yield
        finally:
            os.killpg(process.pid, signal.SIGCONT)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM (servers drain on it), then SIGKILL the whole process group if it hangs."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(process.pid, signal.SIGKILL)  # our own group: also catches orphaned workers
        except (ProcessLookupError, PermissionError):
            pass
        if process.poll() is None:
            process.wait(10)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


class RegistryServer(Service):
    """The real console script: `registry serve --workers N` (it applies the migrations itself).

    Authentication stays on (the default); REGISTRY_ADMIN_TOKEN makes ADMIN_TOKEN an admin's token.
    """

    label = "registry serve"

    def __init__(self, db_url: str, port: int, workers: int, log_path: Path):
        super().__init__(port, log_path)
        self.db_url, self.workers = db_url, workers

    def command(self) -> list[str]:
        return [str(REGISTRY_BIN), "serve", "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(self.workers)]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ, DATABASE_URL=self.db_url, REGISTRY_ADMIN_TOKEN=ADMIN_TOKEN)
        # Quiet logs: an access log or INFO lines would cost the server time we are trying to measure.
        env.setdefault("REGISTRY_LOG_LEVEL", "WARNING")
        return env


def seed(base_url: str, models: list[str], versions_per_model: int) -> None:
    """Create the models and their versions through the API itself (as the admin), checking every answer."""
    with requests.Session() as http:
        http.headers.update(ADMIN_HEADERS)
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


class MlflowServer(Service):
    """A stock `mlflow server` with its default settings (4 uvicorn workers, access log on) on its own database.

    Only telemetry is switched off (it sends usage data over the network; turning it off can only make MLflow
    faster). The working directory is a scratch directory: the default artifact proxy writes ./mlartifacts.
    """

    label = "mlflow server"
    ready_path = "/health"

    def __init__(self, sqlalchemy_url: str, port: int, log_path: Path, workdir: Path):
        super().__init__(port, log_path)
        self.sqlalchemy_url, self.workdir = sqlalchemy_url, workdir

    def command(self) -> list[str]:
        return [str(MLFLOW_BIN), "server", "--backend-store-uri", self.sqlalchemy_url,
                "--host", "127.0.0.1", "--port", str(self.port)]

    def environment(self) -> dict[str, str]:
        return dict(os.environ, MLFLOW_DISABLE_TELEMETRY="true", DO_NOT_TRACK="true")

    def cwd(self) -> Path:
        return self.workdir


class HelloServer(Service):
    """A hello-world Flask app under deploy/gunicorn.conf.py's settings (see hello_gunicorn_conf.py)."""

    label = "hello-world gunicorn"
    ready_path = "/"

    def __init__(self, port: int, workers: int, log_path: Path):
        super().__init__(port, log_path)
        self.workers = workers

    def command(self) -> list[str]:
        return [str(PYTHON_BIN), "-m", "gunicorn", "--config", str(HERE / "hello_gunicorn_conf.py"),
                "--bind", f"127.0.0.1:{self.port}", "--workers", str(self.workers), "hello_app:app"]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("REGISTRY_LOG_LEVEL", "WARNING")  # the same log level as our server gets here
        return env

    def cwd(self) -> Path:
        return HERE  # `python -m gunicorn` puts the working directory on sys.path: hello_app is found here
