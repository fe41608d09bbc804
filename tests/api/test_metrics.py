"""GET /metrics (registry/api/metrics.py, registry/telemetry/): who may read it, what it reports, and the
metrics-only token scope, which may do nothing else.

The test app runs in one process, so values are this process's (multiprocess summing is tested against a
real gunicorn in tests/system/test_observability.py); every assertion compares before and after.
"""
from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from registry.audit import ChainBreak
from registry.extensions import CACHES_KEY
from registry.services import operations
from registry.services.audit_log import verify

from ..web.console import sign_in
from .support import assert_error, listening, metric_samples as samples

MODEL = "metered"


def ok(response, status: int = 200):
    assert response.status_code == status, response.get_data(as_text=True)
    return response


@pytest.fixture
def admin(make_user):
    return make_user("ops-admin", admin=True)


def scrape(client, headers) -> dict:
    response = ok(client.get("/metrics", headers=headers))
    assert response.content_type.startswith("text/plain")
    return samples(response.get_data(as_text=True))


def metrics_token(client, admin, user: str = "prometheus") -> dict:
    if user == "prometheus":
        ok(client.post("/api/v1/users", json={"name": user}, headers=admin), 201)
    created = ok(client.post("/api/v1/tokens", json={"user": user, "scope": "metrics"}, headers=admin), 201).get_json()
    assert created["scope"] == "metrics"
    return {"Authorization": f"Bearer {created['token']}"}


# --- who may read the metrics ---------------------------------------------------------------------------------

def test_metrics_need_a_token(secure_client):
    assert_error(secure_client.get("/metrics"), 401, "UNAUTHENTICATED")


def test_an_admins_token_reads_the_metrics(secure_client, admin):
    assert "registry_http_request_duration_seconds_count" in {name for name, _ in scrape(secure_client, admin)}


def test_a_plain_users_token_may_not_read_the_metrics(secure_client, make_user, admin):
    ok(secure_client.post("/api/v1/models", json={"name": MODEL}, headers=admin), 201)
    for level in (None, "MANAGE"):
        headers = make_user(f"user-{level}", level)
        assert_error(secure_client.get("/metrics", headers=headers), 403, "PERMISSION_DENIED")


def test_a_metrics_token_reads_the_metrics(secure_client, admin, make_user):
    headers = metrics_token(secure_client, admin)
    assert ("registry_collector_up", (("collector", "pending_requests"),)) in scrape(secure_client, headers)


def test_only_admins_issue_metrics_tokens(secure_client, make_user):
    user = make_user("eve", "MANAGE")
    for who in ("eve", "prometheus"):
        response = secure_client.post("/api/v1/tokens", json={"user": who, "scope": "metrics"}, headers=user)
        assert_error(response, 403, "PERMISSION_DENIED")


def test_an_unknown_scope_is_400(secure_client, admin):
    assert_error(secure_client.post("/api/v1/tokens", json={"scope": "root"}, headers=admin), 400)


def test_a_metrics_token_of_an_admin_can_do_nothing_else(secure_client, admin):
    """Even issued to an admin user, a metrics token reads the metrics and nothing else: every API, both
    dialects, reads answered from the replay cache, token minting and the console."""
    ok(secure_client.post("/api/v1/models", json={"name": MODEL}, headers=admin), 201)
    ok(secure_client.post(f"/api/v1/models/{MODEL}/versions", json={"source": "s3://b/1"}, headers=admin), 201)
    listening(secure_client.application)
    for _ in range(2):  # the second read is answered from the replay cache, for the admin
        ok(secure_client.get(f"/api/v1/models/{MODEL}/stages/None", headers=admin))
    scoped = metrics_token(secure_client, admin, user="ops-admin")
    for method, path, body in [
        ("GET", "/api/v1/me", None),
        ("GET", "/api/v1/models", None),
        ("GET", f"/api/v1/models/{MODEL}/stages/None", None),
        ("GET", f"/api/v1/models/{MODEL}", None),
        ("GET", "/api/v1/audit-events", None),
        ("POST", "/api/v1/tokens", {"description": "escape"}),
        ("POST", "/api/v1/models", {"name": "smuggled"}),
        ("DELETE", f"/api/v1/models/{MODEL}", None),
    ]:
        response = secure_client.open(path, method=method, json=body, headers=scoped)
        assert_error(response, 403, "PERMISSION_DENIED")
    response = secure_client.get("/api/2.0/mlflow/registered-models/get", query_string={"name": MODEL},
                                 headers=scoped)
    assert response.status_code == 403 and response.get_json()["error_code"] == "PERMISSION_DENIED"
    # The console refuses to sign it in.
    page = sign_in(secure_client, scoped)
    assert page.status_code == 401 and "do not match a valid token" in page.get_data(as_text=True)
    # And it still reads the metrics.
    scrape(secure_client, scoped)


