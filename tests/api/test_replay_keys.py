"""What a replayed response is keyed by: the parsed request, never raw bytes (findings 1 and 3 of the issue
"Trust the served answer").

1. The MLflow dialect reads a GET's parameters from its JSON body when there is no query string; a key that
   ignored the body let one caller's body-GET for model ``evil`` be replayed to another caller asking for
   ``fraud`` (cache poisoning).
3. Parameters a view ignores must not make new entries: ``?name=fraud&n=<i>`` is one answer, not thousands.
"""
from __future__ import annotations

import json

import pytest

from registry.extensions import CACHES_KEY
from tests.api.test_replay import ML, MODEL, V1, hits, listening, ok, seed

EVIL = "evil"

# (label, path, body without the name): MLflow reads that accept their parameters as a GET body.
BODY_GETS = [
    ("get-latest-versions", f"{ML}/registered-models/get-latest-versions", {"stages": ["Production"]}),
    ("registered-models/get", f"{ML}/registered-models/get", {}),
    ("model-versions/get", f"{ML}/model-versions/get", {"version": "1"}),
    ("registered-models/alias", f"{ML}/registered-models/alias", {"alias": "champion"}),
]


@pytest.fixture
def two_models(secure_app, secure_client, make_user):
    """``fraud`` (sources s3://b/...) and ``evil`` (sources s3://evil/...), each with version 1 in Production
    behind ``champion``; an attacker and a victim, both plain readers."""
    admin = make_user("root", admin=True)
    seed(secure_client, admin)
    ok(secure_client.post("/api/v1/models", json={"name": EVIL}, headers=admin), 201)
    ok(secure_client.post(f"/api/v1/models/{EVIL}/versions", json={"source": "s3://evil/1"}, headers=admin), 201)
    ok(secure_client.post(f"/api/v1/models/{EVIL}/versions/1/transition", json={"stage": "Production"},
                          headers=admin))
    ok(secure_client.put(f"/api/v1/models/{EVIL}/aliases/champion", json={"version": 1}, headers=admin))
    listening(secure_app)
    return make_user("mallory"), make_user("victor")


def body_get(client, path, body, headers):
    return client.get(path, data=json.dumps(body), content_type="application/json", headers=headers)


@pytest.mark.parametrize("read", BODY_GETS, ids=[r[0] for r in BODY_GETS])
def test_a_body_get_for_one_model_is_never_answered_with_another(secure_app, secure_client, two_models, read):
    attacker, victim = two_models
    _, path, rest = read
    for _ in range(3):  # interleaved: each caller's token and level are known, each answer replayable
        assert b"s3://evil/" in ok(body_get(secure_client, path, {"name": EVIL, **rest}, attacker)).get_data()
        answer = ok(body_get(secure_client, path, {"name": MODEL, **rest}, victim))
        assert b"s3://evil/" not in answer.get_data()
        assert MODEL.encode() in answer.get_data()


@pytest.mark.parametrize("read", BODY_GETS, ids=[r[0] for r in BODY_GETS])
def test_a_body_get_is_replayed_under_its_parsed_parameters(secure_app, secure_client, two_models, read):
    """The same parameters, sent in a body or in a query string, are one answer."""
    _, victim = two_models
    _, path, rest = read
    query = {"name": MODEL, **{k: v[0] if isinstance(v, list) else v for k, v in rest.items()}}
    first = ok(secure_client.get(path, query_string=query, headers=victim))
    before = hits(secure_app)
    second = ok(body_get(secure_client, path, {"name": MODEL, **rest}, victim))
    assert hits(secure_app) == before + 1
    assert second.get_data() == first.get_data()


@pytest.mark.parametrize("path, query", [
    (f"{ML}/registered-models/get", {"name": MODEL}),
    (f"{ML}/model-versions/get", {"name": MODEL, "version": "1"}),
    (V1, {}),
    (f"{V1}/versions/1", {}),
], ids=["mlflow model", "mlflow version", "native model", "native version"])
def test_parameters_a_view_ignores_make_no_new_entries(secure_app, secure_client, two_models, path, query):
    _, victim = two_models
    store = secure_app.extensions[CACHES_KEY].store
    ok(secure_client.get(path, query_string=query, headers=victim))
    entries = len(store)
    before = hits(secure_app)
    for i in range(50):
        ok(secure_client.get(path, query_string={**query, "n": str(i)}, headers=victim))
    assert len(store) == entries
    assert hits(secure_app) == before + 50


def test_a_model_with_a_megabyte_of_tags_stays_within_the_byte_budget(secure_app, secure_client, two_models,
                                                                    make_user):
    """Distinct requests for a large answer are bounded by the cache's bytes, not its entry count."""
    admin = make_user("root2", admin=True)
    ok(secure_client.post("/api/v1/models", json={"name": "big", "tags": {f"t{i}": "x" * 90_000 for i in range(10)}},
                          headers=admin), 201)
    for i in (10, 11):  # past the 1 MiB request limit: tag by tag
        ok(secure_client.put(f"/api/v1/models/big/tags/t{i}", json={"value": "x" * 90_000}, headers=admin))
    ok(secure_client.post("/api/v1/models/big/versions", json={"source": "s3://big/1"}, headers=admin), 201)
    _, victim = two_models
    store = secure_app.extensions[CACHES_KEY].store
    before = store.bytes
    size = len(ok(secure_client.get(f"{ML}/registered-models/get", query_string={"name": "big"},
                                    headers=victim)).get_data())
    assert size > 1_000_000
    for i in range(30):
        ok(secure_client.get(f"{ML}/registered-models/get", query_string={"name": "big", "n": str(i)},
                             headers=victim))
    assert store.bytes - before < 2 * size  # one kept answer, not thirty
    assert store.bytes <= store.max_bytes
