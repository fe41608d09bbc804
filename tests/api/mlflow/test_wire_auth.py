"""MLflow's auth API on the wire (registry/api/mlflow/auth.py): users/*, the 3.0 per-user permission API and
the registered-models/permissions API of older clients. Each rule of who may call what has a test that it
denies, and each refusal has MLflow's error shape."""
from __future__ import annotations

import base64

import pytest

from .conftest import API, Wire, assert_mlflow_error

V3 = "/api/3.0/mlflow"
PASSWORD = "correct horse battery"


def basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


class Team:
    """An admin, model ``fraud`` managed by ``owner``, an EDIT holder ``writer``, and ``wire(who)``."""

    def __init__(self, client, make_user):
        self.client = client
        self.headers = {"admin": make_user("root", admin=True), "owner": make_user("owner", "EDIT"),
                        "writer": make_user("writer", "EDIT")}
        self.wire("owner").create_model("fraud")

    def wire(self, who: str, prefix: str = API) -> Wire:
        headers = self.headers[who] if isinstance(who, str) else who
        return Wire(self.client, headers, prefix)

    def create_user(self, name: str, password: str = PASSWORD) -> dict:
        return self.wire("admin").ok(self.wire("admin").post("/users/create",
                                                             {"username": name, "password": password}))["user"]

    def grant(self, who: str, user: str, permission: str, model: str = "fraud"):
        return self.wire(who, V3).post("/users/permissions/grant", {
            "username": user, "resource_type": "registered_model", "resource_id": model, "permission": permission})

    def effective(self, who, user: str, model: str = "fraud"):
        return self.wire(who, V3).get("/users/permissions/get", {
            "username": user, "resource_type": "registered_model", "resource_id": model})


@pytest.fixture
def team(secure_client, make_user):
    return Team(secure_client, make_user)


# --- users ------------------------------------------------------------------------------------------------

def test_an_admin_creates_a_user_who_signs_in_with_basic_auth(team):
    user = team.create_user("mia")
    assert (user["username"], user["is_admin"]) == ("mia", False) and isinstance(user["id"], int)
    me = team.client.get("/api/v1/me", headers=basic("mia", PASSWORD))
    assert me.get_json() == {"name": "mia", "is_admin": False}
    assert team.client.get("/api/v1/me", headers=basic("mia", "wrong password!!")).status_code == 401
    assert team.client.get("/api/v1/me", headers=basic("someone-else", PASSWORD)).status_code == 401


def test_creating_a_user_twice_is_resource_already_exists(team):
    team.create_user("mia")
    response = team.wire("admin").post("/users/create", {"username": "mia", "password": PASSWORD})
    assert_mlflow_error(response, 400, "RESOURCE_ALREADY_EXISTS")


def test_only_admins_create_users(team):
    response = team.wire("owner").post("/users/create", {"username": "mia", "password": PASSWORD})
    assert_mlflow_error(response, 403, "PERMISSION_DENIED")


@pytest.mark.parametrize("body", [{"username": "mia", "password": "short"}, {"username": "mia"},
                                  {"username": "", "password": PASSWORD}, {"username": "a b", "password": PASSWORD}])
def test_bad_user_fields_are_invalid_parameter_value(team, body):
    assert_mlflow_error(team.wire("admin").post("/users/create", body), 400, "INVALID_PARAMETER_VALUE")


def test_users_read_themselves_and_admins_anyone(team):
    team.create_user("mia")
    mine = team.wire(basic("mia", PASSWORD)).ok(team.wire(basic("mia", PASSWORD)).get("/users/get", {"username": "mia"}))
    assert mine["user"]["username"] == "mia"
    assert_mlflow_error(team.wire("owner").get("/users/get", {"username": "mia"}), 403, "PERMISSION_DENIED")
    assert_mlflow_error(team.wire("admin").get("/users/get", {"username": "nobody"}), 404, "RESOURCE_DOES_NOT_EXIST")


def test_changing_a_password_ends_sign_ins_with_the_old_one(team):
    team.create_user("mia")
    mia = team.wire(basic("mia", PASSWORD))
    assert team.client.get("/api/v1/me", headers=basic("mia", PASSWORD)).status_code == 200  # remembered now
    assert_mlflow_error(mia.patch("/users/update-password", {"username": "mia", "password": "a new password 1"}),
                        400, "INVALID_PARAMETER_VALUE")  # one's own needs the current password
    assert_mlflow_error(mia.patch("/users/update-password", {"username": "mia", "password": "a new password 1",
                                                             "current_password": "not the password"}),
                        400, "INVALID_PARAMETER_VALUE")
    mia.ok(mia.patch("/users/update-password", {"username": "mia", "password": "a new password 1",
                                                "current_password": PASSWORD}))
    assert team.client.get("/api/v1/me", headers=basic("mia", PASSWORD)).status_code == 401
    assert team.client.get("/api/v1/me", headers=basic("mia", "a new password 1")).status_code == 200