def test_token_listing_shows_the_scope(secure_client, admin):
    metrics_token(secure_client, admin)
    listed = ok(secure_client.get("/api/v1/tokens", query_string={"user": "prometheus"}, headers=admin)).get_json()
    assert [t["scope"] for t in listed["tokens"]] == ["metrics"]


# --- what the metrics report ------------------------------------------------------------------------------------

def _value(found: dict, name: str, **labels) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


def test_requests_are_counted_by_dialect_route_template_method_and_status(secure_client, admin):
    before = scrape(secure_client, admin)
    ok(secure_client.post("/api/v1/models", json={"name": MODEL}, headers=admin), 201)
    for name in (MODEL, "absent-1", "absent-2"):
        secure_client.get(f"/api/v1/models/{name}", headers=admin)
    secure_client.get("/api/2.0/mlflow/registered-models/get", query_string={"name": MODEL}, headers=admin)
    secure_client.get("/no/such/path/secret-looking", headers=admin)
    after = scrape(secure_client, admin)
    count = "registry_http_request_duration_seconds_count"
    route = "/api/v1/models/<name>"
    assert _value(after, count, dialect="native", route=route, method="GET", status="200") \
        - _value(before, count, dialect="native", route=route, method="GET", status="200") == 1
    assert _value(after, count, dialect="native", route=route, method="GET", status="404") \
        - _value(before, count, dialect="native", route=route, method="GET", status="404") == 2
    mlflow_route = "/api/2.0/mlflow/registered-models/get"
    assert _value(after, count, dialect="mlflow", route=mlflow_route, method="GET", status="200") \
        - _value(before, count, dialect="mlflow", route=mlflow_route, method="GET", status="200") == 1
    assert _value(after, count, dialect="none", route="<unmatched>", method="GET", status="404") \
        - _value(before, count, dialect="none", route="<unmatched>", method="GET", status="404") == 1
    routes = {dict(labels).get("route") for name, labels in after if name == count}
    # Raw paths never become label values: only URL rules (and <unmatched>).
    assert not any(r and ("absent-" in r or "secret-looking" in r or MODEL in r) for r in routes)


def test_replayed_reads_are_counted_with_their_route_and_as_cache_hits(secure_client, admin):
    ok(secure_client.post("/api/v1/models", json={"name": MODEL}, headers=admin), 201)
    listening(secure_client.application)
    path = f"/api/v1/models/{MODEL}/stages/Production"
    ok(secure_client.get(path, headers=admin), 404)
    before = scrape(secure_client, admin)
    replay = secure_client.application.extensions["registry_replay"]
    hits = replay.hits
    for _ in range(3):
        ok(secure_client.get(path, headers=admin), 404)
    assert replay.hits == hits + 3
    after = scrape(secure_client, admin)
    count = "registry_http_request_duration_seconds_count"
    labels = dict(dialect="native", route="/api/v1/models/<name>/stages/<stage>", method="GET", status="404")
    assert _value(after, count, **labels) - _value(before, count, **labels) == 3
    hit = dict(kind="native_serving.current_in_stage", result="hit")
    assert _value(after, "registry_cache_lookups_total", **hit) - _value(before, "registry_cache_lookups_total", **hit) == 3
    assert _value(after, "registry_cache_bytes") > 0 and _value(after, "registry_cache_entries") > 0
    # The listener gauge is the process's (every test app's hub sets it): make this one's the last word.
    hub = secure_client.application.extensions[CACHES_KEY].hub
    hub.set_healthy(False)
    hub.set_healthy(True)
    assert _value(scrape(secure_client, admin), "registry_listener_up") == 1
    hub.set_healthy(False)
    assert _value(scrape(secure_client, admin), "registry_listener_up") == 0
    hub.set_healthy(True)


