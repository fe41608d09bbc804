"""Beyond one host (issue 12): several ``registry serve`` processes (stand-ins for hosts) on one PostgreSQL, with
watch streams spread over them, and the same through PgBouncer in transaction-pooling mode.

A promotion through any process reaches every stream on every process, through PostgreSQL NOTIFY. Behind the
pooler, requests share the pooler's server connections (no session state may be relied on), while each
worker's change listener keeps a direct session of its own (REGISTRY_LISTEN_DATABASE_URL). Waits are bounded
only so that a broken wake-up fails instead of hanging.
"""
from __future__ import annotations

import os
import queue
import threading
from contextlib import ExitStack, closing

import psycopg2
import pytest
import requests
from tests import pg
from tests.api.native.test_watch import parse
from tests.pgbouncer import executable, transaction_pooler
from tests.server import ADMIN_HEADERS, running_server

ENV = {"REGISTRY_AUTH": "enabled", "REGISTRY_DB_POOL_SIZE": "3", "REGISTRY_WATCH_HEARTBEAT_SECONDS": "2"}
MODEL = "fraud"
SELECTORS = [f"{MODEL}:Production", f"{MODEL}@champion"]
TIMEOUT = 90.0


def call(base: str, method: str, path: str, expect: int = 200, **kwargs) -> requests.Response:
    headers = {**ADMIN_HEADERS, **kwargs.pop("headers", {})}
    response = requests.request(method, base + path, headers=headers, timeout=TIMEOUT, **kwargs)
    assert response.status_code == expect, response.text
    return response


def new_version(base: str) -> int:
    return call(base, "POST", f"/api/v1/models/{MODEL}/versions", 201, json={"source": "s3://f/n"}).json()["version"]


def promote(base: str, version: int) -> None:
    call(base, "POST", f"/api/v1/models/{MODEL}/versions/{version}/transition",
         json={"stage": "Production", "archive_existing_versions": True})


class Stream:
    """A watch stream over real HTTP, read by a thread into a queue of (selector, version) answers."""

    def __init__(self, base: str):
        self.answers: queue.Queue = queue.Queue()
        self.response = requests.get(f"{base}/api/v1/watch", params=[("select", s) for s in SELECTORS],
                                     headers=ADMIN_HEADERS, stream=True, timeout=(10, TIMEOUT))
        assert self.response.status_code == 200, self.response.text
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            for event in parse(self.response.iter_lines(decode_unicode=True)):
                if event.event in ("answer", "missing"):
                    self.answers.put((event.data["selector"], event.data.get("version")))
        except Exception:  # noqa: BLE001  closed by the test (urllib3 then fails in odd ways)
            pass
        finally:
            self.answers.put(None)

    def until(self, selector: str, version: int) -> None:
        """Consume answers until ``selector`` serves ``version``."""
        while True:
            try:
                got = self.answers.get(timeout=TIMEOUT)
            except queue.Empty:
                raise AssertionError(f"never heard that {selector} serves version {version}") from None
            assert got is not None, "the stream ended"
            if got == (selector, version):
                return

    def close(self) -> None:
        self.response.close()


def watch_everywhere(stack: ExitStack, bases: list[str], per_server: int) -> list[Stream]:
    streams = [Stream(base) for base in bases for _ in range(per_server)]
    for stream in streams:
        stack.callback(stream.close)
        stream.until(SELECTORS[0], 1)
    return streams


def promotions_reach_every_stream(bases: list[str], streams: list[Stream]) -> None:
    for writer in bases:  # through each process in turn
        version = new_version(writer)
        promote(writer, version)
        for stream in streams:
            stream.until(SELECTORS[0], version)
        call(writer, "PUT", f"/api/v1/models/{MODEL}/aliases/champion", json={"version": version})
        for stream in streams:
            stream.until(SELECTORS[1], version)


def seed(base: str) -> None:
    call(base, "POST", "/api/v1/models", 201, json={"name": MODEL})
    promote(base, new_version(base))
    call(base, "PUT", f"/api/v1/models/{MODEL}/aliases/champion", json={"version": 1})


