"""The unmodified MLflow client (``mlflow.MlflowClient``) against a real gunicorn server with auth on.

Configuration is what a user sets: MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI and MLFLOW_TRACKING_TOKEN.
Each test uses its own model and user names: the server and its database are shared by the module.
"""
from __future__ import annotations


import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from tests.clients import native, stages_api, unique, user_token

pytestmark = pytest.mark.slow


@pytest.fixture
def model(client) -> str:
    name = unique("model")
    client.create_registered_model(name)
    return name


def error_code(call) -> str:
    with pytest.raises(MlflowException) as caught:
        call()
    return caught.value.error_code


# --- registered models ----------------------------------------------------------------------------------

def test_client_creates_and_reads_a_model_with_description_and_tags(client):
    name = unique("churn")
    created = client.create_registered_model(name, tags={"team": "growth"}, description="predicts churn")
    fetched = client.get_registered_model(name)
    assert (created.name, fetched.name) == (name, name)
    assert fetched.description == "predicts churn"
    assert fetched.tags == {"team": "growth"}
    assert fetched.creation_timestamp > 0 and fetched.last_updated_timestamp >= fetched.creation_timestamp


def test_client_updates_a_model_description(client, model):
    client.update_registered_model(model, description="second thoughts")
    assert client.get_registered_model(model).description == "second thoughts"


def test_client_renames_a_model_and_its_versions_follow(client, model):
    client.create_model_version(model, "s3://bucket/m/1")
    new_name = unique("renamed")
    client.rename_registered_model(model, new_name)
    assert client.get_registered_model(new_name).name == new_name
    assert client.get_model_version(new_name, "1").source == "s3://bucket/m/1"
    assert error_code(lambda: client.get_registered_model(model)) == "RESOURCE_DOES_NOT_EXIST"


def test_client_deletes_a_model(client, model):
    client.delete_registered_model(model)
    assert error_code(lambda: client.get_registered_model(model)) == "RESOURCE_DOES_NOT_EXIST"


def test_client_sets_and_deletes_model_tags(client, model):
    client.set_registered_model_tag(model, "owner", "ana")
    client.set_registered_model_tag(model, "tier", "1")
    client.delete_registered_model_tag(model, "tier")
    assert client.get_registered_model(model).tags == {"owner": "ana"}


# --- model versions -------------------------------------------------------------------------------------

def test_client_creates_a_ready_version_numbered_as_a_string(client, model):
    version = client.create_model_version(model, "s3://bucket/m/1", run_id="run-1",
                                          tags={"framework": "sklearn"}, description="first")
    assert version.version == "1"
    assert version.status == "READY"
    assert version.current_stage == "None"
    fetched = client.get_model_version(model, "1")
    assert (fetched.source, fetched.run_id, fetched.description) == ("s3://bucket/m/1", "run-1", "first")
    assert fetched.tags == {"framework": "sklearn"}


def test_client_updates_a_version_description(client, model):
    client.create_model_version(model, "s3://bucket/m/1")
    client.update_model_version(model, "1", description="better")
    assert client.get_model_version(model, "1").description == "better"


def test_client_deletes_a_version_and_never_reuses_its_number(client, model):
    client.create_model_version(model, "s3://bucket/m/1")
    client.delete_model_version(model, "1")
    assert error_code(lambda: client.get_model_version(model, "1")) == "RESOURCE_DOES_NOT_EXIST"
    assert client.create_model_version(model, "s3://bucket/m/2").version == "2"


def test_client_sets_and_deletes_version_tags(client, model):
    client.create_model_version(model, "s3://bucket/m/1")
    client.set_model_version_tag(model, "1", "validated", "yes")
    client.set_model_version_tag(model, "1", "temp", "x")
    client.delete_model_version_tag(model, "1", "temp")
    assert client.get_model_version(model, "1").tags == {"validated": "yes"}


def test_client_reads_the_download_uri_as_the_source(client, model):
    client.create_model_version(model, "s3://bucket/m/1")
    assert client.get_model_version_download_uri(model, "1") == "s3://bucket/m/1"


# --- stages and aliases -----------------------------------------------------------------------------------

def test_client_transition_with_archive_existing_archives_the_previous_production(client, model):
    client.create_model_version(model, "s3://bucket/m/1")
    client.create_model_version(model, "s3://bucket/m/2")
    with stages_api():
        client.transition_model_version_stage(model, "1", "Production")
        promoted = client.transition_model_version_stage(model, "2", "production", archive_existing_versions=True)
    assert promoted.current_stage == "Production"
    assert client.get_model_version(model, "1").current_stage == "Archived"


def test_client_get_latest_versions_returns_the_highest_version_per_stage(client, model):
    for i in range(1, 4):
        client.create_model_version(model, f"s3://bucket/m/{i}")
    with stages_api():
        client.transition_model_version_stage(model, "1", "Staging")
        client.transition_model_version_stage(model, "2", "Staging")
        latest = client.get_latest_versions(model, stages=["Staging"])
        every_stage = client.get_latest_versions(model)
    assert [v.version for v in latest] == ["2"]
    assert sorted((v.current_stage, v.version) for v in every_stage) == [("None", "3"), ("Staging", "2")]


