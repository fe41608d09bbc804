"""openapi.yaml is the contract of the native API. These tests fail when a route, a field or a status drifts.

* Route parity: every Flask rule under /api/v1 (plus /healthz, /readyz and /metrics) is an operation in the spec, and
  every operation in the spec is a rule.
* A realistic scenario drives every operation through the test client, with authentication on and real
  tokens, as in production. openapi-core validates every request and every response. When the server
  refuses a request with 400 or 401, the spec must refuse it too wherever OpenAPI can express the rule.
  Every (operation, documented status) pair must be seen at least once, so the spec cannot promise a
  status that the scenario never shows.
"""
from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pytest
import yaml
from flask import Flask
from openapi_core import OpenAPI
from openapi_core.contrib.werkzeug import WerkzeugOpenAPIRequest, WerkzeugOpenAPIResponse
from openapi_core.templating.paths.exceptions import PathError
from openapi_schema_validator import OAS31Validator
from openapi_spec_validator import validate as validate_spec
from werkzeug.exceptions import HTTPException
from werkzeug.test import EnvironBuilder, TestResponse
from werkzeug.wrappers import Request

from registry import create_app
from registry.api.errors import _HTTP_CODES
from registry.api.rate_limits import RATE_LIMITED
from registry.audit import ACTIONS
from registry.errors import RegistryError
from registry.extensions import db
from registry.lifecycle import Permission, RequestStatus, Stage
from tests import pg

SPEC_PATH = Path(__file__).resolve().parents[3] / "openapi.yaml"
# Flask answers HEAD and OPTIONS by itself for every rule. They are not part of the contract.
CONTRACT_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
_RULE_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


# --- the two sides of the contract --------------------------------------------------------------------


def to_spec_path(rule: str) -> str:
    """Flask's ``/models/<name>`` (or ``<int:name>``) is OpenAPI's ``/models/{name}``."""
    return _RULE_ARGUMENT.sub(r"{\1}", rule)


def is_contract_rule(rule: str) -> bool:
    return rule.startswith("/api/v1/") or rule in {"/healthz", "/readyz", "/metrics"}


def app_operations(app: Flask) -> set[tuple[str, str]]:
    return {
        (to_spec_path(rule.rule), method)
        for rule in app.url_map.iter_rules()
        if is_contract_rule(rule.rule)
        for method in rule.methods & CONTRACT_METHODS
    }


def spec_operations(spec: dict) -> dict[tuple[str, str], dict]:
    return {
        (path, method.upper()): operation
        for path, item in spec["paths"].items()
        for method, operation in item.items()
        if method.upper() in CONTRACT_METHODS
    }


def documented_statuses(spec: dict) -> dict[str, set[int]]:
    return {op["operationId"]: {int(s) for s in op["responses"]} for op in spec_operations(spec).values()}


def _load_spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


@pytest.fixture(scope="module")
def spec() -> dict:
    return _load_spec()


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC_PATH))


def describe(error: BaseException) -> str:
    """openapi-core wraps the jsonschema errors that say *what* is wrong. Show them in failures."""
    parts = [f"{type(error).__name__}: {error}"]
    cause = error.__cause__
    while cause is not None:
        parts.append(f"{type(cause).__name__}: {cause}")
        for schema_error in getattr(cause, "schema_errors", ()) or ():
            parts.append(f"  - {schema_error.message} at {list(schema_error.absolute_path)}")
        cause = cause.__cause__
    return "\n    ".join(parts)


# --- the spec itself ------------------------------------------------------------------------------------


def test_spec_is_a_valid_openapi_3_1_document(spec):
    assert spec["openapi"].startswith("3.1.")
    validate_spec(spec)


def test_every_operation_has_a_unique_operation_id(spec):
    ids = [op.get("operationId") for op in spec_operations(spec).values()]
    assert None not in ids
    assert len(ids) == len(set(ids))


def test_every_route_of_the_app_is_in_the_spec(app, spec):
    missing = app_operations(app) - set(spec_operations(spec))
    assert not missing, f"routes not described in openapi.yaml: {sorted(missing)}"


def test_every_operation_in_the_spec_has_a_route(app, spec):
    extra = set(spec_operations(spec)) - app_operations(app)
    assert not extra, f"openapi.yaml describes operations the app does not serve: {sorted(extra)}"


def _all_subclasses(cls: type) -> set[type]:
    return {sub for direct in cls.__subclasses__() for sub in {direct, *_all_subclasses(direct)}}


def test_spec_error_codes_are_exactly_the_codes_the_server_can_send(spec):
    server_codes = ({cls.code for cls in _all_subclasses(RegistryError)} | set(_HTTP_CODES.values()) | {"INTERNAL"}
                    | {RATE_LIMITED})
    error = spec["components"]["schemas"]["Error"]["properties"]["error"]
    assert set(error["properties"]["code"]["enum"]) == server_codes


@pytest.mark.parametrize(
    ("schema", "values"),
    [
        ("AuditAction", sorted(ACTIONS)),
        ("Stage", [s.value for s in Stage]),
        ("PermissionLevel", [p.name for p in Permission]),
        ("RequestStatus", [s.value for s in RequestStatus]),
    ],
)
def test_spec_enumeration_lists_exactly_the_server_values(spec, schema, values):
    assert sorted(spec["components"]["schemas"][schema]["enum"]) == sorted(values)


_SAMPLE_PATH_VALUES = {
    "name": "fraud-detector", "version": "1", "key": "team", "alias": "champion", "stage": "Production",
    "request_id": "1", "comment_id": "1", "token_id": "1", "event_id": "1", "webhook_id": "1",
}


def sample_url(spec_path: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: _SAMPLE_PATH_VALUES[m.group(1)], spec_path)


def _undocumented_method_cases() -> list[tuple[str, str]]:
    cases = []
    for path, item in _load_spec()["paths"].items():
        documented = {m.upper() for m in item if m.upper() in CONTRACT_METHODS}
        cases.append((path, sorted(CONTRACT_METHODS - documented)[0]))
    return cases


@pytest.mark.parametrize(("path", "method"), _undocumented_method_cases())
def test_undocumented_method_is_refused_with_405_and_an_allow_header_matching_the_spec(
    client, spec, path, method
):
    response = client.open(sample_url(path), method=method, json={})
    assert response.status_code == 405
    OAS31Validator(spec["components"]["schemas"]["Error"]).validate(response.get_json())
    assert response.get_json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    allowed = {m.strip() for m in response.headers["Allow"].split(",")} & CONTRACT_METHODS
    assert allowed == {m.upper() for m in spec["paths"][path] if m.upper() in CONTRACT_METHODS}


# --- the scenario ---------------------------------------------------------------------------------------

_UNSET = object()


@dataclass
class Exchange:
    label: str
    expected_status: int
    spec_accepts_request: bool
    request: Request
    response: TestResponse
    operation_id: str | None

    def __str__(self) -> str:
        target = self.request.full_path.rstrip("?")
        return f"{self.label}: {self.request.method} {target} -> {self.response.status_code}"


