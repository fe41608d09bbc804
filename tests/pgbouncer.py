"""A PgBouncer in transaction-pooling mode in front of the tests' PostgreSQL, started by the test that needs it.

Debian's ``pgbouncer`` package (``.ci/run`` installs it when missing). PgBouncer refuses to run as root: when we
are root it is started with ``-u postgres``, so its files live in a folder that user can read.
"""
from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from sqlalchemy.engine import make_url

from tests.server import free_port

START_TIMEOUT = 30.0


def executable() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.path.exists(p)), None)


@contextmanager
def transaction_pooler(server_url: str, pool_size: int = 4) -> Iterator[str]:
    """Yields a URL template on the pooler: ``url.format(database=name)``; the pooler forwards every database
    of the server at ``server_url`` with at most ``pool_size`` server connections each."""
    binary = executable()
    assert binary, "pgbouncer is not installed (apt-get install -y pgbouncer)"
    upstream = make_url(server_url)
    port = free_port()
    folder = Path(tempfile.mkdtemp(prefix="registry-pgbouncer-"))
    folder.chmod(0o755)
    users = folder / "users.txt"
    users.write_text(f'"{upstream.username}" "{upstream.password or ""}"\n')
    config = folder / "pgbouncer.ini"
    config.write_text(f"""[databases]
* = host={upstream.host or upstream.query.get('host') or '127.0.0.1'} port={upstream.port or 5432}

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = {'plain' if upstream.password else 'trust'}
auth_file = {users}
pool_mode = transaction
default_pool_size = {pool_size}
max_client_conn = 1000
""")
    for path in (users, config):
        path.chmod(0o644)
    # As root, pgbouncer must be told whom to run as: the embedded server's own user when it is reached through
    # its socket directory (only that user may enter it), else postgres.
    socket_dir = upstream.host or upstream.query.get("host")
    run_as = (pwd.getpwuid(os.stat(socket_dir).st_uid).pw_name if socket_dir and socket_dir.startswith("/")
              else "postgres")
    argv = [binary, *(["-u", run_as] if os.geteuid() == 0 else []), str(config)]
    log = open(folder / "pgbouncer.log", "w+b")
    process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, f"pgbouncer exited: {(folder / 'pgbouncer.log').read_text()}"
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert time.monotonic() < deadline, "pgbouncer never listened"
                time.sleep(0.1)
        credentials = upstream.username + (f":{upstream.password}" if upstream.password else "")
        yield f"postgresql://{credentials}@127.0.0.1:{port}/{{database}}"
    finally:
        process.terminate()
        try:
            process.wait(START_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        shutil.rmtree(folder, ignore_errors=True)
