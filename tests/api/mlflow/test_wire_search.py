"""MLflow dialect over HTTP: search-registered-models and search-model-versions (filters, order, pages)."""
from __future__ import annotations

import base64
import json

import pytest

from tests.api.mlflow.conftest import assert_mlflow_error

PROMPT = [{"key": "mlflow.prompt.is_prompt", "value": "true"}]


@pytest.fixture
def models(wire) -> None:
    """Four models and one prompt:
    churn (team=growth, tier=1), churn-v2 (team=growth), Fraud (team=risk), fraud_x (no tags), qa-prompt."""
    wire.create_model("churn", tags=[{"key": "team", "value": "growth"}, {"key": "tier", "value": "1"}])
    wire.create_model("churn-v2", tags=[{"key": "team", "value": "growth"}])
    wire.create_model("Fraud", tags=[{"key": "team", "value": "risk"}])
    wire.create_model("fraud_x")
    wire.create_model("qa-prompt", tags=PROMPT)


def names(wire, path: str, key: str, **query) -> list[str]:
    body = wire.ok(wire.get(path, query))
    return [item["name"] for item in body.get(key, [])]


def model_names(wire, filter_text: str | None = None, **query) -> list[str]:
    if filter_text is not None:
        query["filter"] = filter_text
    return names(wire, "/registered-models/search", "registered_models", **query)


@pytest.mark.parametrize("filter_text, expected", [
    (None, ["Fraud", "churn", "churn-v2", "fraud_x"]),
    ("name = 'churn'", ["churn"]),
    ('name = "churn"', ["churn"]),
    ("attribute.name = 'churn'", ["churn"]),
    ("name != 'churn'", ["Fraud", "churn-v2", "fraud_x"]),
    ("name LIKE 'churn%'", ["churn", "churn-v2"]),
    ("name LIKE 'fraud%'", ["fraud_x"]),
    ("name ILIKE 'fraud%'", ["Fraud", "fraud_x"]),
    ("name like 'churn_v2'", ["churn-v2"]),
    ("name IN ('churn', 'Fraud')", ["Fraud", "churn"]),
    ("name NOT IN ('churn', 'Fraud')", ["churn-v2", "fraud_x"]),
    ("tags.team = 'growth'", ["churn", "churn-v2"]),
    ("tag.team = 'growth'", ["churn", "churn-v2"]),
    ("tags.`team` = 'growth'", ["churn", "churn-v2"]),
    ("tags.team != 'growth'", ["Fraud"]),
    ("tags.team LIKE 'gr%'", ["churn", "churn-v2"]),
    ("tags.team ILIKE 'RISK'", ["Fraud"]),
    ("tags.team = 'growth' AND tags.tier = '1'", ["churn"]),
    ("name LIKE 'churn%' and tags.tier = '1'", ["churn"]),
    ("tags.team = 'nobody'", []),
], ids=lambda v: str(v))
def test_model_filter_grammar(wire, models, filter_text, expected):
    # Compared as sets: the order of mixed-case names depends on the database collation.
    assert sorted(model_names(wire, filter_text)) == sorted(expected)


@pytest.mark.parametrize("filter_text, expected", [
    ("tags.`mlflow.prompt.is_prompt` = 'true'", ["qa-prompt"]),
    ("tags.mlflow.prompt.is_prompt = 'true'", ["qa-prompt"]),
    ("tag.`mlflow.prompt.is_prompt` != 'false'", ["qa-prompt"]),
    ("tags.`mlflow.prompt.is_prompt` != 'true'", ["Fraud", "churn", "churn-v2", "fraud_x"]),
    ("tags.`mlflow.prompt.is_prompt` = 'false'", ["Fraud", "churn", "churn-v2", "fraud_x"]),
    ("name LIKE 'qa%'", []),
], ids=["select", "select-dotted", "select-not-false", "exclude", "exclude-false", "hidden-by-default"])
def test_prompts_are_hidden_unless_the_filter_selects_them(wire, models, filter_text, expected):
    assert sorted(model_names(wire, filter_text)) == sorted(expected)


