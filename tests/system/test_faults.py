"""The fault harness (issue 15): the real server (gunicorn, 2 workers) on a PostgreSQL cluster of its own
(``tests/pg_cluster.py``, a spare port; the shared server is never touched), 19 clients (writers, racing
reviewers, long-pollers, serving readers; the issue's 16 plus three that only read models nobody writes to,
so their answers stay cached), and one fault per test:

* PostgreSQL fast restart; crash (immediate stop, then start);
* a row lock held on one model for longer than ``lock_timeout``;
* SIGTERM to gunicorn's master (then a new server); ``kill -9`` of one worker.

During each: no answer is a 500, and every 503 carries Retry-After. While PostgreSQL is down, every serving
read of a warmed model (both dialects, stages and aliases) gets the answer held before, marked stale, and
``/readyz`` answers 503 with Retry-After. After each, the invariants: no acknowledged
write lost, no duplicate, one Production per model, every acknowledged approval applied, the audit chains
verify, both workers' listeners are connected again, and no stale answer after recovery (every serving answer
is the database's current one).

``REGISTRY_FAULT_SECONDS`` sets how long each fault lasts (default 5, for CI; 60 to measure, as issue 15 did);
each test prints a summary line (statuses, stale answers, writes per second) for the benchmark notes.
"""
from __future__ import annotations

import collections
import os
import random
import signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field

import psycopg2
import pytest
import requests

from tests.conftest import migrate_database
from tests.pg_cluster import Cluster
from tests.server import BIN, CLOSE, cli_env, server_process

pytestmark = pytest.mark.slow

FAULT_SECONDS = float(os.environ.get("REGISTRY_FAULT_SECONDS", "5"))
MODELS = ["m0", "m1", "m2", "m3"]
LOCKED_MODEL = "m0"
# Models nobody writes to while the faults run: their serving answers stay cached (warm), so while the database
# is down their readers must get the last known answer, marked stale (stale-while-unavailable, api/replay.py).
SERVED = ["s0", "s1"]
ALIAS = "champion"
# The serving reads of a warmed model, in both dialects: (label, method, path template, JSON body or None).
SERVING_READS = [
    ("native stage", "GET", "/api/v1/models/{m}/stages/Production", None),
    ("native alias", "GET", "/api/v1/models/{m}/aliases/" + ALIAS, None),
    ("mlflow latest", "POST", "/api/2.0/mlflow/registered-models/get-latest-versions",
     {"name": "{m}", "stages": ["Production"]}),
    ("mlflow alias", "GET", "/api/2.0/mlflow/registered-models/alias?name={m}&alias=" + ALIAS, None),
]
LONG_POLL = "native long-poll"  # ?wait= with the current ETag: never replayed, so 503 or a stale answer
ENV = {
    "REGISTRY_LOCK_TIMEOUT_MS": "1000",
    "REGISTRY_THREADS": "16",
    "GUNICORN_CMD_ARGS": "--graceful-timeout 10",
}
BOUND = 60  # seconds that bound a recovery so a broken one fails the test instead of hanging it


# --- the server, restartable (SIGTERM ends one; the next test needs another) ------------------------------

class Registry:
    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self._started = None
        self.server = None
        self.start()

    def start(self, worker_class: str | None = None) -> None:
        """Start a server (the default worker model unless ``worker_class`` names one)."""
        env = {**ENV, "REGISTRY_WORKER_CLASS": worker_class} if worker_class else ENV
        self._started = server_process(self.database_url, workers=2, extra_env=env)
        self.server = self._started.__enter__()

    def stop(self) -> None:
        if self._started is not None:
            self._started.__exit__(None, None, None)
            self._started = None

    @property
    def url(self) -> str:
        return self.server.url

    def workers(self) -> list[int]:
        master = self.server.pid
        children = []
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat") as stat:
                        fields = stat.read().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                if int(fields[1]) == master:
                    children.append(int(entry))
        return children


@pytest.fixture(scope="module")
def cluster():
    own = Cluster()
    try:
        own.start()
        with closing(psycopg2.connect(own.url())) as connection:
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute("CREATE DATABASE registry")
        migrate_database(own.url("registry"))
        yield own
    finally:
        own.destroy()


