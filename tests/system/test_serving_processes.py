"""The serving hot path across real gunicorn processes (issue 5): long-polls woken through PostgreSQL NOTIFY.

Two servers (2 workers each) share one database, as two hosts would. A long-poll cannot be seen to have
started waiting from outside the server, so a round of waiters is given a moment before the change; a waiter
that still arrived after it answers at once (``X-Registry-Waited: no``) and the round is repeated with
longer head starts. No assertion is about time: timeouts only bound hangs.
"""
from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, closing
from typing import Callable

import psycopg2
import pytest
import requests

from tests.server import ADMIN_HEADERS, running_server, until

# Small pools: the test PostgreSQL is shared with other test runs, and waiters hold no connection anyway.
AUTH = {"REGISTRY_AUTH": "enabled", "REGISTRY_DB_POOL_SIZE": "4"}
MODEL = "fraud"
PRODUCTION = f"/api/v1/models/{MODEL}/stages/Production"
CHAMPION = f"/api/v1/models/{MODEL}/aliases/champion"
WAIT = "30"  # server-side long-poll bound; a healthy wake-up never comes near it
TIMEOUT = 90.0  # client-side bound on any one request
HEAD_STARTS = (0.3, 1.0, 3.0, 6.0)  # how long waiters get to start waiting before the change, per attempt
LISTENER = "registry-listener"


def call(method: str, url: str, expect: int = 200, **kwargs) -> requests.Response:
    response = requests.request(method, url, headers=ADMIN_HEADERS, timeout=TIMEOUT, **kwargs)
    assert response.status_code == expect, response.text
    return response


def current(base: str, path: str = PRODUCTION) -> requests.Response:
    return call("GET", base + path)


def long_poll(base: str, etag: str, path: str = PRODUCTION, wait: str = WAIT) -> requests.Response:
    return requests.get(base + path, params={"wait": wait}, headers={**ADMIN_HEADERS, "If-None-Match": etag},
                        timeout=TIMEOUT)


def promote(base: str, version: int) -> int:
    call("POST", f"{base}/api/v1/models/{MODEL}/versions/{version}/transition",
         json={"stage": "Production", "archive_existing_versions": True})
    return version


def new_version(base: str) -> int:
    return call("POST", f"{base}/api/v1/models/{MODEL}/versions", 201, json={"source": "s3://f/n"}).json()["version"]


def seed(base: str) -> None:
    call("POST", f"{base}/api/v1/models", 201, json={"name": MODEL})
    new_version(base)
    promote(base, 1)
    call("PUT", f"{base}{CHAMPION}", json={"version": 1})


def listener_pids(database_url: str) -> set[int]:
    with closing(psycopg2.connect(database_url)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                       "AND application_name = %s", (LISTENER,))
        return {row[0] for row in cursor.fetchall()}


def all_workers_listening(database_url: str, bases: list[str], workers: int, old: frozenset[int] = frozenset()):
    """Serve requests until every worker has started its listener: one connection each, none from ``old``."""
    def ready() -> bool:
        for base in bases:
            current(base)  # a new connection each time, so both workers of a server get requests
        return len(listener_pids(database_url) - old) == workers

    until(ready, f"{workers} listener connections")


def wake_round(database_url: str, waiters: list[tuple[str, str]], change: Callable[[int], None],
               prepare: Callable[[], int]) -> tuple[int, list[requests.Response]]:
    """Long-poll on each (base, path) with the model's current ETag, make one change, collect the answers.

    ``prepare()`` runs first, before the ETags are taken (its commits would wake the waiters too); its result
    goes to ``change()``, the single commit the waiters must wake for. Every answer must be fresh (200, not the
    ETag it waited on). The round is repeated, with a longer head start, while some waiter arrived only after
    the change. Returns (what prepare() returned, the answers in the order of ``waiters``)."""
    with ThreadPoolExecutor(len(waiters)) as pool:
        for head_start in HEAD_STARTS:
            prepared = prepare()
            etag = etag_in_database(database_url)
            futures = [pool.submit(long_poll, base, etag, path) for base, path in waiters]
            time.sleep(head_start)
            change(prepared)
            answers = [future.result(timeout=TIMEOUT) for future in futures]
            for answer in answers:
                assert answer.status_code == 200, answer.text
                assert answer.headers["ETag"] != etag
            if all(answer.headers["X-Registry-Waited"] == "yes" for answer in answers):
                return prepared, answers
    pytest.fail("some waiter only ever arrived after the change, whatever its head start")


def promotion_round(database_url: str, waiters: list[tuple[str, str]], writer: str):
    """``wake_round`` for one promotion through ``writer`` of a version created beforehand."""
    return wake_round(database_url, waiters, lambda version: promote(writer, version), lambda: new_version(writer))