def test_empty_search_answers_an_empty_object(wire):
    assert wire.ok(wire.get("/registered-models/search", {"filter": "name = 'nothing'"})) == {}


def test_search_models_renders_full_models(wire, models):
    wire.create_version("churn")
    body = wire.ok(wire.get("/registered-models/search", {"filter": "name = 'churn'"}))
    model = body["registered_models"][0]
    assert model["tags"] == [{"key": "team", "value": "growth"}, {"key": "tier", "value": "1"}]
    assert [v["version"] for v in model["latest_versions"]] == ["1"]


@pytest.mark.parametrize("filter_text", [
    "name = 'a' OR name = 'b'",
    "(name = 'a')",
    "NOT name = 'a'",
    "name = 'a' AND",
    "name = 'a' name = 'b'",
    "name = churn",
    "name = 3",
    "name IS NULL",
    "tags.team IS NOT NULL",
    "description = 'x'",
    "creation_timestamp > 5",
    "metric.acc > 0.5",
    "tags.team IN ('a')",
    "tags.team = 5",
    "name > 'a'",
    "name IN ()",
    "name IN ('a', 3)",
    "name IN 'a'",
    "name = 'unterminated",
    "name",
    "name =",
], ids=lambda v: v)
def test_bad_model_filter_is_invalid_parameter_value(wire, filter_text):
    assert_mlflow_error(wire.get("/registered-models/search", {"filter": filter_text}), 400, "INVALID_PARAMETER_VALUE")


# --- order_by and pagination (models) ---------------------------------------------------------------------

def test_model_order_by_name_desc_reverses_the_default_name_order(wire, models):
    ascending = model_names(wire)
    assert len(ascending) == 4
    assert model_names(wire, order_by="name DESC") == ascending[::-1]


def test_model_order_by_name_asc_sorts_lowercase_names(wire, models):
    assert model_names(wire, "name LIKE 'churn%'", order_by="name ASC") == ["churn", "churn-v2"]


def test_model_order_by_last_updated_reads_repeated_keys(wire, models):
    wire.ok(wire.patch("/registered-models/update", {"name": "Fraud", "description": "touched"}))
    response = wire.get("/registered-models/search?order_by=last_updated_timestamp+DESC&order_by=name+ASC")
    assert [m["name"] for m in wire.ok(response)["registered_models"]][0] == "Fraud"


@pytest.mark.parametrize("order_by", [["name", "name DESC"], ["timestamp", "last_updated_timestamp"]],
                         ids=["same-key", "alias-of-same-key"])
def test_duplicate_order_by_key_is_a_400_not_mlflows_500(wire, order_by):
    response = wire.get("/registered-models/search", {"order_by": order_by})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("order_by", ["description", "name SIDEWAYS", "name ASC extra", "version_number"])
def test_bad_model_order_by_is_invalid(wire, order_by):
    assert_mlflow_error(wire.get("/registered-models/search", {"order_by": order_by}), 400, "INVALID_PARAMETER_VALUE")


def walk(wire, path: str, key: str, **query) -> list[list[str]]:
    pages, token = [], None
    while True:
        body = wire.ok(wire.get(path, dict(query, **({"page_token": token} if token else {}))))
        pages.append([item["name"] + (f"/{item['version']}" if "version" in item else "") for item in body[key]])
        token = body.get("next_page_token")
        if token is None:
            return pages


def test_model_search_pages_without_an_empty_trailing_page(wire, models):
    pages = walk(wire, "/registered-models/search", "registered_models", max_results=2)
    assert [len(page) for page in pages] == [2, 2]
    assert pages[0] + pages[1] == model_names(wire)


def test_model_search_pages_keep_their_place_when_rows_are_added(wire, models):
    everything = model_names(wire)
    first = wire.ok(wire.get("/registered-models/search", {"max_results": 2}))
    wire.create_model("0-first")  # sorts before the page already served, under any collation
    second = wire.ok(wire.get("/registered-models/search", {"max_results": 2, "page_token": first["next_page_token"]}))
    assert [m["name"] for m in second["registered_models"]] == everything[2:]


@pytest.mark.parametrize("token", ["garbage!", base64.b64encode(json.dumps({"offset": 2}).encode()).decode()],
                         ids=["garbage", "mlflow-offset-token"])
