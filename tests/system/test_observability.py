"""Metrics, logs and traces of a real gunicorn (deploy/gunicorn.conf.py), as deployed.

* metrics are summed across workers (prometheus-client's multiprocess mode, the directory managed by the
  gunicorn configuration), and a dead worker's live gauges leave the sums;
* every line the server writes is one JSON object, and a full scenario (create, register, request, approve,
  tokens, console sign-in, MLflow-style Basic auth, a bad token) leaves none of its tokens or secrets in it;
* with OTEL_TRACES_EXPORTER=console the server writes spans.
"""
from __future__ import annotations

import base64
import json
import os
import re
import signal
import time

import psutil
import pytest
import requests

from tests import pg
from tests.api.support import metric_samples
from tests.server import ADMIN_HEADERS, ADMIN_TOKEN, CLOSE, server_process

pytestmark = pytest.mark.slow

SECRET_KEY = "an-operator-chosen-cookie-signing-key-0123456789"
PRODUCTION = {"REGISTRY_AUTH": "enabled", "REGISTRY_SECRET_KEY": SECRET_KEY}


@pytest.fixture
def database(admin_url, template_database):
    name = pg.create_database(admin_url, template=template_database)
    yield pg.with_database(admin_url, name)
    pg.drop_database(admin_url, name)


def ok(response, status: int = 200):
    assert response.status_code == status, response.text
    return response


def scrape(url: str, headers=ADMIN_HEADERS) -> dict:
    response = ok(requests.get(url + "/metrics", headers=headers, timeout=10))
    return metric_samples(response.text)


def json_lines(output: str) -> list[dict]:
    """Every line of the server's output, each of which must be a JSON object with a time and a level."""
    records = []
    for line in output.splitlines():
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            raise AssertionError(f"not a JSON line: {line!r}") from None
        assert isinstance(record, dict) and {"time", "level", "message"} <= record.keys(), line
        records.append(record)
    return records


def worker_pids(server) -> list[int]:
    return [child.pid for child in psutil.Process(server.pid).children()]


def test_metrics_are_summed_across_workers(database):
    with server_process(database, workers=2, extra_env=PRODUCTION) as server:
        route = "/api/v1/models/<name>"
        sent, answered_by = 0, set()
        while len(answered_by) < 2 and sent < 600:  # new connections until both workers have answered some
            for _ in range(10):
                requests.get(f"{server.url}/api/v1/models/absent-{sent}", headers=ADMIN_HEADERS, timeout=10)
                sent += 1
            answered_by = {r["pid"] for r in json_lines(server.output())
                           if r.get("logger") == "registry.request" and r.get("route") == route}
        assert len(answered_by) == 2, answered_by
        key = ("registry_http_request_duration_seconds_count",
               (("dialect", "native"), ("method", "GET"), ("route", route), ("status", "404")))
        # Workers write their counts once a second: wait (bounded) until both have, then whichever worker
        # answers a scrape reports every worker's requests.
        deadline = time.monotonic() + 30
        while scrape(server.url).get(key) != sent and time.monotonic() < deadline:
            time.sleep(0.2)
        for _ in range(4):
            assert scrape(server.url)[key] == sent
        # The live gauges of a worker that dies leave the sums (gunicorn's child_exit hook).
        found = scrape(server.url)
        assert found[("registry_db_pool_capacity", ())] == 2 * 2 * 10  # two workers, pool 10 + overflow 10
        victim = worker_pids(server)[0]
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            pids = worker_pids(server)
            if victim not in pids and len(pids) == 2:
                break
            time.sleep(0.2)
        found = scrape(server.url)
        # The replacement worker has not set up its pool yet, or has: never three workers' worth.
        assert found[("registry_db_pool_capacity", ())] in (20, 40)
        assert found[key] == sent  # a dead worker's counters stay: its requests happened


