"""Native API: no side door around the Production policy or a protected alias (issue "Trust the served
answer", finding 4). The permission matrix (tests/side_doors.py states the rules) over every side door, its
admin-forced variant, the unguarded moves that must keep working, and the reviewed ways (leave-Production
and alias requests); then those reviews end to end over HTTP: N-of-M, no self-approval, request JSON."""
from __future__ import annotations

import pytest

from tests.side_doors import (
    ALLOWED,
    CALLERS,
    MODEL,
    SideDoor,
    build_world,
    caller_headers,
    expected,
    forced_events,
    last_event,
)

from tests.api.support import assert_error

M = f"/api/v1/models/{MODEL}"
REVIEW = "/api/v1/transition-requests"

DOORS = [
    # (a) leaving Production
    SideDoor("archive the Production version", "POST", M + "/versions/1/transition", {"stage": "Archived"},
             "MANAGE_PRODUCTION", guarded=True),
    SideDoor("demote the Production version", "POST", M + "/versions/1/transition", {"stage": "Staging"},
             "MANAGE_PRODUCTION", guarded=True),
    SideDoor("force the Production version out", "POST", M + "/versions/1/transition",
             {"stage": "Archived", "force": True}, "MANAGE_PRODUCTION", guarded=True, force=True),
    # (b) protected aliases
    SideDoor("move a protected alias", "PUT", M + "/aliases/champion", {"version": 2}, "MANAGE_PRODUCTION",
             guarded=True),
    SideDoor("force-move a protected alias", "PUT", M + "/aliases/champion", {"version": 2, "force": True},
             "MANAGE_PRODUCTION", guarded=True, force=True),
    SideDoor("delete a protected alias", "DELETE", M + "/aliases/champion", None, "MANAGE_PRODUCTION",
             guarded=True),
    SideDoor("force-delete a protected alias", "DELETE", M + "/aliases/champion?force=true", None,
             "MANAGE_PRODUCTION", guarded=True, force=True),
    # deleting or renaming what serves
    SideDoor("delete the Production version", "DELETE", M + "/versions/1", None, "MANAGE", guarded=True),
    SideDoor("force-delete the Production version", "DELETE", M + "/versions/1?force=true", None, "MANAGE",
             guarded=True, force=True),
    SideDoor("delete the version behind a protected alias", "DELETE", M + "/versions/3", None, "MANAGE",
             guarded=True),
    SideDoor("delete the model", "DELETE", M, None, "MANAGE", guarded=True),
    SideDoor("force-delete the model", "DELETE", M + "?force=true", None, "MANAGE", guarded=True, force=True),
    SideDoor("rename the model", "PATCH", M, {"name": "churn-v2"}, "MANAGE", guarded=True),
    SideDoor("force-rename the model", "PATCH", M, {"name": "churn-v2", "force": True}, "MANAGE", guarded=True,
             force=True),
    # not side doors: they keep working as before
    SideDoor("move an unprotected alias", "PUT", M + "/aliases/scratch", {"version": 1}, "MANAGE_PRODUCTION"),
    SideDoor("promote into Staging archiving the others", "POST", M + "/versions/2/transition",
             {"stage": "Staging", "archive_existing_versions": True}, "MANAGE_STAGING"),
    SideDoor("delete a version serving nothing protected", "DELETE", M + "/versions/2", None, "MANAGE"),
    # the reviewed ways
    SideDoor("request leaving Production", "POST", M + "/versions/1/transition-requests", {"stage": "Archived"},
             "READ"),
    SideDoor("request moving a protected alias", "POST", M + "/versions/3/alias-requests", {"alias": "champion"},
             "READ"),
    SideDoor("request deleting a protected alias", "POST", M + "/aliases/champion/deletion-requests", {}, "READ"),
    SideDoor("approve leaving Production", "POST", REVIEW + "/{leave_request}/approve", {}, "MANAGE_PRODUCTION"),
    SideDoor("reject leaving Production", "POST", REVIEW + "/{leave_request}/reject", {}, "MANAGE_PRODUCTION"),
    SideDoor("approve an alias request", "POST", REVIEW + "/{alias_request}/approve", {}, "MANAGE_PRODUCTION"),
    SideDoor("reject an alias request", "POST", REVIEW + "/{alias_request}/reject", {}, "MANAGE_PRODUCTION"),
    SideDoor("protect an alias", "PUT", M + "/approval-policies/aliases/prod", {"required_approvals": 1}, "MANAGE"),
    SideDoor("protect an alias registry-wide", "PUT", "/api/v1/approval-policies/aliases/prod",
             {"required_approvals": 1}, "ADMIN", scope="registry"),
]