@dataclass
class Recorder:
    """Sends requests through a Flask test client and keeps each one with the request openapi-core sees.

    The request is rebuilt from the same arguments, because the app has already read the body stream of
    the one it handled.
    """

    app: Flask
    client: Any
    spec: dict
    auth: dict[str, str]
    exchanges: list[Exchange] = field(default_factory=list)

    def call(
        self,
        method: str,
        path: str,
        expect: int,
        *,
        json: Any = _UNSET,
        data: bytes | str | None = None,
        content_type: str | None = None,
        query: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        auth: dict[str, str] | None | object = _UNSET,
        spec_accepts: bool = True,
        client: Any = None,
        label: str = "",
    ) -> TestResponse:
        credentials = self.auth if auth is _UNSET else (auth or {})
        kwargs: dict[str, Any] = {"method": method, "headers": {**credentials, **(headers or {})}}
        kwargs["path"] = path + ("?" + urlencode(query) if query else "")
        if json is not _UNSET:
            kwargs["json"] = json
        if data is not None:
            kwargs["data"] = data
        if content_type is not None:
            kwargs["content_type"] = content_type
        response = (client or self.client).open(**kwargs)
        request = EnvironBuilder(**kwargs).get_request()
        self.exchanges.append(
            Exchange(label or f"{method} {path}", expect, spec_accepts, request, response, self._operation(request))
        )
        return response

    def _operation(self, request: Request) -> str | None:
        try:
            rule, _ = self.app.url_map.bind_to_environ(request.environ).match(return_rule=True)
        except HTTPException:
            return None
        operation = spec_operations(self.spec).get((to_spec_path(rule.rule), request.method))
        return operation["operationId"] if operation else None


@dataclass
class Users:
    """Authorization headers of the scenario's cast."""

    root: dict[str, str]  # admin
    alice: dict[str, str]  # registry-wide EDIT: creates the models, so MANAGEs them
    bob: dict[str, str]  # only the default READ
    carol: dict[str, str]  # registry-wide MANAGE_PRODUCTION: the reviewer
    erin: dict[str, str]  # no grant of her own: loses everything when the default READ goes


def basic(headers: dict[str, str]) -> dict[str, str]:
    """The same token sent as the password of HTTP Basic auth (what the MLflow client does)."""
    token = headers["Authorization"].removeprefix("Bearer ")
    return {"Authorization": "Basic " + base64.b64encode(f"whoever:{token}".encode()).decode()}


def padded(document: dict, limit: int) -> bytes:
    """Valid JSON that the spec accepts, made larger than the body limit with trailing whitespace."""
    return json.dumps(document).encode() + b" " * limit


def model(name: str) -> str:
    return "/api/v1/models/" + quote(name, safe="")


JSON = "application/json"
FD = model("fraud-detector")


def probes(r: Recorder, admin_url: str) -> None:
    r.call("GET", "/healthz", 200, auth=None)
    r.call("GET", "/readyz", 200, auth=None)
    name = pg.create_database(admin_url, prefix="registry_unmigrated")
    try:
        unready = create_app({"database_url": pg.with_database(admin_url, name)})
        r.call("GET", "/readyz", 503, auth=None, client=unready.test_client(), label="readyz before migrations")
        with unready.app_context():
            db.engine.dispose()
    finally:
        pg.drop_database(admin_url, name)


def identity_and_tokens(r: Recorder, u: Users, too_big: int) -> None:
    r.call("GET", "/api/v1/me", 200)
    r.call("GET", "/api/v1/me", 200, auth=basic(u.alice), label="token as the Basic password")
    r.call("GET", "/api/v1/me", 401, auth={"Authorization": "Bearer reg_not-a-token"}, label="unknown token")

    r.call("GET", "/api/v1/users", 200, auth=u.root)
    r.call("GET", "/api/v1/users", 403, label="users are for admins")
    r.call("POST", "/api/v1/users", 201, json={"name": "dave"}, auth=u.root)
    r.call("POST", "/api/v1/users", 201, json={"name": "ops@example.com", "is_admin": True}, auth=u.root)
    r.call("POST", "/api/v1/users", 409, json={"name": "dave"}, auth=u.root)
    r.call("POST", "/api/v1/users", 400, json={"name": "bad name!"}, auth=u.root, spec_accepts=False)
    r.call("POST", "/api/v1/users", 400, json={"name": "x", "role": "boss"}, auth=u.root, spec_accepts=False)
    r.call("POST", "/api/v1/users", 403, json={"name": "frank"})
    r.call("POST", "/api/v1/users", 413, data=padded({"name": "big"}, too_big), content_type=JSON, auth=u.root)

    ci = r.call("POST", "/api/v1/tokens", 201, json={"description": "ci"}).get_json()
    r.call("POST", "/api/v1/tokens", 201, json={"expires_in_seconds": 3600})
    r.call("POST", "/api/v1/tokens", 201, json={"user": "dave"}, auth=u.root, label="admin issues for dave")
    r.call("POST", "/api/v1/tokens", 403, json={"user": "dave"}, label="tokens for others are for admins")
    r.call("POST", "/api/v1/tokens", 404, json={"user": "nobody"}, auth=u.root)
    r.call("POST", "/api/v1/tokens", 400, json={"expires_in_seconds": 10}, spec_accepts=False)
    r.call("POST", "/api/v1/tokens", 400, json={"expires_in_seconds": "3600"}, spec_accepts=False)
    r.call("POST", "/api/v1/tokens", 413, data=padded({}, too_big), content_type=JSON)
    scraper = r.call("POST", "/api/v1/tokens", 201, json={"user": "dave", "scope": "metrics"}, auth=u.root,
                     label="a metrics-only token").get_json()
    r.call("POST", "/api/v1/tokens", 403, json={"scope": "metrics"}, label="metrics tokens are for admins")
    r.call("POST", "/api/v1/tokens", 400, json={"scope": "everything"}, spec_accepts=False)
    r.call("GET", "/metrics", 200, auth=u.root)
    r.call("GET", "/metrics", 200, auth={"Authorization": f"Bearer {scraper['token']}"}, label="metrics token")
    r.call("GET", "/metrics", 403, label="metrics are for admins and metrics tokens")
    r.call("GET", "/metrics", 401, auth=None, spec_accepts=False)
    r.call("GET", "/api/v1/tokens", 200)
    r.call("GET", "/api/v1/tokens", 200, query=[("user", "dave")], auth=u.root)
    r.call("GET", "/api/v1/tokens", 403, query=[("user", "dave")])
    r.call("GET", "/api/v1/tokens", 400, query=[("owner", "dave")], label="unknown query parameter")
    r.call("DELETE", f"/api/v1/tokens/{ci['id']}", 404, auth=u.bob, label="someone else's token")
    r.call("DELETE", f"/api/v1/tokens/{ci['id']}", 200)
    r.call("DELETE", f"/api/v1/tokens/{ci['id']}", 200, label="revoking twice")
    r.call("DELETE", "/api/v1/tokens/999999999", 404)
    r.call("GET", "/api/v1/me", 401, auth={"Authorization": f"Bearer {ci['token']}"}, label="revoked token")