def test_the_log_is_json_and_holds_no_token_or_secret(database):
    secrets = {ADMIN_TOKEN, SECRET_KEY}
    with server_process(database, workers=2, extra_env=PRODUCTION) as server:
        url = server.url

        def as_(token):
            return {"Authorization": f"Bearer {token}", **CLOSE}

        def issue(user: str, **fields) -> str:
            token = ok(requests.post(f"{url}/api/v1/tokens", json={"user": user, **fields},
                                     headers=ADMIN_HEADERS, timeout=10), 201).json()["token"]
            secrets.add(token)
            return token

        for name, admin in (("pipeline", False), ("reviewer", True)):
            ok(requests.post(f"{url}/api/v1/users", json={"name": name, "is_admin": admin}, headers=ADMIN_HEADERS,
                             timeout=10), 201)
        ok(requests.put(f"{url}/api/v1/permissions", json={"grants": [{"principal": "pipeline", "level": "EDIT"}]},
                        headers=ADMIN_HEADERS, timeout=10))
        pipeline, reviewer = issue("pipeline"), issue("reviewer")
        scraper = issue("pipeline", scope="metrics")
        # Create and register with the pipeline's token; the request id travels into the audit trail.
        ok(requests.post(f"{url}/api/v1/models", json={"name": "scanned", "description": "d"},
                         headers={**as_(pipeline), "X-Request-Id": "scenario-create"}, timeout=10), 201)
        ok(requests.post(f"{url}/api/v1/models/scanned/versions", json={"source": "s3://bucket/model"},
                         headers=as_(pipeline), timeout=10), 201)
        ok(requests.put(f"{url}/api/v1/models/scanned/approval-policies/Production", json={"required_approvals": 1},
                        headers=ADMIN_HEADERS, timeout=10))
        request_id = ok(requests.post(f"{url}/api/v1/models/scanned/versions/1/transition-requests",
                                      json={"stage": "Production", "comment": "ship it"}, headers=as_(pipeline),
                                      timeout=10), 201).json()["id"]
        ok(requests.post(f"{url}/api/v1/transition-requests/{request_id}/approve", json={"comment": "ok"},
                         headers=as_(reviewer), timeout=10))
        # The MLflow client's Basic auth, a bad token, a metrics scrape.
        basic = requests.get(f"{url}/api/2.0/mlflow/registered-models/get", params={"name": "scanned"},
                             auth=("pipeline", pipeline), headers=CLOSE, timeout=10)
        ok(basic)
        secrets.add(base64.b64encode(f"pipeline:{pipeline}".encode()).decode())
        bogus = "reg_" + "x" * 43
        secrets.add(bogus)
        assert requests.get(f"{url}/api/v1/me", headers=as_(bogus), timeout=10).status_code == 401
        ok(requests.get(f"{url}/metrics", headers=as_(scraper), timeout=10))
        # Console sign-in and out, with the reviewer's token.
        console = requests.Session()
        page = ok(console.get(f"{url}/signin", timeout=10)).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        secrets.add(csrf)
        ok(console.post(f"{url}/signin", data={"csrf_token": csrf, "token": reviewer}, timeout=10,
                        allow_redirects=False), 302)
        secrets.update(cookie.value for cookie in console.cookies)
        inbox = ok(console.get(f"{url}/", timeout=10)).text
        csrf = re.search(r'name="csrf_token" value="([^"]+)"', inbox).group(1)
        secrets.add(csrf)
        ok(console.post(f"{url}/signout", data={"csrf_token": csrf}, timeout=10, allow_redirects=False), 302)
        events = ok(requests.get(f"{url}/api/v1/audit-events", params={"model": "scanned"}, headers=ADMIN_HEADERS,
                                 timeout=10)).json()["events"]
        assert events[0]["correlation_id"] == "scenario-create"
        assert server.stop() == 0
        output = server.output()

    leaked = sorted(s[:10] + "..." for s in secrets if s and s in output)
    assert not leaked, f"secrets in the server log: {leaked}"
    records = json_lines(output)
    lines = [r for r in records if r["logger"] == "registry.request"]
    created = [r for r in lines if r.get("request_id") == "scenario-create"]
    assert created and created[0] | {"duration_ms": 0, "time": "", "pid": 0} == {
        "time": "", "level": "INFO", "logger": "registry.request", "message": "request", "pid": 0,
        "actor": "pipeline", "dialect": "native", "route": "/api/v1/models", "method": "POST", "status": 201,
        "duration_ms": 0, "request_id": "scenario-create"}
    assert {r["dialect"] for r in lines} >= {"native", "mlflow", "console", "metrics", "health"}
    assert any(r["logger"].startswith("gunicorn.error") for r in records)  # gunicorn's own lines, as JSON


def test_console_exporter_writes_spans(database):
    env = {**PRODUCTION, "OTEL_TRACES_EXPORTER": "console", "OTEL_SERVICE_NAME": "registry-under-test"}
    with server_process(database, workers=1, extra_env=env) as server:
        ok(requests.get(f"{server.url}/api/v1/models/absent", headers=ADMIN_HEADERS, timeout=10), 404)
        assert server.stop() == 0
        output = server.output()
    assert '"name": "GET /api/v1/models/<name>"' in output
    assert '"service.name": "registry-under-test"' in output
    assert '"db.system": "postgresql"' in output


def test_an_operators_metrics_directory_is_emptied_at_start_and_used(database, tmp_path):
    stale = tmp_path / "counter_999999.db"
    stale.write_bytes(b"left by an earlier run")
    env = {**PRODUCTION, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path)}
    with server_process(database, workers=2, extra_env=env) as server:
        assert not stale.exists()
        ok(requests.get(f"{server.url}/api/v1/models/absent", headers=ADMIN_HEADERS, timeout=10), 404)
        assert scrape(server.url)[("registry_db_pool_capacity", ())] == 40
        assert any(tmp_path.glob("*.db"))  # the workers write there