@pytest.fixture(scope="module")
def registry(cluster):
    served = Registry(cluster.url("registry"))
    try:
        for name in MODELS:
            assert _post(served.url + "/api/v1/models", {"name": name}, "admin").status_code == 201
            assert _post(served.url + f"/api/v1/models/{name}/versions", {"source": f"s3://seed/{name}"},
                         "admin").status_code == 201
            policy = requests.put(served.url + f"/api/v1/models/{name}/approval-policies/Production",
                                  json={"required_approvals": 1}, headers=_as("admin"), timeout=10)
            assert policy.status_code == 200, policy.text
        for name in SERVED:
            assert _post(served.url + "/api/v1/models", {"name": name}, "admin").status_code == 201
            assert _post(served.url + f"/api/v1/models/{name}/versions", {"source": f"s3://seed/{name}"},
                         "admin").status_code == 201
            moved = _post(served.url + f"/api/v1/models/{name}/versions/1/transition", {"stage": "Production"},
                          "admin")
            assert moved.status_code == 200, moved.text
            aliased = requests.put(served.url + f"/api/v1/models/{name}/aliases/{ALIAS}", json={"version": 1},
                                   headers=_as("admin"), timeout=10)
            assert aliased.status_code == 200, aliased.text
        yield served
    finally:
        served.stop()


def _as(actor: str) -> dict:
    return {"X-Registry-Actor": actor, **CLOSE}


def _post(url: str, body: dict, actor: str) -> requests.Response:
    return requests.post(url, json=body, headers=_as(actor), timeout=30)


# --- the clients -------------------------------------------------------------------------------------------

@dataclass
class Load:
    registry: Registry
    stop: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    statuses: collections.Counter = field(default_factory=collections.Counter)
    bad: list = field(default_factory=list)  # answers no client may ever get
    acked: list = field(default_factory=list)  # (time, model, version, source) of each 201
    approvals: dict = field(default_factory=lambda: collections.defaultdict(list))  # request id -> approvers
    requests_made: list = field(default_factory=list)
    stale: list = field(default_factory=list)  # (request start time, model) of answers marked stale
    # (start, end, what, status, stale) of each serving read of a warmed model (SERVED)
    served: list = field(default_factory=list)
    resets: list = field(default_factory=list)  # "METHOD path: error" of each connection cut, for the failure message
    threads: list = field(default_factory=list)

    def call(self, method: str, path: str, actor: str, **kwargs) -> requests.Response | None:
        started = time.monotonic()
        try:
            response = requests.request(method, self.registry.url + path, headers={**_as(actor), **kwargs.pop(
                "headers", {})}, timeout=kwargs.pop("timeout", 30), **kwargs)
        except requests.RequestException as error:
            # Refused: nobody listens (a load balancer moves on). Anything else (reset, timed out) hurts a client.
            kind = "connection refused" if "refused" in str(error).lower() else "connection reset"
            with self.lock:
                self.statuses[kind] += 1
                if kind == "connection reset":
                    self.resets.append(f"{method} {path} after {time.monotonic() - started:.2f} s: {error}")
            time.sleep(0.1)
            return None
        with self.lock:
            self.statuses[response.status_code] += 1
            if response.status_code >= 500 and (response.status_code != 503 or
                                                 "Retry-After" not in response.headers):
                self.bad.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
            if "X-Registry-Stale" in response.headers:
                self.stale.append((started, path))
        if response.status_code == 503:
            time.sleep(min(float(response.headers["Retry-After"]), 0.5))
        return response

    def writer(self, i: int) -> None:
        n = 0
        while not self.stop.is_set():
            model = MODELS[i % len(MODELS)]
            n += 1
            source = f"s3://load/{id(self)}/w{i}/{n}"  # unique across the module's loads: duplicates show
            response = self.call("POST", f"/api/v1/models/{model}/versions", f"writer{i}", json={"source": source})
            if response is not None and response.status_code == 201:
                with self.lock:
                    self.acked.append((time.monotonic(), model, response.json()["version"], source))
            time.sleep(0.02)

    def requester(self, i: int) -> None:
        while not self.stop.is_set():
            model = random.choice(MODELS)
            latest = self.call("GET", f"/api/v1/models/{model}/aliases/latest", f"requester{i}")
            if latest is not None and latest.status_code == 200:
                made = self.call("POST", f"/api/v1/models/{model}/versions/{latest.json()['version']}"
                                 "/transition-requests", f"requester{i}",
                                 json={"stage": "Production", "archive_existing_versions": True})
                if made is not None and made.status_code == 201:
                    with self.lock:
                        self.requests_made.append(made.json()["id"])
            time.sleep(0.1)

    def reviewer(self, i: int) -> None:
        while not self.stop.is_set():
            with self.lock:
                pending = self.requests_made[-2:]
            if pending:
                request_id = random.choice(pending)
                response = self.call("POST", f"/api/v1/transition-requests/{request_id}/approve", f"reviewer{i}",
                                     json={})
                if response is not None and response.status_code == 200:
                    with self.lock:
                        self.approvals[request_id].append(f"reviewer{i}")
            time.sleep(0.05)

    def long_poller(self, i: int) -> None:
        model, etag = MODELS[i % len(MODELS)], None
        while not self.stop.is_set():
            headers = {"If-None-Match": etag} if etag else {}
            response = self.call("GET", f"/api/v1/models/{model}/stages/Production?wait=2", f"poller{i}",
                                 headers=headers)
            if response is not None and "ETag" in response.headers:
                etag = response.headers["ETag"]

    def reader(self, i: int) -> None:
        while not self.stop.is_set():
            self.call("GET", f"/api/v1/models/{MODELS[i % len(MODELS)]}/stages/Production", f"reader{i}")
            time.sleep(0.02)

    def _served(self, started: float, what: str, response: requests.Response | None) -> None:
        with self.lock:
            self.served.append((started, time.monotonic(), what,
                                None if response is None else response.status_code,
                                response is not None and "X-Registry-Stale" in response.headers,
                                None if response is None or response.status_code < 300 else
                                f"{response.status_code} {dict(response.headers)} {response.text[:300]}"))

    def served_reader(self, i: int) -> None:
        """Reads of the warmed models: every read kind of each model in turn (both dialects, stage and alias)."""
        reads = [(read, model) for read in SERVING_READS for model in SERVED]
        n = i
        while not self.stop.is_set():
            (what, method, path, body), model = reads[n % len(reads)]
            n += 1
            json_body = None if body is None else {k: (v.format(m=model) if isinstance(v, str) else v)
                                                   for k, v in body.items()}
            started = time.monotonic()
            self._served(started, what, self.call(method, path.format(m=model), f"server{i}", json=json_body,
                                                  timeout=10))
            time.sleep(0.02)

    def served_long_poller(self, i: int) -> None:
        """Long-polls of a warmed model: during an outage a stale answer or 503 with Retry-After, never a 500."""
        model, etag = SERVED[i % len(SERVED)], None
        while not self.stop.is_set():
            headers = {"If-None-Match": etag} if etag else {}
            started = time.monotonic()
            response = self.call("GET", f"/api/v1/models/{model}/stages/Production?wait=2", f"watcher{i}",
                                 headers=headers)
            self._served(started, LONG_POLL, response)
            if response is not None and "ETag" in response.headers:
                etag = response.headers["ETag"]

    def start(self) -> None:
        roles = ([self.writer] * 6 + [self.requester] * 2 + [self.reviewer] * 4 + [self.long_poller] * 2 +
                 [self.reader] * 2 + [self.served_reader] * 2 + [self.served_long_poller])  # 19 clients
        counts = collections.Counter()
        for role in roles:
            counts[role.__name__] += 1
            self.threads.append(threading.Thread(target=role, args=(counts[role.__name__] - 1,), daemon=True))
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(BOUND)
            assert not thread.is_alive(), "a client hung"

    def writes_between(self, start: float, end: float, models: set[str]) -> int:
        return sum(1 for t, model, _, _ in self.acked if start <= t < end and model in models)