def models(r: Recorder, u: Users, too_big: int) -> str:
    """Returns the ETag of fraud-detector at creation."""
    created = r.call("POST", "/api/v1/models", 201,
                     json={"name": "fraud-detector", "description": "Scores card payments",
                           "tags": {"team": "risk", "tier": "1"}})
    r.call("POST", "/api/v1/models", 201, json={"name": "churn model", "description": None})
    r.call("POST", "/api/v1/models", 201, json={"name": "spare"})
    r.call("POST", "/api/v1/models", 409, json={"name": "fraud-detector"}, label="duplicate name")
    for label in ("keyed create", "keyed retry (replayed)"):
        r.call("POST", "/api/v1/models", 201, json={"name": "keyed"}, headers={"Idempotency-Key": "create-keyed"},
               label=label)
    r.call("POST", "/api/v1/models", 409, json={"name": "other"}, headers={"Idempotency-Key": "create-keyed"},
           label="key reused for another model")
    r.call("POST", "/api/v1/models/keyed/versions", 409, json={"source": "s3://b/k"},
           headers={"Idempotency-Key": "create-keyed"}, label="key reused for a version")
    r.call("POST", "/api/v1/models/keyed/versions", 201, json={"source": "s3://b/k"},
           headers={"Idempotency-Key": "version-keyed"}, label="keyed version create")
    r.call("POST", "/api/v1/models", 400, json={"name": "x"}, headers={"Idempotency-Key": ""}, spec_accepts=False,
           label="empty Idempotency-Key")
    r.call("POST", "/api/v1/models", 403, json={"name": "bobs-model"}, auth=u.bob, label="READ cannot create")
    r.call("POST", "/api/v1/models", 400, json={"name": "a:b"}, spec_accepts=False, label="name with ':'")
    r.call("POST", "/api/v1/models", 400, json={"name": " padded"}, spec_accepts=False, label="leading space")
    r.call("POST", "/api/v1/models", 400, json={"name": "x", "colour": "red"}, spec_accepts=False)
    r.call("POST", "/api/v1/models", 400, json={}, spec_accepts=False, label="missing name")
    r.call("POST", "/api/v1/models", 400, json={"name": "x", "tags": {"a..b": "1"}}, spec_accepts=False)
    r.call("POST", "/api/v1/models", 400, data="{not json", content_type=JSON, spec_accepts=False)
    r.call("POST", "/api/v1/models", 400, data="[]", content_type=JSON, spec_accepts=False, label="JSON array")
    r.call("POST", "/api/v1/models", 400, data="name=x", content_type="text/plain", spec_accepts=False)
    r.call("POST", "/api/v1/models", 413, data=padded({"name": "big"}, too_big), content_type=JSON)

    r.call("GET", "/api/v1/models", 200)
    r.call("GET", "/api/v1/models", 200, query=[("name_prefix", "fraud"), ("name_contains", "detect"),
                                                ("tag", "team=risk"), ("tag", "tier=1")])
    first = r.call("GET", "/api/v1/models", 200, query=[("order_by", "-created_at"), ("max_results", "1")])
    token = first.get_json()["next_page_token"]
    r.call("GET", "/api/v1/models", 200,
           query=[("order_by", "-created_at"), ("max_results", "1"), ("page_token", token)])
    r.call("GET", "/api/v1/models", 400, query=[("page_token", token)], label="token from another query")
    r.call("GET", "/api/v1/models", 400, query=[("order_by", "size")], spec_accepts=False)
    r.call("GET", "/api/v1/models", 400, query=[("max_results", "0")], spec_accepts=False)
    r.call("GET", "/api/v1/models", 400, query=[("tag", "team")], spec_accepts=False, label="tag without '='")
    # OpenAPI cannot say "no other query parameters" or "this one at most once". The server can.
    r.call("GET", "/api/v1/models", 400, query=[("colour", "red")], label="unknown query parameter")
    r.call("GET", "/api/v1/models", 400, query=[("name_prefix", "a"), ("name_prefix", "b")],
           label="single-valued parameter repeated")

    r.call("GET", FD, 200, auth=u.bob)
    r.call("GET", model("churn model"), 200)
    r.call("GET", model("nope"), 404)
    r.call("GET", model("a:b"), 400, spec_accepts=False)

    etag = created.headers["ETag"]
    r.call("PATCH", FD, 200, json={"description": "Scores card payments in real time"}, headers={"If-Match": etag})
    r.call("PATCH", FD, 412, json={"description": "stale write"}, headers={"If-Match": etag})
    r.call("PATCH", FD, 400, json={}, headers={"If-Match": 'W/"1"'}, spec_accepts=False, label="weak ETag")
    r.call("PATCH", FD, 200, json={}, headers={"If-Match": "*"})
    r.call("PATCH", FD, 409, json={"name": "churn model"}, label="rename onto an existing name")
    r.call("PATCH", FD, 403, json={"description": "mine now"}, auth=u.bob)
    r.call("PATCH", FD, 400, json={"name": None}, spec_accepts=False)
    r.call("PATCH", FD, 400, json={"owner": "risk"}, spec_accepts=False)
    r.call("PATCH", model("nope"), 404, json={"description": "x"})
    r.call("PATCH", FD, 413, data=padded({"description": "x"}, too_big), content_type=JSON)
    r.call("PATCH", model("churn model"), 200, json={"name": "churn", "description": None}, label="rename")

    r.call("PUT", FD + "/tags/owner", 200, json={"value": "risk-team"})
    r.call("PUT", FD + "/tags/owner", 200, json={"value": ""})
    r.call("PUT", FD + "/tags/owner", 403, json={"value": "bob"}, auth=u.bob)
    r.call("PUT", FD + "/tags/owner", 400, json={"value": 3}, spec_accepts=False)
    r.call("PUT", FD + "/tags/bad..key", 400, json={"value": "x"}, spec_accepts=False)
    r.call("PUT", model("nope") + "/tags/owner", 404, json={"value": "x"})
    r.call("PUT", FD + "/tags/owner", 413, data=padded({"value": "x"}, too_big), content_type=JSON)
    r.call("DELETE", FD + "/tags/owner", 403, auth=u.bob)
    r.call("DELETE", FD + "/tags/owner", 204)
    r.call("DELETE", FD + "/tags/owner", 204, label="delete an absent tag")
    r.call("DELETE", FD + "/tags/bad..key", 400, spec_accepts=False)
    r.call("DELETE", model("nope") + "/tags/owner", 404)
    return etag


