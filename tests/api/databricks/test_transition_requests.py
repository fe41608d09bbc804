"""Databricks transition requests on the wire: create, list, approve, reject, delete (cancel), addressed by
(model, version, stage[, creator]) as databricks-sdk sends them, mapped onto our review workflow."""
from __future__ import annotations

import pytest

from .conftest import API, Wire, assert_error, ok


def test_create_answers_the_request_as_databricks_shapes_it(team):
    body = ok(team.request("reader", comment="ship it"))

    request = body["request"]
    assert {k: request[k] for k in ("activity_type", "from_stage", "to_stage", "user_id", "comment",
                                    "available_actions")} == {
        "activity_type": "REQUESTED_TRANSITION", "from_stage": "None", "to_stage": "Production",
        "user_id": "reader", "comment": "ship it", "available_actions": ["CANCEL_TRANSITION_REQUEST"]}
    assert request["id"].isdigit() and isinstance(request["creation_timestamp"], int)


def test_create_accepts_a_stage_in_any_case(team):
    assert ok(team.request("reader", stage="staging"))["request"]["to_stage"] == "Staging"


def test_duplicate_pending_request_is_resource_already_exists(team):
    ok(team.request("reader"))

    assert_error(team.request("reader"), 400, "RESOURCE_ALREADY_EXISTS")


def test_request_for_the_current_stage_is_invalid(team):
    assert_error(team.request("reader", stage="None"), 400, "INVALID_PARAMETER_VALUE")