def test_pending_requests_by_model_and_age(secure_client, admin, make_user):
    reader = make_user("asker", "READ")
    ok(secure_client.post("/api/v1/models", json={"name": MODEL}, headers=admin), 201)
    ok(secure_client.post(f"/api/v1/models/{MODEL}/versions", json={"source": "s3://b/1"}, headers=admin), 201)
    ok(secure_client.post(f"/api/v1/models/{MODEL}/versions/1/transition-requests", json={"stage": "Production"},
                          headers=reader), 201)
    ok(secure_client.post(f"/api/v1/models/{MODEL}/versions/1/transition-requests", json={"stage": "Staging"},
                          headers=reader), 201)
    found = scrape(secure_client, admin)
    assert _value(found, "registry_pending_requests", kind="stage") == 2
    assert _value(found, "registry_pending_requests_by_model", model=MODEL, kind="stage") == 2
    assert ("registry_pending_request_oldest_age_seconds", (("kind", "stage"), ("model", MODEL))) in found
    assert _value(found, "registry_pending_request_oldest_age_seconds", model=MODEL, kind="stage") >= 0


def test_the_last_audit_verification_is_reported(secure_client, admin):
    with secure_client.application.app_context():
        checked, problem = verify()
        assert problem is None
        operations.record_audit_verification(checked, problem)
    found = scrape(secure_client, admin)
    assert _value(found, "registry_audit_verify_last_ok") == 1
    assert _value(found, "registry_audit_verify_last_events_checked") == checked
    assert _value(found, "registry_audit_verify_last_run_timestamp_seconds") > 0
    with secure_client.application.app_context():
        operations.record_audit_verification(7, ChainBreak(12, 3, 4, "content does not match its hash"))
    found = scrape(secure_client, admin)
    assert _value(found, "registry_audit_verify_last_ok") == 0
    assert _value(found, "registry_audit_verify_last_events_checked") == 7


def test_the_webhook_delivery_backlog_is_reported(secure_client, admin):
    # No dispatcher runs beside the test client: the deliveries the outbox queues stay pending.
    before = scrape(secure_client, admin)
    ok(secure_client.post("/api/v1/models", json={"name": MODEL}, headers=admin), 201)
    ok(secure_client.post("/api/v1/webhooks", json={"url": "https://hooks.example/ops", "model": MODEL,
                                                     "events": ["version.created"]}, headers=admin), 201)
    for i in (1, 2):
        ok(secure_client.post(f"/api/v1/models/{MODEL}/versions", json={"source": f"s3://b/{i}"}, headers=admin), 201)
    found = scrape(secure_client, admin)
    assert _value(found, "registry_webhook_deliveries_pending") == _value(
        before, "registry_webhook_deliveries_pending") + 2
    assert _value(found, "registry_webhook_delivery_oldest_pending_age_seconds") >= 0
    assert _value(found, "registry_collector_up", collector="webhook_deliveries") == 1


def test_pool_gauges_follow_checkouts(secure_client, admin):
    found = scrape(secure_client, admin)
    assert _value(found, "registry_db_pool_capacity") > 0
    assert ("registry_db_pool_checked_out", ()) in found


def test_a_long_poll_is_counted_as_a_waiter_while_it_waits(secure_client, admin, secure_app):
    ok(secure_client.post("/api/v1/models", json={"name": MODEL}, headers=admin), 201)
    listening(secure_app)
    first = ok(secure_client.get(f"/api/v1/models/{MODEL}/stages/Production", headers=admin), 404)
    baseline = REGISTRY.get_sample_value("registry_longpoll_waiters")
    before = scrape(secure_client, admin)
    hub = secure_app.extensions[CACHES_KEY].hub
    while_waiting = []
    original = hub.wait

    def wait(*args, **kwargs):  # what the gauge says while this long-poll waits
        while_waiting.append(REGISTRY.get_sample_value("registry_longpoll_waiters"))
        return original(*args, **kwargs)

    hub.wait = wait
    try:
        ok(secure_client.get(f"/api/v1/models/{MODEL}/stages/Production", query_string={"wait": 1},
                             headers={**admin, "If-None-Match": first.headers["ETag"]}), 304)
    finally:
        del hub.wait
    assert while_waiting and while_waiting[0] == baseline + 1
    assert REGISTRY.get_sample_value("registry_longpoll_waiters") == baseline
    # Its second of waiting is reported apart from the route's ordinary reads.
    count = "registry_http_request_duration_seconds_count"
    waited = dict(dialect="native", route="/api/v1/models/<name>/stages/<stage>?wait", method="GET", status="304")
    assert _value(scrape(secure_client, admin), count, **waited) - _value(before, count, **waited) == 1
