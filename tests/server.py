"""Start a real server process (gunicorn, or the ``registry serve`` console script) for tests.

``running_server(...)`` is the everyday form: it yields the base URL once ``/readyz`` answers 200 and, on
exit, stops the process with SIGTERM and fails if it did not exit cleanly with code 0. ``server_process(...)``
yields the ``ServerProcess`` itself for tests about start-up and shutdown. Whenever something goes wrong the
server's combined stdout/stderr is part of the error, so a failing test shows why the server misbehaved.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator, Literal, Mapping

import requests

ROOT = Path(__file__).resolve().parent.parent
GUNICORN_CONFIG = ROOT / "deploy" / "gunicorn.conf.py"
BIN = Path(sys.executable).parent
# Generous limits that only bound a broken start or shutdown; no test asserts on timing.
START_TIMEOUT = 120.0
STOP_TIMEOUT = 60.0
# gunicorn 26 (mlflow pins gunicorn<27) waits its whole graceful_timeout on SIGTERM while an idle keep-alive
# connection is open; asking for "Connection: close" keeps each stop at about a second instead of 20.
CLOSE = {"Connection": "close"}
# Every server started here knows this admin token (REGISTRY_ADMIN_TOKEN); send ADMIN_HEADERS to act as admin.
ADMIN_TOKEN = "reg_test-admin-token-for-server-processes"
ADMIN_HEADERS = {"Authorization": f"Bearer {ADMIN_TOKEN}", **CLOSE}


class ServerError(AssertionError):
    """The server failed to start, never became ready, or did not stop cleanly."""


def until(condition: Callable[[], bool], what: str, timeout: float = 90.0, interval: float = 0.05) -> None:
    """Poll ``condition`` until it holds; fail naming ``what`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"never happened: {what}"
        time.sleep(interval)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli_env(database_url: str) -> dict[str, str]:
    """The environment of a ``registry ...`` command run by a test: this checkout's code, on ``database_url``."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "TEST_DATABASE_URL"}}
    env["DATABASE_URL"] = database_url
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def server_env(database_url: str | None, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The test's environment minus any database the outer test run was pointed at."""
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "TEST_DATABASE_URL"}}
    # Tests that exercise authentication pass REGISTRY_AUTH / REGISTRY_ADMIN_TOKEN in extra_env.
    env.setdefault("REGISTRY_AUTH", "disabled")
    if database_url is not None:
        env["DATABASE_URL"] = database_url
    env["REGISTRY_ADMIN_TOKEN"] = ADMIN_TOKEN
    # The server runs the code under test (this checkout), whichever checkout the venv was installed from.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    # Clients that keep idle keep-alive connections open make gunicorn 26 wait its whole graceful_timeout on
    # SIGTERM (20 s): a short one keeps each stop at a second or two. No test depends on a longer drain.
    env.setdefault("GUNICORN_CMD_ARGS", "--graceful-timeout 2")
    env.update(extra_env or {})
    return env


class ServerProcess:
    def __init__(self, argv: list[str], env: Mapping[str, str], port: int):
        self.argv = argv
        self.url = f"http://127.0.0.1:{port}"
        self._log = tempfile.TemporaryFile(mode="w+b")
        self.process = subprocess.Popen(argv, env=dict(env), cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)

    @property
    def pid(self) -> int:
        return self.process.pid

    def output(self) -> str:
        self._log.flush()
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")

    def fail(self, message: str) -> ServerError:
        return ServerError(f"{message}\n--- server command: {' '.join(self.argv)}\n--- server output:\n{self.output()}")

    def wait_until(self, path: str = "/readyz", timeout: float = START_TIMEOUT) -> None:
        """Poll ``path`` until it answers 200; raise with the server output if the process dies or hangs."""
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise self.fail(f"server exited with code {self.process.returncode} before {path} answered 200")
            try:
                response = requests.get(self.url + path, headers=CLOSE, timeout=5)
                if response.status_code == 200:
                    return
                last = f"{response.status_code} {response.text}"
            except requests.RequestException as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise self.fail(f"{path} did not answer 200 within {timeout:.0f}s (last: {last})")

    def stop(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM, wait, SIGKILL if it hangs. Returns the exit code (negative = killed by that signal)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def close(self) -> None:
        self.stop()
        self._log.close()


def server_command(command: Literal["gunicorn", "serve"], port: int, workers: int) -> list[str]:
    if command == "gunicorn":
        return [str(BIN / "gunicorn"), "--config", str(GUNICORN_CONFIG), "--bind", f"127.0.0.1:{port}",
                "--workers", str(workers), "registry.wsgi:app"]
    if command == "serve":
        return [str(BIN / "registry"), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)]
    raise ValueError(f"unknown command {command!r}")


@contextmanager
def server_process(
    database_url: str | None,
    workers: int = 2,
    extra_env: Mapping[str, str] | None = None,
    command: Literal["gunicorn", "serve"] = "gunicorn",
    wait_for: str | None = "/readyz",
) -> Iterator[ServerProcess]:
    """A started server (ready on ``wait_for`` unless None); always stopped, and its output shown on failure."""
    port = free_port()
    server = ServerProcess(server_command(command, port, workers), server_env(database_url, extra_env), port)
    try:
        if wait_for is not None:
            server.wait_until(wait_for)
        yield server
    except BaseException as exc:
        server.stop()
        if not isinstance(exc, ServerError):  # a ServerError already carries the output
            # pytest shows captured stderr for failing tests: this is where the server's side of the story goes.
            print(f"--- output of {' '.join(server.argv)}:\n{server.output()}", file=sys.stderr)
        raise
    finally:
        server.close()


@contextmanager
def running_server(
    database_url: str | None,
    workers: int = 2,
    extra_env: Mapping[str, str] | None = None,
    command: Literal["gunicorn", "serve"] = "gunicorn",
) -> Iterator[str]:
    """Yield the base URL of a ready server; fail if it does not exit with code 0 on SIGTERM afterwards."""
    with server_process(database_url, workers, extra_env, command) as server:
        yield server.url
        code = server.stop()
        if code != 0:
            raise server.fail(f"server exited with code {code} after SIGTERM")
