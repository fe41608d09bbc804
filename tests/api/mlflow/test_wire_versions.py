"""MLflow dialect over HTTP: ``model-versions/*`` field by field, stages, and the approval-policy guard."""
from __future__ import annotations

import pytest

from registry.auth import SYSTEM
from registry.services import policies
from tests.api.mlflow.conftest import assert_mlflow_error


@pytest.fixture
def model(wire) -> str:
    wire.create_model("churn")
    return "churn"


# --- create / get -----------------------------------------------------------------------------------------

def test_create_version_renders_mlflow_fields_with_string_version_and_empty_run_fields(wire, model):
    body = wire.create_version(model, "s3://bucket/churn/1")
    assert list(body) == ["name", "version", "creation_timestamp", "last_updated_timestamp", "user_id",
                          "current_stage", "description", "source", "run_id", "status", "run_link"]
    assert body["version"] == "1"
    assert (body["current_stage"], body["status"], body["description"]) == ("None", "READY", "")
    assert (body["run_id"], body["run_link"]) == ("", "")
    assert body["user_id"] == "mlflow-admin"
    assert type(body["creation_timestamp"]) is int


def test_create_version_renders_run_tags_and_description(wire, model):
    body = wire.create_version(model, "s3://b/1", run_id="abc", run_link="http://runs/abc", description="first",
                               tags=[{"key": "framework", "value": "sklearn"}])
    assert (body["run_id"], body["run_link"], body["description"]) == ("abc", "http://runs/abc", "first")
    assert body["tags"] == [{"key": "framework", "value": "sklearn"}]


@pytest.mark.parametrize("source, fields", [
    ("/srv/models/churn/1", {}), ("file:///srv/models/churn/1", {}), ("churn/1", {}), ("s3://b/../x", {}),
    ("runs:/run-b/model", {"run_id": "run-a"}), ("models:/m-123", {"model_id": "m-456"}),
], ids=["local", "file", "relative", "dot-dot", "other-run", "other-logged-model"])
def test_create_version_refuses_what_a_registry_only_mlflow_refuses(wire, model, source, fields):
    response = wire.post("/model-versions/create", {"name": model, "source": source, **fields})
    assert assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE").startswith(
        f"Invalid model version source: '{source}'.")


def test_create_version_checks_and_does_not_render_mlflow3_model_id(wire, model):
    body = wire.create_version(model, "models:/m-123", model_id="m-123")
    assert "model_id" not in body and body["source"] == "models:/m-123"


def test_download_uri_of_a_copy_is_the_copied_versions_storage(wire, model):
    wire.create_version(model, "s3://b/1", run_id="r1")
    wire.create_model("copies")
    copy = wire.create_version("copies", f"models:/{model}@latest")
    assert (copy["source"], copy["run_id"]) == (f"models:/{model}/1", "r1")
    wire.ok(wire.delete("/registered-models/delete", {"name": model}))
    body = wire.ok(wire.get("/model-versions/get-download-uri", {"name": "copies", "version": "1"}))
    assert body == {"artifact_uri": "s3://b/1"}


def test_create_version_of_an_unknown_model_is_resource_does_not_exist(wire):
    response = wire.post("/model-versions/create", {"name": "nope", "source": "s3://b/1"})
    assert_mlflow_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_create_version_without_source_is_invalid(wire, model):
    message = assert_mlflow_error(wire.post("/model-versions/create", {"name": model}), 400,
                                  "INVALID_PARAMETER_VALUE")
    assert "'source'" in message


def test_versions_are_numbered_in_sequence(wire, model):
    assert [wire.create_version(model)["version"] for _ in range(3)] == ["1", "2", "3"]


def test_get_version_includes_its_aliases(wire, model):
    wire.create_version(model)
    wire.ok(wire.post("/registered-models/alias", {"name": model, "alias": "champ", "version": "1"}))
    body = wire.ok(wire.get("/model-versions/get", {"name": model, "version": "1"}))
    assert body["model_version"]["aliases"] == ["champ"]


