"""HTTP behaviour of the /api/v1 review workflow with authentication on: requests, reviews, history, inbox,
policies refusing direct transitions, and comments."""
from __future__ import annotations

import pytest

from tests.api.support import assert_error


def ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


@pytest.fixture
def who(secure_client, make_user):
    """An admin who owns model churn (versions 1 and 2), a plain reader, and three production reviewers."""
    people = {"admin": make_user("boss", admin=True), "reader": make_user("reader")}
    for i in range(3):
        people[f"rev{i}"] = make_user(f"rev{i}", "MANAGE_PRODUCTION")
    ok(secure_client.post("/api/v1/models", json={"name": "churn"}, headers=people["admin"]), 201)
    for i in (1, 2):
        ok(secure_client.post("/api/v1/models/churn/versions", json={"source": f"s3://bucket/{i}", "run_id": f"run-{i}"},
                              headers=people["admin"]), 201)
    return people


def request_transition(client, headers, version: int = 1, stage: str = "Production", **fields):
    return client.post(f"/api/v1/models/churn/versions/{version}/transition-requests",
                       json={"stage": stage, **fields}, headers=headers)


def review(client, headers, request_id: int, verb: str, comment: str | None = None):
    return client.post(f"/api/v1/transition-requests/{request_id}/{verb}", json={"comment": comment}, headers=headers)


def stage_of(client, headers, version: int = 1) -> str:
    return ok(client.get(f"/api/v1/models/churn/versions/{version}", headers=headers))["stage"]


def require(client, who, count: int, stage: str = "Production", **fields):
    ok(client.put(f"/api/v1/models/churn/approval-policies/{stage}",
                  json={"required_approvals": count, **fields}, headers=who["admin"]))


def test_reader_creates_a_request_and_gets_its_location(secure_client, who):
    response = request_transition(secure_client, who["reader"], comment="ship it", archive_existing_versions=True)

    body = ok(response, 201)
    assert response.headers["Location"].endswith(f"/api/v1/transition-requests/{body['id']}")
    assert {k: body[k] for k in ("model", "version", "from_stage", "to_stage", "archive_existing_versions",
                                 "comment", "requested_by", "status", "approvals")} == {
        "model": "churn", "version": 1, "from_stage": "None", "to_stage": "Production",
        "archive_existing_versions": True, "comment": "ship it", "requested_by": "reader", "status": "pending",
        "approvals": []}


def test_get_request_answers_what_was_created(secure_client, who):
    made = ok(request_transition(secure_client, who["reader"]), 201)

    assert ok(secure_client.get(f"/api/v1/transition-requests/{made['id']}", headers=who["rev0"])) == made


def test_unknown_request_is_404(secure_client, who):
    assert_error(secure_client.get("/api/v1/transition-requests/987654321", headers=who["admin"]), 404, "NOT_FOUND")


def test_request_needs_authentication(secure_client, who):
    response = request_transition(secure_client, {})

    assert_error(response, 401, "UNAUTHENTICATED")


def test_request_for_the_current_stage_is_422(secure_client, who):
    assert_error(request_transition(secure_client, who["reader"], stage="none"), 422, "INVALID_TRANSITION")


def test_duplicate_pending_request_is_409(secure_client, who):
    ok(request_transition(secure_client, who["reader"]), 201)

    assert_error(request_transition(secure_client, who["reader"]), 409, "ALREADY_EXISTS")


@pytest.mark.parametrize("path, status, expected", [
    ("/api/v1/models/churn/transition-requests", None, [2, 1, 0]),
    ("/api/v1/models/churn/transition-requests", "pending", [2, 1]),
    ("/api/v1/models/churn/versions/1/transition-requests", None, [2, 0]),
    ("/api/v1/models/churn/versions/1/transition-requests", "cancelled", [0]),
])
def test_request_lists_filter_by_version_and_status_newest_first_across_pages(secure_client, who, path, status,
                                                                                expected):
    """Requests 0 and 2 are on version 1, request 1 on version 2; request 0 is cancelled."""
    ids = [ok(request_transition(secure_client, who[f"rev{i}"], version=1 + i % 2), 201)["id"] for i in range(3)]
    ok(review(secure_client, who["rev0"], ids[0], "cancel"))
    params = {"max_results": 1, **({"status": status} if status else {})}

    found, token = [], None
    while True:
        page = ok(secure_client.get(path, query_string={**params, **({"page_token": token} if token else {})},
                                    headers=who["reader"]))
        assert len(page["requests"]) <= 1
        found += [r["id"] for r in page["requests"]]
        token = page["next_page_token"]
        if token is None:
            break

    assert found == [ids[i] for i in expected]


def test_unknown_status_filter_is_400(secure_client, who):
    response = secure_client.get("/api/v1/models/churn/transition-requests", query_string={"status": "open"},
                                 headers=who["reader"])

    assert_error(response, 400, "INVALID_ARGUMENT")


