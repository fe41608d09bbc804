"""Concurrency through real HTTP: threads against gunicorn with two worker processes.

Requests land on both workers, each with its own connection pool, so only the database's locks keep version
numbers and stages right.
"""
from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from registry import create_app
from registry.extensions import db
from registry.services import audit_log
from tests.server import ADMIN_HEADERS, running_server

pytestmark = pytest.mark.slow


@pytest.fixture
def server(fresh_database_url):
    with running_server(fresh_database_url, workers=2) as base_url:
        yield base_url, fresh_database_url


def all_at_once(count: int, work):
    barrier = threading.Barrier(count)

    def call(i):
        with requests.Session() as http:
            barrier.wait()
            return work(http, i)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(call, range(count)))


def verify_audit(database_url: str):
    app = create_app({"database_url": database_url})
    with app.app_context():
        try:
            return audit_log.verify()
        finally:
            db.engine.dispose()


def test_32_clients_creating_versions_of_one_model_get_1_to_32(server):
    base, database_url = server
    assert requests.post(f"{base}/api/v1/models", json={"name": "hot"}).status_code == 201
    responses = all_at_once(32, lambda http, i: http.post(
        f"{base}/api/v1/models/hot/versions", json={"source": f"s3://b/{i}", "run_id": f"run-{i}"},
        headers={"X-Registry-Actor": f"pipeline-{i}"},
    ))
    assert [r.status_code for r in responses] == [201] * 32
    assert sorted(r.json()["version"] for r in responses) == list(range(1, 33))
    listed = requests.get(f"{base}/api/v1/models/hot/versions", params={"max_results": 100}).json()["versions"]
    assert sorted(v["version"] for v in listed) == list(range(1, 33))
    assert verify_audit(database_url)[1] is None


def test_16_concurrent_promotions_leave_exactly_one_version_in_production(server):
    base, database_url = server
    requests.post(f"{base}/api/v1/models", json={"name": "promo"})
    for i in range(16):
        assert requests.post(f"{base}/api/v1/models/promo/versions", json={"source": f"s3://b/{i}"}).status_code == 201
    responses = all_at_once(16, lambda http, i: http.post(
        f"{base}/api/v1/models/promo/versions/{i + 1}/transition",
        json={"stage": "Production", "archive_existing_versions": True},
    ))
    assert [r.status_code for r in responses] == [200] * 16
    listed = requests.get(f"{base}/api/v1/models/promo/versions", params={"max_results": 100}).json()["versions"]
    assert Counter(v["stage"] for v in listed) == {"Production": 1, "Archived": 15}
    current = requests.get(f"{base}/api/v1/models/promo/stages/production").json()
    assert [v["version"] for v in listed if v["stage"] == "Production"] == [current["version"]]
    assert verify_audit(database_url)[1] is None
    events = requests.get(f"{base}/api/v1/audit-events", params={"model": "promo", "max_results": 1000},
                          headers=ADMIN_HEADERS).json()["events"]
    # created model, created versions, promotions, archivals
    assert len(events) == 1 + 16 + 16 + 15


def test_concurrent_creates_of_one_name_give_one_201_and_409s(server):
    base, _ = server
    responses = all_at_once(10, lambda http, i: http.post(f"{base}/api/v1/models", json={"name": "same"}))
    assert sorted(r.status_code for r in responses) == [201] + [409] * 9
    assert all(r.json()["error"]["code"] == "ALREADY_EXISTS" for r in responses if r.status_code == 409)