def versions(r: Recorder, u: Users, too_big: int) -> None:
    r.call("POST", FD + "/versions", 201,
           json={"source": "s3://models/fd/1", "run_id": "run-1", "run_link": "https://ci.example/run-1",
                 "description": "baseline", "tags": {"framework": "xgboost"}})
    r.call("POST", FD + "/versions", 201, json={"source": "s3://models/fd/2", "run_id": "run-2"})
    r.call("POST", FD + "/versions", 201, json={"source": "s3://models/fd/3", "run_id": None})
    r.call("POST", model("churn") + "/versions", 201, json={"source": "s3://models/churn/1"})
    r.call("POST", FD + "/versions", 403, json={"source": "s3://bucket/bob"}, auth=u.bob)
    r.call("POST", FD + "/versions", 400, json={}, spec_accepts=False, label="missing source")
    r.call("POST", FD + "/versions", 400, json={"source": ""}, spec_accepts=False, label="empty source")
    r.call("POST", FD + "/versions", 400, json={"source": "s3://b/s", "stage": "Production"}, spec_accepts=False)
    r.call("POST", model("nope") + "/versions", 404, json={"source": "s3://bucket/x"})
    r.call("POST", FD + "/versions", 413, data=padded({"source": "s3://bucket/x"}, too_big), content_type=JSON)

    r.call("GET", FD + "/versions", 200)
    r.call("GET", FD + "/versions", 200,
           query=[("run_id", "run-1"), ("stage", "none"), ("tag", "framework=xgboost")])
    page = r.call("GET", FD + "/versions", 200, query=[("max_results", "2")])
    r.call("GET", FD + "/versions", 200,
           query=[("max_results", "2"), ("page_token", page.get_json()["next_page_token"])])
    r.call("GET", FD + "/versions", 400, query=[("stage", "Deployed")], spec_accepts=False)
    r.call("GET", model("nope") + "/versions", 404)
    r.call("GET", "/api/v1/versions", 200, auth=u.bob)
    r.call("GET", "/api/v1/versions", 200,
           query=[("model", "fraud-detector"), ("stage", "NONE"), ("run_id", "run-1"), ("tag", "framework=xgboost")])
    r.call("GET", "/api/v1/versions", 400, query=[("max_results", "5000")], spec_accepts=False)
    r.call("GET", "/api/v1/versions", 400, query=[("page_token", "not-a-token")], label="garbage page token")

    v1 = r.call("GET", FD + "/versions/1", 200)
    r.call("GET", FD + "/versions/abc", 400, spec_accepts=False)
    r.call("GET", FD + "/versions/0", 404)  # an integer no version has: not found, as in MLflow
    r.call("GET", FD + "/versions/1.5", 400, spec_accepts=False)
    r.call("GET", FD + "/versions/99", 404)
    r.call("GET", model("nope") + "/versions/1", 404)
    r.call("PATCH", FD + "/versions/1", 200, json={"description": "the baseline"},
           headers={"If-Match": v1.headers["ETag"]})
    r.call("PATCH", FD + "/versions/1", 412, json={"description": "stale"}, headers={"If-Match": v1.headers["ETag"]})
    r.call("PATCH", FD + "/versions/1", 200, json={"description": None})
    r.call("PATCH", FD + "/versions/1", 403, json={"description": "bob was here"}, auth=u.bob)
    r.call("PATCH", FD + "/versions/1", 400, json={}, spec_accepts=False, label="missing description")
    r.call("PATCH", FD + "/versions/99", 404, json={"description": "x"})
    r.call("PATCH", FD + "/versions/1", 413, data=padded({"description": "x"}, too_big), content_type=JSON)

    r.call("PUT", FD + "/versions/1/tags/validated", 200, json={"value": "yes"})
    r.call("PUT", FD + "/versions/1/tags/validated", 403, json={"value": "no"}, auth=u.bob)
    r.call("PUT", FD + "/versions/1/tags/validated", 400, json={}, spec_accepts=False)
    r.call("PUT", FD + "/versions/99/tags/validated", 404, json={"value": "yes"})
    r.call("PUT", FD + "/versions/1/tags/validated", 413, data=padded({"value": "x"}, too_big), content_type=JSON)
    r.call("DELETE", FD + "/versions/1/tags/validated", 403, auth=u.bob)
    r.call("DELETE", FD + "/versions/1/tags/validated", 204)
    r.call("DELETE", FD + "/versions/1/tags/validated", 204, label="delete an absent version tag")
    r.call("DELETE", FD + "/versions/abc/tags/validated", 400, spec_accepts=False)
    r.call("DELETE", FD + "/versions/99/tags/validated", 404)


def watch(r: Recorder, u: Users) -> None:
    """The stream, on apps of its own on the scenario's database: one that beats every second, for a token
    that expires in a moment (the stream then ends with ``end`` and the test client can read it to its end),
    and one without waiting slots (503)."""
    from datetime import timedelta

    from registry.auth import SYSTEM
    from registry.services import identities

    url = r.app.config["REGISTRY_SETTINGS"].database_url
    beating = create_app({"database_url": url, "watch_heartbeat_seconds": 1, "pool_size": 2})
    full = create_app({"database_url": url, "max_waiters": 0, "pool_size": 2})
    with beating.app_context():
        _, token = identities.create_token(SYSTEM, "bob", expires_in=timedelta(seconds=2))
    short_lived = {"Authorization": f"Bearer {token}"}
    selectors = [("select", "fraud-detector:Production"), ("select", "fraud-detector@champion")]
    stream = r.call("GET", "/api/v1/watch", 200, query=selectors, auth=short_lived, client=beating.test_client(),
                    label="a stream until its token expires")
    events = stream.get_data(as_text=True)
    assert "event: answer" in events and "event: missing" in events and "event: end" in events, events
    r.call("GET", "/api/v1/watch", 400, query=[("select", "fraud-detector")], label="selector without stage")
    r.call("GET", "/api/v1/watch", 400, spec_accepts=False, label="no selector")
    r.call("GET", "/api/v1/watch", 401, query=selectors, auth=None, spec_accepts=False)
    r.call("GET", "/api/v1/watch", 503, query=selectors, client=full.test_client(), label="no waiting slot")
    for app in (beating, full):
        with app.app_context():
            db.engine.dispose()


def stages_and_policies(r: Recorder, u: Users, too_big: int) -> None:
    r.call("POST", FD + "/versions/1/transition", 200, json={"stage": "staging", "comment": "smoke tests pass"})
    r.call("POST", FD + "/versions/2/transition", 200, json={"stage": "Production", "archive_existing_versions": True})
    r.call("POST", FD + "/versions/1/transition", 200, json={"stage": "Production", "archive_existing_versions": True})
    r.call("POST", FD + "/versions/3/transition", 422, json={"stage": "Archived", "archive_existing_versions": True})
    r.call("POST", FD + "/versions/3/transition", 400, json={"stage": "Deployed"}, spec_accepts=False)
    r.call("POST", FD + "/versions/3/transition", 400,
           json={"stage": "Staging", "archive_existing_versions": 1}, spec_accepts=False, label="1 is not true")
    r.call("POST", FD + "/versions/3/transition", 403, json={"stage": "Staging"}, auth=u.bob)
    r.call("POST", FD + "/versions/99/transition", 404, json={"stage": "Staging"})
    r.call("POST", FD + "/versions/3/transition", 413, data=padded({"stage": "Staging"}, too_big), content_type=JSON)
    r.call("GET", FD + "/latest-versions", 200)
    r.call("GET", FD + "/latest-versions", 200, query=[("stage", "Production"), ("stage", "archived")])
    r.call("GET", FD + "/latest-versions", 400, query=[("stage", "Gold")], spec_accepts=False)
    r.call("GET", model("nope") + "/latest-versions", 404)
    serving = r.call("GET", FD + "/stages/production", 200, auth=u.bob)
    etag = {"If-None-Match": serving.headers["ETag"]}
    r.call("GET", FD + "/stages/production", 304, headers=etag, label="nothing changed")
    r.call("GET", FD + "/stages/production", 200, query=[("wait", "30")], headers={"If-None-Match": '"0.0"'},
           label="long-poll answers at once when the ETag is already stale")
    r.call("GET", FD + "/stages/production", 304, query=[("wait", "0.05")], headers=etag,
           label="long-poll times out unchanged")
    r.call("GET", FD + "/stages/Staging", 404, label="empty stage")
    r.call("GET", FD + "/stages/Gold", 400, spec_accepts=False)
    r.call("GET", FD + "/stages/production", 400, query=[("wait", "61")], spec_accepts=False)
    now = str(int(time.time() * 1000))
    r.call("GET", FD + "/stages/production", 200, query=[("as_of", now)], auth=u.bob, label="as of an instant")
    r.call("GET", FD + "/stages/production", 404, query=[("as_of", "1970-01-01T00:00:00Z")],
           label="before the model existed")
    r.call("GET", FD + "/stages/production", 400, query=[("as_of", "yesterday")], spec_accepts=False)
    r.call("GET", FD + "/stages/production", 400, query=[("as_of", "2999-01-01T00:00:00Z")], label="future as_of")
    r.call("GET", FD + "/stages/production", 400, query=[("as_of", now), ("wait", "5")], label="as_of with wait")
    r.call("GET", FD + "/timeline", 200)
    r.call("GET", FD + "/timeline", 200, query=[("since", "0"), ("until", now)], auth=u.bob)
    r.call("GET", FD + "/timeline", 400, query=[("since", "last week")], spec_accepts=False)
    r.call("GET", FD + "/timeline", 400, query=[("since", now), ("until", "0")], label="since after until")
    r.call("GET", model("nope") + "/timeline", 404)

    policy = FD + "/approval-policies/production"
    r.call("PUT", policy, 200, json={"required_approvals": 1, "creator_may_not_approve": True})
    r.call("PUT", policy, 403, json={"required_approvals": 0}, auth=u.bob)
    r.call("PUT", policy, 400, json={"required_approvals": 11}, spec_accepts=False)
    r.call("PUT", FD + "/approval-policies/Gold", 400, json={"required_approvals": 1}, spec_accepts=False)
    r.call("PUT", model("nope") + "/approval-policies/production", 404, json={"required_approvals": 1})
    r.call("PUT", policy, 413, data=padded({"required_approvals": 1}, too_big), content_type=JSON)
    r.call("GET", FD + "/approval-policies", 200, auth=u.bob)
    r.call("GET", model("nope") + "/approval-policies", 404)
    r.call("GET", model("a:b") + "/approval-policies", 400, spec_accepts=False)
    r.call("PUT", "/api/v1/approval-policies/staging", 200, json={"required_approvals": 0}, auth=u.root)
    r.call("PUT", "/api/v1/approval-policies/staging", 403, json={"required_approvals": 0})
    r.call("PUT", "/api/v1/approval-policies/staging", 400, json={"required_approvals": "1"}, auth=u.root,
           spec_accepts=False)
    r.call("PUT", "/api/v1/approval-policies/staging", 413, data=padded({"required_approvals": 0}, too_big),
           content_type=JSON, auth=u.root)
    r.call("GET", "/api/v1/approval-policies", 200, auth=u.bob)

    r.call("POST", FD + "/versions/3/transition", 403, json={"stage": "Production"}, label="policy needs approval")
    r.call("POST", FD + "/versions/3/transition", 403, json={"stage": "Production", "force": True},
           label="only admins may force")
    r.call("POST", FD + "/versions/2/transition", 200, json={"stage": "Production", "force": True}, auth=u.root,
           label="admin forces a rollback past the policy")