def test_self_approval_is_403(secure_client, who):
    made = ok(request_transition(secure_client, who["rev0"]), 201)

    assert_error(review(secure_client, who["rev0"], made["id"], "approve"), 403, "PERMISSION_DENIED")
    assert stage_of(secure_client, who["admin"]) == "None"


def test_reader_approval_is_403(secure_client, who, make_user):
    made = ok(request_transition(secure_client, who["reader"]), 201)

    assert_error(review(secure_client, make_user("other"), made["id"], "approve"), 403, "PERMISSION_DENIED")


def test_two_required_approvals_apply_on_the_second(secure_client, who):
    require(secure_client, who, 2)
    made = ok(request_transition(secure_client, who["reader"]), 201)

    first = ok(review(secure_client, who["rev0"], made["id"], "approve", "fine"))
    assert first["status"] == "pending" and stage_of(secure_client, who["admin"]) == "None"
    second = ok(review(secure_client, who["rev1"], made["id"], "approve"))

    assert second["status"] == "approved"
    assert [a["approver"] for a in second["approvals"]] == ["rev0", "rev1"]
    assert stage_of(secure_client, who["admin"]) == "Production"


def test_request_history_lists_its_events_in_order(secure_client, who):
    require(secure_client, who, 2)
    made = ok(request_transition(secure_client, who["reader"], comment="go"), 201)
    review(secure_client, who["rev0"], made["id"], "approve")
    review(secure_client, who["rev1"], made["id"], "approve")

    history = ok(secure_client.get(f"/api/v1/transition-requests/{made['id']}/history", headers=who["reader"]))

    assert [(e["actor"], e["action"], e["request_id"], e["run_id"]) for e in history["events"]] == [
        ("reader", "request.created", made["id"], "run-1"),
        ("rev0", "request.approved", made["id"], "run-1"),
        ("rev1", "request.approved", made["id"], "run-1"),
        ("rev1", "version.transitioned", made["id"], "run-1"),
    ]


def test_history_of_a_rejected_request_ends_with_the_rejection(secure_client, who):
    made = ok(request_transition(secure_client, who["reader"]), 201)
    ok(review(secure_client, who["rev0"], made["id"], "reject", "no"))

    history = ok(secure_client.get(f"/api/v1/transition-requests/{made['id']}/history", headers=who["reader"]))

    assert [e["action"] for e in history["events"]] == ["request.created", "request.rejected"]
    assert history["events"][-1]["details"] == {"comment": "no"}


def test_history_of_a_request_on_an_unreadable_model_is_404(secure_client, who, make_user):
    made = ok(request_transition(secure_client, who["reader"]), 201)
    ok(secure_client.put("/api/v1/permissions", json={"grants": []}, headers=who["admin"]))  # nobody reads now

    response = secure_client.get(f"/api/v1/transition-requests/{made['id']}/history", headers=who["reader"])

    assert_error(response, 404, "NOT_FOUND")


def test_history_of_an_unknown_request_is_404(secure_client, who):
    assert_error(secure_client.get("/api/v1/transition-requests/987654321/history", headers=who["admin"]),
                 404, "NOT_FOUND")


@pytest.mark.parametrize("verb", ["approve", "reject", "cancel"])
def test_reviewing_a_closed_request_is_409(secure_client, who, verb):
    made = ok(request_transition(secure_client, who["reader"]), 201)
    ok(review(secure_client, who["rev0"], made["id"], "reject"))

    headers = who["reader"] if verb == "cancel" else who["rev1"]
    assert_error(review(secure_client, headers, made["id"], verb), 409, "CONFLICT")


def test_cancelling_someone_elses_request_without_manage_is_403(secure_client, who):
    made = ok(request_transition(secure_client, who["reader"]), 201)

    assert_error(review(secure_client, who["rev0"], made["id"], "cancel"), 403, "PERMISSION_DENIED")


def test_requester_cancels_own_request(secure_client, who):
    made = ok(request_transition(secure_client, who["reader"]), 201)

    assert ok(review(secure_client, who["reader"], made["id"], "cancel", "nah"))["status"] == "cancelled"


def test_inbox_shows_what_the_caller_may_approve(secure_client, who, make_user):
    theirs = ok(request_transition(secure_client, who["reader"]), 201)
    ok(request_transition(secure_client, who["rev0"], version=2), 201)

    assert [r["id"] for r in ok(secure_client.get("/api/v1/inbox", headers=who["rev0"]))["requests"]] == [theirs["id"]]
    assert ok(secure_client.get("/api/v1/inbox", headers=make_user("stager", "MANAGE_STAGING")))["requests"] == []


def test_direct_transition_past_a_policy_is_403_approval_required(secure_client, who):
    require(secure_client, who, 1)

    response = secure_client.post("/api/v1/models/churn/versions/1/transition", json={"stage": "Production"},
                                  headers=who["rev0"])

    error = assert_error(response, 403, "APPROVAL_REQUIRED")
    assert "approval policy for Production" in error["message"]