def test_get_unknown_version_is_resource_does_not_exist(wire, model):
    message = assert_mlflow_error(wire.get("/model-versions/get", {"name": model, "version": "9"}), 404,
                                  "RESOURCE_DOES_NOT_EXIST")
    assert message == "Model Version (name=churn, version=9) not found"


@pytest.mark.parametrize("version", ["abc", "1.5", "1e3"])
def test_non_integer_version_is_invalid(wire, model, version):
    assert_mlflow_error(wire.get("/model-versions/get", {"name": model, "version": version}), 400,
                        "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("version", ["0", "-1", "2147483648"])
def test_a_version_no_version_can_have_is_not_found_as_in_mlflow(wire, model, version):
    wire.create_version(model)
    message = assert_mlflow_error(wire.get("/model-versions/get", {"name": model, "version": version}), 404,
                                  "RESOURCE_DOES_NOT_EXIST")
    assert message == f"Model Version (name=churn, version={int(version)}) not found"


def test_version_sent_as_a_json_number_is_invalid_as_in_mlflow(wire, model):
    wire.create_version(model)
    response = wire.patch("/model-versions/update", {"name": model, "version": 1, "description": "x"})
    message = assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert "'version'" in message


# --- update / delete / download URI -----------------------------------------------------------------------

def test_update_version_sets_the_description(wire, model):
    wire.create_version(model)
    body = wire.ok(wire.patch("/model-versions/update", {"name": model, "version": "1", "description": "better"}))
    assert body["model_version"]["description"] == "better"


@pytest.mark.parametrize("via", ["body", "query"])
def test_delete_version_with_params_in_body_or_query(wire, model, via):
    wire.create_version(model)
    params = {"name": model, "version": "1"}
    response = wire.delete("/model-versions/delete", **({"body": params} if via == "body" else {"query": params}))
    assert wire.ok(response) == {}
    assert_mlflow_error(wire.get("/model-versions/get", params), 404, "RESOURCE_DOES_NOT_EXIST")


def test_get_download_uri_returns_the_source(wire, model):
    wire.create_version(model, "gs://bucket/churn/1")
    body = wire.ok(wire.get("/model-versions/get-download-uri", {"name": model, "version": "1"}))
    assert body == {"artifact_uri": "gs://bucket/churn/1"}


def test_get_download_uri_of_an_unknown_version_is_resource_does_not_exist(wire, model):
    response = wire.get("/model-versions/get-download-uri", {"name": model, "version": "3"})
    assert_mlflow_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


# --- tags -------------------------------------------------------------------------------------------------

def test_set_and_delete_version_tags(wire, model):
    wire.create_version(model)
    assert wire.ok(wire.post("/model-versions/set-tag", {"name": model, "version": "1", "key": "a", "value": "1"})) == {}
    wire.ok(wire.post("/model-versions/set-tag", {"name": model, "version": "1", "key": "b", "value": "2"}))
    wire.ok(wire.delete("/model-versions/delete-tag", query={"name": model, "version": "1", "key": "a"}))
    body = wire.ok(wire.get("/model-versions/get", {"name": model, "version": "1"}))
    assert body["model_version"]["tags"] == [{"key": "b", "value": "2"}]


def test_set_tag_on_an_unknown_version_is_resource_does_not_exist(wire, model):
    response = wire.post("/model-versions/set-tag", {"name": model, "version": "4", "key": "a", "value": "1"})
    assert_mlflow_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


# --- stages -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("given, canonical", [("production", "Production"), ("STAGING", "Staging"),
                                              ("archived", "Archived"), ("none", "None")])
def test_transition_accepts_any_case_and_answers_the_canonical_stage(wire, model, given, canonical):
    wire.create_version(model)
    assert wire.transition(model, "1", given)["current_stage"] == canonical