def reviews(r: Recorder, u: Users, too_big: int) -> int:
    """Returns the id of the request that was approved."""
    requests = FD + "/versions/3/transition-requests"
    r1 = r.call("POST", requests, 201, json={"stage": "production", "comment": "ship it"}).get_json()["id"]
    r.call("POST", requests, 409, json={"stage": "Production"}, label="already pending")
    r.call("POST", FD + "/versions/2/transition-requests", 422, json={"stage": "Production"}, label="already there")
    r.call("POST", requests, 400, json={"stage": "Gold"}, spec_accepts=False)
    r.call("POST", FD + "/versions/99/transition-requests", 404, json={"stage": "Staging"})
    r.call("POST", requests, 413, data=padded({"stage": "Staging"}, too_big), content_type=JSON)
    r.call("GET", requests, 200, auth=u.bob)
    r.call("GET", requests, 200, query=[("status", "pending"), ("max_results", "1")])
    r.call("GET", requests, 400, query=[("status", "open")], spec_accepts=False)
    r.call("GET", FD + "/versions/abc/transition-requests", 400, spec_accepts=False)
    r.call("GET", FD + "/versions/99/transition-requests", 404)
    r.call("GET", FD + "/transition-requests", 200)
    r.call("GET", FD + "/transition-requests", 400, query=[("status", "bogus")], spec_accepts=False)
    r.call("GET", model("nope") + "/transition-requests", 404)
    r.call("GET", f"/api/v1/transition-requests/{r1}", 200, auth=u.bob)
    r.call("GET", "/api/v1/transition-requests/999999999", 404)
    r.call("GET", "/api/v1/inbox", 200, auth=u.carol)
    r.call("GET", "/api/v1/inbox", 400, query=[("max_results", "0")], spec_accepts=False)

    approve = f"/api/v1/transition-requests/{r1}/approve"
    r.call("POST", approve, 403, json={}, label="approving one's own request")
    r.call("POST", approve, 403, json={}, auth=u.bob, label="READ cannot approve")
    r.call("POST", approve, 400, json={"note": "x"}, auth=u.carol, spec_accepts=False)
    r.call("POST", "/api/v1/transition-requests/999999999/approve", 404, json={}, auth=u.carol)
    r.call("POST", approve, 413, data=padded({}, too_big), content_type=JSON, auth=u.carol)
    r.call("POST", approve, 200, json={"comment": "lgtm"}, auth=u.carol, label="approval applies the transition")
    r.call("POST", approve, 409, json={}, auth=u.carol, label="no longer pending")
    r.call("GET", f"/api/v1/transition-requests/{r1}/history", 200)
    r.call("GET", "/api/v1/transition-requests/999999999/history", 404)

    r2 = r.call("POST", FD + "/versions/1/transition-requests", 201, json={"stage": "Staging"}).get_json()["id"]
    reject = f"/api/v1/transition-requests/{r2}/reject"
    r.call("POST", reject, 403, json={}, label="rejecting one's own request")
    r.call("POST", reject, 400, json={"comment": 5}, auth=u.carol, spec_accepts=False)
    r.call("POST", "/api/v1/transition-requests/999999999/reject", 404, json={}, auth=u.carol)
    r.call("POST", reject, 413, data=padded({}, too_big), content_type=JSON, auth=u.carol)
    r.call("POST", reject, 200, json={"comment": "not yet"}, auth=u.carol)
    r.call("POST", reject, 409, json={}, auth=u.carol)

    r3 = r.call("POST", FD + "/versions/1/transition-requests", 201, json={"stage": "Archived"}, auth=u.bob)
    cancel = f"/api/v1/transition-requests/{r3.get_json()['id']}/cancel"
    r.call("POST", cancel, 403, json={}, auth=u.carol, label="cancelling someone else's without MANAGE")
    r.call("POST", cancel, 400, data="", content_type=JSON, auth=u.bob, spec_accepts=False, label="empty body")
    r.call("POST", "/api/v1/transition-requests/999999999/cancel", 404, json={}, auth=u.bob)
    r.call("POST", cancel, 413, data=padded({}, too_big), content_type=JSON, auth=u.bob)
    r.call("POST", cancel, 200, json={"comment": "changed my mind"}, auth=u.bob)
    r.call("POST", cancel, 409, json={}, auth=u.bob)
    return r1


