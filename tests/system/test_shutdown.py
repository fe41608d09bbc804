"""SIGTERM to gunicorn's master (a rolling update, a scale-down): new connections are refused at once, so a load
balancer moves on; long-polls answer at once with their current answer; requests in flight finish."""
from __future__ import annotations

import socket
import threading
import time
from contextlib import closing
from urllib.parse import urlsplit

import psycopg2
import pytest
import requests

from tests.server import CLOSE, server_process

pytestmark = pytest.mark.slow

# The drain may last long: nothing in this test may depend on gunicorn's graceful_timeout running out.
ENV = {"GUNICORN_CMD_ARGS": "--graceful-timeout 120", "REGISTRY_LOCK_TIMEOUT_MS": "300000",
       "REGISTRY_STATEMENT_TIMEOUT_MS": "300000"}
# Bounds a broken shutdown so the test fails instead of hanging; no speed assertion. It is well below the
# long-polls' 60 s wait, so a long-poll only answered when its wait runs out (or is cut) fails the test.
BOUND = 20


def _refused(url: str) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=2) as sock:
            sock.settimeout(0.2)
            try:  # a connection sitting in a dead listener's backlog is accepted by the kernel, never served
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                return not sock.recv(1)
            except socket.timeout:
                return False
            except ConnectionResetError:
                return True
    except ConnectionRefusedError:
        return True


def test_sigterm_refuses_new_connections_answers_long_polls_and_finishes_in_flight_requests(fresh_database_url):
    with server_process(fresh_database_url, extra_env=ENV) as server:
        url = server.url
        assert requests.post(url + "/api/v1/models", json={"name": "m"}, headers=CLOSE, timeout=10).status_code == 201
        assert requests.post(url + "/api/v1/models/m/versions", json={"source": "s3://b/1"}, headers=CLOSE,
                             timeout=10).status_code == 201
        first = requests.get(url + "/api/v1/models/m/aliases/latest", headers=CLOSE, timeout=10)
        etag = first.headers["ETag"]

        answers: dict[str, object] = {}

        def long_poll(i):
            try:
                answers[f"poll{i}"] = requests.get(url + "/api/v1/models/m/aliases/latest?wait=60",
                                                   headers={"If-None-Match": etag, **CLOSE}, timeout=120)
            except requests.RequestException as error:
                answers[f"poll{i}"] = error

        def in_flight_write():
            try:
                answers["write"] = requests.post(url + "/api/v1/models/m/versions", json={"source": "s3://b/2"},
                                                 headers=CLOSE, timeout=120)
            except requests.RequestException as error:
                answers["write"] = error

        with closing(psycopg2.connect(fresh_database_url)) as holder:
            with holder.cursor() as cursor:  # the write below waits on this lock: it is in flight at SIGTERM
                cursor.execute("SELECT 1 FROM registered_models WHERE name = 'm' FOR UPDATE")
                cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
            threads = [threading.Thread(target=long_poll, args=(i,)) for i in range(4)]
            threads.append(threading.Thread(target=in_flight_write))
            for t in threads:
                t.start()
            deadline = time.monotonic() + BOUND
            while time.monotonic() < deadline:  # the write is waiting for the lock
                with holder.cursor() as cursor:
                    cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                                   "AND pid <> pg_backend_pid()")
                    if cursor.fetchone()[0]:
                        break
                time.sleep(0.05)
            time.sleep(0.5)  # let the long-polls reach their wait

            server.process.send_signal(15)

            deadline = time.monotonic() + BOUND
            while not _refused(url) and time.monotonic() < deadline:
                time.sleep(0.1)
            refused_while_draining = _refused(url) and server.process.poll() is None
            polls_answered = [t.join(BOUND) or not t.is_alive() for t in threads[:4]]
            write_still_in_flight = "write" not in answers
            holder.rollback()  # the write may go on now
        threads[-1].join(BOUND)
        code = server.process.wait(BOUND)

    assert refused_while_draining, "new connections must be refused while in-flight requests drain"
    assert all(polls_answered), "long-polls must be answered at once, not held until the drain ends"
    for i in range(4):
        poll = answers[f"poll{i}"]
        assert isinstance(poll, requests.Response), poll
        assert poll.status_code == 304 and poll.headers["ETag"] == etag
    assert write_still_in_flight
    write = answers["write"]
    assert isinstance(write, requests.Response), write
    assert write.status_code == 201 and write.json()["version"] == 2
    assert code == 0
