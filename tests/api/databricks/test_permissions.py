"""The registered-model permissions API: ``/api/2.0/permissions/registered-models/{id}`` (``root`` = the
registry), GET / PUT (replace) / PATCH (merge) and ``/permissionLevels``, mapped onto our levels."""
from __future__ import annotations

import pytest

from .conftest import API, PERMISSIONS, Wire, assert_error, ok


def acl_of(body: dict) -> dict[str, list[tuple[str, bool]]]:
    """{principal: [(level, inherited), ...]} with groups as "group:<name>"."""
    out = {}
    for entry in body["access_control_list"]:
        who = entry.get("user_name") or f"group:{entry['group_name']}"
        out[who] = [(p["permission_level"], p["inherited"]) for p in entry["all_permissions"]]
    return out


def level_of(team, who: str) -> str:
    response = team.as_(who).get(API + "/databricks/registered-models/get", {"name": "fraud"})
    return ok(response)["registered_model_databricks"]["permission_level"]


def test_get_lists_direct_grants_and_those_inherited_from_root(team):
    body = ok(team.as_("owner").get(f"{PERMISSIONS}/{team.model_id()}"))

    assert body["object_id"] == f"/registered-models/{team.model_id()}"
    assert body["object_type"] == "registered-model"
    acl = acl_of(body)
    assert acl["owner"] == [("CAN_MANAGE", False), ("CAN_EDIT", True)]
    assert acl["group:users"] == [("CAN_READ", True)]
    assert acl["prod"] == [("CAN_MANAGE_PRODUCTION_VERSIONS", True)]
    assert acl["group:admins"] == [("CAN_MANAGE", True)]
    inherited = next(e for e in body["access_control_list"] if e.get("group_name") == "users")
    assert inherited["all_permissions"][0]["inherited_from_object"] == ["/registered-models/root"]


def test_get_needs_manage(team):
    assert_error(team.as_("prod").get(f"{PERMISSIONS}/{team.model_id()}"), 403, "PERMISSION_DENIED")