@contextmanager
def load_on(registry: Registry):
    load = Load(registry)
    load.start()
    try:
        yield load
    finally:
        load.finish()


# --- the invariants ----------------------------------------------------------------------------------------

def _query(database_url: str, sql: str, *params) -> list[tuple]:
    with closing(psycopg2.connect(database_url)) as connection, connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def wait_until_ready(registry: Registry) -> None:
    registry.server.wait_until("/readyz", timeout=BOUND)


def check_invariants(load: Load, registry: Registry, recovered_at: float) -> None:
    url = registry.database_url
    assert not load.bad, load.bad[:5]

    # No acknowledged write lost, none duplicated.
    stored = {(model, version): source for model, version, source in _query(
        url, "SELECT m.name, v.version, v.source FROM model_versions v JOIN registered_models m ON m.id = v.model_id")}
    lost = [(m, v, s) for _, m, v, s in load.acked if stored.get((m, v)) != s]
    assert not lost, lost[:5]
    assert not _query(url, "SELECT source FROM model_versions GROUP BY source HAVING count(*) > 1")

    # One Production per model (every promotion archives the others).
    assert not _query(url, "SELECT model_id FROM model_versions WHERE stage = 'Production' "
                           "GROUP BY model_id HAVING count(*) > 1")

    # Every acknowledged approval applied, and no request approved twice (one approval is the policy).
    for request_id, approvers in load.approvals.items():
        assert len(approvers) == 1, (request_id, approvers)
        status = _query(url, "SELECT status FROM transition_requests WHERE id = %s", request_id)[0][0]
        assert status == "approved", (request_id, status)
        assert _query(url, "SELECT 1 FROM audit_events WHERE request_id = %s AND action = 'version.transitioned'",
                      request_id), request_id

    # The audit chains verify.
    verified = subprocess.run([str(BIN / "registry"), "audit", "verify"], env=cli_env(url), capture_output=True,
                              text=True, timeout=BOUND)
    assert verified.returncode == 0, verified.stdout + verified.stderr

    # Both workers listen again.
    deadline = time.monotonic() + BOUND
    while len(_query(url, "SELECT pid FROM pg_stat_activity WHERE application_name = 'registry-listener'")) < 2:
        assert time.monotonic() < deadline, "a worker's change listener did not reconnect"
        time.sleep(0.2)

    # No stale answer after recovery: none marked stale once the database was back, and every serving answer
    # now is the database's current one, whichever worker gives it.
    late = [s for s in load.stale if s[0] > recovered_at + 0.5]
    assert not late, late[:5]
    for model in MODELS:
        current = _query(url, "SELECT v.version, m.generation, m.id FROM registered_models m JOIN model_versions v "
                              "ON v.model_id = m.id AND v.stage = 'Production' WHERE m.name = %s "
                              "ORDER BY v.version DESC LIMIT 1", model)
        for _ in range(6):
            answer = requests.get(registry.url + f"/api/v1/models/{model}/stages/Production", headers=_as("checker"),
                                  timeout=10)
            if not current:
                assert answer.status_code == 404
                continue
            version, generation, model_id = current[0]
            assert answer.status_code == 200, answer.text
            assert answer.json()["version"] == version and answer.headers["ETag"] == f'"{model_id}.{generation}"'
            assert "X-Registry-Stale" not in answer.headers