def etag_in_database(database_url: str) -> str:
    """The test's oracle for the current ETag (a server may hear of the last commit a moment later)."""
    with closing(psycopg2.connect(database_url)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT id, generation FROM registered_models WHERE name = %s", (MODEL,))
        return '"%d.%d"' % cursor.fetchone()


@pytest.fixture
def servers(fresh_database_url):
    """Servers A and B (2 workers each) on one database, every worker listening; ``fraud`` v1 in Production."""
    with ExitStack() as stack:
        a = stack.enter_context(running_server(fresh_database_url, workers=2, extra_env=AUTH))
        b = stack.enter_context(running_server(fresh_database_url, workers=2, extra_env=AUTH))
        seed(b)
        all_workers_listening(fresh_database_url, [a, b], workers=4)
        yield a, b


def test_long_poll_on_one_server_is_woken_by_a_promotion_through_the_other(servers, fresh_database_url):
    a, b = servers
    version, answers = promotion_round(fresh_database_url, [(a, PRODUCTION)], b)
    body = answers[0].json()
    assert body["version"] == version and body["stage"] == "Production"


def test_waiters_on_both_servers_all_wake_with_the_new_answer(servers, fresh_database_url):
    a, b = servers
    waiters = [(base, path) for base in (a, b) for path in (PRODUCTION,) * 3 + (CHAMPION,)]
    version, answers = promotion_round(fresh_database_url, waiters, b)
    # The generation is per model: the alias waiters wake too, with the same new ETag and their unchanged version.
    assert {answer.headers["ETag"] for answer in answers} == {answers[0].headers["ETag"]}
    assert [answer.json()["version"] for answer in answers] == [version, version, version, 1] * 2
    # One listening connection per worker served every waiter.
    assert len(listener_pids(fresh_database_url)) == 4


def test_woken_waiters_across_servers_never_see_the_previous_version(servers, fresh_database_url):
    a, b = servers
    for round_number in range(5):
        writer, reader = (b, a) if round_number % 2 == 0 else (a, b)
        waiters = [(reader, PRODUCTION), (writer, PRODUCTION)]
        version, answers = promotion_round(fresh_database_url, waiters, writer)
        assert [answer.json()["version"] for answer in answers] == [version, version]


def production_in_database(database_url: str) -> int:
    """The test's oracle: the current Production version, straight from the database."""
    with closing(psycopg2.connect(database_url)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT v.version FROM model_versions v JOIN registered_models m ON m.id = v.model_id "
                       "WHERE m.name = %s AND v.stage = 'Production' ORDER BY v.version DESC LIMIT 1", (MODEL,))
        return cursor.fetchone()[0]


def test_listener_keeps_delivering_after_a_burst_of_changes(servers, fresh_database_url):
    a, b = servers
    before = current(a).headers["ETag"]
    versions = [new_version(b) for _ in range(5)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda v: promote(b, v), versions * 6))  # 30 concurrent promotions on one model
        list(pool.map(lambda v: call("PUT", f"{b}{CHAMPION}", json={"version": v}), versions * 4))
    final = production_in_database(fresh_database_url)
    # Waiters holding the pre-burst ETag answer the final state (whichever worker of A they reach).
    for _ in range(6):
        answer = long_poll(a, before)
        assert answer.status_code == 200 and answer.json()["version"] == final
    # And waiters that start after the burst are still woken by the next change.
    version, answers = promotion_round(fresh_database_url, [(a, PRODUCTION), (a, PRODUCTION)], b)
    assert [answer.json()["version"] for answer in answers] == [version, version]


def test_waiters_are_woken_after_the_listener_connections_were_cut(servers, fresh_database_url):
    a, b = servers
    old = frozenset(listener_pids(fresh_database_url))
    with closing(psycopg2.connect(fresh_database_url)) as connection, connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid = ANY(%s)", (list(old),))
    all_workers_listening(fresh_database_url, [a, b], workers=4, old=old)
    version, answers = promotion_round(fresh_database_url, [(a, PRODUCTION), (b, PRODUCTION)], b)
    assert [answer.json()["version"] for answer in answers] == [version, version]


# --- waiting slots: long-polls must not starve other requests ----------------------------------------------


@pytest.fixture
def one_slot_server(fresh_database_url):
    """One worker with 4 threads, of which at most one may hold a long-poll."""
    env = {**AUTH, "REGISTRY_THREADS": "4", "REGISTRY_MAX_WAITERS": "1"}
    with running_server(fresh_database_url, workers=1, extra_env=env) as base:
        seed(base)
        yield base


def test_long_poll_beyond_the_waiting_slots_answers_at_once_and_others_still_get_answers(one_slot_server):
    base = one_slot_server
    version = new_version(base)
    etag = current(base).headers["ETag"]
    with ThreadPoolExecutor(4) as pool:
        first = pool.submit(long_poll, base, etag)

        def probe_is_busy() -> bool:
            # A probe that finds the slot free takes it briefly (and answers 304 after 0.1 s); one that finds it
            # taken answers "busy" at once. If a probe took the slot first, the first waiter was the one turned
            # away: send it again.
            nonlocal first
            probe = long_poll(base, etag, wait="0.1")
            assert probe.status_code == 304
            if first.done():
                assert first.result().headers["X-Registry-Waited"] == "busy"
                first = pool.submit(long_poll, base, etag)
                return False
            return probe.headers["X-Registry-Waited"] == "busy"

        until(probe_is_busy, "a second long-poll answered busy")
        second = long_poll(base, etag)
        assert second.status_code == 304 and second.text == ""
        assert second.headers["X-Registry-Waited"] == "busy"
        assert second.headers["ETag"] == etag
        # Ordinary requests, several at once, are served while the first long-poll holds its thread.
        others = list(pool.map(lambda _: requests.get(f"{base}/api/v1/models", headers=ADMIN_HEADERS,
                                                      timeout=TIMEOUT), range(3)))
        assert [response.status_code for response in others] == [200, 200, 200]
        assert all(response.json()["models"][0]["name"] == MODEL for response in others)
        assert not first.done()
        version = promote(base, version)
        answer = first.result(timeout=TIMEOUT)
    assert answer.status_code == 200 and answer.json()["version"] == version
    assert answer.headers["X-Registry-Waited"] == "yes"