@pytest.mark.parametrize("model_id", ["987654321", "not-an-id"])
def test_unknown_model_id_is_resource_does_not_exist(team, model_id):
    assert_error(team.as_("admin").get(f"{PERMISSIONS}/{model_id}"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_unreadable_model_is_not_found_without_naming_it(team, make_user):
    model_id = team.model_id()
    ok(team.as_("admin").put(f"{PERMISSIONS}/root", {"access_control_list": []}))
    outsider = Wire(team.client, make_user("outsider"))

    message = assert_error(outsider.get(f"{PERMISSIONS}/{model_id}"), 404, "RESOURCE_DOES_NOT_EXIST")

    assert "fraud" not in message


def test_patch_adds_a_grant_that_takes_effect(team):
    model_id = team.model_id()

    body = ok(team.as_("owner").patch(f"{PERMISSIONS}/{model_id}", {"access_control_list": [
        {"user_name": "reader", "permission_level": "CAN_MANAGE_STAGING_VERSIONS"}]}))

    assert acl_of(body)["reader"] == [("CAN_MANAGE_STAGING_VERSIONS", False)]
    assert acl_of(body)["owner"][0] == ("CAN_MANAGE", False)
    assert level_of(team, "reader") == "CAN_MANAGE_STAGING_VERSIONS"


def test_put_replaces_the_direct_grants(team):
    model_id = team.model_id()

    body = ok(team.as_("owner").put(f"{PERMISSIONS}/{model_id}", {"access_control_list": [
        {"user_name": "writer", "permission_level": "CAN_MANAGE"}]}))

    acl = acl_of(body)
    assert acl["writer"] == [("CAN_MANAGE", False), ("CAN_EDIT", True)]
    assert acl["owner"] == [("CAN_EDIT", True)]
    assert level_of(team, "owner") == "CAN_EDIT"


def test_users_group_grants_every_user(team):
    model_id = team.model_id()

    body = ok(team.as_("owner").patch(f"{PERMISSIONS}/{model_id}", {"access_control_list": [
        {"group_name": "users", "permission_level": "CAN_EDIT"}]}))

    assert acl_of(body)["group:users"] == [("CAN_EDIT", False), ("CAN_READ", True)]
    assert level_of(team, "reader") == "CAN_EDIT"


def test_admins_group_entry_with_can_manage_changes_nothing(team):
    model_id = team.model_id()

    body = ok(team.as_("owner").patch(f"{PERMISSIONS}/{model_id}", {"access_control_list": [
        {"group_name": "admins", "permission_level": "CAN_MANAGE"}]}))

    assert acl_of(body)["owner"][0] == ("CAN_MANAGE", False)


@pytest.mark.parametrize("entry", [
    {"group_name": "data-scientists", "permission_level": "CAN_READ"},
    {"group_name": "admins", "permission_level": "CAN_READ"},
    {"user_name": "reader", "permission_level": "CAN_OWN"},
    {"user_name": "nobody-like-this", "permission_level": "CAN_READ"},
    {"user_name": "reader", "group_name": "users", "permission_level": "CAN_READ"},
    {"permission_level": "CAN_READ"},
])
def test_invalid_access_control_entry_is_invalid_parameter_value(team, entry):
    response = team.as_("owner").patch(f"{PERMISSIONS}/{team.model_id()}", {"access_control_list": [entry]})

    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_changing_permissions_needs_manage(team):
    response = team.as_("prod").patch(f"{PERMISSIONS}/{team.model_id()}", {"access_control_list": [
        {"user_name": "prod", "permission_level": "CAN_MANAGE"}]})

    assert_error(response, 403, "PERMISSION_DENIED")


def test_root_lists_registry_wide_grants(team):
    body = ok(team.as_("reader").get(f"{PERMISSIONS}/root"))

    assert body["object_id"] == "/registered-models/root"
    acl = acl_of(body)
    assert acl["group:users"] == [("CAN_READ", False)]
    assert acl["writer"] == [("CAN_EDIT", False)]


def test_admin_patches_root_and_every_model_inherits(team):
    ok(team.as_("admin").patch(f"{PERMISSIONS}/root", {"access_control_list": [
        {"user_name": "reader", "permission_level": "CAN_MANAGE_PRODUCTION_VERSIONS"}]}))

    assert level_of(team, "reader") == "CAN_MANAGE_PRODUCTION_VERSIONS"


def test_only_admins_change_root(team):
    response = team.as_("owner").patch(f"{PERMISSIONS}/root", {"access_control_list": [
        {"user_name": "owner", "permission_level": "CAN_MANAGE"}]})

    assert_error(response, 403, "PERMISSION_DENIED")


def test_manager_may_remove_their_own_grant_and_still_gets_the_answer(team):
    model_id = team.model_id()

    body = ok(team.as_("owner").put(f"{PERMISSIONS}/{model_id}", {"access_control_list": []}))

    assert "owner" in acl_of(body) and acl_of(body)["owner"] == [("CAN_EDIT", True)]
    assert_error(team.as_("owner").get(f"{PERMISSIONS}/{model_id}"), 403, "PERMISSION_DENIED")


@pytest.mark.parametrize("object_id", ["root", "model"])
def test_permission_levels_describe_the_five_levels(team, object_id):
    object_id = team.model_id() if object_id == "model" else object_id

    body = ok(team.as_("reader").get(f"{PERMISSIONS}/{object_id}/permissionLevels"))

    assert [level["permission_level"] for level in body["permission_levels"]] == [
        "CAN_READ", "CAN_EDIT", "CAN_MANAGE_STAGING_VERSIONS", "CAN_MANAGE_PRODUCTION_VERSIONS", "CAN_MANAGE"]
    assert all(level["description"] for level in body["permission_levels"])


# --- DENY (a veto, set natively or through MLflow's API): shown here, never set here, kept by a PUT ----------

def _deny(team, who: str) -> None:
    response = team.client.patch("/api/v1/models/fraud/permissions", headers=team.headers["admin"],
                                 json={"grants": [{"principal": who, "level": "DENY"}]})
    assert response.status_code == 200, response.get_data(as_text=True)


def test_a_deny_is_shown_as_deny(team):
    _deny(team, "writer")
    acl = acl_of(ok(team.as_("owner").get(f"{PERMISSIONS}/{team.model_id()}")))
    assert ("DENY", False) in acl["writer"]


def test_deny_cannot_be_set_here(team):
    response = team.as_("owner").patch(f"{PERMISSIONS}/{team.model_id()}", {"access_control_list": [
        {"user_name": "writer", "permission_level": "DENY"}]})
    assert "DENY is not a Databricks permission level" in assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_a_put_keeps_the_denials_it_does_not_name(team):
    _deny(team, "writer")
    model_id = team.model_id()
    ok(team.as_("owner").put(f"{PERMISSIONS}/{model_id}", {"access_control_list": [
        {"user_name": "owner", "permission_level": "CAN_MANAGE"}]}))
    acl = acl_of(ok(team.as_("owner").get(f"{PERMISSIONS}/{model_id}")))
    assert ("DENY", False) in acl["writer"]
    assert_error(team.as_("writer").get(API + "/registered-models/get", {"name": "fraud"}), 404,
                 "RESOURCE_DOES_NOT_EXIST")
    # Naming the principal replaces the veto, as it replaces any grant.
    ok(team.as_("owner").patch(f"{PERMISSIONS}/{model_id}", {"access_control_list": [
        {"user_name": "writer", "permission_level": "CAN_READ"}]}))
    ok(team.as_("writer").get(API + "/registered-models/get", {"name": "fraud"}))


def test_permission_levels_do_not_offer_deny(team):
    body = ok(team.as_("owner").get(f"{PERMISSIONS}/{team.model_id()}/permissionLevels"))
    assert "DENY" not in [level["permission_level"] for level in body["permission_levels"]]