def summary(name: str, load: Load, extra: str = "") -> None:
    statuses = ", ".join(f"{k}: {v}" for k, v in sorted(load.statuses.items(), key=lambda kv: str(kv[0])))
    print(f"\n[fault {name}, {FAULT_SECONDS:g} s] {statuses}; acked writes {len(load.acked)}; "
          f"approvals {sum(len(a) for a in load.approvals.values())}; stale answers {len(load.stale)} {extra}")


def served_during(load: Load, start: float, end: float) -> dict[str, collections.Counter]:
    """What the readers of warmed models got for reads made entirely within [start, end], by read kind:
    "stale" (a 200 marked stale), "fresh" (a 200 not marked), or the status / connection failure."""
    found: dict[str, collections.Counter] = collections.defaultdict(collections.Counter)
    for started, ended, what, status, stale, _ in load.served:
        if start <= started and ended <= end:
            found[what]["stale" if status == 200 and stale else "fresh" if status == 200 else str(status)] += 1
    return found


def refused_during(load: Load, what: str, start: float, end: float) -> list[str]:
    """The first few refusals of a serving read kind within [start, end], for a failure message."""
    return [f"{started - start:.2f} s: {answer}" for started, ended, kind, _, _, answer in load.served
            if kind == what and answer is not None and start <= started and ended <= end][:3]


def _tally(counter: collections.Counter) -> str:
    return " ".join(f"{k}: {v}" for k, v in sorted(counter.items()))


def warm_served(registry: Registry, threads: int = 8, rounds: int = 10) -> None:
    """Read every serving read of the warmed models many times at once, so that each worker has answered (and
    so holds) every one of them: connections go to whichever worker accepts first, and a lightly loaded server
    may hand one worker nearly all of them for a while. The harness asserts on every read of every worker."""
    reads = [(method, path.format(m=model), None if body is None else
              {k: (v.format(m=model) if isinstance(v, str) else v) for k, v in body.items()})
             for _, method, path, body in SERVING_READS for model in SERVED]

    def read_all(_):
        for _ in range(rounds):
            for method, path, body in reads:
                response = requests.request(method, registry.url + path, json=body, headers=_as("warmer"),
                                            timeout=30)
                assert response.status_code == 200, response.text

    with ThreadPoolExecutor(threads) as pool:
        list(pool.map(read_all, range(threads)))


def warm_up(load: Load) -> None:
    time.sleep(max(1.0, FAULT_SECONDS / 2))