def comments(r: Recorder, u: Users, too_big: int) -> None:
    thread = FD + "/versions/1/comments"
    first = r.call("POST", thread, 201, json={"comment": "AUC 0.93 on the holdout set"}).get_json()["id"]
    second = r.call("POST", thread, 201, json={"comment": "Latency is fine"}).get_json()["id"]
    r.call("POST", thread, 403, json={"comment": "+1"}, auth=u.bob, label="commenting needs EDIT")
    r.call("POST", thread, 400, json={"comment": ""}, spec_accepts=False)
    r.call("POST", FD + "/versions/99/comments", 404, json={"comment": "x"})
    r.call("POST", thread, 413, data=padded({"comment": "x"}, too_big), content_type=JSON)
    r.call("GET", thread, 200, auth=u.bob)
    r.call("GET", FD + "/versions/99/comments", 404)
    r.call("GET", FD + "/versions/abc/comments", 400, spec_accepts=False)
    r.call("PATCH", f"/api/v1/comments/{first}", 200, json={"comment": "AUC 0.94 on the holdout set"})
    r.call("PATCH", f"/api/v1/comments/{first}", 403, json={"comment": "edited by root"}, auth=u.root,
           label="only the author edits")
    r.call("PATCH", f"/api/v1/comments/{first}", 400, json={}, spec_accepts=False)
    r.call("PATCH", "/api/v1/comments/999999999", 404, json={"comment": "x"})
    r.call("PATCH", f"/api/v1/comments/{first}", 413, data=padded({"comment": "x"}, too_big), content_type=JSON)
    r.call("DELETE", f"/api/v1/comments/{first}", 403, auth=u.bob)
    r.call("DELETE", f"/api/v1/comments/{first}", 204)
    r.call("DELETE", f"/api/v1/comments/{first}", 404)
    r.call("DELETE", f"/api/v1/comments/{second}", 204, auth=u.root, label="admins may delete any comment")


def permissions(r: Recorder, u: Users, too_big: int) -> None:
    grants = FD + "/permissions"
    r.call("GET", grants, 200)
    r.call("GET", grants, 403, auth=u.bob)
    r.call("GET", model("nope") + "/permissions", 404)
    r.call("GET", model("a:b") + "/permissions", 400, spec_accepts=False)
    mine = {"principal": "alice", "level": "MANAGE"}
    r.call("PUT", grants, 200, json={"grants": [mine, {"principal": "bob", "level": "CAN_EDIT"}]})
    r.call("PUT", grants, 403, json={"grants": []}, auth=u.bob)
    r.call("PUT", grants, 400, json={"grants": [mine, {"principal": "nobody", "level": "READ"}]},
           label="unknown user")
    r.call("PUT", grants, 400, json={"grants": "everyone"}, spec_accepts=False)
    r.call("PUT", model("nope") + "/permissions", 404, json={"grants": []})
    r.call("PUT", grants, 413, data=padded({"grants": []}, too_big), content_type=JSON)
    r.call("PATCH", grants, 200, json={"grants": [{"principal": "dave", "level": "READ"}]})
    r.call("PATCH", grants, 403, json={"grants": []}, auth=u.bob, label="EDIT cannot manage permissions")
    r.call("PATCH", grants, 400, json={"grants": [{"principal": "bob", "level": "GOD"}]}, label="unknown level")
    r.call("PATCH", grants, 400, json={}, spec_accepts=False)
    r.call("PATCH", model("nope") + "/permissions", 404, json={"grants": []})
    r.call("PATCH", grants, 413, data=padded({"grants": []}, too_big), content_type=JSON)

    r.call("GET", "/api/v1/permissions", 200, auth=u.bob)
    registry_wide = [{"principal": "*", "level": "READ"}, {"principal": "alice", "level": "EDIT"},
                     {"principal": "carol", "level": "MANAGE_PRODUCTION"}]
    r.call("PUT", "/api/v1/permissions", 200, json={"grants": registry_wide}, auth=u.root)
    r.call("PUT", "/api/v1/permissions", 403, json={"grants": registry_wide}, label="admins only")
    r.call("PUT", "/api/v1/permissions", 400, json={"grants": [{"principal": "*"}]}, auth=u.root, spec_accepts=False)
    r.call("PUT", "/api/v1/permissions", 413, data=padded({"grants": []}, too_big), content_type=JSON, auth=u.root)
    r.call("PATCH", "/api/v1/permissions", 200, json={"grants": [{"principal": "dave", "level": "read"}]}, auth=u.root)
    r.call("PATCH", "/api/v1/permissions", 403, json={"grants": []})
    r.call("PATCH", "/api/v1/permissions", 400, json={"grants": [{"principal": "bad name!", "level": "READ"}]},
           auth=u.root, spec_accepts=False)
    r.call("PATCH", "/api/v1/permissions", 413, data=padded({"grants": []}, too_big), content_type=JSON, auth=u.root)


def aliases(r: Recorder, u: Users, too_big: int) -> None:
    r.call("PUT", FD + "/aliases/champion", 200, json={"version": 2})
    r.call("PUT", FD + "/aliases/champion", 200, json={"version": 1}, label="move an alias")
    r.call("PUT", FD + "/aliases/challenger", 200, json={"version": 3})
    r.call("PUT", FD + "/aliases/champion", 403, json={"version": 3}, auth=u.bob)
    r.call("PUT", FD + "/aliases/Latest", 400, json={"version": 1}, spec_accepts=False, label="reserved latest")
    r.call("PUT", FD + "/aliases/v3", 400, json={"version": 1}, spec_accepts=False, label="reserved v<N>")
    r.call("PUT", FD + "/aliases/champion", 400, json={"version": "2"}, spec_accepts=False, label="string version")
    r.call("PUT", FD + "/aliases/champion", 404, json={"version": 99})
    r.call("PUT", FD + "/aliases/champion", 413, data=padded({"version": 1}, too_big), content_type=JSON)
    resolved = r.call("GET", FD + "/aliases/champion", 200, auth=u.bob)
    r.call("GET", FD + "/aliases/champion", 304, headers={"If-None-Match": resolved.headers["ETag"]})
    r.call("GET", FD + "/aliases/latest", 200)
    r.call("GET", FD + "/aliases/champion", 200, query=[("as_of", str(int(time.time() * 1000)))])
    r.call("GET", FD + "/aliases/runner-up", 404)
    r.call("GET", FD + "/aliases/bad.alias", 400, spec_accepts=False)
    r.call("DELETE", FD + "/aliases/champion", 403, auth=u.bob)
    r.call("DELETE", FD + "/aliases/champion", 204)
    r.call("DELETE", FD + "/aliases/champion", 204, label="delete an absent alias")
    r.call("DELETE", FD + "/aliases/bad.alias", 400, spec_accepts=False)
    r.call("DELETE", model("nope") + "/aliases/champion", 404)


