"""Response replay (registry/cache/responses.py, registry/api/replay.py): rendered read answers replayed
before Flask runs.

What must hold: a replay is byte-for-byte the answer Flask gives; it happens only for a caller whose token and
READ level the process already knows; any change to the model, the caller's access or the listener's health
sends the request back to Flask at once. ``hits`` counts replays, so each test can tell which path answered.
"""
from __future__ import annotations

import json

import pytest

from registry.extensions import CACHES_KEY

from .support import listening

MODEL = "fraud"
V1 = f"/api/v1/models/{MODEL}"
ML = "/api/2.0/mlflow"

# (label, method, path, query string, JSON body): every read that goes through the per-process cache.
READS = [
    ("native production", "GET", f"{V1}/stages/Production", None, None),
    ("native empty stage", "GET", f"{V1}/stages/Staging", None, None),
    ("native alias", "GET", f"{V1}/aliases/champion", None, None),
    ("native latest alias", "GET", f"{V1}/aliases/latest", None, None),
    ("native model", "GET", V1, None, None),
    ("native version", "GET", f"{V1}/versions/2", None, None),
    ("mlflow model", "GET", f"{ML}/registered-models/get", {"name": MODEL}, None),
    ("mlflow latest GET", "GET", f"{ML}/registered-models/get-latest-versions",
     {"name": MODEL, "stages": "Production"}, None),
    ("mlflow latest POST", "POST", f"{ML}/registered-models/get-latest-versions", None,
     {"name": MODEL, "stages": ["Production"]}),
    ("mlflow latest POST, all stages", "POST", f"{ML}/registered-models/get-latest-versions", None,
     {"name": MODEL}),
    ("ajax latest POST", "POST", "/ajax-api/2.0/mlflow/registered-models/get-latest-versions", None,
     {"name": MODEL}),
    ("mlflow alias", "GET", f"{ML}/registered-models/alias", {"name": MODEL, "alias": "champion"}, None),
    ("mlflow version", "GET", f"{ML}/model-versions/get", {"name": MODEL, "version": "1"}, None),
]


def ok(response, status: int = 200):
    assert response.status_code == status, response.get_data(as_text=True)
    return response


def seed(client, headers) -> None:
    """``fraud`` with versions 1 and 2; version 1 in Production and behind ``champion``."""
    ok(client.post("/api/v1/models", json={"name": MODEL}, headers=headers), 201)
    for n in (1, 2):
        ok(client.post(f"{V1}/versions", json={"source": f"s3://b/{n}", "run_id": f"run-{n}"}, headers=headers),
           201)
    ok(client.post(f"{V1}/versions/1/transition", json={"stage": "Production"}, headers=headers))
    ok(client.put(f"{V1}/aliases/champion", json={"version": 1}, headers=headers))


def call(client, read, headers, extra_headers=None):
    _, method, path, query, body = read
    all_headers = {**headers, **(extra_headers or {})}
    if method == "GET":
        return client.get(path, query_string=query, headers=all_headers)
    return client.post(path, data=json.dumps(body), content_type="application/json", headers=all_headers)


def snapshot(response) -> tuple:
    """Everything but the request's own id (X-Request-Id differs per request by design, replayed or not)."""
    headers = sorted((k, v) for k, v in response.headers.items() if k != "X-Request-Id")
    return response.status_code, headers, response.get_data()


def hits(app) -> int:
    return app.extensions["registry_replay"].hits



@pytest.fixture
def admin(secure_app, secure_client, make_user):
    headers = make_user("root", admin=True)
    seed(secure_client, headers)
    listening(secure_app)
    return headers


@pytest.fixture
def reader(admin, make_user):
    """A plain user holding only the seeded registry-wide ``*`` READ."""
    return make_user("reader")


@pytest.mark.parametrize("read", READS, ids=[r[0] for r in READS])
def test_second_identical_read_is_replayed_byte_for_byte(secure_app, secure_client, reader, read):
    first = call(secure_client, read, reader)
    assert first.status_code in (200, 404)
    before = hits(secure_app)
    second = call(secure_client, read, reader)
    assert hits(secure_app) == before + 1
    assert snapshot(second) == snapshot(first)


