"""openapi.yaml is the contract of the native API: these tests fail when a route, a field or a status drifts.

* Route parity: every Flask rule under /api/v1 (plus /healthz, /readyz) is a spec operation and vice versa.
* A realistic scenario drives every operation through the test client; every request and response is
  validated with openapi-core. A request the server refuses with 400 must also be refused by the spec where
  OpenAPI can express the rule, and every (operation, documented status) pair must be seen at least once,
  so the spec cannot promise a status the scenario never proves.
"""
from __future__ import annotations

import json
import re
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
from registry.audit import ACTIONS
from registry.auth import SYSTEM
from registry.errors import RegistryError
from registry.extensions import db
from registry.lifecycle import Stage
from registry.services import identities, permissions
from tests import pg

SPEC_PATH = Path(__file__).resolve().parents[2] / "openapi.yaml"
# HEAD and OPTIONS are answered automatically by Flask for every rule; they are not part of the contract.
CONTRACT_METHODS = {"GET", "POST", "PUT", "PATCH", "DELETE"}
_RULE_ARGUMENT = re.compile(r"<(?:[^<>:]+:)?([^<>]+)>")


# --- the two sides of the contract --------------------------------------------------------------------


def to_spec_path(rule: str) -> str:
    """Flask's ``/models/<name>`` (or ``<int:name>``) is OpenAPI's ``/models/{name}``."""
    return _RULE_ARGUMENT.sub(r"{\1}", rule)


def is_contract_rule(rule: str) -> bool:
    return rule.startswith("/api/v1/") or rule in {"/healthz", "/readyz"}


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


@pytest.fixture(scope="module")
def spec() -> dict:
    return yaml.safe_load(SPEC_PATH.read_text())


@pytest.fixture(scope="module")
def openapi() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPEC_PATH))


def describe(error: BaseException) -> str:
    """openapi-core wraps the jsonschema errors that say *what* is wrong; surface them in failures."""
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
    server_codes = {cls.code for cls in _all_subclasses(RegistryError)} | set(_HTTP_CODES.values()) | {"INTERNAL"}
    assert set(spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["code"]["enum"]) == (
        server_codes
    )


def test_spec_audit_actions_are_exactly_the_actions_the_server_records(spec):
    assert set(spec["components"]["schemas"]["AuditAction"]["enum"]) == ACTIONS


def test_spec_stages_are_exactly_the_lifecycle_stages(spec):
    assert spec["components"]["schemas"]["Stage"]["enum"] == [s.value for s in Stage]


_SAMPLE_PATH_VALUES = {"name": "m", "version": "1", "key": "k", "alias": "a", "stage": "Production"}


def _undocumented_method_cases() -> list[tuple[str, str]]:
    paths = yaml.safe_load(SPEC_PATH.read_text())["paths"]
    cases = []
    for path, item in paths.items():
        documented = {m.upper() for m in item if m.upper() in CONTRACT_METHODS}
        cases.append((path, sorted(CONTRACT_METHODS - documented)[0]))
    return cases


@pytest.mark.parametrize(("path", "method"), _undocumented_method_cases())
def test_undocumented_method_is_refused_with_405_and_an_allow_header_matching_the_spec(
    client, spec, path, method
):
    url = re.sub(r"\{(\w+)\}", lambda m: _SAMPLE_PATH_VALUES[m.group(1)], path)
    response = client.open(url, method=method, json={})
    assert response.status_code == 405
    OAS31Validator(spec["components"]["schemas"]["Error"]).validate(response.get_json())
    assert response.get_json()["error"]["code"] == "METHOD_NOT_ALLOWED"
    allowed = {m.strip() for m in response.headers["Allow"].split(",")} & CONTRACT_METHODS
    assert allowed == {m.upper() for m in spec["paths"][path] if m.upper() in CONTRACT_METHODS}


# --- the scenario ---------------------------------------------------------------------------------------

_NO_BODY = object()


@dataclass
class Exchange:
    label: str
    expected_status: int
    spec_accepts_request: bool
    request: Request
    response: TestResponse
    operation_id: str | None

    def __str__(self) -> str:
        return f"{self.label}: {self.request.method} {self.request.full_path.rstrip('?')} -> {self.response.status_code}"