def protected_aliases(r: Recorder, u: Users, too_big: int) -> None:
    """Alias policies, the side doors they close, and alias requests (reviewed like transition requests)."""
    policy = FD + "/approval-policies/aliases/champion"
    r.call("GET", policy, 200, auth=u.bob, label="an alias without a policy is unprotected")
    r.call("GET", FD + "/approval-policies/aliases/latest", 400, spec_accepts=False, label="latest is reserved")
    r.call("GET", model("nope") + "/approval-policies/aliases/champion", 404)
    r.call("PUT", policy, 200, json={"required_approvals": 1}, label="protect champion")
    r.call("PUT", policy, 403, json={"required_approvals": 0}, auth=u.bob)
    r.call("PUT", policy, 400, json={"required_approvals": 11}, spec_accepts=False)
    r.call("PUT", model("nope") + "/approval-policies/aliases/champion", 404, json={"required_approvals": 1})
    r.call("PUT", policy, 413, data=padded({"required_approvals": 1}, too_big), content_type=JSON)
    registry_wide = "/api/v1/approval-policies/aliases/prod"
    r.call("PUT", registry_wide, 200, json={"required_approvals": 2}, auth=u.root)
    r.call("PUT", registry_wide, 403, json={"required_approvals": 0}, label="admins only")
    r.call("PUT", registry_wide, 400, json={"required_approvals": "1"}, auth=u.root, spec_accepts=False)
    r.call("PUT", registry_wide, 413, data=padded({"required_approvals": 0}, too_big), content_type=JSON,
           auth=u.root)
    r.call("GET", registry_wide, 200, auth=u.bob)
    r.call("GET", "/api/v1/approval-policies/aliases/v1", 400, spec_accepts=False, label="v<N> is reserved")
    r.call("GET", FD + "/approval-policies", 200, label="stage and alias policies")

    r.call("PUT", FD + "/aliases/champion", 403, json={"version": 1}, label="a protected alias needs a request")
    r.call("PUT", FD + "/aliases/champion", 403, json={"version": 1, "force": True}, label="only admins force")
    r.call("PUT", FD + "/aliases/champion", 400, json={"version": 1, "force": "yes"}, spec_accepts=False)
    r.call("PUT", FD + "/aliases/champion", 200, json={"version": 1, "force": True}, auth=u.root,
           label="an admin forces it")
    r.call("DELETE", FD + "/aliases/champion", 403, label="deleting a protected alias needs a request")
    r.call("DELETE", FD + "/aliases/champion", 400, query=[("force", "yes")], spec_accepts=False)
    r.call("PATCH", FD, 403, json={"name": "fraud-detector-v2"}, label="renaming what serves Production")
    r.call("PATCH", FD, 400, json={"name": "fraud-detector-v2", "force": 1}, spec_accepts=False)

    requests = FD + "/versions/2/alias-requests"
    made = r.call("POST", requests, 201, json={"alias": "champion", "comment": "v2 wins"}).get_json()["id"]
    r.call("POST", requests, 409, json={"alias": "champion"}, label="already pending")
    r.call("POST", FD + "/versions/1/alias-requests", 422, json={"alias": "champion"}, label="already so")
    r.call("POST", requests, 400, json={"alias": "latest"}, spec_accepts=False)
    r.call("POST", requests, 400, json={}, spec_accepts=False, label="missing alias")
    r.call("POST", FD + "/versions/99/alias-requests", 404, json={"alias": "champion"})
    r.call("POST", requests, 413, data=padded({"alias": "champion"}, too_big), content_type=JSON)
    r.call("POST", f"/api/v1/transition-requests/{made}/approve", 403, json={}, label="own alias request")
    r.call("POST", f"/api/v1/transition-requests/{made}/approve", 200, json={"comment": "ok"}, auth=u.carol,
           label="an approval moves the alias")
    r.call("GET", f"/api/v1/transition-requests/{made}/history", 200)

    deletions = FD + "/aliases/champion/deletion-requests"
    gone = r.call("POST", deletions, 201, json={"comment": "retire"}).get_json()["id"]
    r.call("POST", deletions, 409, json={}, label="already pending")
    r.call("POST", FD + "/aliases/runner-up/deletion-requests", 404, json={}, label="alias not set")
    r.call("POST", FD + "/aliases/latest/deletion-requests", 400, json={}, spec_accepts=False)
    r.call("POST", deletions, 413, data=padded({}, too_big), content_type=JSON)
    r.call("GET", "/api/v1/inbox", 200, auth=u.carol)
    r.call("POST", f"/api/v1/transition-requests/{gone}/cancel", 200, json={})


def audit_and_deletes(r: Recorder, u: Users, approved_request: int) -> None:
    # Deleting a version drops its aliases; its number is gone for good. Version 3 serves Production, whose
    # policy requires a review: only an admin's force deletes it.
    r.call("DELETE", FD + "/versions/3", 403, auth=u.bob, label="EDIT cannot delete versions")
    r.call("DELETE", FD + "/versions/3", 403, label="deleting what serves Production needs a review")
    r.call("DELETE", FD + "/versions/3", 400, query=[("force", "yes")], spec_accepts=False)
    r.call("DELETE", FD + "/versions/3", 204, query=[("force", "true")], auth=u.root, label="an admin forces it")
    r.call("DELETE", FD + "/versions/3", 404)
    r.call("DELETE", FD + "/versions/abc", 400, spec_accepts=False)

    r.call("GET", "/api/v1/audit-events", 200)
    events = r.call("GET", "/api/v1/audit-events", 200, query=[("model", "fraud-detector"), ("max_results", "2")])
    r.call("GET", "/api/v1/audit-events", 200,
           query=[("model", "fraud-detector"), ("max_results", "2"),
                  ("page_token", events.get_json()["next_page_token"])])
    r.call("GET", "/api/v1/audit-events", 200,
           query=[("model", "fraud-detector"), ("version", "1"), ("action", "version.transitioned"),
                  ("actor", "alice"), ("run_id", "run-1"), ("since", "0"), ("until", "2999-01-01T00:00:00Z")])
    r.call("GET", "/api/v1/audit-events", 200, query=[("request_id", str(approved_request))], auth=u.bob)
    r.call("GET", "/api/v1/audit-events", 400, query=[("action", "model.exploded")], spec_accepts=False)
    r.call("GET", "/api/v1/audit-events", 400, query=[("version", "0"), ("model", "m")], spec_accepts=False)
    r.call("GET", "/api/v1/audit-events", 400, query=[("version", "1")], label="version without model")
    r.call("GET", "/api/v1/audit-events", 400, query=[("since", "yesterday")], label="unparseable since")

    r.call("DELETE", model("churn"), 403, auth=u.bob)
    r.call("DELETE", FD, 403, label="deleting a model that serves Production needs a review")
    r.call("DELETE", model("churn"), 204)
    r.call("DELETE", model("churn"), 404)
    r.call("DELETE", model("a:b"), 400, spec_accepts=False)
    r.call("GET", "/api/v1/audit-events", 200, query=[("model", "churn")], label="events outlive their model")

    # Without the default READ grant, a user with no grant of her own cannot even read the registry's grants.
    r.call("PUT", "/api/v1/permissions", 200, json={"grants": [{"principal": "alice", "level": "EDIT"}]},
           auth=u.root, label="drop the default READ")
    r.call("GET", "/api/v1/permissions", 403, auth=u.erin)