def test_foreign_page_token_is_invalid(wire, models, token):
    response = wire.get("/registered-models/search", {"page_token": token})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


def _forged(token: str, key) -> str:
    """A real token with its sort key replaced (same query fingerprint)."""
    data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    data["k"] = key
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize("path, query", [
    ("/registered-models/search", {}),
    ("/registered-models/search", {"order_by": "last_updated_timestamp DESC"}),
    ("/registered-models/list", {}),
    ("/model-versions/search", {"filter": "name = 'churn'", "order_by": "name"}),
], ids=["models", "models-by-time", "models-list", "versions"])
def test_page_token_holding_a_lone_surrogate_is_invalid(wire, path, query):
    """json.dumps escapes it as "\\ud800"; decoded, it is a str that UTF-8 (and PostgreSQL) cannot carry."""
    wire.create_model("churn")
    wire.create_model("fraud")
    wire.create_version("churn")
    wire.create_version("churn")
    token = wire.ok(wire.get(path, {**query, "max_results": 1}))["next_page_token"]
    sort_key = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))["k"]
    forged = _forged(token, ["\ud800" if part in ("churn", "fraud") else part for part in sort_key])
    response = wire.get(path, {**query, "max_results": 1, "page_token": forged})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_page_token_of_another_query_is_invalid(wire, models):
    token = wire.ok(wire.get("/registered-models/search", {"max_results": 1}))["next_page_token"]
    response = wire.get("/registered-models/search", {"max_results": 1, "page_token": token, "filter": "name = 'x'"})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("max_results", ["1001", "0", "-1", "ten"])
def test_model_search_max_results_out_of_range_is_invalid(wire, max_results):
    response = wire.get("/registered-models/search", {"max_results": max_results})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_search_reads_a_json_body_when_a_get_has_no_query_string(wire, models):
    response = wire.client.get("/api/2.0/mlflow/registered-models/search", json={"filter": "name = 'churn'"},
                               headers=wire.headers)
    assert [m["name"] for m in wire.ok(response)["registered_models"]] == ["churn"]


def test_search_only_shows_models_the_caller_can_read(wire, models, make_user, secure_app):
    from registry.auth import SYSTEM
    from registry.services import permissions

    outsider = make_user("outsider")
    with secure_app.app_context():
        permissions.set_registry_permissions(SYSTEM, [])  # no registry-wide READ for "*"
        permissions.set_model_permissions(SYSTEM, "churn", [("outsider", "READ")])
    assert model_names(wire.as_user(outsider)) == ["churn"]


# --- model versions ---------------------------------------------------------------------------------------

@pytest.fixture
def versions(wire) -> None:
    """churn/1..4 (runs r1, r1, r2, none; sources s3://b/churn/N; v2 tagged ok=yes), fraud/1 (run r1),
    and a prompt version (tagged as a prompt)."""
    wire.create_model("churn")
    wire.create_model("fraud")
    wire.create_model("qa", tags=PROMPT)
    for i, run in enumerate(["r1", "r1", "r2", None], start=1):
        fields = {"run_id": run} if run else {}
        if i == 2:
            fields["tags"] = [{"key": "ok", "value": "yes"}]
        wire.create_version("churn", f"s3://b/churn/{i}", **fields)
    wire.create_version("fraud", "s3://b/fraud/1", run_id="r1")
    wire.create_version("qa", "dummy-source", tags=PROMPT)


def version_ids(wire, filter_text: str | None = None, **query) -> list[str]:
    if filter_text is not None:
        query["filter"] = filter_text
    body = wire.ok(wire.get("/model-versions/search", query))
    return [f"{v['name']}/{v['version']}" for v in body.get("model_versions", [])]