@dataclass
class Recorder:
    """Sends requests through the Flask test client and keeps each one with the request openapi-core sees.

    The request is rebuilt from the same arguments because the one the app handled has had its body
    stream consumed.
    """

    app: Flask
    client: Any
    spec: dict
    exchanges: list[Exchange] = field(default_factory=list)

    def call(
        self,
        method: str,
        path: str,
        expect: int,
        *,
        json: Any = _NO_BODY,
        data: bytes | str | None = None,
        content_type: str | None = None,
        query: list[tuple[str, str]] | None = None,
        headers: dict[str, str] | None = None,
        spec_accepts: bool = True,
        client: Any = None,
        label: str = "",
    ) -> TestResponse:
        kwargs: dict[str, Any] = {"method": method, "headers": {"X-Registry-Actor": "alice", **(headers or {})}}
        kwargs["path"] = path + ("?" + urlencode(query) if query else "")
        if json is not _NO_BODY:
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


def padded(document: dict, limit: int) -> bytes:
    """Valid JSON that the spec accepts, made larger than the body limit with trailing whitespace."""
    return json.dumps(document).encode() + b" " * limit


def model(name: str) -> str:
    return "/api/v1/models/" + quote(name, safe="")


def readyz_on_an_unmigrated_database(recorder: Recorder, admin_url: str) -> None:
    name = pg.create_database(admin_url, prefix="registry_unmigrated")
    try:
        unready = create_app({"database_url": pg.with_database(admin_url, name)})
        recorder.call("GET", "/readyz", 503, client=unready.test_client(), label="readyz before migrations")
        with unready.app_context():
            db.engine.dispose()
    finally:
        pg.drop_database(admin_url, name)


def grant_registry_wide(app: Flask, user: str, level: str) -> None:
    """The native API has no routes for users and grants yet, so the scenario's actor gets them from the
    services (in the test's transaction, like everything else)."""
    with app.app_context():
        identities.create_user(SYSTEM, user)
        permissions.set_registry_permissions(SYSTEM, [(user, level)], merge=True)


