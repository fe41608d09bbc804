"""MLflow dialect over HTTP: ``registered-models/*`` field by field, as MLflow's server writes them."""
from __future__ import annotations

import pytest

from tests.api.mlflow.conftest import assert_mlflow_error


# --- create / get: the wire shape -----------------------------------------------------------------------

def test_create_model_omits_empty_description_tags_versions_and_aliases(wire):
    body = wire.create_model("churn")
    assert set(body) == {"name", "creation_timestamp", "last_updated_timestamp"}
    assert body["name"] == "churn"


def test_create_model_renders_description_and_tags(wire):
    body = wire.create_model("churn", description="predicts churn", tags=[{"key": "team", "value": "growth"}])
    assert body["description"] == "predicts churn"
    assert body["tags"] == [{"key": "team", "value": "growth"}]


def test_create_model_with_a_repeated_tag_key_keeps_the_last_value(wire):
    body = wire.create_model("churn", tags=[{"key": "team", "value": "a"}, {"key": "team", "value": "b"}])
    assert body["tags"] == [{"key": "team", "value": "b"}]


def test_model_timestamps_are_epoch_milliseconds_matching_the_native_api(wire, secure_client, admin_headers):
    body = wire.create_model("churn")
    native = secure_client.get("/api/v1/models/churn", headers=admin_headers).get_json()
    assert type(body["creation_timestamp"]) is int
    assert body["creation_timestamp"] == native["created_at"]
    assert body["last_updated_timestamp"] == native["updated_at"]


def test_get_model_lists_latest_version_per_stage_without_aliases_and_aliases_on_the_model(wire):
    wire.create_model("churn")
    for _ in range(3):
        wire.create_version("churn")
    wire.transition("churn", "2", "Production")
    wire.ok(wire.post("/registered-models/alias", {"name": "churn", "alias": "champion", "version": "2"}))
    body = wire.ok(wire.get("/registered-models/get", {"name": "churn"}))["registered_model"]
    assert [(v["current_stage"], v["version"]) for v in body["latest_versions"]] == [("None", "3"),
                                                                                   ("Production", "2")]
    assert all("aliases" not in v for v in body["latest_versions"])
    assert body["aliases"] == [{"alias": "champion", "version": "2"}]


def test_get_unknown_model_is_resource_does_not_exist(wire):
    message = assert_mlflow_error(wire.get("/registered-models/get", {"name": "nope"}), 404,
                                  "RESOURCE_DOES_NOT_EXIST")
    assert message == "Registered Model with name=nope not found"


def test_create_existing_model_is_resource_already_exists_with_status_400(wire):
    wire.create_model("churn")
    assert_mlflow_error(wire.post("/registered-models/create", {"name": "churn"}), 400, "RESOURCE_ALREADY_EXISTS")


@pytest.mark.parametrize("body", [{}, {"name": ""}], ids=["absent", "empty"])
def test_create_model_without_a_name_is_invalid(wire, body):
    message = assert_mlflow_error(wire.post("/registered-models/create", body), 400, "INVALID_PARAMETER_VALUE")
    assert "Missing value for required parameter 'name'" in message


