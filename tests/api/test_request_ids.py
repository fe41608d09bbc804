"""X-Request-Id (registry/telemetry/requests.py): accepted when safe, generated otherwise, returned on every
response (replayed ones too), and recorded on the audit events the request wrote (``correlation_id``)."""
from __future__ import annotations

import re

import pytest

from registry.audit import compute_hash
from registry.auth import SYSTEM
from registry.services import models
from registry.services.audit_log import verify

from .support import listening

GENERATED = re.compile(r"^[0-9a-f]{32}$")


def test_a_request_without_an_id_gets_one(client):
    first, second = client.get("/healthz"), client.get("/healthz")
    assert GENERATED.match(first.headers["X-Request-Id"]) and GENERATED.match(second.headers["X-Request-Id"])
    assert first.headers["X-Request-Id"] != second.headers["X-Request-Id"]


@pytest.mark.parametrize("path", ["/healthz", "/api/v1/models/none-such", "/no/route",
                                  "/api/2.0/mlflow/registered-models/get?name=none-such", "/"])
def test_a_safe_id_is_returned_on_every_kind_of_response(client, path):
    response = client.get(path, headers={"X-Request-Id": "trace-42.a:b_c"})
    assert response.headers["X-Request-Id"] == "trace-42.a:b_c"


@pytest.mark.parametrize("unsafe", ["x" * 129, "has space", "semi;colon", "new\\nline", "ünïcode", "<script>"])
def test_an_unsafe_id_is_replaced_not_refused(client, unsafe):
    response = client.get("/healthz", headers={"X-Request-Id": unsafe})
    assert response.status_code == 200
    assert GENERATED.match(response.headers["X-Request-Id"])


def test_errors_before_any_view_carry_the_id(secure_client):
    response = secure_client.get("/api/v1/models", headers={"X-Request-Id": "unauth-1"})
    assert response.status_code == 401 and response.headers["X-Request-Id"] == "unauth-1"


def test_replayed_answers_carry_their_own_requests_id(secure_client, secure_app, make_user):
    admin = make_user("rid-admin", admin=True)
    assert secure_client.post("/api/v1/models", json={"name": "rid"}, headers=admin).status_code == 201
    listening(secure_app)
    replay = secure_app.extensions["registry_replay"]
    secure_client.get("/api/v1/models/rid", headers=admin)
    hits = replay.hits
    for rid in ("first-replay", "second-replay"):
        response = secure_client.get("/api/v1/models/rid", headers={**admin, "X-Request-Id": rid})
        assert response.headers["X-Request-Id"] == rid
    assert replay.hits == hits + 2
    assert response.headers.getlist("X-Request-Id") == ["second-replay"]  # never the cached request's


def test_audit_events_record_the_request_id_and_still_verify(client, ctx):
    rid = "create-fraud-7"
    assert client.post("/api/v1/models", json={"name": "rid-fraud"}, headers={"X-Request-Id": rid}).status_code == 201
    assert client.post("/api/v1/models/rid-fraud/versions", json={"source": "s3://b/1"}).status_code == 201
    events = client.get("/api/v1/audit-events", query_string={"model": "rid-fraud"}).get_json()["events"]
    assert events[0]["action"] == "model.created" and events[0]["correlation_id"] == rid
    assert events[1]["action"] == "version.created" and GENERATED.match(events[1]["correlation_id"])
    models.create_model(SYSTEM, "rid-cli")  # outside any request (the command line): no id
    cli_events = client.get("/api/v1/audit-events", query_string={"model": "rid-cli"}).get_json()["events"]
    assert cli_events[0]["correlation_id"] is None
    assert verify()[1] is None


def test_the_request_id_is_part_of_the_hash_when_present_and_absent_otherwise():
    """Events recorded before request ids existed keep their hashes; an event's id cannot be altered unseen."""
    from datetime import datetime, timezone

    base = dict(chain_id=1, seq=1, occurred_at=datetime(2026, 1, 1, tzinfo=timezone.utc), actor="a",
                action="model.created", model_id=1, model_name="m", version=None, run_id=None, from_stage=None,
                to_stage=None, request_id=None, details={}, prev_hash=None)
    without = compute_hash(**base, correlation_id=None)
    assert compute_hash(**base, correlation_id="r-1") != without != compute_hash(**base, correlation_id="r-2")
    import hashlib
    import json

    legacy = {**base, "occurred_at": base["occurred_at"].isoformat()}
    assert without == hashlib.sha256(json.dumps(legacy, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