def test_a_promotion_through_any_process_reaches_streams_on_every_process(fresh_database_url):
    with ExitStack() as stack:
        bases = [stack.enter_context(running_server(fresh_database_url, workers=1, extra_env=ENV, command="serve"))
                 for _ in range(3)]
        seed(bases[0])
        streams = watch_everywhere(stack, bases, per_server=2)
        promotions_reach_every_stream(bases, streams)


# --- PgBouncer in transaction mode ------------------------------------------------------------------------


@pytest.fixture
def pooled(admin_url):
    """A fresh database whose role settings stand in for the ``options`` the pooler cannot pass (README), and a
    URL to it through a transaction-mode PgBouncer."""
    if executable() is None:
        if os.environ.get("CI"):
            pytest.fail("pgbouncer is not installed: .ci/run installs it")
        pytest.skip("pgbouncer is not installed (apt-get install -y pgbouncer)")
    name = pg.create_database(admin_url, prefix="registry_pooled")
    direct = pg.with_database(admin_url, name)
    with closing(psycopg2.connect(admin_url)) as connection, connection.cursor() as cursor:
        connection.autocommit = True
        cursor.execute(f"ALTER DATABASE \"{name}\" SET statement_timeout = '30s'")
        cursor.execute(f'ALTER DATABASE "{name}" SET jit = off')
    try:
        with transaction_pooler(admin_url, pool_size=4) as template:
            yield direct, template.format(database=name)
    finally:
        pg.drop_database(admin_url, name)


def pooled_env(direct: str, through_pooler: str) -> tuple[str, dict]:
    return through_pooler, {**ENV, "REGISTRY_LISTEN_DATABASE_URL": direct, "REGISTRY_DB_TRANSACTION_POOLER": "1"}


def connections(direct: str) -> dict[str, int]:
    """The database's client connections by application name."""
    with closing(psycopg2.connect(direct)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT application_name, count(*) FROM pg_stat_activity WHERE datname = current_database() "
                       "AND pid <> pg_backend_pid() GROUP BY 1")
        return dict(cursor.fetchall())


def test_through_pgbouncer_in_transaction_mode(pooled):
    """``registry serve`` migrates and serves through the pooler (every write, the idempotent replay, both
    dialects), listeners connect directly, and promotions through either process reach streams on both."""
    direct, through_pooler = pooled
    url, env = pooled_env(direct, through_pooler)
    with ExitStack() as stack:
        bases = [stack.enter_context(running_server(url, workers=1, extra_env=env, command="serve"))
                 for _ in range(2)]
        seed(bases[0])
        streams = watch_everywhere(stack, bases, per_server=2)
        promotions_reach_every_stream(bases, streams)
        ordinary_work_through_the_pooler(bases)
        # Each worker listens on a direct session; requests use the pooler's server connections, never more
        # than its pool allows (4 for the database, whatever the processes' own pools hold).
        seen = connections(direct)
        assert seen.get("registry-listener") == 2, seen
        assert sum(count for name, count in seen.items() if name != "registry-listener") <= 4, seen


def ordinary_work_through_the_pooler(bases: list[str]) -> None:
    """Writes and reads that would break on a shared server connection if they relied on session state."""
    a, b = bases
    call(a, "POST", "/api/v1/models", 201, json={"name": "pooled"})
    call(b, "POST", "/api/v1/models", 409, json={"name": "pooled"})
    for base in (a, b, a):
        call(base, "POST", "/api/v1/models/pooled/versions", 201, json={"source": "s3://p/1"})
    for base in (b, a):  # the second is a repeat that changes nothing
        call(base, "PUT", "/api/v1/models/pooled/tags/team", json={"value": "risk"})
    call(b, "DELETE", "/api/v1/models/pooled/versions/3", 204)
    call(a, "POST", "/api/v1/models/pooled/versions/2/transition", json={"stage": "Staging"})
    latest = call(b, "POST", "/api/2.0/mlflow/registered-models/get-latest-versions",
                  json={"name": "pooled", "stages": ["Staging"]}).json()
    assert latest["model_versions"][0]["version"] == "2"
    events = call(a, "GET", "/api/v1/audit-events", params={"model": "pooled"}).json()
    assert len(events["events"]) >= 5