def events_and_deliveries(r: Recorder, u: Users) -> None:
    from registry.auth import SYSTEM
    from registry.services import webhooks

    with r.app.app_context():  # webhooks are made through the Databricks API, which is not in this contract
        hook = webhooks.create_webhook(SYSTEM, ["MODEL_VERSION_CREATED"], model_name="fraud-detector",
                                       http=webhooks.HttpTarget(url="https://hooks.example/x", secret="s"))
    r.call("POST", FD + "/versions", 201, json={"source": "s3://bucket/events"})
    feed = r.call("GET", "/api/v1/events", 200, query=[("max_results", "1000")]).get_json()
    r.call("GET", "/api/v1/events", 200, query=[("after", feed["cursor"]), ("wait", "0")])
    r.call("GET", "/api/v1/events", 400, query=[("after", "abc")], spec_accepts=False)
    log = f"/api/v1/webhooks/{hook.id}/deliveries"
    delivery = r.call("GET", log, 200).get_json()["deliveries"][0]
    r.call("GET", log, 200, query=[("state", "pending"), ("max_results", "1")])
    r.call("GET", log, 400, query=[("state", "lost")], spec_accepts=False)
    r.call("GET", log, 403, auth=u.bob)
    r.call("GET", "/api/v1/webhooks/987654/deliveries", 404)
    r.call("GET", f"/api/v1/events/{delivery['event_id']}/deliveries", 200)
    redeliver = f"/api/v1/webhooks/{hook.id}/redeliver"
    r.call("POST", redeliver, 200, json={"delivery_id": delivery["id"]})
    r.call("POST", redeliver, 400, json={}, label="neither a delivery nor a range")
    r.call("POST", redeliver, 403, json={"from_event_id": 1}, auth=u.bob)
    r.call("POST", "/api/v1/webhooks/987654/redeliver", 404, json={"from_event_id": 1})

    native = r.call("POST", "/api/v1/webhooks", 201, json={"url": "https://hooks.example/n", "model": "fraud-detector",
                                                          "events": ["version.transitioned:Production"]}).get_json()
    r.call("POST", "/api/v1/webhooks", 400, json={"url": "https://hooks.example/n", "events": ["nope"]})
    r.call("POST", "/api/v1/webhooks", 403, json={"url": "https://hooks.example/n", "events": ["model.created"]},
           label="registry-wide webhooks are for admins")
    r.call("POST", "/api/v1/webhooks", 404, json={"url": "https://hooks.example/n", "model": "nope",
                                                 "events": ["alias.set"]})
    r.call("GET", "/api/v1/webhooks", 200)
    r.call("GET", "/api/v1/webhooks", 200, query=[("model", "fraud-detector"), ("max_results", "1")])
    r.call("GET", "/api/v1/webhooks", 400, query=[("max_results", "0")], spec_accepts=False)
    r.call("GET", "/api/v1/webhooks", 403, query=[("model", "fraud-detector")], auth=u.bob)
    r.call("GET", "/api/v1/webhooks", 404, query=[("model", "nope")])
    one = f"/api/v1/webhooks/{native['id']}"
    r.call("GET", one, 200)
    r.call("GET", one, 403, auth=u.bob)
    r.call("GET", "/api/v1/webhooks/987654", 404)
    r.call("PATCH", one, 200, json={"status": "DISABLED", "description": "paused"})
    r.call("PATCH", one, 400, json={"status": "PAUSED"}, spec_accepts=False)
    r.call("PATCH", one, 403, json={"status": "ACTIVE"}, auth=u.bob)
    r.call("PATCH", "/api/v1/webhooks/987654", 404, json={})
    r.call("POST", one + "/rotate-secret", 200, json={"overlap_seconds": 60})
    r.call("POST", one + "/rotate-secret", 400, json={"overlap_seconds": -1}, spec_accepts=False)
    r.call("POST", one + "/rotate-secret", 403, json={}, auth=u.bob)
    r.call("POST", "/api/v1/webhooks/987654/rotate-secret", 404, json={})
    r.call("POST", one + "/test", 200, json={}, label="the receiver cannot be reached: status_code null")
    r.call("POST", one + "/test", 400, json={"event": "nope"})
    r.call("POST", one + "/test", 403, json={}, auth=u.bob)
    r.call("POST", "/api/v1/webhooks/987654/test", 404, json={})
    r.call("DELETE", one, 403, auth=u.bob)
    r.call("DELETE", one, 204)
    r.call("DELETE", one, 404)


def unauthenticated(r: Recorder) -> None:
    """Every operation but the probes needs a token. A request without one breaks the spec too."""
    for (path, method), operation in spec_operations(r.spec).items():
        if operation.get("security", r.spec.get("security")):
            body = {"json": {}} if method in {"POST", "PUT", "PATCH"} else {}
            r.call(method, sample_url(path), 401, auth=None, spec_accepts=False, label="no token", **body)


def run_scenario(r: Recorder, u: Users, admin_url: str) -> None:
    too_big = r.app.config["MAX_CONTENT_LENGTH"]
    probes(r, admin_url)
    identity_and_tokens(r, u, too_big)
    models(r, u, too_big)
    versions(r, u, too_big)
    stages_and_policies(r, u, too_big)
    watch(r, u)
    approved_request = reviews(r, u, too_big)
    comments(r, u, too_big)
    permissions(r, u, too_big)
    aliases(r, u, too_big)
    protected_aliases(r, u, too_big)
    events_and_deliveries(r, u)
    audit_and_deletes(r, u, approved_request)
    unauthenticated(r)


@pytest.fixture
def exchanges(secure_app, secure_client, make_user, spec, admin_url) -> list[Exchange]:
    users = Users(
        root=make_user("root", admin=True),
        alice=make_user("alice", "EDIT"),
        bob=make_user("bob"),
        carol=make_user("carol", "MANAGE_PRODUCTION"),
        erin=make_user("erin"),
    )
    recorder = Recorder(secure_app, secure_client, spec, auth=users.alice)
    run_scenario(recorder, users, admin_url)
    return recorder.exchanges


def test_each_scenario_step_gets_the_status_it_expects(exchanges):
    wrong = [f"{e} (expected {e.expected_status}): {e.response.get_data(as_text=True)[:300]}"
             for e in exchanges if e.response.status_code != e.expected_status]
    assert not wrong, "\n".join(wrong)


def test_every_scenario_request_maps_to_a_spec_operation(exchanges):
    unmapped = [str(e) for e in exchanges if e.operation_id is None]
    assert not unmapped, "\n".join(unmapped)


def test_requests_the_spec_allows_pass_request_validation(exchanges, openapi):
    failures = []
    for e in (e for e in exchanges if e.spec_accepts_request):
        errors = list(openapi.iter_request_errors(WerkzeugOpenAPIRequest(e.request)))
        failures += [f"{e}\n    {describe(err)}" for err in errors]
    assert not failures, "\n".join(failures)


def test_requests_the_spec_forbids_fail_request_validation_and_are_refused(exchanges, openapi):
    failures = []
    for e in (e for e in exchanges if not e.spec_accepts_request):
        errors = list(openapi.iter_request_errors(WerkzeugOpenAPIRequest(e.request)))
        if not errors:
            failures.append(f"{e}: the spec accepts this request but the server refuses it")
        elif any(isinstance(err, PathError) for err in errors):
            failures.append(f"{e}: refused only because no spec operation matched: {errors}")
        if e.response.status_code not in {400, 401}:
            failures.append(f"{e}: expected 400 or 401")
    assert not failures, "\n".join(failures)


def test_every_response_conforms_to_the_spec(exchanges, openapi):
    failures = []
    for e in exchanges:
        request, response = WerkzeugOpenAPIRequest(e.request), WerkzeugOpenAPIResponse(e.response)
        failures += [f"{e}\n    {describe(err)}" for err in openapi.iter_response_errors(request, response)]
    assert not failures, "\n".join(failures)


def test_every_documented_status_of_every_operation_is_exercised(exchanges, spec):
    seen: dict[str, set[int]] = {}
    for e in exchanges:
        if e.operation_id is not None:
            seen.setdefault(e.operation_id, set()).add(e.response.status_code)
    missing = {
        operation: sorted(statuses - seen.get(operation, set()))
        for operation, statuses in documented_statuses(spec).items()
        if statuses - seen.get(operation, set())
    }
    assert not missing, f"documented (operation: statuses) never exercised by the scenario: {missing}"