@pytest.mark.parametrize("filter_text, expected", [
    ("name = 'churn'", ["churn/1", "churn/2", "churn/3", "churn/4"]),
    ("name IN ('fraud')", ["fraud/1"]),
    ("run_id = 'r1'", ["churn/1", "churn/2", "fraud/1"]),
    ("run_id IN ('r2', 'r9')", ["churn/3"]),
    ("run_id NOT IN ('r1')", ["churn/3", "churn/4"]),
    ("run_id = ''", ["churn/4"]),
    ("name = 'churn' AND version_number > 2", ["churn/3", "churn/4"]),
    ("name = 'churn' AND version_number <= 2", ["churn/1", "churn/2"]),
    ("name = 'churn' AND version_number = '3'", ["churn/3"]),
    ("name = 'churn' AND version_number != 3", ["churn/1", "churn/2", "churn/4"]),
    ("source_path = 's3://b/churn/2'", ["churn/2"]),
    ("source_path LIKE 's3://b/churn/%' AND run_id = 'r2'", ["churn/3"]),
    ("tags.ok = 'yes'", ["churn/2"]),
    ("tags.`mlflow.prompt.is_prompt` = 'true'", ["qa/1"]),
], ids=lambda v: str(v))
def test_version_filter_grammar(wire, versions, filter_text, expected):
    assert sorted(version_ids(wire, filter_text)) == expected


def test_version_search_hides_prompt_versions_by_default(wire, versions):
    assert sorted(version_ids(wire)) == ["churn/1", "churn/2", "churn/3", "churn/4", "fraud/1"]


@pytest.mark.parametrize("filter_text", [
    "version_number LIKE '1'",
    "version_number = 1.5",
    "version_number = 'one'",
    "source_path IN ('a')",
    "run_id > 'a'",
    "name = 3",
    "current_stage = 'Production'",
    "tags.ok = 'yes' OR name = 'a'",
    "version_number IS NULL",
], ids=lambda v: v)
def test_bad_version_filter_is_invalid_parameter_value(wire, filter_text):
    assert_mlflow_error(wire.get("/model-versions/search", {"filter": filter_text}), 400, "INVALID_PARAMETER_VALUE")


def test_version_search_default_order_is_last_updated_desc(wire, versions):
    wire.ok(wire.patch("/model-versions/update", {"name": "churn", "version": "1", "description": "touched"}))
    assert version_ids(wire)[0] == "churn/1"


@pytest.mark.parametrize("order_by, expected", [
    (["version_number ASC"], ["churn/1", "churn/2", "churn/3", "churn/4"]),
    (["version_number DESC"], ["churn/4", "churn/3", "churn/2", "churn/1"]),
    (["creation_timestamp ASC"], ["churn/1", "churn/2", "churn/3", "churn/4"]),
], ids=lambda v: str(v))
def test_version_order_by(wire, versions, order_by, expected):
    assert version_ids(wire, "name = 'churn'", order_by=order_by) == expected


def test_version_order_by_name_then_version(wire, versions):
    found = version_ids(wire, "run_id = 'r1'", order_by=["name DESC", "version_number ASC"])
    assert found == ["fraud/1", "churn/1", "churn/2"]


def test_version_search_pages(wire, versions):
    pages = walk(wire, "/model-versions/search", "model_versions", filter="name = 'churn'", max_results=3,
                 order_by="version_number ASC")
    assert pages == [["churn/1", "churn/2", "churn/3"], ["churn/4"]]


def test_version_search_omits_aliases_only_when_there_are_none(wire, versions):
    wire.ok(wire.post("/registered-models/alias", {"name": "churn", "alias": "champ", "version": "2"}))
    body = wire.ok(wire.get("/model-versions/search", {"filter": "name = 'churn'", "order_by": "version_number"}))
    assert [v.get("aliases") for v in body["model_versions"]] == [None, ["champ"], None, None]


@pytest.mark.parametrize("max_results", ["200001", "0"])
def test_version_search_max_results_out_of_range_is_invalid(wire, max_results):
    response = wire.get("/model-versions/search", {"max_results": max_results})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_version_search_accepts_the_clients_default_page_size(wire, versions):
    assert len(version_ids(wire, max_results="10000")) == 5


@pytest.mark.parametrize("order_by", ["timestamp", "version", "version_number version_number"])
def test_bad_version_order_by_is_invalid(wire, order_by):
    assert_mlflow_error(wire.get("/model-versions/search", {"order_by": order_by}), 400, "INVALID_PARAMETER_VALUE")