def test_transition_with_archive_existing_archives_only_the_target_stage(wire, model):
    for _ in range(3):
        wire.create_version(model)
    wire.transition(model, "1", "Production")
    wire.transition(model, "2", "Staging")
    wire.transition(model, "3", "Production", archive=True)
    stages = {v: wire.ok(wire.get("/model-versions/get", {"name": model, "version": v}))["model_version"]
              ["current_stage"] for v in ("1", "2", "3")}
    assert stages == {"1": "Archived", "2": "Staging", "3": "Production"}


def test_transition_without_archive_flag_keeps_other_versions(wire, model):
    wire.create_version(model)
    wire.create_version(model)
    wire.transition(model, "1", "Production")
    wire.ok(wire.post("/model-versions/transition-stage", {"name": model, "version": "2", "stage": "Production"}))
    body = wire.ok(wire.get("/model-versions/get", {"name": model, "version": "1"}))
    assert body["model_version"]["current_stage"] == "Production"


@pytest.mark.parametrize("stage", ["None", "Archived"])
def test_archive_existing_into_an_inactive_stage_is_a_400_not_mlflows_500(wire, model, stage):
    wire.create_version(model)
    response = wire.post("/model-versions/transition-stage",
                         {"name": model, "version": "1", "stage": stage, "archive_existing_versions": True})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("stage", ["prod", " staging ", "Staging "])
def test_transition_to_an_unknown_stage_is_invalid(wire, model, stage):
    wire.create_version(model)
    response = wire.post("/model-versions/transition-stage", {"name": model, "version": "1", "stage": stage})
    message = assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert message == f"Invalid Model Version stage: {stage}. Value must be one of None, Staging, Production, Archived."
    assert wire.ok(wire.get("/model-versions/get", {"name": model, "version": "1"}))["model_version"][
        "current_stage"] == "None"


def test_archive_existing_sent_as_a_string_is_invalid(wire, model):
    wire.create_version(model)
    response = wire.post("/model-versions/transition-stage",
                         {"name": model, "version": "1", "stage": "Staging", "archive_existing_versions": "true"})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_transition_refused_by_an_approval_policy_is_permission_denied_naming_a_request(
        wire, model, make_user, secure_app):
    wire.create_version(model)
    with secure_app.app_context():
        policies.set_model_policy(SYSTEM, model, "Production", required_approvals=1, creator_may_not_approve=False)
    releaser = wire.as_user(make_user("releaser", "MANAGE_PRODUCTION"))
    response = releaser.post("/model-versions/transition-stage", {"name": model, "version": "1", "stage": "Production"})
    message = assert_mlflow_error(response, 403, "PERMISSION_DENIED")
    assert "transition request" in message


def test_transition_refused_by_an_approval_policy_is_refused_to_admins_too(wire, model, secure_app):
    wire.create_version(model)
    with secure_app.app_context():
        policies.set_model_policy(SYSTEM, model, "Production", required_approvals=2, creator_may_not_approve=False)
    response = wire.post("/model-versions/transition-stage", {"name": model, "version": "1", "stage": "Production"})
    assert_mlflow_error(response, 403, "PERMISSION_DENIED")


def test_transition_without_the_stage_permission_is_permission_denied(wire, model, make_user):
    wire.create_version(model)
    stager = wire.as_user(make_user("stager", "MANAGE_STAGING"))
    response = stager.post("/model-versions/transition-stage", {"name": model, "version": "1", "stage": "Production"})
    assert_mlflow_error(response, 403, "PERMISSION_DENIED")
    assert stager.transition(model, "1", "Staging")["current_stage"] == "Staging"


# --- permissions ------------------------------------------------------------------------------------------

def test_reader_cannot_create_a_version(wire, model, make_user):
    reader = wire.as_user(make_user("reader"))
    assert_mlflow_error(reader.post("/model-versions/create", {"name": model, "source": "s3://b/1"}), 403,
                        "PERMISSION_DENIED")


def test_editor_creates_a_model_and_manages_it(wire, make_user):
    editor = wire.as_user(make_user("editor", "EDIT"))
    editor.create_model("mine")
    editor.create_version("mine")
    assert wire.ok(editor.delete("/registered-models/delete", {"name": "mine"})) == {}
