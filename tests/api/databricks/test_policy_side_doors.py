"""Databricks dialect: no side door around the Production policy (issue "Trust the served answer",
finding 4). A direct transition out of Production is refused (403, "create a transition request"); a
transition request to Archived is the "leave Production" request, reviewed under the Production policy's
N-of-M and no-self-approval rules; deletions are refused. Alias requests, which this API cannot express,
never show up in its request lists nor get in the way of its approvals. Rules: tests/side_doors.py."""
from __future__ import annotations

import pytest

from registry.auth import Actor
from tests.side_doors import ALLOWED, CALLERS, MODEL, SideDoor, build_world, caller_headers, expected

from .conftest import API, assert_error, ok

LEAVE = {"name": MODEL, "version": "1", "stage": "Archived"}

DOORS = [
    SideDoor("archive the Production version", "POST", "/databricks/model-versions/transition-stage",
             {**LEAVE, "archive_existing_versions": False, "comment": "retire"}, "MANAGE_PRODUCTION", guarded=True),
    SideDoor("demote the Production version", "POST", "/databricks/model-versions/transition-stage",
             {**LEAVE, "stage": "Staging", "archive_existing_versions": False}, "MANAGE_PRODUCTION", guarded=True),
    SideDoor("delete the Production version", "DELETE", "/model-versions/delete", {"name": MODEL, "version": "1"},
             "MANAGE", guarded=True),
    SideDoor("delete the model", "DELETE", "/registered-models/delete", {"name": MODEL}, "MANAGE", guarded=True),
    SideDoor("promote into Staging archiving the others", "POST", "/databricks/model-versions/transition-stage",
             {"name": MODEL, "version": "2", "stage": "Staging", "archive_existing_versions": True},
             "MANAGE_STAGING"),
    SideDoor("request leaving Production", "POST", "/transition-requests/create", LEAVE, "READ"),
    SideDoor("approve leaving Production", "POST", "/transition-requests/approve",
             {**LEAVE, "archive_existing_versions": False}, "MANAGE_PRODUCTION"),
    SideDoor("reject leaving Production", "POST", "/transition-requests/reject", LEAVE, "MANAGE_PRODUCTION"),
    SideDoor("cancel someone's leave request", "DELETE", "/transition-requests/delete",
             {**LEAVE, "creator": "requester"}, "MANAGE"),
    SideDoor("list the requests", "GET", "/transition-requests/list", {"name": MODEL, "version": "2"}, "READ"),
]

CODES = {"NOT_FOUND": "RESOURCE_DOES_NOT_EXIST", "PERMISSION_DENIED": "PERMISSION_DENIED"}


def _send(client, door: SideDoor, headers):
    """As databricks-sdk sends: JSON bodies on POST, query strings on GET and DELETE."""
    if door.method in ("GET", "DELETE"):
        return client.open(API + door.path, method=door.method, query_string=door.body, headers=headers)
    return client.open(API + door.path, method=door.method, json=door.body, headers=headers)


@pytest.mark.parametrize("level", CALLERS)
@pytest.mark.parametrize("door", DOORS, ids=[d.name for d in DOORS])
def test_side_door_matrix(secure_app, secure_client, db_session, make_user, door, level):
    world = build_world(secure_app, db_session, make_user)
    headers = caller_headers(secure_app, make_user, level)
    want, code = expected(door, level, policy_code="PERMISSION_DENIED", forceable=False)
    before, serving = world.audit_count(), world.serving()

    response = _send(secure_client, door, headers)

    if want == ALLOWED:
        body = ok(response)
        if door.name == "list the requests":  # version 2 has a pending alias request: not listed here
            assert body == {}
        return
    message = assert_error(response, want, CODES[code])
    assert world.audit_count() == before
    assert world.serving() == serving
    if door.path.endswith("transition-stage") and want == 403:
        assert "transition request" in message, message  # below the level, or refused by the policy


@pytest.fixture
def crew(secure_app, db_session, make_user):
    world = build_world(secure_app, db_session, make_user)
    people = {"reader": make_user("reader"), "prod": make_user("prod", "MANAGE_PRODUCTION"),
              "prod2": make_user("prod2", "MANAGE_PRODUCTION"), "admin": make_user("boss", admin=True)}
    return world, people


def _post(client, headers, path, body):
    return client.post(API + path, json=body, headers=headers)


def _stage(client, headers, version: str) -> str:
    body = ok(client.get(API + "/model-versions/get", query_string={"name": MODEL, "version": version},
                         headers=headers))
    return body["model_version"]["current_stage"]


def test_leaving_production_takes_the_production_policys_two_approvals(secure_client, crew):
    _, who = crew
    ok(_post(secure_client, who["reader"], "/transition-requests/create", LEAVE))
    approve = {**LEAVE, "archive_existing_versions": False}

    first = ok(_post(secure_client, who["prod"], "/transition-requests/approve", approve))["activity"]
    assert (first["activity_type"], first["from_stage"], first["to_stage"]) == (
        "APPROVED_REQUEST", "Production", "Archived")
    assert _stage(secure_client, who["admin"], "1") == "Production"
    ok(_post(secure_client, who["prod2"], "/transition-requests/approve", approve))
    assert _stage(secure_client, who["admin"], "1") == "Archived"


def test_a_leave_production_request_cannot_be_approved_by_its_requester(secure_client, crew):
    _, who = crew
    ok(_post(secure_client, who["prod"], "/transition-requests/create", {**LEAVE, "stage": "Staging"}))

    message = assert_error(_post(secure_client, who["prod"], "/transition-requests/approve",
                                 {**LEAVE, "stage": "Staging", "archive_existing_versions": False}),
                           403, "PERMISSION_DENIED")
    assert "own" in message


def test_alias_requests_stay_out_of_the_databricks_lists(secure_app, secure_client, crew):
    _, who = crew
    ok(_post(secure_client, who["reader"], "/transition-requests/create",
             {"name": MODEL, "version": "2", "stage": "Staging"}))

    listed = ok(secure_client.get(API + "/transition-requests/list", query_string={"name": MODEL, "version": "2"},
                                  headers=who["reader"]))["requests"]
    moved = ok(_post(secure_client, who["prod"], "/databricks/model-versions/transition-stage",
                     {"name": MODEL, "version": "2", "stage": "None", "archive_existing_versions": False}))

    assert [(r["user_id"], r["to_stage"]) for r in listed] == [("reader", "Staging")]
    assert [(r["user_id"], r["to_stage"]) for r in moved["model_version_databricks"]["open_requests"]] == [
        ("reader", "Staging")]


def test_approving_a_stage_request_is_not_confused_by_an_alias_request_on_the_version(secure_app, secure_client,
                                                                                     crew):
    from registry.services import alias_requests

    world, who = crew
    with secure_app.app_context():
        alias_requests.request_alias(Actor("reader"), MODEL, 2, "canary")
    ok(_post(secure_client, who["reader"], "/transition-requests/create",
             {"name": MODEL, "version": "2", "stage": "Staging"}))

    ok(_post(secure_client, who["prod"], "/transition-requests/approve",
             {"name": MODEL, "version": "2", "stage": "Staging", "archive_existing_versions": False}))

    assert _stage(secure_client, who["admin"], "2") == "Staging"
    assert world.serving() == (1, 1, 3)  # the alias requests are untouched, still pending