@pytest.mark.parametrize("read", READS[:4], ids=[r[0] for r in READS[:4]])
def test_conditional_reads_are_replayed_as_the_same_304(secure_app, secure_client, reader, read):
    etag = call(secure_client, read, reader).headers["ETag"]
    first = call(secure_client, read, reader, {"If-None-Match": etag})
    before = hits(secure_app)
    second = call(secure_client, read, reader, {"If-None-Match": etag})
    assert hits(secure_app) == before + 1
    assert first.status_code == 304
    assert snapshot(second) == snapshot(first)


def test_a_different_body_or_query_is_a_different_answer(secure_app, secure_client, reader):
    production = call(secure_client, READS[8], reader).get_json()["model_versions"]
    everything = call(secure_client, READS[9], reader).get_json()["model_versions"]
    assert [v["current_stage"] for v in production] == ["Production"]
    assert len(everything) == 2
    staging = secure_client.get(f"{ML}/registered-models/get-latest-versions",
                                query_string={"name": MODEL, "stages": "Staging"}, headers=reader)
    assert ok(staging).get_json() == {}


# What each change must show at once, read through the native API: (url, status, field, value).
CHANGES = {
    "promote": ("POST", "/versions/2/transition", {"stage": "Production", "archive_existing_versions": True},
                (f"{V1}/stages/Production", 200, "version", 2)),
    "move alias": ("PUT", "/aliases/champion", {"version": 2}, (f"{V1}/aliases/champion", 200, "version", 2)),
    "delete version": ("DELETE", "/versions/1", None, (f"{V1}/stages/Production", 404, None, None)),
    "new version": ("POST", "/versions", {"source": "s3://b/3"}, (f"{V1}/aliases/latest", 200, "version", 3)),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_change_is_seen_by_the_very_next_read(secure_app, secure_client, admin, reader, change):
    method, path, payload, (url, status, field, value) = CHANGES[change]
    native = READS[:4]  # the serving reads: their ETag is the model's generation
    before = {r[0]: call(secure_client, r, reader).headers["ETag"] for r in native}
    call(secure_client, READS[0], reader)
    replays = hits(secure_app)
    assert {r[0]: call(secure_client, r, reader).headers["ETag"] for r in native} == before
    assert hits(secure_app) == replays + len(native)  # all of them were replays
    response = secure_client.open(f"{V1}{path}", method=method, json=payload, headers=admin)
    assert response.status_code in (200, 201, 204), response.get_data(as_text=True)
    after = {r[0]: call(secure_client, r, reader).headers["ETag"] for r in native}
    assert all(after[label] != before[label] for label in after), "a replay survived the change"
    answer = secure_client.get(url, headers=reader)
    assert answer.status_code == status
    if field is not None:
        assert answer.get_json()[field] == value


def test_mlflow_answers_follow_a_promotion(secure_client, admin, reader):
    assert [v["version"] for v in call(secure_client, READS[8], reader).get_json()["model_versions"]] == ["1"]
    assert [v["version"] for v in call(secure_client, READS[8], reader).get_json()["model_versions"]] == ["1"]
    ok(secure_client.post(f"{V1}/versions/2/transition",
                          json={"stage": "Production", "archive_existing_versions": True}, headers=admin))
    assert [v["version"] for v in call(secure_client, READS[8], reader).get_json()["model_versions"]] == ["2"]
    assert call(secure_client, READS[12], reader).get_json()["model_version"]["current_stage"] == "Archived"


def test_a_caller_without_read_is_never_replayed_to(secure_app, secure_client, admin, make_user):
    ok(secure_client.put("/api/v1/permissions", json={"grants": []}, headers=admin))
    outsider = make_user("outsider")
    for read in READS:
        call(secure_client, read, admin)
        call(secure_client, read, admin)  # cached and replayed for the admin
        before = hits(secure_app)
        hidden = call(secure_client, read, outsider)
        assert hits(secure_app) == before, read[0]
        assert hidden.status_code in (400, 404), read[0]  # MLflow's get by alias answers a missing model 404
        assert b"s3://b/" not in hidden.get_data(), read[0]


def test_revoking_read_stops_replays_at_once(secure_app, secure_client, admin, make_user):
    user = make_user("dora", "READ", model=MODEL)
    ok(secure_client.put("/api/v1/permissions", json={"grants": []}, headers=admin))
    ok(call(secure_client, READS[0], user))
    before = hits(secure_app)
    ok(call(secure_client, READS[0], user))
    assert hits(secure_app) == before + 1
    ok(secure_client.put(f"{V1}/permissions", json={"grants": []}, headers=admin))
    assert call(secure_client, READS[0], user).status_code == 404


@pytest.mark.parametrize("authorization", [None, "Bearer reg_not-a-token-we-ever-issued", "Bearer", "Basic !!!"],
                         ids=["none", "unknown", "empty", "malformed"])
def test_a_request_without_a_known_token_gets_401_not_a_replay(secure_app, secure_client, reader, authorization):
    call(secure_client, READS[0], reader)
    call(secure_client, READS[0], reader)
    headers = {} if authorization is None else {"Authorization": authorization}
    before = hits(secure_app)
    response = call(secure_client, READS[0], headers)
    assert response.status_code == 401
    assert hits(secure_app) == before


def test_a_revoked_token_gets_401_not_a_replay(secure_app, secure_client, reader):
    ok(call(secure_client, READS[0], reader))
    ok(call(secure_client, READS[0], reader))
    token_id = secure_client.get("/api/v1/tokens", headers=reader).get_json()["tokens"][0]["id"]
    ok(secure_client.delete(f"/api/v1/tokens/{token_id}", headers=reader))
    assert call(secure_client, READS[0], reader).status_code == 401


def test_long_polls_are_never_replayed(secure_app, secure_client, reader):
    url = READS[0][2]
    etag = secure_client.get(url, headers=reader).headers["ETag"]
    stale = {**reader, "If-None-Match": '"1.0"'}
    before = hits(secure_app)
    for _ in range(3):
        response = secure_client.get(url, query_string={"wait": "0.01"}, headers=stale)
        assert response.status_code == 200 and response.headers["X-Registry-Waited"] == "no"
    response = secure_client.get(url, query_string={"wait": "0.01"}, headers={**reader, "If-None-Match": etag})
    assert response.status_code == 304 and response.headers["X-Registry-Waited"] == "yes"
    assert hits(secure_app) == before


def test_nothing_is_replayed_while_the_change_listener_is_down(secure_app, secure_client, reader):
    ok(call(secure_client, READS[0], reader))
    ok(call(secure_client, READS[0], reader))
    hub = secure_app.extensions[CACHES_KEY].hub
    hub.set_healthy(False)
    try:
        before = hits(secure_app)
        ok(call(secure_client, READS[0], reader))
        ok(call(secure_client, READS[0], reader))
        assert hits(secure_app) == before
    finally:
        hub.set_healthy(True)


def test_writes_and_uncached_reads_pass_through(secure_app, secure_client, admin):
    before = hits(secure_app)
    for _ in range(2):
        ok(secure_client.get("/api/v1/models", headers=admin))
        ok(secure_client.get(f"{ML}/model-versions/search", query_string={"filter": "run_id='run-1'"},
                             headers=admin))
    ok(secure_client.post(f"{ML}/registered-models/get-latest-versions", data=b"{not json",
                          content_type="application/json", headers=admin), 400)
    assert hits(secure_app) == before


def test_auth_disabled_replays_with_its_warning_header(app, client):
    headers = {"X-Registry-Actor": "alice"}
    seed(client, headers)
    listening(app)
    first = call(client, READS[0], headers)
    before = hits(app)
    second = call(client, READS[0], headers)
    assert hits(app) == before + 1
    assert second.headers["X-Registry-Auth"] == "disabled"
    assert snapshot(second) == snapshot(first)