# --- the faults --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("mode", ["fast", "immediate"], ids=["fast-restart", "crash"])
def test_postgres_restart_or_crash(cluster, registry, mode):
    with load_on(registry) as load:
        warm_up(load)
        warm_served(registry)
        cluster.stop(mode)
        down_at = time.monotonic()
        ready = requests.get(registry.url + "/readyz", headers=CLOSE, timeout=10)
        assert ready.status_code == 503 and int(ready.headers["Retry-After"]) > 0, ready.text
        time.sleep(FAULT_SECONDS)
        up_at = time.monotonic()
        cluster.start()
        recovered_at = time.monotonic()
        wait_until_ready(registry)
        time.sleep(max(1.0, FAULT_SECONDS / 2))
    during = served_during(load, down_at, up_at)
    summary(mode, load, "; warmed serving reads while down: " +
            ", ".join(f"{what} {sum(during[what].values())} ({_tally(during[what])})" for what in sorted(during)))
    assert load.statuses[503] > 0  # the outage was seen, and answered as one
    # Stale-while-unavailable: every serving read of a warmed model, in either dialect, made while the database
    # was down was answered with the answer held before the outage, marked stale (issue 15: all got 503).
    for what, _, _, _ in SERVING_READS:
        assert during[what] and set(during[what]) == {"stale"}, (what, during[what],
                                                                 refused_during(load, what, down_at, up_at))
    # A long-poll of a warmed model: its stale answer, or 503 with Retry-After (``load.bad`` has any 500).
    assert set(during[LONG_POLL]) <= {"stale", "503"}, during[LONG_POLL]
    check_invariants(load, registry, recovered_at)


def test_a_row_lock_held_longer_than_lock_timeout(cluster, registry):
    others = set(MODELS) - {LOCKED_MODEL}
    with load_on(registry) as load:
        warm_up(load)
        before_start = time.monotonic() - FAULT_SECONDS / 2
        with closing(psycopg2.connect(registry.database_url)) as holder:
            with holder.cursor() as cursor:
                cursor.execute("SELECT 1 FROM registered_models WHERE name = %s FOR UPDATE", (LOCKED_MODEL,))
            held_from = time.monotonic()
            time.sleep(FAULT_SECONDS)
            held_until = time.monotonic()
            holder.rollback()
        recovered_at = time.monotonic()
        time.sleep(1.0)
    before = load.writes_between(before_start, held_from, others) / (held_from - before_start)
    during = load.writes_between(held_from, held_until, others) / (held_until - held_from)
    summary("row lock", load, f"; other models' writes/s before {before:.1f}, while locked {during:.1f}")
    assert load.statuses[503] > 0  # the locked model's writers were told to come back
    # Writers of the other models keep completing (issue 15: they fell from 56.6/s to 1.0/s).
    assert during >= 0.25 * before, (before, during)
    check_invariants(load, registry, recovered_at)


# gevent only, the default: under gthread, gunicorn 26 closes a connection taken in during the drain whose
# request has not arrived within its first short read ("deferred") once the worker is stopping, so a client slow
# to send is reset (seen once in CI under load); README, "Serving at scale", says so.
@pytest.mark.parametrize("worker_class", ["gevent"])
def test_sigterm_to_the_master(cluster, registry, worker_class):
    registry.stop()
    registry.start(worker_class)
    with load_on(registry) as load:
        warm_up(load)
        registry.server.process.send_signal(signal.SIGTERM)
        code = registry.server.process.wait(BOUND)
        time.sleep(min(FAULT_SECONDS, 2))
        registry.stop()
        registry.start()  # the replacement (a new port; the clients follow registry.url)
        recovered_at = time.monotonic()
        time.sleep(max(1.0, FAULT_SECONDS / 2))
    summary(f"SIGTERM ({worker_class})", load)
    assert code == 0
    # Clients arriving after SIGTERM were refused at once, not left hanging in a dead listener's backlog, and
    # no request in flight was cut.
    assert load.statuses["connection refused"] > 0
    assert load.statuses["connection reset"] == 0, (load.statuses, load.resets)
    check_invariants(load, registry, recovered_at)


def test_kill_9_of_a_worker(cluster, registry):
    with load_on(registry) as load:
        warm_up(load)
        victim = registry.workers()[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + BOUND
        while victim in registry.workers() or len(registry.workers()) < 2:  # the master starts another
            assert time.monotonic() < deadline
            time.sleep(0.1)
        recovered_at = time.monotonic()
        time.sleep(max(1.0, FAULT_SECONDS / 2))
    summary("kill -9 worker", load)
    check_invariants(load, registry, recovered_at)
