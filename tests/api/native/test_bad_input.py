"""Bad input anywhere in the native API is a 4xx in the one error shape, never a 500.

Every case runs against a registry holding model ``m`` with version 1 (alias ``champion``), so each
request fails because of the one bad part it carries, not because something is missing.
"""
from __future__ import annotations

import base64
import json

import pytest

from tests.api.support import assert_error

M = "/api/v1/models/m"
V = f"{M}/versions/1"
MIB = 1024 * 1024


@pytest.fixture
def seeded(client):
    assert client.post("/api/v1/models", json={"name": "m"}).status_code == 201
    assert client.post(f"{M}/versions", json={"source": "s3://b/1", "run_id": "r1"}).status_code == 201
    assert client.put(f"{M}/aliases/champion", json={"version": 1}).status_code == 200
    return client


def raw(data, content_type="application/json") -> dict:
    return {"data": data, "content_type": content_type}


# Routes that take a JSON body, each with a body it would accept.
BODY_ROUTES = [
    ("POST", "/api/v1/models", {"name": "new"}),
    ("PATCH", M, {"description": "d"}),
    ("POST", f"{M}/versions", {"source": "s3://b/s"}),
    ("PATCH", V, {"description": "d"}),
    ("PUT", f"{M}/tags/k", {"value": "v"}),
    ("PUT", f"{V}/tags/k", {"value": "v"}),
    ("POST", f"{V}/transition", {"stage": "Staging"}),
    ("PUT", f"{M}/aliases/a", {"version": 1}),
]
BODY_IDS = [f"{m} {p}" for m, p, _ in BODY_ROUTES]


