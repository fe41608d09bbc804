"""Databricks comments on model versions: create, update, delete (the SDK sends delete's id as a query string)."""
from __future__ import annotations

import pytest

from .conftest import API, assert_error, ok


def create(team, who: str, text: str = "looks good", version: str = "1") -> dict:
    body = {"name": "fraud", "version": version, "comment": text}
    return ok(team.as_(who).post(API + "/comments/create", body))["comment"]


def listed(team) -> list[str]:
    """The version's comments as the native API lists them."""
    response = team.client.get("/api/v1/models/fraud/versions/1/comments", headers=team.headers["admin"])
    return [c["comment"] for c in response.get_json()["comments"]]


def test_create_answers_a_comment_object_with_the_authors_actions(team):
    comment = create(team, "writer", "first!")

    assert {k: comment[k] for k in ("user_id", "comment", "available_actions")} == {
        "user_id": "writer", "comment": "first!", "available_actions": ["EDIT_COMMENT", "DELETE_COMMENT"]}
    assert comment["id"].isdigit()
    assert comment["creation_timestamp"] == comment["last_updated_timestamp"]
    assert listed(team) == ["first!"]


def test_create_needs_edit(team):
    response = team.as_("reader").post(API + "/comments/create", {"name": "fraud", "version": "1", "comment": "x"})

    assert_error(response, 403, "PERMISSION_DENIED")


def test_create_without_text_is_invalid(team):
    response = team.as_("writer").post(API + "/comments/create", {"name": "fraud", "version": "1"})

    assert_error(response, 400, "INVALID_PARAMETER_VALUE")


def test_author_updates_the_comment(team):
    made = create(team, "writer")

    updated = ok(team.as_("writer").patch(API + "/comments/update", {"id": made["id"], "comment": "edited"}))

    assert updated["comment"]["id"] == made["id"] and updated["comment"]["comment"] == "edited"
    assert listed(team) == ["edited"]


def test_only_the_author_updates_a_comment(team):
    made = create(team, "writer")

    response = team.as_("admin").patch(API + "/comments/update", {"id": made["id"], "comment": "hijacked"})

    assert_error(response, 403, "PERMISSION_DENIED")
    assert listed(team) == ["looks good"]


def test_author_deletes_the_comment_by_query_string(team):
    made = create(team, "writer")

    assert ok(team.as_("writer").delete(API + "/comments/delete", {"id": made["id"]})) == {}
    assert listed(team) == []


def test_admin_deletes_someone_elses_comment(team):
    made = create(team, "writer")

    ok(team.as_("admin").delete(API + "/comments/delete", {"id": made["id"]}))

    assert listed(team) == []


def test_other_user_cannot_delete_a_comment(team):
    made = create(team, "writer")

    assert_error(team.as_("owner").delete(API + "/comments/delete", {"id": made["id"]}), 403, "PERMISSION_DENIED")


@pytest.mark.parametrize("comment_id", ["987654321", "c-1", "1e3"])
def test_unknown_comment_is_resource_does_not_exist(team, comment_id):
    response = team.as_("writer").patch(API + "/comments/update", {"id": comment_id, "comment": "x"})

    assert_error(response, 404, "RESOURCE_DOES_NOT_EXIST")