def test_request_for_unknown_version_is_resource_does_not_exist(team):
    assert_error(team.request("reader", version="99"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_request_needs_a_token(team, secure_client):
    response = secure_client.post(API + "/transition-requests/create",
                                  json={"name": "fraud", "version": "1", "stage": "Staging"})

    assert_error(response, 401, "UNAUTHENTICATED")


def test_list_answers_open_requests_of_the_version_oldest_first(team):
    ok(team.request("reader", stage="Staging"))
    ok(team.request("writer", stage="Production", comment="please"))
    ok(team.request("reader", version="2", stage="Staging"))

    listed = team.open_requests("1")

    assert [(r["user_id"], r["to_stage"], r["activity_type"]) for r in listed] == [
        ("reader", "Staging", "REQUESTED_TRANSITION"), ("writer", "Production", "REQUESTED_TRANSITION")]


def test_list_is_empty_object_without_open_requests(team):
    body = ok(team.as_("reader").get(API + "/transition-requests/list", {"name": "fraud", "version": "1"}))

    assert body == {}


def test_approve_applies_the_transition_and_answers_an_approved_activity(team):
    ok(team.request("reader"))

    body = ok(team.review("prod", "approve", comment="lgtm"))

    activity = body["activity"]
    assert {k: activity[k] for k in ("activity_type", "from_stage", "to_stage", "user_id", "comment")} == {
        "activity_type": "APPROVED_REQUEST", "from_stage": "None", "to_stage": "Production", "user_id": "prod",
        "comment": "lgtm"}
    assert team.stage_of("1") == "Production"
    assert team.open_requests("1") == []


@pytest.mark.parametrize("archive, other_stage", [(True, "Archived"), (False, "Production")])
def test_approve_honours_archive_existing_versions(team, archive, other_stage):
    ok(team.as_("prod").post(API + "/model-versions/transition-stage",
                             {"name": "fraud", "version": "2", "stage": "Production",
                              "archive_existing_versions": False}))
    ok(team.request("reader"))

    ok(team.review("prod", "approve", archive_existing_versions=archive))

    assert (team.stage_of("1"), team.stage_of("2")) == ("Production", other_stage)


def test_approve_with_archive_to_a_stage_that_cannot_archive_is_invalid(team):
    ok(team.request("reader", stage="Archived"))

    response = team.review("prod", "approve", stage="Archived", archive_existing_versions=True)

    assert_error(response, 400, "INVALID_PARAMETER_VALUE")
    assert team.stage_of("1") == "None"


def test_approve_without_a_pending_request_is_resource_does_not_exist(team):
    message = assert_error(team.review("prod", "approve"), 404, "RESOURCE_DOES_NOT_EXIST")

    assert "No pending request" in message


def test_approve_own_request_is_permission_denied(team):
    ok(team.request("prod"))

    assert_error(team.review("prod", "approve"), 403, "PERMISSION_DENIED")
    assert team.stage_of("1") == "None"


def test_approve_needs_the_stage_permission(team):
    ok(team.request("reader"))

    message = assert_error(team.review("stager", "approve"), 403, "PERMISSION_DENIED")

    assert "MANAGE_PRODUCTION" in message
    assert team.stage_of("1") == "None"


def test_approve_skips_the_approvers_own_request_and_approves_the_others(team):
    ok(team.request("prod"))
    ok(team.request("reader"))

    body = ok(team.review("prod2", "approve"))

    assert body["activity"]["user_id"] == "prod2"
    assert team.stage_of("1") == "Production"


def test_approve_counts_towards_the_policy_before_applying(team):
    team.require_approvals(2)
    ok(team.request("reader"))

    ok(team.review("prod", "approve"))
    assert team.stage_of("1") == "None"
    assert len(team.open_requests("1")) == 1

    ok(team.review("prod2", "approve"))
    assert team.stage_of("1") == "Production"


def test_same_reviewer_cannot_approve_twice(team):
    team.require_approvals(2)
    ok(team.request("reader"))
    ok(team.review("prod", "approve"))

    assert_error(team.review("prod", "approve"), 403, "PERMISSION_DENIED")


def test_reject_closes_the_request_and_answers_a_rejected_activity(team):
    ok(team.request("reader", stage="Staging"))

    body = ok(team.review("stager", "reject", stage="Staging", comment="not yet"))

    assert {k: body["activity"][k] for k in ("activity_type", "to_stage", "user_id", "comment")} == {
        "activity_type": "REJECTED_REQUEST", "to_stage": "Staging", "user_id": "stager", "comment": "not yet"}
    assert team.open_requests("1") == []
    assert team.stage_of("1") == "None"


def test_reject_own_request_is_permission_denied(team):
    ok(team.request("stager", stage="Staging"))

    assert_error(team.review("stager", "reject", stage="Staging"), 403, "PERMISSION_DENIED")


def test_reject_without_pending_request_is_resource_does_not_exist(team):
    assert_error(team.review("stager", "reject", stage="Staging"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_delete_cancels_the_creators_request_from_query_parameters(team):
    ok(team.request("reader", stage="Staging", comment="oops"))
    ok(team.request("writer", stage="Staging"))

    body = ok(team.cancel("reader", creator="reader", stage="Staging", comment="never mind"))

    assert {k: body["activity"][k] for k in ("activity_type", "to_stage", "user_id", "comment")} == {
        "activity_type": "CANCELLED_REQUEST", "to_stage": "Staging", "user_id": "reader", "comment": "never mind"}
    assert [r["user_id"] for r in team.open_requests("1")] == ["writer"]


def test_delete_of_someone_elses_request_needs_manage(team):
    ok(team.request("reader", stage="Staging"))

    assert_error(team.cancel("writer", creator="reader", stage="Staging"), 403, "PERMISSION_DENIED")
    assert len(team.open_requests("1")) == 1


def test_model_manager_may_delete_someone_elses_request(team):
    ok(team.request("reader", stage="Staging"))

    ok(team.cancel("owner", creator="reader", stage="Staging"))

    assert team.open_requests("1") == []


def test_delete_without_creator_is_invalid(team):
    response = team.as_("reader").delete(API + "/transition-requests/delete",
                                         {"name": "fraud", "version": "1", "stage": "Staging"})

    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_delete_of_a_request_that_creator_did_not_make_is_resource_does_not_exist(team):
    ok(team.request("writer", stage="Staging"))

    assert_error(team.cancel("owner", creator="reader", stage="Staging"), 404, "RESOURCE_DOES_NOT_EXIST")


def test_requests_on_an_unreadable_model_are_not_found(team, make_user):
    ok(team.as_("admin").put("/api/2.0/permissions/registered-models/root",
                             {"access_control_list": [{"user_name": "owner", "permission_level": "CAN_EDIT"}]}))
    outsider = make_user("outsider")

    response = Wire(team.client, outsider).post(API + "/transition-requests/create",
                                                {"name": "fraud", "version": "1", "stage": "Staging"})

    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")


def test_ajax_prefix_serves_the_same_routes(team):
    ok(team.request("reader", stage="Staging"))

    body = ok(team.as_("reader").get("/ajax-api/2.0/mlflow/transition-requests/list",
                                     {"name": "fraud", "version": "1"}))

    assert [r["to_stage"] for r in body["requests"]] == ["Staging"]


def test_approvers_archive_choice_replaces_the_requesters(team):
    ok(team.as_("prod").post(API + "/model-versions/transition-stage",
                             {"name": "fraud", "version": "2", "stage": "Production",
                              "archive_existing_versions": False}))
    native = team.client.post("/api/v1/models/fraud/versions/1/transition-requests",
                              json={"stage": "Production", "archive_existing_versions": True},
                              headers=team.headers["reader"])
    assert native.status_code == 201, native.get_data(as_text=True)

    ok(team.review("prod", "approve", archive_existing_versions=False))

    assert (team.stage_of("1"), team.stage_of("2")) == ("Production", "Production")


def test_a_retried_approval_that_did_commit_says_the_callers_approval_took_effect(team):
    ok(team.request("reader"))
    ok(team.review("prod", "approve"))

    message = assert_error(team.review("prod", "approve"), 404, "RESOURCE_DOES_NOT_EXIST")

    assert "already approved by you" in message
    assert team.stage_of("1") == "Production"