def _body_cases():
    malformed = {
        "malformed-json": raw('{"name": '),
        "trailing-garbage": raw('{"name": "x"} x'),
        "invalid-utf8": raw(b'{"name": "\xff"}'),
        "form-content-type": raw("name=x", "application/x-www-form-urlencoded"),
        "text-plain-json": raw('{"name": "x"}', "text/plain"),
        "no-body": {},
        "empty-json-body": raw(""),
        "json-array": {"json": [{"name": "x"}]},
        "json-string": {"json": "name"},
        "json-number": {"json": 3},
        "json-null": raw("null"),
        "lone-surrogate": raw('{"x": "\\ud800"}'),
        # Nesting past Python's recursion limit: the JSON decoder raises RecursionError, not ValueError.
        "deeply-nested-array": raw("[" * 100_000),
        "deeply-nested-object": raw('{"a":' * 100_000 + "1" + "}" * 100_000),
        "deeply-nested-field": raw('{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"),
    }
    for (method, path, _), route_id in zip(BODY_ROUTES, BODY_IDS):
        for case_id, kwargs in malformed.items():
            yield pytest.param(method, path, kwargs, id=f"{case_id}: {route_id}")
        for case_id, extra in {"unknown-field": {"colour": "red"}, "unknown-null-field": {"x": None}}.items():
            good = next(b for m, p, b in BODY_ROUTES if (m, p) == (method, path))
            yield pytest.param(method, path, {"json": {**good, **extra}}, id=f"{case_id}: {route_id}")


@pytest.mark.parametrize("method, path, kwargs", list(_body_cases()))
def test_unusable_body_is_400(seeded, method, path, kwargs):
    assert_error(seeded.open(path, method=method, **kwargs), 400, "INVALID_ARGUMENT")


REQUIRED = [
    ("POST", "/api/v1/models", "name"),
    ("POST", f"{M}/versions", "source"),
    ("PATCH", V, "description"),
    ("PUT", f"{M}/tags/k", "value"),
    ("PUT", f"{V}/tags/k", "value"),
    ("POST", f"{V}/transition", "stage"),
    ("PUT", f"{M}/aliases/a", "version"),
]


@pytest.mark.parametrize("method, path, field", REQUIRED, ids=[f"{m} {p}" for m, p, _ in REQUIRED])
def test_missing_required_field_is_400_naming_it(seeded, method, path, field):
    error = assert_error(seeded.open(path, method=method, json={}), 400, "INVALID_ARGUMENT")
    assert field in error["details"]["fields"]


def test_empty_patch_of_a_model_changes_nothing(seeded):
    before = seeded.get(M).get_json()
    response = seeded.patch(M, json={})
    assert response.status_code == 200
    assert response.get_json() == before


# (method, path, json body) -> 400: wrong types and bad values inside a well-formed body.
WRONG_TYPES = {
    "name-int": ("POST", "/api/v1/models", {"name": 1}),
    "name-null": ("POST", "/api/v1/models", {"name": None}),
    "name-list": ("POST", "/api/v1/models", {"name": ["m2"]}),
    "name-empty": ("POST", "/api/v1/models", {"name": ""}),
    "name-blank": ("POST", "/api/v1/models", {"name": "   "}),
    "name-leading-space": ("POST", "/api/v1/models", {"name": " m2"}),
    "description-int": ("POST", "/api/v1/models", {"name": "m2", "description": 5}),
    "description-too-long": ("POST", "/api/v1/models", {"name": "m2", "description": "x" * 65536}),
    "tags-list": ("POST", "/api/v1/models", {"name": "m2", "tags": ["a", "b"]}),
    "tags-string": ("POST", "/api/v1/models", {"name": "m2", "tags": "a=b"}),
    "tags-int-value": ("POST", "/api/v1/models", {"name": "m2", "tags": {"a": 1}}),
    "tags-null-value": ("POST", "/api/v1/models", {"name": "m2", "tags": {"a": None}}),
    "tags-object-value": ("POST", "/api/v1/models", {"name": "m2", "tags": {"a": {"b": "c"}}}),
    "tags-bad-key": ("POST", "/api/v1/models", {"name": "m2", "tags": {"a..b": "v"}}),
    "tags-empty-key": ("POST", "/api/v1/models", {"name": "m2", "tags": {"": "v"}}),
    "tags-value-too-long": ("POST", "/api/v1/models", {"name": "m2", "tags": {"a": "x" * 100_001}}),
    "rename-int": ("PATCH", M, {"name": 7}),
    "rename-null": ("PATCH", M, {"name": None}),
    "rename-slash": ("PATCH", M, {"name": "a/b"}),
    # "." and ".." are dot segments: clients and proxies remove them from URL paths, so a model with such a
    # name could be created but never reached again.
    "rename-dot": ("PATCH", M, {"name": "."}),
    "rename-dot-dot": ("PATCH", M, {"name": ".."}),
    "source-int": ("POST", f"{M}/versions", {"source": 5}),
    "source-empty": ("POST", f"{M}/versions", {"source": ""}),
    "source-null": ("POST", f"{M}/versions", {"source": None}),
    "run-id-list": ("POST", f"{M}/versions", {"source": "s3://b/s", "run_id": ["r"]}),
    "run-link-int": ("POST", f"{M}/versions", {"source": "s3://b/s", "run_link": 1}),
    "version-tags-list": ("POST", f"{M}/versions", {"source": "s3://b/s", "tags": [["k", "v"]]}),
    "version-description-object": ("PATCH", V, {"description": {}}),
    "tag-value-int": ("PUT", f"{M}/tags/k", {"value": 5}),
    "tag-value-null": ("PUT", f"{V}/tags/k", {"value": None}),
    "stage-int": ("POST", f"{V}/transition", {"stage": 1}),
    "stage-null": ("POST", f"{V}/transition", {"stage": None}),
    "archive-string-true": ("POST", f"{V}/transition", {"stage": "Production", "archive_existing_versions": "true"}),
    "archive-int-1": ("POST", f"{V}/transition", {"stage": "Production", "archive_existing_versions": 1}),
    "archive-int-0": ("POST", f"{V}/transition", {"stage": "Staging", "archive_existing_versions": 0}),
    "archive-null": ("POST", f"{V}/transition", {"stage": "Production", "archive_existing_versions": None}),
    "alias-version-string": ("PUT", f"{M}/aliases/a", {"version": "3"}),
    "alias-version-zero": ("PUT", f"{M}/aliases/a", {"version": 0}),
    "alias-version-negative": ("PUT", f"{M}/aliases/a", {"version": -1}),
    "alias-version-float": ("PUT", f"{M}/aliases/a", {"version": 1.5}),
    "alias-version-bool": ("PUT", f"{M}/aliases/a", {"version": True}),
    "alias-version-huge": ("PUT", f"{M}/aliases/a", {"version": 2**31}),
    "alias-version-null": ("PUT", f"{M}/aliases/a", {"version": None}),
}


@pytest.mark.parametrize("method, path, body", list(WRONG_TYPES.values()), ids=list(WRONG_TYPES))
def test_wrong_type_or_value_in_body_is_400(seeded, method, path, body):
    assert_error(seeded.open(path, method=method, json=body), 400, "INVALID_ARGUMENT")


BAD_MODEL_NAMES = {
    "slash": "a/b",
    "colon": "a:b",
    "newline": "a\nb",
    "tab": "a\tb",
    "nul": "a\x00b",
    "del": "a\x7fb",
    "300-chars": "x" * 300,
    "trailing-space": "ab ",
    "dot": ".",
    "dot-dot": "..",
}


@pytest.mark.parametrize("name", list(BAD_MODEL_NAMES.values()), ids=list(BAD_MODEL_NAMES))
def test_bad_model_name_in_create_body_is_400(seeded, name):
    error = assert_error(seeded.post("/api/v1/models", json={"name": name}), 400, "INVALID_ARGUMENT")
    assert error["details"] == {"field": "name"}


MODEL_ROUTES = [
    ("GET", "", {}),
    ("PATCH", "", {"json": {"description": "d"}}),
    ("DELETE", "", {}),
    ("GET", "/versions", {}),
    ("POST", "/versions", {"json": {"source": "s3://b/s"}}),
    ("GET", "/versions/1", {}),
    ("GET", "/stages/Production", {}),
    ("GET", "/latest-versions", {}),
    ("GET", "/aliases/champion", {}),
    ("PUT", "/tags/k", {"json": {"value": "v"}}),
]


@pytest.mark.parametrize("encoded", ["a%3Ab", "a%0Ab", "a%00b", "a%7Fb", "x" * 300, "ab%20"],
                         ids=["colon", "newline", "nul", "del", "300-chars", "trailing-space"])
@pytest.mark.parametrize("method, suffix, kwargs", MODEL_ROUTES, ids=[f"{m} {s or '.'}" for m, s, _ in MODEL_ROUTES])
def test_bad_model_name_in_path_is_400(seeded, encoded, method, suffix, kwargs):
    response = seeded.open(f"/api/v1/models/{encoded}{suffix}", method=method, **kwargs)
    assert_error(response, 400, "INVALID_ARGUMENT")


def test_encoded_slash_in_model_name_is_404_not_a_match(seeded):
    assert_error(seeded.get("/api/v1/models/a%2Fb"), 404, "NOT_FOUND")


BAD_VERSIONS = ["abc", "1.5", "1e3", "%C2%B2", "%00", "%20", "1_0", "9999999999999999999"]
# Integers no version can have: not found, as in MLflow (which reads versions with int()).
ABSENT_VERSIONS = ["0", "-1", "99999999999", "2147483648"]


VERSION_ROUTES = [
    ("GET", "", {}),
    ("PATCH", "", {"json": {"description": "d"}}),
    ("DELETE", "", {}),
    ("PUT", "/tags/k", {"json": {"value": "v"}}),
    ("DELETE", "/tags/k", {}),
    ("POST", "/transition", {"json": {"stage": "Staging"}}),
]


@pytest.mark.parametrize("version", BAD_VERSIONS)
@pytest.mark.parametrize("method, suffix, kwargs", VERSION_ROUTES,
                         ids=[f"{m} {s or '.'}" for m, s, _ in VERSION_ROUTES])
def test_bad_version_in_path_is_400(seeded, version, method, suffix, kwargs):
    response = seeded.open(f"{M}/versions/{version}{suffix}", method=method, **kwargs)
    assert assert_error(response, 400, "INVALID_ARGUMENT")["details"] == {"field": "version"}


@pytest.mark.parametrize("version", ABSENT_VERSIONS)
@pytest.mark.parametrize("method, suffix, kwargs", VERSION_ROUTES,
                         ids=[f"{m} {s or '.'}" for m, s, _ in VERSION_ROUTES])
def test_a_version_no_version_can_have_is_404(seeded, version, method, suffix, kwargs):
    response = seeded.open(f"{M}/versions/{version}{suffix}", method=method, **kwargs)
    assert assert_error(response, 404, "NOT_FOUND")["details"]["version"] == int(version)


@pytest.mark.parametrize("stage", ["Prod", "Deployed", "", "Production!", "\x00", "Stag ing", " staging ", "Staging "])
def test_bad_stage_in_transition_body_is_400(seeded, stage):
    response = seeded.post(f"{V}/transition", json={"stage": stage})
    assert assert_error(response, 400, "INVALID_ARGUMENT")["details"]["field"] == "stage"
    assert seeded.get(V).get_json()["stage"] == "None"


@pytest.mark.parametrize("stage", ["Prod", "Deployed", "Production!", "%00", "Stag%20ing", "%20Staging%20"])
def test_bad_stage_in_stage_path_is_400(seeded, stage):
    assert_error(seeded.get(f"{M}/stages/{stage}"), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("path", [
    f"{M}/latest-versions?stage=Prod",
    f"{M}/latest-versions?stage=Production&stage=bogus",
    f"{M}/versions?stage=Prod",
    "/api/v1/versions?stage=Prod",
])
def test_bad_stage_in_query_is_400(seeded, path):
    assert_error(seeded.get(path), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("alias", ["latest", "LATEST", "v1", "V12"])
def test_reserved_alias_names_cannot_be_set(seeded, alias):
    assert_error(seeded.put(f"{M}/aliases/{alias}", json={"version": 1}), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("alias", ["has%20space", "a.b", "a%3Ab", "%00", "caf%C3%A9%21", "x" * 256])
@pytest.mark.parametrize("method, kwargs", [("PUT", {"json": {"version": 1}}), ("GET", {}), ("DELETE", {})],
                         ids=["PUT", "GET", "DELETE"])
def test_bad_alias_name_is_400(seeded, alias, method, kwargs):
    response = seeded.open(f"{M}/aliases/{alias}", method=method, **kwargs)
    assert assert_error(response, 400, "INVALID_ARGUMENT")["details"] == {"field": "alias"}


@pytest.mark.parametrize("key", ["a..b", "%00", "a%3Fb", "a%3Cb", "k" * 251, "%0A"])
@pytest.mark.parametrize("method, prefix, kwargs", [
    ("PUT", M, {"json": {"value": "v"}}),
    ("DELETE", M, {}),
    ("PUT", V, {"json": {"value": "v"}}),
    ("DELETE", V, {}),
], ids=["PUT model", "DELETE model", "PUT version", "DELETE version"])
def test_bad_tag_key_in_path_is_400(seeded, key, method, prefix, kwargs):
    response = seeded.open(f"{prefix}/tags/{key}", method=method, **kwargs)
    assert assert_error(response, 400, "INVALID_ARGUMENT")["details"] == {"field": "key"}


LISTINGS = ["/api/v1/models", f"{M}/versions", "/api/v1/versions", "/api/v1/audit-events"]
BAD_QUERIES = {
    "max-results-0": "max_results=0",
    "max-results-1001": "max_results=1001",
    "max-results-x": "max_results=x",
    "max-results-negative": "max_results=-1",
    "max-results-float": "max_results=1.5",
    "max-results-empty": "max_results=",
    "unknown-param": "colour=red",
    "repeated-max-results": "max_results=1&max_results=2",
    "repeated-page-token": "page_token=a&page_token=b",
    "garbage-page-token": "page_token=garbage",
    "base64-non-json-page-token": "page_token=" + base64.urlsafe_b64encode(b"not json").decode(),
    "base64-json-list-page-token": "page_token=" + base64.urlsafe_b64encode(b"[1,2]").decode(),
    "nul-page-token": "page_token=%00",
}


@pytest.mark.parametrize("query", list(BAD_QUERIES.values()), ids=list(BAD_QUERIES))
@pytest.mark.parametrize("path", LISTINGS)
def test_bad_paging_query_is_400(seeded, path, query):
    assert_error(seeded.get(f"{path}?{query}"), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("query", [
    "order_by=bogus", "order_by=", "order_by=name&order_by=-name", "order_by=--name",
    "name_prefix=a&name_prefix=b", "tag=novalue", "tag==v", "tag=a..b=v", "tag=k%3D%00",
    "name_prefix=%00", "name_contains=a%00",
])
def test_bad_model_listing_query_is_400(seeded, query):
    assert_error(seeded.get(f"/api/v1/models?{query}"), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("query", [
    "run_id=%00", "run_id=a&run_id=b", "tag=novalue", "tag=k=%00", "model=a%2Fb", "model=%00",
    "model=m&model=n", "stage=Production&stage=Staging", "order_by=name",
])
def test_bad_global_version_query_is_400(seeded, query):
    assert_error(seeded.get(f"/api/v1/versions?{query}"), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("query", ["run_id=%00", "tag=k=%00", "model=m", "stage=Production&stage=None"])
def test_bad_model_version_query_is_400(seeded, query):
    assert_error(seeded.get(f"{M}/versions?{query}"), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("query", ["max_results=5", "colour=red"])
def test_latest_versions_refuses_unknown_query_params(seeded, query):
    assert_error(seeded.get(f"{M}/latest-versions?{query}"), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("query", [
    "since=abc", "until=2024-13-45", "since=99999999999999999999", "since=-99999999999999999999",
    "since=%C2%B2", "since=1&since=2", "until=", "since=2024-01-01T00:00:00%2B25:00",
    "version=x", "model=m&version=0", "model=m&version=2147483648", "version=1",
    "action=model.exploded", "action=", "since=2000&until=1000",
    "actor=%00", "run_id=%00", "model=%00", "model=a%3Ab",
])
def test_bad_audit_query_is_400(seeded, query):
    assert_error(seeded.get(f"/api/v1/audit-events?{query}"), 400, "INVALID_ARGUMENT")


def _forged(token: str, key) -> str:
    """A real token with its sort key replaced: right query fingerprint, key of the wrong shape."""
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    data["k"] = key
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


FORGED_KEYS = {
    "empty": [],
    "bool": [True],
    "list": [["x"], 1],
    "object": [{"a": 1}, 1],
    "null": [None, 1],
    "float": [1.5],
    "infinity": ["a", float("inf")],
    "nul-string": ["a\x00", 1],
    # JSON can spell a lone surrogate ("\ud800"); it is not UTF-8, so the driver could not send it.
    "lone-surrogate": ["\ud800", 1],
    "int-for-string": [1, 1],
    "string-for-int": ["x"],
    "huge-int": [2**70],
    "three-parts": ["a", 1, 2],
}


@pytest.mark.parametrize("key", list(FORGED_KEYS.values()), ids=list(FORGED_KEYS))
@pytest.mark.parametrize("path", [
    "/api/v1/models?order_by=name", "/api/v1/models?order_by=-created_at", f"{M}/versions", "/api/v1/versions",
    "/api/v1/audit-events",
])
def test_forged_page_token_is_400(seeded, path, key):
    seeded.post("/api/v1/models", json={"name": "m2"})
    seeded.post(f"{M}/versions", json={"source": "s3://b/s"})
    sep = "&" if "?" in path else "?"
    token = seeded.get(f"{path}{sep}max_results=1").get_json()["next_page_token"]
    assert token is not None
    response = seeded.get(f"{path}{sep}max_results=1&page_token={_forged(token, key)}")
    assert assert_error(response, 400, "INVALID_ARGUMENT")["details"] == {"field": "page_token"}


NUL_BODIES = {
    "model-name": ("POST", "/api/v1/models", {"name": "a\x00"}),
    "model-description": ("POST", "/api/v1/models", {"name": "m2", "description": "a\x00"}),
    "model-tag-key": ("POST", "/api/v1/models", {"name": "m2", "tags": {"k\x00": "v"}}),
    "model-tag-value": ("POST", "/api/v1/models", {"name": "m2", "tags": {"k": "v\x00"}}),
    "rename": ("PATCH", M, {"name": "a\x00"}),
    "patch-description": ("PATCH", M, {"description": "\x00"}),
    "source": ("POST", f"{M}/versions", {"source": "s\x00"}),
    "run-id": ("POST", f"{M}/versions", {"source": "s3://b/s", "run_id": "r\x00"}),
    "run-link": ("POST", f"{M}/versions", {"source": "s3://b/s", "run_link": "l\x00"}),
    "version-description": ("PATCH", V, {"description": "d\x00"}),
    "version-tag-value-body": ("POST", f"{M}/versions", {"source": "s3://b/s", "tags": {"k": "\x00"}}),
    "model-tag-put": ("PUT", f"{M}/tags/k", {"value": "\x00"}),
    "version-tag-put": ("PUT", f"{V}/tags/k", {"value": "\x00"}),
}


@pytest.mark.parametrize("method, path, body", list(NUL_BODIES.values()), ids=list(NUL_BODIES))
def test_nul_character_in_body_string_is_400(seeded, method, path, body):
    assert_error(seeded.open(path, method=method, json=body), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("field", ["name", "description", "source"])
def test_lone_surrogate_in_a_body_string_is_400(seeded, field):
    path = f"{M}/versions" if field == "source" else "/api/v1/models"
    body = '{"%s": "\\ud800"%s}' % (field, ', "name": "m2"' if field == "description" else "")
    assert_error(seeded.post(path, data=body, content_type="application/json"), 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize("actor", ["has space", "a/b", "x" * 129, "semi;colon"])
def test_bad_actor_header_is_400_and_writes_nothing(seeded, actor):
    response = seeded.post("/api/v1/models", json={"name": "m2"}, headers={"X-Registry-Actor": actor})
    assert assert_error(response, 400, "INVALID_ARGUMENT")["details"] == {"field": "actor"}
    assert_error(seeded.get("/api/v1/models/m2"), 404, "NOT_FOUND")


def test_body_over_the_limit_is_413(seeded, app):
    assert app.config["MAX_CONTENT_LENGTH"] == MIB  # REGISTRY_MAX_BODY_BYTES default
    body = json.dumps({"name": "m2", "description": "x" * MIB})
    assert_error(seeded.post("/api/v1/models", data=body, content_type="application/json"), 413,
                 "PAYLOAD_TOO_LARGE")
    assert_error(seeded.get("/api/v1/models/m2"), 404, "NOT_FOUND")


def test_body_exactly_at_the_limit_is_read(seeded):
    prefix, suffix = '{"name": "m2", "description": "', '"}'
    body = prefix + "x" * (MIB - len(prefix) - len(suffix)) + suffix
    assert len(body.encode()) == MIB
    # Read and validated (description too long), not refused for its size.
    error = assert_error(seeded.post("/api/v1/models", data=body, content_type="application/json"), 400)
    assert error["details"] == {"field": "description"}


@pytest.mark.parametrize("method, path", [(m, p) for m, p, _ in BODY_ROUTES], ids=BODY_IDS)
def test_oversized_body_is_413_on_every_body_route(seeded, method, path):
    response = seeded.open(path, method=method, data=b"{" + b" " * MIB + b"}", content_type="application/json")
    assert_error(response, 413, "PAYLOAD_TOO_LARGE")