def test_client_sets_resolves_and_deletes_an_alias(client, model):
    client.create_model_version(model, "s3://bucket/m/1")
    client.create_model_version(model, "s3://bucket/m/2")
    client.set_registered_model_alias(model, "champion", "1")
    assert client.get_model_version_by_alias(model, "champion").version == "1"
    assert client.get_registered_model(model).aliases == {"champion": "1"}
    client.delete_registered_model_alias(model, "champion")
    assert error_code(lambda: client.get_model_version_by_alias(model, "champion")) == "INVALID_PARAMETER_VALUE"


def test_client_resolves_the_reserved_latest_alias_to_the_highest_version(client, model):
    client.create_model_version(model, "s3://bucket/m/1")
    client.create_model_version(model, "s3://bucket/m/2")
    assert client.get_model_version_by_alias(model, "latest").version == "2"


# --- search ---------------------------------------------------------------------------------------------

def test_client_searches_models_by_filter_across_pages(client):
    prefix = unique("search")
    for i in range(5):
        client.create_registered_model(f"{prefix}-{i}", tags={"parity": "even" if i % 2 == 0 else "odd"})
    seen, token = [], None
    while True:
        page = client.search_registered_models(f"name LIKE '{prefix}-%' AND tags.parity = 'even'",
                                               max_results=2, page_token=token)
        assert len(page) <= 2
        seen += [m.name for m in page]
        token = page.token
        if not token:
            break
    assert seen == [f"{prefix}-0", f"{prefix}-2", f"{prefix}-4"]


def test_client_searches_models_in_the_requested_order(client):
    prefix = unique("order")
    for i in range(3):
        client.create_registered_model(f"{prefix}-{i}")
    found = client.search_registered_models(f"name LIKE '{prefix}%'", order_by=["name DESC"])
    assert [m.name for m in found] == [f"{prefix}-2", f"{prefix}-1", f"{prefix}-0"]


def test_client_searches_versions_by_filter_across_pages(client, model):
    for i in range(1, 6):
        client.create_model_version(model, f"s3://bucket/m/{i}", run_id="run-a" if i <= 4 else "run-b")
    seen, token = [], None
    while True:
        page = client.search_model_versions(f"name = '{model}' AND run_id = 'run-a'", max_results=3,
                                            order_by=["version_number ASC"], page_token=token)
        seen += [v.version for v in page]
        token = page.token
        if not token:
            break
    assert seen == ["1", "2", "3", "4"]


def test_client_search_rejects_a_bad_filter(client):
    assert error_code(lambda: client.search_registered_models("name = 'a' OR name = 'b'")) == "INVALID_PARAMETER_VALUE"


# --- errors and permissions -----------------------------------------------------------------------------

@pytest.mark.parametrize("call, code", [
    (lambda c, m: c.get_registered_model(m + "-missing"), "RESOURCE_DOES_NOT_EXIST"),
    (lambda c, m: c.create_registered_model(m), "RESOURCE_ALREADY_EXISTS"),
    (lambda c, m: c.get_model_version(m, "99"), "RESOURCE_DOES_NOT_EXIST"),
    (lambda c, m: c.set_registered_model_alias(m, "latest", "1"), "INVALID_PARAMETER_VALUE"),
    (lambda c, m: c.create_registered_model("a/b"), "INVALID_PARAMETER_VALUE"),
], ids=["missing-model", "duplicate-model", "missing-version", "reserved-alias", "bad-name"])
def test_client_surfaces_mlflow_error_codes(client, model, call, code):
    assert error_code(lambda: call(client, model)) == code


def test_client_with_an_unknown_token_is_unauthenticated(mlflow_env):
    mlflow_env("reg_not-a-real-token")
    assert error_code(lambda: MlflowClient().search_registered_models()) == "UNAUTHENTICATED"


def test_client_without_edit_permission_is_denied(client, model, mlflow_env, registry_url):
    mlflow_env(user_token(registry_url, unique("reader")))
    reader = MlflowClient()
    assert reader.get_registered_model(model).name == model  # everyone may read by default
    assert error_code(lambda: reader.update_registered_model(model, "nope")) == "PERMISSION_DENIED"


def test_client_transition_refused_by_an_approval_policy_is_permission_denied(client, model, mlflow_env,
                                                                              registry_url):
    client.create_model_version(model, "s3://bucket/m/1")
    native(registry_url, "PUT", f"/models/{model}/approval-policies/Production",
           {"required_approvals": 1, "creator_may_not_approve": False})
    mlflow_env(user_token(registry_url, unique("releaser"), "MANAGE_PRODUCTION"))
    releaser = MlflowClient()
    with stages_api(), pytest.raises(MlflowException) as caught:
        releaser.transition_model_version_stage(model, "1", "Production")
    assert caught.value.error_code == "PERMISSION_DENIED"
    assert "transition request" in caught.value.message
    assert releaser.get_model_version(model, "1").current_stage == "None"


def test_client_transition_allowed_by_the_stage_permission(client, model, mlflow_env, registry_url):
    client.create_model_version(model, "s3://bucket/m/1")
    mlflow_env(user_token(registry_url, unique("stager"), "MANAGE_STAGING"))
    with stages_api():
        moved = MlflowClient().transition_model_version_stage(model, "1", "Staging")
    assert moved.current_stage == "Staging"