def test_expectations_match_the_rules_on_hand_checked_cells():
    by_name = {d.name: d for d in DOORS}
    assert expected(by_name["archive the Production version"], "MANAGE_PRODUCTION") == (403, "APPROVAL_REQUIRED")
    assert expected(by_name["archive the Production version"], "ADMIN") == (403, "APPROVAL_REQUIRED")
    assert expected(by_name["archive the Production version"], "MANAGE_STAGING") == (403, "PERMISSION_DENIED")
    assert expected(by_name["force the Production version out"], "ADMIN") == (ALLOWED, None)
    assert expected(by_name["force the Production version out"], "MANAGE") == (403, "PERMISSION_DENIED")
    assert expected(by_name["delete the model"], "NO_ACCESS") == (404, "NOT_FOUND")
    assert expected(by_name["move an unprotected alias"], "MANAGE_PRODUCTION") == (ALLOWED, None)
    assert expected(by_name["request leaving Production"], "READ") == (ALLOWED, None)


@pytest.mark.parametrize("level", CALLERS)
@pytest.mark.parametrize("door", DOORS, ids=[d.name for d in DOORS])
def test_side_door_matrix(secure_app, secure_client, db_session, make_user, door, level):
    world = build_world(secure_app, db_session, make_user)
    headers = caller_headers(secure_app, make_user, level)
    want, code = expected(door, level)
    before, serving, marker = world.audit_count(), world.serving(), last_event(db_session)

    response = secure_client.open(door.path.format(**world.ids), method=door.method, json=door.body,
                                  headers=headers)

    outcome = ALLOWED if 200 <= response.status_code < 300 else response.status_code
    assert (outcome, None if outcome == ALLOWED else response.get_json()["error"]["code"]) == (want, code), \
        response.get_data(as_text=True)
    if want != ALLOWED:
        assert world.audit_count() == before  # refused: nothing written, not even to the trail
        assert world.serving() == serving  # and serving answers exactly as before
    elif door.guarded:
        assert forced_events(db_session, marker), "a forced change is audited as forced"
        assert world.serving() != serving


def test_the_refusal_names_the_policy_and_the_way_forward(secure_app, secure_client, db_session, make_user):
    build_world(secure_app, db_session, make_user)
    deployer = make_user("deployer", "MANAGE")

    leave = assert_error(secure_client.post(M + "/versions/1/transition", json={"stage": "Archived"},
                                            headers=deployer), 403, "APPROVAL_REQUIRED")
    alias = assert_error(secure_client.put(M + "/aliases/champion", json={"version": 2}, headers=deployer),
                         403, "APPROVAL_REQUIRED")
    delete = assert_error(secure_client.delete(M + "/versions/1", headers=deployer), 403, "APPROVAL_REQUIRED")

    assert "approval policy for Production requires 2" in leave["message"] and "request" in leave["message"]
    assert leave["details"]["from_stage"] == "Production" and leave["details"]["required_approvals"] == 2
    assert "alias champion requires 2" in alias["message"] and "alias request" in alias["message"]
    assert alias["details"]["alias"] == "champion"
    assert "Production" in delete["message"] and "alias champion" in delete["message"]


@pytest.mark.parametrize("path", [M + "?force=yes", M + "/versions/1?force=1", M + "/aliases/champion?forced=true"])
def test_force_in_a_query_string_is_a_strict_boolean(secure_app, secure_client, db_session, make_user, path):
    build_world(secure_app, db_session, make_user)
    assert_error(secure_client.delete(path, headers=make_user("boss", admin=True)), 400, "INVALID_ARGUMENT")


# --- the reviewed ways, end to end ------------------------------------------------------------------------

@pytest.fixture
def crew(secure_app, db_session, make_user):
    build_world(secure_app, db_session, make_user)
    people = {"reader": make_user("reader"), "requester": make_user("requester2")}
    for i in range(3):
        people[f"rev{i}"] = make_user(f"rev{i}", "MANAGE_PRODUCTION")
    return people


def _ok(response, status: int = 200) -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    return response.get_json()


def _serving(client, headers, what: str):
    response = client.get(f"{M}/{what}", headers=headers)
    return response.get_json()["version"] if response.status_code == 200 else response.status_code


def test_leaving_production_takes_two_distinct_approvals_and_never_the_requesters(secure_client, crew):
    made = _ok(secure_client.post(M + "/versions/1/transition-requests", json={"stage": "Archived"},
                                  headers=crew["rev0"]), 201)
    assert (made["from_stage"], made["to_stage"], made["alias"], made["alias_action"]) == (
        "Production", "Archived", None, None)
    approve = f"{REVIEW}/{made['id']}/approve"

    assert_error(secure_client.post(approve, json={}, headers=crew["rev0"]), 403, "PERMISSION_DENIED")
    assert _ok(secure_client.post(approve, json={}, headers=crew["rev1"]))["status"] == "pending"
    assert _serving(secure_client, crew["reader"], "stages/Production") == 1
    assert _ok(secure_client.post(approve, json={}, headers=crew["rev2"]))["status"] == "approved"
    assert _serving(secure_client, crew["reader"], "stages/Production") == 404


