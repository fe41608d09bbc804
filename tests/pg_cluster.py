"""A PostgreSQL cluster of a test's own, run with ``initdb`` / ``pg_ctl`` on a spare port, for tests that stop,
crash or restart the database (never the shared server the rest of the suite uses).

PostgreSQL refuses to run as root; as root the cluster runs as an unprivileged system user (the one pgserver
creates for the same reason). The server binaries are the machine's (``pg_ctl`` on PATH or Debian's
/usr/lib/postgresql), else the ones pgserver ships."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from tests.server import free_port

STOP_MODES = ("smart", "fast", "immediate")


def _bin_dir() -> Path:
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin"))
    if debian:
        return debian[-1]
    from pgserver._commands import POSTGRES_BIN_PATH

    return Path(POSTGRES_BIN_PATH)


class Cluster:
    def __init__(self) -> None:
        self.bin = _bin_dir()
        self.user = None
        self.base = Path(tempfile.mkdtemp(prefix="registry-fault-pg-"))
        self.base.chmod(0o755)
        if os.geteuid() == 0:
            from pgserver.utils import ensure_user_exists

            self.user = "pgserver"
            ensure_user_exists(self.user)
            shutil.chown(self.base, self.user)
        self.data = self.base / "data"
        self.log = self.base / "postgres.log"
        self.port = free_port()
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _run(self, tool: str, *args: str) -> None:
        subprocess.run([str(self.bin / tool), *args], check=True, user=self.user, cwd=self.base,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def start(self) -> None:
        # fsync off: the faults here stop PostgreSQL, never the machine, so the OS keeps what was written.
        options = f"-p {self.port} -h 127.0.0.1 -k {self.base} -c fsync=off -c max_connections=200"
        self._run("pg_ctl", "-D", str(self.data), "-l", str(self.log), "-o", options, "-w", "-t", "60", "start")

    def stop(self, mode: str = "fast") -> None:
        assert mode in STOP_MODES
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "60", "stop")

    def restart(self, mode: str = "fast") -> None:
        self.stop(mode)
        self.start()

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass
        shutil.rmtree(self.base, ignore_errors=True)