def test_create_model_with_a_slash_in_its_name_is_invalid(wire):
    assert_mlflow_error(wire.post("/registered-models/create", {"name": "a/b"}), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("name", [".", ".."])
def test_create_model_named_a_dot_segment_is_invalid(wire, name):
    # The MLflow client puts names in URL paths elsewhere (model URIs, the UI); "." and ".." never survive.
    assert_mlflow_error(wire.post("/registered-models/create", {"name": name}), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("new_name", [".", ".."])
def test_rename_model_to_a_dot_segment_is_invalid(wire, new_name):
    wire.create_model("churn")
    response = wire.post("/registered-models/rename", {"name": "churn", "new_name": new_name})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")
    wire.ok(wire.get("/registered-models/get", {"name": "churn"}))


def test_create_model_with_a_non_string_name_is_invalid(wire):
    message = assert_mlflow_error(wire.post("/registered-models/create", {"name": 7}), 400,
                                  "INVALID_PARAMETER_VALUE")
    assert "int" in message


# --- update / rename / delete ----------------------------------------------------------------------------

def test_update_model_sets_the_description(wire):
    wire.create_model("churn")
    body = wire.ok(wire.patch("/registered-models/update", {"name": "churn", "description": "new"}))
    assert body["registered_model"]["description"] == "new"


def test_update_model_without_description_clears_it_as_mlflow_does(wire):
    wire.create_model("churn", description="old")
    body = wire.ok(wire.patch("/registered-models/update", {"name": "churn"}))
    assert "description" not in body["registered_model"]


def test_rename_model_moves_versions_and_frees_the_old_name(wire):
    wire.create_model("churn")
    wire.create_version("churn")
    body = wire.ok(wire.post("/registered-models/rename", {"name": "churn", "new_name": "attrition"}))
    assert body["registered_model"]["name"] == "attrition"
    assert [v["version"] for v in body["registered_model"]["latest_versions"]] == ["1"]
    assert_mlflow_error(wire.get("/registered-models/get", {"name": "churn"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_rename_model_onto_an_existing_name_is_resource_already_exists(wire):
    wire.create_model("churn")
    wire.create_model("attrition")
    response = wire.post("/registered-models/rename", {"name": "churn", "new_name": "attrition"})
    assert_mlflow_error(response, 400, "RESOURCE_ALREADY_EXISTS")


def test_rename_model_without_new_name_is_invalid(wire):
    wire.create_model("churn")
    message = assert_mlflow_error(wire.post("/registered-models/rename", {"name": "churn"}), 400,
                                  "INVALID_PARAMETER_VALUE")
    assert "'new_name'" in message


@pytest.mark.parametrize("via", ["body", "query"])
def test_delete_model_answers_empty_object_with_params_in_body_or_query(wire, via):
    wire.create_model("churn")
    params = {"name": "churn"}
    response = wire.delete("/registered-models/delete", **({"body": params} if via == "body" else {"query": params}))
    assert wire.ok(response) == {}
    assert_mlflow_error(wire.get("/registered-models/get", params), 404, "RESOURCE_DOES_NOT_EXIST")


def test_delete_unknown_model_is_resource_does_not_exist(wire):
    assert_mlflow_error(wire.delete("/registered-models/delete", {"name": "nope"}), 404, "RESOURCE_DOES_NOT_EXIST")


# --- tags -------------------------------------------------------------------------------------------------

def test_set_model_tag_answers_empty_object_and_upserts(wire):
    wire.create_model("churn")
    assert wire.ok(wire.post("/registered-models/set-tag", {"name": "churn", "key": "k", "value": "1"})) == {}
    wire.ok(wire.post("/registered-models/set-tag", {"name": "churn", "key": "k", "value": "2"}))
    body = wire.ok(wire.get("/registered-models/get", {"name": "churn"}))
    assert body["registered_model"]["tags"] == [{"key": "k", "value": "2"}]


@pytest.mark.parametrize("via", ["body", "query"])
def test_delete_model_tag_with_params_in_body_or_query(wire, via):
    wire.create_model("churn", tags=[{"key": "k", "value": "v"}])
    params = {"name": "churn", "key": "k"}
    response = wire.delete("/registered-models/delete-tag", **({"body": params} if via == "body" else {"query": params}))
    assert wire.ok(response) == {}
    assert "tags" not in wire.ok(wire.get("/registered-models/get", {"name": "churn"}))["registered_model"]


def test_delete_absent_model_tag_is_idempotent(wire):
    wire.create_model("churn")
    assert wire.ok(wire.delete("/registered-models/delete-tag", {"name": "churn", "key": "nope"})) == {}


def test_set_model_tag_without_key_is_invalid(wire):
    wire.create_model("churn")
    assert_mlflow_error(wire.post("/registered-models/set-tag", {"name": "churn", "value": "v"}), 400,
                        "INVALID_PARAMETER_VALUE")


# --- get-latest-versions ------------------------------------------------------------------------------------

@pytest.fixture
def staged(wire):
    wire.create_model("churn")
    for _ in range(4):
        wire.create_version("churn")
    wire.transition("churn", "1", "Staging")
    wire.transition("churn", "2", "Staging")
    wire.transition("churn", "3", "Production")
    return "churn"


def test_get_latest_versions_by_post_filters_stages_case_insensitively(wire, staged):
    body = wire.ok(wire.post("/registered-models/get-latest-versions", {"name": staged, "stages": ["staging"]}))
    assert [(v["version"], v["current_stage"]) for v in body["model_versions"]] == [("2", "Staging")]


def test_get_latest_versions_by_get_reads_repeated_stage_keys(wire, staged):
    response = wire.get("/registered-models/get-latest-versions?name=churn&stages=Staging&stages=Production")
    body = wire.ok(response)
    assert sorted(v["version"] for v in body["model_versions"]) == ["2", "3"]


def test_get_latest_versions_without_stages_covers_every_stage(wire, staged):
    body = wire.ok(wire.post("/registered-models/get-latest-versions", {"name": staged}))
    assert sorted((v["current_stage"], v["version"]) for v in body["model_versions"]) == [
        ("None", "4"), ("Production", "3"), ("Staging", "2")]


def test_get_latest_versions_carries_aliases(wire, staged):
    wire.ok(wire.post("/registered-models/alias", {"name": staged, "alias": "live", "version": "3"}))
    body = wire.ok(wire.post("/registered-models/get-latest-versions", {"name": staged, "stages": ["Production"]}))
    assert body["model_versions"][0]["aliases"] == ["live"]


def test_get_latest_versions_of_an_empty_stage_is_an_empty_object(wire, staged):
    assert wire.ok(wire.post("/registered-models/get-latest-versions", {"name": staged, "stages": ["Archived"]})) == {}


def test_get_latest_versions_with_a_bad_stage_is_invalid(wire, staged):
    response = wire.post("/registered-models/get-latest-versions", {"name": staged, "stages": ["prod"]})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_get_latest_versions_with_stages_not_a_list_is_invalid(wire, staged):
    response = wire.post("/registered-models/get-latest-versions", {"name": staged, "stages": "Staging"})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


# --- aliases ----------------------------------------------------------------------------------------------

@pytest.fixture
def versioned(wire):
    wire.create_model("churn")
    wire.create_version("churn")
    wire.create_version("churn")
    return "churn"


def test_set_alias_answers_empty_object_and_get_by_alias_returns_the_version(wire, versioned):
    assert wire.ok(wire.post("/registered-models/alias", {"name": versioned, "alias": "champ", "version": "1"})) == {}
    body = wire.ok(wire.get("/registered-models/alias", {"name": versioned, "alias": "champ"}))
    assert body["model_version"]["version"] == "1"
    assert body["model_version"]["aliases"] == ["champ"]


def test_setting_an_alias_again_moves_it(wire, versioned):
    wire.ok(wire.post("/registered-models/alias", {"name": versioned, "alias": "champ", "version": "1"}))
    wire.ok(wire.post("/registered-models/alias", {"name": versioned, "alias": "champ", "version": "2"}))
    body = wire.ok(wire.get("/registered-models/alias", {"name": versioned, "alias": "champ"}))
    assert body["model_version"]["version"] == "2"


def test_unknown_alias_is_invalid_parameter_value_as_in_mlflow(wire, versioned):
    message = assert_mlflow_error(wire.get("/registered-models/alias", {"name": versioned, "alias": "nope"}), 400,
                                  "INVALID_PARAMETER_VALUE")
    assert message == "Registered model alias nope not found."


def test_alias_of_an_unknown_model_is_resource_does_not_exist(wire):
    assert_mlflow_error(wire.get("/registered-models/alias", {"name": "nope", "alias": "a"}), 404,
                        "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("alias", ["latest", "LATEST"])
def test_latest_alias_resolves_to_the_highest_version(wire, versioned, alias):
    body = wire.ok(wire.get("/registered-models/alias", {"name": versioned, "alias": alias}))
    assert body["model_version"]["version"] == "2"


def test_latest_alias_of_a_model_without_versions_is_resource_does_not_exist(wire):
    wire.create_model("empty")
    assert_mlflow_error(wire.get("/registered-models/alias", {"name": "empty", "alias": "latest"}), 404,
                        "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("alias", ["latest", "Latest", "v1", "V12", "a b", "a.b"])
def test_reserved_or_malformed_alias_is_invalid(wire, versioned, alias):
    response = wire.post("/registered-models/alias", {"name": versioned, "alias": alias, "version": "1"})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_alias_to_a_missing_version_is_resource_does_not_exist(wire, versioned):
    response = wire.post("/registered-models/alias", {"name": versioned, "alias": "champ", "version": "9"})
    assert_mlflow_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


@pytest.mark.parametrize("via", ["body", "query"])
def test_delete_alias_with_params_in_body_or_query(wire, versioned, via):
    wire.ok(wire.post("/registered-models/alias", {"name": versioned, "alias": "champ", "version": "1"}))
    params = {"name": versioned, "alias": "champ"}
    response = wire.delete("/registered-models/alias", **({"body": params} if via == "body" else {"query": params}))
    assert wire.ok(response) == {}
    assert_mlflow_error(wire.get("/registered-models/alias", params), 400, "INVALID_PARAMETER_VALUE")


def test_delete_absent_alias_is_idempotent(wire, versioned):
    assert wire.ok(wire.delete("/registered-models/alias", {"name": versioned, "alias": "nope"})) == {}


def test_deleting_a_version_drops_its_aliases(wire, versioned):
    wire.ok(wire.post("/registered-models/alias", {"name": versioned, "alias": "champ", "version": "1"}))
    wire.ok(wire.delete("/model-versions/delete", {"name": versioned, "version": "1"}))
    body = wire.ok(wire.get("/registered-models/get", {"name": versioned}))["registered_model"]
    assert "aliases" not in body


# --- list (Databricks' list_models) -------------------------------------------------------------------------

def test_list_models_pages_through_every_model(wire):
    for name in ("a", "b", "c"):
        wire.create_model(name)
    first = wire.ok(wire.get("/registered-models/list", {"max_results": 2}))
    second = wire.ok(wire.get("/registered-models/list", {"max_results": 2, "page_token": first["next_page_token"]}))
    assert [m["name"] for m in first["registered_models"]] == ["a", "b"]
    assert [m["name"] for m in second["registered_models"]] == ["c"]
    assert "next_page_token" not in second
