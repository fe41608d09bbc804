"""MLflow dialect transport rules: prefixes, authentication, content types, parameter sources, error shape."""
from __future__ import annotations

import base64

import pytest

from tests.api.mlflow.conftest import AJAX, API, Wire, assert_mlflow_error


@pytest.mark.parametrize("prefix", [API, AJAX], ids=["api", "ajax-api"])
def test_both_prefixes_serve_the_registry(secure_client, admin_headers, prefix):
    wire = Wire(secure_client, admin_headers, prefix)
    wire.create_model("churn")
    assert wire.ok(wire.get("/registered-models/get", {"name": "churn"}))["registered_model"]["name"] == "churn"


@pytest.mark.parametrize("prefix", [API, AJAX], ids=["api", "ajax-api"])
@pytest.mark.parametrize("authorization", [None, "Bearer reg_unknown", "Basic !!!", "Token abc"],
                         ids=["none", "unknown-token", "bad-basic", "bad-scheme"])
def test_unauthenticated_request_gets_mlflow_shaped_401(secure_client, prefix, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    response = secure_client.get(prefix + "/registered-models/search", headers=headers)
    assert_mlflow_error(response, 401, "UNAUTHENTICATED")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_basic_auth_with_the_token_as_password_is_accepted(secure_client, make_user):
    token = make_user("basic-user")["Authorization"].removeprefix("Bearer ")
    credentials = base64.b64encode(f"basic-user:{token}".encode()).decode()
    response = secure_client.get(API + "/registered-models/search", headers={"Authorization": f"Basic {credentials}"})
    assert response.status_code == 200


def test_native_api_keeps_its_own_error_shape(secure_client):
    response = secure_client.get("/api/v1/models")
    assert response.status_code == 401
    assert set(response.get_json()) == {"error"}


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_post_without_json_content_type_is_invalid(secure_client, admin_headers, content_type):
    headers = dict(admin_headers, **({"Content-Type": content_type} if content_type else {}))
    response = secure_client.post(API + "/registered-models/create", data='{"name": "churn"}', headers=headers)
    message = assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert "Content-Type" in message


def test_post_with_json_content_type_and_charset_is_accepted(secure_client, admin_headers):
    headers = dict(admin_headers, **{"Content-Type": "application/json; charset=utf-8"})
    response = secure_client.post(API + "/registered-models/create", data='{"name": "churn"}', headers=headers)
    assert response.status_code == 200


def test_patch_reads_a_json_body_whatever_its_content_type(wire, secure_client, admin_headers):
    wire.create_model("churn")
    headers = dict(admin_headers, **{"Content-Type": "text/plain"})
    response = secure_client.patch(API + "/registered-models/update", data='{"name": "churn", "description": "d"}',
                                   headers=headers)
    assert wire.ok(response)["registered_model"]["description"] == "d"


@pytest.mark.parametrize("data", ["{not json", "[1, 2]", '"just a string"', "[" * 100_000,
                                  '{"name": ' + "[" * 100_000 + "]" * 100_000 + "}"],
                         ids=["malformed", "array", "string", "deeply-nested", "deeply-nested-field"])
def test_body_that_is_not_a_json_object_is_invalid(secure_client, admin_headers, data):
    headers = dict(admin_headers, **{"Content-Type": "application/json"})
    response = secure_client.post(API + "/registered-models/create", data=data, headers=headers)
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_double_encoded_json_body_is_decoded_as_mlflow_does(secure_client, admin_headers):
    headers = dict(admin_headers, **{"Content-Type": "application/json"})
    response = secure_client.post(API + "/registered-models/create", data='"{\\"name\\": \\"churn\\"}"',
                                  headers=headers)
    assert response.status_code == 200, response.get_data(as_text=True)


def test_camel_case_json_names_are_accepted(wire):
    wire.create_model("churn")
    body = wire.ok(wire.post("/registered-models/rename", {"name": "churn", "newName": "attrition"}))
    assert body["registered_model"]["name"] == "attrition"


def test_a_field_spelled_both_ways_is_invalid(wire):
    wire.create_model("churn")
    response = wire.post("/registered-models/rename", {"name": "churn", "new_name": "a", "newName": "b"})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_unknown_fields_are_ignored(wire):
    assert wire.ok(wire.post("/registered-models/create", {"name": "churn", "deployment_job_id": "j", "x": 1}))


def test_delete_with_query_and_body_that_agree_is_accepted(wire):
    wire.create_model("churn")
    response = wire.delete("/registered-models/delete", body={"name": "churn"}, query={"name": "churn"})
    assert wire.ok(response) == {}


def test_delete_with_query_and_body_that_disagree_is_invalid(wire):
    wire.create_model("churn")
    wire.create_model("fraud")
    response = wire.delete("/registered-models/delete", body={"name": "churn"}, query={"name": "fraud"})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_delete_without_any_parameters_is_invalid(wire):
    message = assert_mlflow_error(wire.delete("/registered-models/delete"), 400, "INVALID_PARAMETER_VALUE")
    assert "'name'" in message


def test_get_scalar_given_twice_uses_the_first_value(wire):
    wire.create_model("churn")
    body = wire.ok(wire.get("/registered-models/get?name=churn&name=fraud"))
    assert body["registered_model"]["name"] == "churn"


def test_unknown_route_under_the_prefix_is_endpoint_not_found(wire):
    assert_mlflow_error(wire.get("/registered-models/nothing-here"), 404, "ENDPOINT_NOT_FOUND")


def test_wrong_method_is_mlflow_shaped_405(wire):
    response = wire.get("/registered-models/create", {"name": "churn"})
    assert_mlflow_error(response, 405, "ENDPOINT_NOT_FOUND")
    assert "POST" in response.headers["Allow"]


def test_preview_paths_do_not_exist_as_in_mlflow_2(wire, secure_client, admin_headers):
    response = secure_client.get("/api/2.0/preview/mlflow/registered-models/search", headers=admin_headers)
    assert_mlflow_error(response, 404, "ENDPOINT_NOT_FOUND")


def test_model_invisible_to_the_caller_is_reported_missing(wire, make_user, secure_app):
    from registry.auth import SYSTEM
    from registry.services import permissions

    wire.create_model("secret")
    outsider = wire.as_user(make_user("outsider"))
    with secure_app.app_context():
        permissions.set_registry_permissions(SYSTEM, [])
    assert_mlflow_error(outsider.get("/registered-models/get", {"name": "secret"}), 404, "RESOURCE_DOES_NOT_EXIST")