def test_only_admins_change_another_users_password(team):
    team.create_user("mia")
    body = {"username": "mia", "password": "taken over!!!"}
    assert_mlflow_error(team.wire("owner").patch("/users/update-password", body), 403, "PERMISSION_DENIED")
    team.wire("admin").ok(team.wire("admin").patch("/users/update-password", body))
    assert team.client.get("/api/v1/me", headers=basic("mia", "taken over!!!")).status_code == 200


def test_only_admins_change_the_admin_role_and_it_applies_at_once(team):
    team.create_user("mia")
    mia = team.wire(basic("mia", PASSWORD))
    assert_mlflow_error(mia.post("/users/create", {"username": "x1", "password": PASSWORD}), 403, "PERMISSION_DENIED")
    assert_mlflow_error(mia.patch("/users/update-admin", {"username": "mia", "is_admin": True}),
                        403, "PERMISSION_DENIED")
    team.wire("admin").ok(team.wire("admin").patch("/users/update-admin", {"username": "mia", "is_admin": True}))
    mia.ok(mia.post("/users/create", {"username": "x1", "password": PASSWORD}))
    assert_mlflow_error(team.wire("admin").patch("/users/update-admin", {"username": "mia"}),
                        400, "INVALID_PARAMETER_VALUE")


def test_deleting_a_user_ends_their_sign_ins_and_their_grants(team):
    team.create_user("mia")
    assert team.grant("owner", "mia", "MANAGE").status_code == 200
    token = team.client.post("/api/v1/tokens", json={"user": "mia"}, headers=team.headers["admin"]).get_json()["token"]
    assert team.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert_mlflow_error(team.wire("owner").delete("/users/delete", {"username": "mia"}), 403, "PERMISSION_DENIED")
    team.wire("admin").ok(team.wire("admin").delete("/users/delete", {"username": "mia"}))
    assert team.client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert team.client.get("/api/v1/me", headers=basic("mia", PASSWORD)).status_code == 401
    team.create_user("mia")  # the same name again: a new user, who inherits nothing
    assert team.effective("admin", "mia").get_json() == {"allowed": True, "permission": "READ"}  # `*` READ only
    assert_mlflow_error(team.wire("admin").delete("/users/delete", {"username": "mia-x"}), 404,
                        "RESOURCE_DOES_NOT_EXIST")


def test_admins_cannot_delete_themselves(team):
    assert_mlflow_error(team.wire("admin").delete("/users/delete", {"username": "root"}), 400,
                        "INVALID_PARAMETER_VALUE")


# --- one user's permission on a model (MLflow 3.17+'s users/permissions/*) -------------------------------

def test_a_manage_holder_grants_and_revokes(team):
    team.create_user("mia")
    team.wire("owner").ok(team.grant("owner", "mia", "EDIT"))
    assert team.effective("admin", "mia").get_json() == {"allowed": True, "permission": "EDIT"}
    assert_mlflow_error(team.grant("owner", "mia", "READ"), 400, "RESOURCE_ALREADY_EXISTS")
    revoke = {"username": "mia", "resource_type": "registered_model", "resource_id": "fraud"}
    team.wire("owner").ok(team.wire("owner", V3).post("/users/permissions/revoke", revoke))
    assert_mlflow_error(team.wire("owner", V3).post("/users/permissions/revoke", revoke), 404,
                        "RESOURCE_DOES_NOT_EXIST")


def test_granting_needs_manage_on_the_model(team):
    team.create_user("mia")
    assert_mlflow_error(team.grant("writer", "mia", "READ"), 403, "PERMISSION_DENIED")
    revoke = {"username": "owner", "resource_type": "registered_model", "resource_id": "fraud"}
    assert_mlflow_error(team.wire("writer", V3).post("/users/permissions/revoke", revoke), 403, "PERMISSION_DENIED")


def test_registry_wide_grants_are_the_admins(team):
    team.create_user("mia")
    assert_mlflow_error(team.grant("owner", "mia", "READ", model="*"), 403, "PERMISSION_DENIED")
    team.wire("admin").ok(team.grant("admin", "mia", "EDIT", model="*"))
    grants = team.client.get("/api/v1/permissions", headers=team.headers["admin"]).get_json()["grants"]
    assert {"principal": "mia", "level": "EDIT"} in grants


@pytest.mark.parametrize("permission", ["SUPER", "NO_PERMISSIONS", "read", ""])
def test_bad_levels_are_invalid_parameter_value(team, permission):
    team.create_user("mia")
    assert_mlflow_error(team.grant("owner", "mia", permission), 400, "INVALID_PARAMETER_VALUE")