def test_an_alias_request_moves_the_alias_after_two_approvals(secure_client, crew):
    response = secure_client.post(M + "/versions/3/alias-requests", json={"alias": "champion", "comment": "v3 wins"},
                                  headers=crew["reader"])
    made = _ok(response, 201)
    assert response.headers["Location"].endswith(f"{REVIEW}/{made['id']}")
    assert {k: made[k] for k in ("model", "version", "alias", "alias_action", "from_stage", "to_stage", "comment",
                                 "status", "requested_by")} == {
        "model": MODEL, "version": 3, "alias": "champion", "alias_action": "set", "from_stage": None,
        "to_stage": None, "comment": "v3 wins", "status": "pending", "requested_by": "reader"}
    approve = f"{REVIEW}/{made['id']}/approve"

    assert _ok(secure_client.post(approve, json={}, headers=crew["rev0"]))["status"] == "pending"
    assert _serving(secure_client, crew["reader"], "aliases/champion") == 1
    assert _ok(secure_client.post(approve, json={}, headers=crew["rev1"]))["status"] == "approved"
    assert _serving(secure_client, crew["reader"], "aliases/champion") == 3
    history = _ok(secure_client.get(f"{REVIEW}/{made['id']}/history", headers=crew["reader"]))["events"]
    assert [e["action"] for e in history] == ["request.created", "request.approved", "request.approved",
                                              "alias.set"]


def test_the_requester_may_not_approve_their_own_alias_request(secure_client, crew):
    made = _ok(secure_client.post(M + "/versions/3/alias-requests", json={"alias": "champion"},
                                  headers=crew["rev0"]), 201)

    error = assert_error(secure_client.post(f"{REVIEW}/{made['id']}/approve", json={}, headers=crew["rev0"]),
                         403, "PERMISSION_DENIED")
    assert "own" in error["message"]


def test_a_deletion_request_removes_the_protected_alias_once_approved(secure_client, crew):
    made = _ok(secure_client.post(M + "/aliases/canary/deletion-requests", json={"comment": "done"},
                                  headers=crew["reader"]), 201)
    assert (made["version"], made["alias"], made["alias_action"]) == (3, "canary", "delete")

    assert _ok(secure_client.post(f"{REVIEW}/{made['id']}/approve", json={}, headers=crew["rev0"]))[
        "status"] == "approved"  # canary needs one approval
    assert _serving(secure_client, crew["reader"], "aliases/canary") == 404


def test_alias_requests_reach_the_inbox_and_the_listings(secure_client, crew):
    inbox = _ok(secure_client.get("/api/v1/inbox", headers=crew["rev0"]))["requests"]
    listed = _ok(secure_client.get(M + "/transition-requests", headers=crew["reader"]))["requests"]

    assert {(r["alias"], r["to_stage"]) for r in inbox} == {("champion", None), (None, "Archived")}
    assert {(r["alias"], r["to_stage"]) for r in listed} == {("champion", None), (None, "Archived")}


def test_policies_list_and_read_protected_aliases(secure_client, crew, make_user):
    admin = make_user("boss", admin=True)
    _ok(secure_client.put("/api/v1/approval-policies/aliases/prod", json={"required_approvals": 1}, headers=admin))

    listed = _ok(secure_client.get(M + "/approval-policies", headers=crew["reader"]))
    one = _ok(secure_client.get(M + "/approval-policies/aliases/champion", headers=crew["reader"]))
    registry = _ok(secure_client.get("/api/v1/approval-policies/aliases/prod", headers=crew["reader"]))

    assert [p["stage"] for p in listed["policies"]] == ["None", "Staging", "Production", "Archived"]
    assert [(p["alias"], p["required_approvals"], p["scope"]) for p in listed["alias_policies"]] == [
        ("canary", 1, "model"), ("champion", 2, "model"), ("prod", 1, "registry")]
    assert one == {"alias": "champion", "required_approvals": 2, "creator_may_not_approve": False, "scope": "model"}
    assert registry == {"alias": "prod", "required_approvals": 1, "creator_may_not_approve": False,
                        "scope": "registry"}
    assert_error(secure_client.put(M + "/approval-policies/aliases/latest", json={"required_approvals": 1},
                                   headers=admin), 400, "INVALID_ARGUMENT")