def test_admin_force_is_applied_and_audited_as_forced(secure_client, who):
    require(secure_client, who, 1)

    moved = ok(secure_client.post("/api/v1/models/churn/versions/1/transition",
                                  json={"stage": "Production", "force": True}, headers=who["admin"]))

    assert moved["stage"] == "Production"
    events = ok(secure_client.get("/api/v1/audit-events", headers=who["admin"],
                                  query_string={"model": "churn", "action": "version.transitioned"}))["events"]
    assert [e["details"].get("forced") for e in events] == [True]


def test_non_admin_force_is_403(secure_client, who):
    require(secure_client, who, 1)

    response = secure_client.post("/api/v1/models/churn/versions/1/transition",
                                  json={"stage": "Production", "force": True}, headers=who["rev0"])

    assert_error(response, 403, "PERMISSION_DENIED")


@pytest.mark.parametrize("value", [-1, 11, True, "2", 1.5])
def test_invalid_required_approvals_is_400(secure_client, who, value):
    response = secure_client.put("/api/v1/models/churn/approval-policies/Production",
                                 json={"required_approvals": value}, headers=who["admin"])

    assert_error(response, 400, "INVALID_ARGUMENT")


@pytest.fixture
def writer(who, make_user):
    return make_user("writer", "EDIT")


def add_comment(client, headers, text: str = "hi") -> dict:
    return ok(client.post("/api/v1/models/churn/versions/1/comments", json={"comment": text}, headers=headers), 201)


def comments(client, headers) -> list[str]:
    listed = ok(client.get("/api/v1/models/churn/versions/1/comments", headers=headers))["comments"]
    return [c["comment"] for c in listed]


def test_editor_creates_a_comment(secure_client, writer):
    made = add_comment(secure_client, writer)

    assert (made["author"], made["comment"], made["model"], made["version"]) == ("writer", "hi", "churn", 1)


def test_readers_list_comments_in_order(secure_client, who, writer):
    add_comment(secure_client, writer, "one")
    add_comment(secure_client, writer, "two")

    assert comments(secure_client, who["reader"]) == ["one", "two"]


def test_author_edits_own_comment(secure_client, writer):
    made = add_comment(secure_client, writer)

    edited = ok(secure_client.patch(f"/api/v1/comments/{made['id']}", json={"comment": "hello"}, headers=writer))

    assert edited["comment"] == "hello" and comments(secure_client, writer) == ["hello"]


def test_author_deletes_own_comment(secure_client, writer):
    made = add_comment(secure_client, writer)

    assert secure_client.delete(f"/api/v1/comments/{made['id']}", headers=writer).status_code == 204
    assert comments(secure_client, writer) == []


def test_reader_cannot_comment(secure_client, who):
    response = secure_client.post("/api/v1/models/churn/versions/1/comments", json={"comment": "hi"},
                                  headers=who["reader"])

    assert_error(response, 403, "PERMISSION_DENIED")


def test_editing_someone_elses_comment_is_403(secure_client, writer, make_user):
    made = add_comment(secure_client, writer)

    response = secure_client.patch(f"/api/v1/comments/{made['id']}", json={"comment": "yours"},
                                   headers=make_user("other", "EDIT"))

    assert_error(response, 403, "PERMISSION_DENIED")


def test_admin_deletes_someone_elses_comment(secure_client, who, writer):
    made = add_comment(secure_client, writer)

    assert secure_client.delete(f"/api/v1/comments/{made['id']}", headers=who["admin"]).status_code == 204
    assert comments(secure_client, writer) == []


def test_non_author_delete_is_403(secure_client, writer, make_user):
    made = add_comment(secure_client, writer)

    response = secure_client.delete(f"/api/v1/comments/{made['id']}", headers=make_user("other", "MANAGE"))

    assert_error(response, 403, "PERMISSION_DENIED")


def test_a_retried_approval_that_did_commit_says_it_was_already_approved_by_you(secure_client, who):
    # A worker killed after the commit but before the answer: the client's retry finds the request approved.
    made = ok(request_transition(secure_client, who["reader"]), 201)
    ok(review(secure_client, who["rev0"], made["id"], "approve"))

    retried = review(secure_client, who["rev0"], made["id"], "approve")
    other = review(secure_client, who["rev1"], made["id"], "approve")

    error = assert_error(retried, 409, "CONFLICT")
    assert "already approved" in error["message"] and "by you" in error["message"]
    assert error["details"] == {"request_id": made["id"], "status": "approved", "resolved_by": "rev0",
                                "approved_by": ["rev0"], "by_you": True}
    other_error = assert_error(other, 409, "CONFLICT")
    assert "by you" not in other_error["message"] and other_error["details"]["by_you"] is False
    assert stage_of(secure_client, who["admin"]) == "Production"