@pytest.mark.parametrize("resource_type", ["experiment", "workspace", "prompt"])
def test_only_registered_models_are_resources_here(team, resource_type):
    team.create_user("mia")
    response = team.wire("admin", V3).post("/users/permissions/grant", {
        "username": "mia", "resource_type": resource_type, "resource_id": "1", "permission": "READ"})
    assert_mlflow_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_unknown_model_or_user_is_resource_does_not_exist(team):
    team.create_user("mia")
    assert_mlflow_error(team.grant("admin", "mia", "READ", model="no-such-model"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert_mlflow_error(team.grant("owner", "nobody", "READ"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_a_deny_grant_hides_the_model_from_the_user(team):
    team.create_user("mia")
    mia = team.wire(basic("mia", PASSWORD))
    mia.ok(mia.get("/registered-models/get", {"name": "fraud"}))  # the default `*` READ
    team.wire("owner").ok(team.grant("owner", "mia", "DENY"))
    assert_mlflow_error(mia.get("/registered-models/get", {"name": "fraud"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert team.client.get("/api/v1/models/fraud", headers=basic("mia", PASSWORD)).status_code == 404
    assert team.effective("admin", "mia").get_json() == {"allowed": False, "permission": "DENY"}
    # Asking about oneself does not tell a vetoed model from a missing one.
    assert team.effective(basic("mia", PASSWORD), "mia").get_json() == {"allowed": False,
                                                                      "permission": "NO_PERMISSIONS"}


def test_reading_another_users_permission_needs_an_admin(team):
    team.create_user("mia")
    assert_mlflow_error(team.effective("owner", "mia"), 403, "PERMISSION_DENIED")
    assert team.effective(basic("mia", PASSWORD), "mia").get_json() == {"allowed": True, "permission": "READ"}
    assert team.effective("admin", "mia", model="no-such-model").get_json() == {
        "allowed": False, "permission": "NO_PERMISSIONS"}


def test_errors_under_api_3_0_have_mlflows_shape(team):
    response = team.client.get(V3 + "/users/permissions/get", query_string={"username": "x"})
    assert_mlflow_error(response, 401, "UNAUTHENTICATED")


# --- the registered-models/permissions API of clients before 3.17 ---------------------------------------

def test_the_legacy_api_creates_reads_updates_and_deletes_a_grant(team):
    user_id = team.create_user("mia")["id"]
    owner = team.wire("owner")
    body = owner.ok(owner.post("/registered-models/permissions/create",
                               {"name": "fraud", "username": "mia", "permission": "MANAGE"}))
    assert body == {"registered_model_permission": {"name": "fraud", "user_id": user_id, "permission": "MANAGE"}}
    assert_mlflow_error(owner.post("/registered-models/permissions/create",
                                   {"name": "fraud", "username": "mia", "permission": "READ"}),
                        400, "RESOURCE_ALREADY_EXISTS")
    owner.ok(owner.patch("/registered-models/permissions/update",
                         {"name": "fraud", "username": "mia", "permission": "NO_PERMISSIONS"}))
    got = owner.ok(owner.get("/registered-models/permissions/get", {"name": "fraud", "username": "mia"}))
    assert got["registered_model_permission"]["permission"] == "NO_PERMISSIONS"  # its veto: DENY here
    assert team.client.get("/api/v1/models/fraud", headers=basic("mia", PASSWORD)).status_code == 404
    owner.ok(owner.delete("/registered-models/permissions/delete", {"name": "fraud", "username": "mia"}))
    assert_mlflow_error(owner.get("/registered-models/permissions/get", {"name": "fraud", "username": "mia"}),
                        404, "RESOURCE_DOES_NOT_EXIST")
    assert_mlflow_error(owner.patch("/registered-models/permissions/update",
                                    {"name": "fraud", "username": "mia", "permission": "READ"}),
                        404, "RESOURCE_DOES_NOT_EXIST")


def test_the_legacy_api_needs_manage(team):
    team.create_user("mia")
    writer = team.wire("writer")
    assert_mlflow_error(writer.post("/registered-models/permissions/create",
                                    {"name": "fraud", "username": "mia", "permission": "READ"}),
                        403, "PERMISSION_DENIED")
    assert_mlflow_error(writer.get("/registered-models/permissions/get", {"name": "fraud", "username": "owner"}),
                        403, "PERMISSION_DENIED")
    assert_mlflow_error(team.wire("owner").post("/registered-models/permissions/create",
                                                {"name": "fraud", "username": "mia", "permission": "OWNER"}),
                        400, "INVALID_PARAMETER_VALUE")