def run_scenario(r: Recorder, admin_url: str) -> None:  # noqa: PLR0915 (one long, readable story)
    too_big = r.app.config["MAX_CONTENT_LENGTH"]
    json_type = "application/json"
    fd = model("fraud-detector")

    # Health.
    r.call("GET", "/healthz", 200)
    r.call("GET", "/readyz", 200)
    readyz_on_an_unmigrated_database(r, admin_url)

    # Registered models.
    created = r.call("POST", "/api/v1/models", 201,
                     json={"name": "fraud-detector", "description": "Scores card payments",
                           "tags": {"team": "risk", "tier": "1"}})
    r.call("POST", "/api/v1/models", 201, json={"name": "churn model", "description": None})
    r.call("POST", "/api/v1/models", 201, json={"name": "spare"})
    r.call("POST", "/api/v1/models", 409, json={"name": "fraud-detector"}, label="duplicate name")
    r.call("POST", "/api/v1/models", 400, json={"name": "a:b"}, spec_accepts=False, label="name with ':'")
    r.call("POST", "/api/v1/models", 400, json={"name": " padded"}, spec_accepts=False, label="leading space")
    r.call("POST", "/api/v1/models", 400, json={"name": "x", "colour": "red"}, spec_accepts=False,
           label="unknown field")
    r.call("POST", "/api/v1/models", 400, json={}, spec_accepts=False, label="missing name")
    r.call("POST", "/api/v1/models", 400, json={"name": "x", "tags": {"a..b": "1"}}, spec_accepts=False,
           label="bad tag key")
    r.call("POST", "/api/v1/models", 400, data="{not json", content_type=json_type, spec_accepts=False,
           label="malformed JSON")
    r.call("POST", "/api/v1/models", 400, data="[]", content_type=json_type, spec_accepts=False,
           label="JSON array body")
    r.call("POST", "/api/v1/models", 400, data="name=x", content_type="text/plain", spec_accepts=False,
           label="not JSON content type")
    r.call("POST", "/api/v1/models", 400, json={"name": "x"}, headers={"X-Registry-Actor": "bad actor!"},
           spec_accepts=False, label="invalid actor header")
    r.call("POST", "/api/v1/models", 413, data=padded({"name": "big"}, too_big), content_type=json_type)

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
    # OpenAPI cannot say "no other query parameters" or "this one at most once": the server can.
    r.call("GET", "/api/v1/models", 400, query=[("colour", "red")], label="unknown query parameter")
    r.call("GET", "/api/v1/models", 400, query=[("name_prefix", "a"), ("name_prefix", "b")],
           label="single-valued parameter repeated")

    r.call("GET", fd, 200)
    r.call("GET", model("churn model"), 200)
    r.call("GET", model("nope"), 404)
    r.call("GET", model("a:b"), 400, spec_accepts=False)

    etag = created.headers["ETag"]
    updated = r.call("PATCH", fd, 200, json={"description": "Scores card payments in real time"},
                     headers={"If-Match": etag})
    assert updated.headers["ETag"] != etag
    r.call("PATCH", fd, 412, json={"description": "stale write"}, headers={"If-Match": etag})
    r.call("PATCH", fd, 400, json={}, headers={"If-Match": 'W/"1"'}, spec_accepts=False, label="weak ETag")
    r.call("PATCH", fd, 200, json={}, headers={"If-Match": "*"})
    r.call("PATCH", fd, 409, json={"name": "churn model"}, label="rename onto an existing name")
    r.call("PATCH", fd, 400, json={"name": None}, spec_accepts=False)
    r.call("PATCH", fd, 400, json={"owner": "risk"}, spec_accepts=False)
    r.call("PATCH", model("nope"), 404, json={"description": "x"})
    r.call("PATCH", fd, 413, data=padded({"description": "x"}, too_big), content_type=json_type)
    r.call("PATCH", model("churn model"), 200, json={"name": "churn", "description": None}, label="rename")

    r.call("PUT", fd + "/tags/owner", 200, json={"value": "risk-team"})
    r.call("PUT", fd + "/tags/owner", 200, json={"value": ""})
    r.call("PUT", fd + "/tags/owner", 400, json={"value": 3}, spec_accepts=False)
    r.call("PUT", fd + "/tags/bad..key", 400, json={"value": "x"}, spec_accepts=False)
    r.call("PUT", model("nope") + "/tags/owner", 404, json={"value": "x"})
    r.call("PUT", fd + "/tags/owner", 413, data=padded({"value": "x"}, too_big), content_type=json_type)
    r.call("DELETE", fd + "/tags/owner", 204)
    r.call("DELETE", fd + "/tags/owner", 204, label="delete an absent tag")
    r.call("DELETE", fd + "/tags/bad..key", 400, spec_accepts=False)
    r.call("DELETE", model("nope") + "/tags/owner", 404)

    # Versions.
    r.call("POST", fd + "/versions", 201,
           json={"source": "s3://models/fd/1", "run_id": "run-1", "run_link": "https://ci.example/run-1",
                 "description": "baseline", "tags": {"framework": "xgboost"}})
    r.call("POST", fd + "/versions", 201, json={"source": "s3://models/fd/2", "run_id": "run-2"})
    r.call("POST", fd + "/versions", 201, json={"source": "s3://models/fd/3", "run_id": None})
    r.call("POST", model("churn") + "/versions", 201, json={"source": "s3://models/churn/1"})
    r.call("POST", fd + "/versions", 400, json={}, spec_accepts=False, label="missing source")
    r.call("POST", fd + "/versions", 400, json={"source": ""}, spec_accepts=False, label="empty source")
    r.call("POST", fd + "/versions", 400, json={"source": "s", "stage": "Production"}, spec_accepts=False)
    r.call("POST", model("nope") + "/versions", 404, json={"source": "s3://x"})
    r.call("POST", fd + "/versions", 413, data=padded({"source": "s3://x"}, too_big), content_type=json_type)

    r.call("GET", fd + "/versions", 200)
    r.call("GET", fd + "/versions", 200, query=[("run_id", "run-1"), ("stage", "none"), ("tag", "framework=xgboost")])
    page = r.call("GET", fd + "/versions", 200, query=[("max_results", "2")])
    r.call("GET", fd + "/versions", 200,
           query=[("max_results", "2"), ("page_token", page.get_json()["next_page_token"])])
    r.call("GET", fd + "/versions", 400, query=[("stage", "Deployed")], spec_accepts=False)
    r.call("GET", model("nope") + "/versions", 404)
    r.call("GET", "/api/v1/versions", 200)
    r.call("GET", "/api/v1/versions", 200,
           query=[("model", "fraud-detector"), ("stage", "NONE"), ("run_id", "run-1"), ("tag", "framework=xgboost")])
    r.call("GET", "/api/v1/versions", 400, query=[("max_results", "5000")], spec_accepts=False)
    r.call("GET", "/api/v1/versions", 400, query=[("page_token", "not-a-token")], label="garbage page token")

    v1 = r.call("GET", fd + "/versions/1", 200)
    r.call("GET", fd + "/versions/abc", 400, spec_accepts=False)
    r.call("GET", fd + "/versions/0", 400, spec_accepts=False)
    r.call("GET", fd + "/versions/99", 404)
    r.call("GET", model("nope") + "/versions/1", 404)
    r.call("PATCH", fd + "/versions/1", 200, json={"description": "the baseline"},
           headers={"If-Match": v1.headers["ETag"]})
    r.call("PATCH", fd + "/versions/1", 412, json={"description": "stale"}, headers={"If-Match": v1.headers["ETag"]})
    r.call("PATCH", fd + "/versions/1", 200, json={"description": None})
    r.call("PATCH", fd + "/versions/1", 400, json={}, spec_accepts=False, label="missing description")
    r.call("PATCH", fd + "/versions/99", 404, json={"description": "x"})
    r.call("PATCH", fd + "/versions/1", 413, data=padded({"description": "x"}, too_big), content_type=json_type)

    r.call("PUT", fd + "/versions/1/tags/validated", 200, json={"value": "yes"})
    r.call("PUT", fd + "/versions/1/tags/validated", 400, json={}, spec_accepts=False)
    r.call("PUT", fd + "/versions/99/tags/validated", 404, json={"value": "yes"})
    r.call("PUT", fd + "/versions/1/tags/validated", 413, data=padded({"value": "x"}, too_big),
           content_type=json_type)
    r.call("DELETE", fd + "/versions/1/tags/validated", 204)
    r.call("DELETE", fd + "/versions/1/tags/validated", 204, label="delete an absent version tag")
    r.call("DELETE", fd + "/versions/abc/tags/validated", 400, spec_accepts=False)
    r.call("DELETE", fd + "/versions/99/tags/validated", 404)

    # Stages.
    r.call("POST", fd + "/versions/1/transition", 200, json={"stage": "staging"})
    r.call("POST", fd + "/versions/2/transition", 200, json={"stage": "Production", "archive_existing_versions": True})
    r.call("POST", fd + "/versions/1/transition", 200, json={"stage": "Production", "archive_existing_versions": True})
    r.call("POST", fd + "/versions/3/transition", 422, json={"stage": "Archived", "archive_existing_versions": True})
    r.call("POST", fd + "/versions/3/transition", 400, json={"stage": "Deployed"}, spec_accepts=False)
    r.call("POST", fd + "/versions/3/transition", 400,
           json={"stage": "Staging", "archive_existing_versions": "yes"}, spec_accepts=False)
    r.call("POST", fd + "/versions/3/transition", 403, json={"stage": "Staging"}, headers={"X-Registry-Actor": "bob"},
           label="bob only holds the default READ")
    r.call("POST", fd + "/versions/99/transition", 404, json={"stage": "Staging"})
    r.call("POST", fd + "/versions/3/transition", 413, data=padded({"stage": "Staging"}, too_big),
           content_type=json_type)
    r.call("GET", fd + "/latest-versions", 200)
    r.call("GET", fd + "/latest-versions", 200, query=[("stage", "Production"), ("stage", "archived")])
    r.call("GET", fd + "/latest-versions", 400, query=[("stage", "Gold")], spec_accepts=False)
    r.call("GET", model("nope") + "/latest-versions", 404)
    r.call("GET", fd + "/stages/production", 200)
    r.call("GET", fd + "/stages/Staging", 404, label="empty stage")
    r.call("GET", fd + "/stages/Gold", 400, spec_accepts=False)

    # Aliases.
    r.call("PUT", fd + "/aliases/champion", 200, json={"version": 2})
    r.call("PUT", fd + "/aliases/champion", 200, json={"version": 1}, label="move an alias")
    r.call("PUT", fd + "/aliases/challenger", 200, json={"version": 3})
    r.call("PUT", fd + "/aliases/Latest", 400, json={"version": 1}, spec_accepts=False, label="reserved latest")
    r.call("PUT", fd + "/aliases/v3", 400, json={"version": 1}, spec_accepts=False, label="reserved v<N>")
    r.call("PUT", fd + "/aliases/champion", 400, json={"version": "2"}, spec_accepts=False, label="string version")
    r.call("PUT", fd + "/aliases/champion", 404, json={"version": 99})
    r.call("PUT", fd + "/aliases/champion", 413, data=padded({"version": 1}, too_big), content_type=json_type)
    r.call("GET", fd + "/aliases/champion", 200)
    r.call("GET", fd + "/aliases/latest", 200)
    r.call("GET", fd + "/aliases/runner-up", 404)
    r.call("GET", fd + "/aliases/bad.alias", 400, spec_accepts=False)
    r.call("DELETE", fd + "/aliases/champion", 204)
    r.call("DELETE", fd + "/aliases/champion", 204, label="delete an absent alias")
    r.call("DELETE", fd + "/aliases/bad.alias", 400, spec_accepts=False)
    r.call("DELETE", model("nope") + "/aliases/champion", 404)

    # Deleting a version drops its aliases; its number is gone for good.
    r.call("DELETE", fd + "/versions/3", 204)
    r.call("DELETE", fd + "/versions/3", 404)
    r.call("DELETE", fd + "/versions/abc", 400, spec_accepts=False)

    # Audit trail.
    r.call("GET", "/api/v1/audit-events", 200)
    events = r.call("GET", "/api/v1/audit-events", 200, query=[("model", "fraud-detector"), ("max_results", "2")])
    r.call("GET", "/api/v1/audit-events", 200,
           query=[("model", "fraud-detector"), ("max_results", "2"), ("page_token", events.get_json()["next_page_token"])])
    r.call("GET", "/api/v1/audit-events", 200,
           query=[("model", "fraud-detector"), ("version", "1"), ("action", "version.transitioned"),
                  ("actor", "alice"), ("run_id", "run-1"), ("since", "0"), ("until", "2999-01-01T00:00:00Z")])
    r.call("GET", "/api/v1/audit-events", 400, query=[("action", "model.exploded")], spec_accepts=False)
    r.call("GET", "/api/v1/audit-events", 400, query=[("version", "0"), ("model", "m")], spec_accepts=False)
    r.call("GET", "/api/v1/audit-events", 400, query=[("version", "1")], label="version without model")
    r.call("GET", "/api/v1/audit-events", 400, query=[("since", "yesterday")], label="unparseable since")

    # Deleting models.
    r.call("DELETE", model("churn"), 204)
    r.call("DELETE", model("churn"), 404)
    r.call("DELETE", model("a:b"), 400, spec_accepts=False)
    r.call("DELETE", model("spare"), 400, headers={"X-Registry-Actor": "x" * 129}, spec_accepts=False,
           label="actor name too long")
    r.call("GET", "/api/v1/audit-events", 200, query=[("model", "churn")], label="events outlive their model")


@pytest.fixture
def exchanges(app, client, spec, admin_url) -> list[Exchange]:
    grant_registry_wide(app, "alice", "MANAGE")
    recorder = Recorder(app, client, spec)
    run_scenario(recorder, admin_url)
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


def test_requests_the_spec_forbids_fail_request_validation_and_get_400(exchanges, openapi):
    failures = []
    for e in (e for e in exchanges if not e.spec_accepts_request):
        errors = list(openapi.iter_request_errors(WerkzeugOpenAPIRequest(e.request)))
        if not errors:
            failures.append(f"{e}: the spec accepts this request but the server refuses it")
        elif any(isinstance(err, PathError) for err in errors):
            failures.append(f"{e}: refused only because no spec operation matched: {errors}")
        if e.response.status_code != 400:
            failures.append(f"{e}: expected 400")
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
