"""MLflow dialect: no side door around the Production policy or a protected alias (issue "Trust the served
answer", finding 4). MLflow has no request API and no ``force``: every change a policy guards is refused
with 403 PERMISSION_DENIED saying that a reviewed request is needed, admins included. The rules are stated
in tests/side_doors.py; unguarded moves keep working."""
from __future__ import annotations

import pytest

from tests.side_doors import ALLOWED, CALLERS, MODEL, RANK, SideDoor, build_world, caller_headers, expected

from .conftest import API, assert_mlflow_error

V1 = {"name": MODEL, "version": "1"}

DOORS = [
    SideDoor("archive the Production version", "POST", "/model-versions/transition-stage",
             {**V1, "stage": "Archived", "archive_existing_versions": False}, "MANAGE_PRODUCTION", guarded=True),
    SideDoor("demote the Production version", "POST", "/model-versions/transition-stage",
             {**V1, "stage": "None", "archive_existing_versions": False}, "MANAGE_PRODUCTION", guarded=True),
    SideDoor("move a protected alias", "POST", "/registered-models/alias",
             {"name": MODEL, "alias": "champion", "version": "2"}, "MANAGE_PRODUCTION", guarded=True),
    SideDoor("delete a protected alias", "DELETE", "/registered-models/alias", {"name": MODEL, "alias": "champion"},
             "MANAGE_PRODUCTION", guarded=True),
    SideDoor("delete the Production version", "DELETE", "/model-versions/delete", V1, "MANAGE", guarded=True),
    SideDoor("delete the version behind a protected alias", "DELETE", "/model-versions/delete",
             {"name": MODEL, "version": "3"}, "MANAGE", guarded=True),
    SideDoor("delete the model", "DELETE", "/registered-models/delete", {"name": MODEL}, "MANAGE", guarded=True),
    SideDoor("rename the model", "POST", "/registered-models/rename", {"name": MODEL, "new_name": "churn-v2"},
             "MANAGE", guarded=True),
    # not side doors
    SideDoor("move an unprotected alias", "POST", "/registered-models/alias",
             {"name": MODEL, "alias": "scratch", "version": "1"}, "MANAGE_PRODUCTION"),
    SideDoor("promote into Staging archiving the others", "POST", "/model-versions/transition-stage",
             {"name": MODEL, "version": "2", "stage": "Staging", "archive_existing_versions": True},
             "MANAGE_STAGING"),
    SideDoor("delete a version serving nothing protected", "DELETE", "/model-versions/delete",
             {"name": MODEL, "version": "2"}, "MANAGE"),
]

MLFLOW_CODES = {"NOT_FOUND": "RESOURCE_DOES_NOT_EXIST", "PERMISSION_DENIED": "PERMISSION_DENIED"}


@pytest.mark.parametrize("level", CALLERS)
@pytest.mark.parametrize("door", DOORS, ids=[d.name for d in DOORS])
def test_side_door_matrix(secure_app, secure_client, db_session, make_user, door, level):
    world = build_world(secure_app, db_session, make_user)
    headers = caller_headers(secure_app, make_user, level)
    want, code = expected(door, level, policy_code="PERMISSION_DENIED", forceable=False)
    before, serving = world.audit_count(), world.serving()

    response = secure_client.open(API + door.path, method=door.method, json=door.body, headers=headers)

    if want == ALLOWED:
        assert response.status_code == 200, response.get_data(as_text=True)
        return
    message = assert_mlflow_error(response, want, MLFLOW_CODES[code])
    assert world.audit_count() == before
    assert world.serving() == serving
    if door.guarded and level != "NO_ACCESS" and RANK[level] >= RANK[door.level]:
        assert "request" in message, message  # says how to get the change made: through a reviewed request


def test_a_protected_alias_refusal_points_to_the_native_alias_request(secure_app, secure_client, db_session,
                                                                      make_user):
    build_world(secure_app, db_session, make_user)
    admin = make_user("boss", admin=True)

    message = assert_mlflow_error(
        secure_client.post(API + "/registered-models/alias",
                           json={"name": MODEL, "alias": "champion", "version": "2"}, headers=admin),
        403, "PERMISSION_DENIED")

    assert "alias champion requires 2 approval(s)" in message
    assert "/api/v1/models/churn/versions/2/alias-requests" in message
